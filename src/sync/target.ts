import type { BatchPlan } from './writer.js';
/**
 * One small SQL surface that both targets implement: a real Postgres through
 * `pg`, and PGlite (Postgres compiled to WebAssembly) in the node's data
 * directory. The sink, the migrations, the indexer and search are written
 * against it only, so both run exactly the same SQL.
 *
 * Value conventions (both targets): int8 comes back as a JS number, numeric
 * as a decimal string, timestamptz as a Date, jsonb parsed. Parameters are
 * JS values; arrays become Postgres arrays (cast them in SQL: `$1::text[]`).
 */
export interface QueryResult<R> {
  rows: R[];
  /** rows inserted, updated or deleted by the statement (0 for other statements) */
  rowCount: number;
}

export interface SqlExecutor {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /**
   * `COPY table (columns) FROM STDIN` with `data` in COPY's text format
   * (copyText below), as text or its UTF-8 bytes; resolves to the number of
   * rows copied. Offered by the executors inside a transaction of both
   * targets; callers fall back to INSERT statements when it is missing (a
   * wrapper that only has `query`).
   */
  copyFrom?(table: string, columns: readonly string[], data: string | Uint8Array): Promise<number>;
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

/**
 * One field in COPY's text format: `\N` for null, numbers and bigints as
 * decimals, strings with backslash, tab, newline and carriage return escaped
 * (so no field can end a row or the data).
 */
export function copyText(v: string | number | bigint | null | undefined): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v !== 'string') return String(v);
  return COPY_SPECIAL.test(v) ? v.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]!) : v;
}

/**
 * The element type an embedder's HNSW index stores (docs/SYNC.md §Index
 * precision). Embeddings are always kept in full precision (`vector`); the
 * index is over `embedding::vector(d)` or `embedding::halfvec(d)`. On
 * Postgres half precision shrinks the index (195 → 116 MB at 100,000 × 384)
 * and speeds its walks, at the same recall; PGlite's pgvector (WebAssembly, no F16C) builds
 * and searches halfvec several times slower, so it keeps `vector`.
 */
export type VectorIndexType = 'vector' | 'halfvec';

export interface TransactionOptions {
  /**
   * How long each of its statements may run, instead of the target's query
   * timeout (Postgres: 120 s by default), enforced by the server as well
   * (`statement_timeout`), so a statement the client gives up on does not
   * go on without it. For index builds and schema changes, which take
   * minutes on a large mirror. PGlite has no timeouts.
   */
  timeoutMs?: number;
}

/** Index builds and migrations: long enough for a mirror of tens of millions of commissions. */
export const MAINTENANCE_TIMEOUT_MS = 6 * 3600_000;

export interface SqlTarget extends SqlExecutor {
  readonly kind: 'postgres' | 'pglite';
  /** The schema holding every table of the mirror (tables are looked up through search_path). */
  readonly schema: string;
  /** the type of the HNSW index the indexer builds for a newly activated embedder */
  readonly vectorIndexType: VectorIndexType;
  /**
   * Run `fn` inside one transaction: committed when it resolves, rolled back
   * when it throws. A connection lost mid-way rejects, and nothing of the
   * transaction remains.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * Optional: resolves when data of statements in flight has been handed to
   * the operating system (a busy thread pumps its sockets only between its
   * steps; the sink waits for this before its next CPU-heavy step).
   */
  sent?(): Promise<void>;
  /**
   * Optional: run a batch's bulk write (writer.ts `runPlan`) in one
   * transaction somewhere that does not wait on the calling thread (the
   * Postgres target: a worker thread with its own connection). Same result
   * and errors as `transaction((tx) => runPlan(tx, plan))`.
   */
  writePlan?(plan: BatchPlan): Promise<number>;
  close(): Promise<void>;
}

export const DEFAULT_SCHEMA = 'bitnexus';

const IDENT_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** Schema names are interpolated into SQL, so only plain lower-case identifiers are accepted. */
export function checkSchemaName(schema: string): string {
  if (!IDENT_RE.test(schema)) {
    throw new Error(`schema name ${JSON.stringify(schema)} must match ${IDENT_RE.source}`);
  }
  return schema;
}

/**
 * pgvector settings of every session, for search (docs/SYNC.md §Search):
 * iterative index scans (pgvector ≥ 0.8) so that a filtered nearest-neighbour
 * query keeps walking the HNSW graph until it has its LIMIT, in relaxed order
 * (search sorts the candidates again); an ef_search that covers the
 * candidates search asks for; and a bound on how far one scan walks.
 * Set per session, so a search is one statement, not a transaction.
 */
export const SEARCH_SESSION_SETTINGS: Readonly<Record<string, string>> = {
  'hnsw.iterative_scan': 'relaxed_order',
  'hnsw.ef_search': '100',
  'hnsw.max_scan_tuples': '20000',
};

/**
 * search_path of every session: the mirror's schema first (so its tables and
 * anything CREATE makes land there), then where pgvector usually lives
 * (`public`; `extensions` on Supabase). Missing schemas are skipped by Postgres.
 */
export function searchPathFor(schema: string): string {
  return `${checkSchemaName(schema)}, public, extensions`;
}

/**
 * Let the event loop run (timers, I/O, messages) before going on. An await
 * alone does not: PGlite runs a statement synchronously and hands back a
 * settled promise, so a loop of PGlite statements never leaves the microtask
 * queue, and nothing else on the thread (a commit notice from the node, the
 * sink) gets a turn until the loop ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Between two steps of a loop of statements that gives the sink way (the
 * search indexer, the maintenance): a real turn of the event loop first, so
 * that commit notices are read and the sink knows it is behind (a loop of
 * PGlite statements never leaves the microtask queue otherwise), then the
 * caller's `between` (SyncService: let the sink catch up).
 */
export async function yieldThen(between?: () => Promise<void>): Promise<void> {
  await yieldToEventLoop();
  await between?.();
}
