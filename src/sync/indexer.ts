import { createHash } from 'node:crypto';
import { toSql } from 'pgvector';
import { checkEmbedder, type Embedder } from './embedder.js';
import { errorMessage, SyncError } from './errors.js';
import { migrate } from './migrations.js';
import { searchableText } from './rows.js';
import { SILENT_LOGGER, type SyncLogger } from './sink.js';
import {
  MAINTENANCE_TIMEOUT_MS,
  yieldThen,
  type SqlExecutor,
  type SqlTarget,
  type VectorIndexType,
} from './target.js';

/**
 * The search indexer: keeps the derived search data of the mirror, in the
 * background, so neither the sink nor consensus ever wait for it:
 *  - `commission_text`: each commission's weighted tsvector (GIN-indexed), with
 *    copies of its fixed fields, so search tests most filters on the entry;
 *  - `commission_embeddings`: each commission's vector from the current
 *    embedder (HNSW-indexed).
 * Both follow the commissions in chain order behind a watermark that moves in
 * the same statement or transaction as the rows it covers, so a crash redoes
 * at most one batch (idempotent). The two jobs are independent: a model
 * server that is down stalls the vectors, never the full-text index.
 *
 * Progress is a watermark per embedder (`embedders.through_height/_index`,
 * commissions in chain order); each batch writes its embeddings and moves the
 * watermark with a compare-and-set in one transaction, so a crash re-embeds
 * at most the batch in flight (an idempotent upsert). Activating another
 * embedder (a new id: other model or dimension) deletes the other embedders'
 * watermarks and HNSW indexes and starts its own watermark from the first
 * commission: the whole mirror is re-embedded while the sink goes on, and
 * search uses the current embedder's index only.
 *
 * Each embedder has its own partial HNSW index over
 * `(embedding::vector(d)) vector_cosine_ops WHERE embedder = '<id>'` (or
 * `halfvec(d)` / `halfvec_cosine_ops`: the target's `vectorIndexType`),
 * which lets vectors of different dimensions share one column. The index in
 * use is the one `embedders.index_name` names. When the target asks for the
 * other type than the embedder's index has (a Postgres mirror made before
 * halfvec indexes), the new index is built in the background like a deferred
 * one, and only then does `index_name` move to it and the old one go: search
 * never loses its index.
 */

export interface IndexerOptions {
  target: SqlTarget;
  embedder: Embedder;
  /** most commissions per embedding batch (default 256) */
  batchSize?: number;
  /** most commissions per full-text batch (default 2000) */
  textBatchSize?: number;
  /**
   * How long one step (one statement or transaction) should take, in ms
   * (default 100): each job sizes its next batch from how long the last one
   * took, between 1 (embeddings) or 8 (full text) and its batch size. On PGlite a step holds the one
   * session the sink also writes through, and on a busy machine 256 HNSW
   * inserts took seconds: the mirror waited that long behind search.
   */
  stepMs?: number;
  logger?: SyncLogger;
  retry?: { initialMs?: number; maxMs?: number };
  /** look for new commissions this often without a notification (default 2 s) */
  pollMs?: number;
  /** HNSW build parameters of the embedder's index (default m 24, ef_construction 100: recall ≥ 0.95 at ef_search 100) */
  hnsw?: { m?: number; efConstruction?: number };
  /**
   * With at least this many commissions to embed when an embedder becomes
   * current (a late start, a new embedder), the HNSW index is built in one go
   * once they are embedded: much faster than inserting into the graph row by
   * row. Until then vector search scans exactly. Default 10,000.
   */
  bulkBuildThreshold?: number;
  /** maintenance_work_mem of that build (default 512MB; the graph should fit) */
  buildMemory?: string;
  /**
   * Awaited between two steps that did something. SyncService: while the
   * sink is behind, until its next batch (at most 1 s), so that derived data
   * never holds the mirror back (PGlite is one session, and embedding takes
   * the thread the sink runs on).
   */
  between?: () => Promise<void>;
}

export interface IndexerStatus {
  state: 'ok' | 'degraded' | 'stopped';
  embedder: string;
  dimension: number;
  /** the last commission (chain order) embedded with the current embedder */
  throughHeight: number;
  throughIndex: number;
  /** the last commission (chain order) in the full-text index */
  textThroughHeight: number;
  textThroughIndex: number;
  /** embeddings written since start */
  embedded: number;
  /** the HNSW index search uses: its element type, or 'none' while there is none (search scans exactly) */
  vectorIndex: VectorIndexType | 'none';
  /** the index being built in the background (after a backlog is embedded, or to replace the one in use) */
  vectorIndexBuilding?: VectorIndexType;
  errors: number;
  lastError?: string;
}

/**
 * A mirror text as full-text search reads it: the escape characters of a
 * U+0000 or U+2400 (text.ts) as spaces, so that they break words whatever the
 * database's locale (under C.UTF-8 they would anyway; under C every non-ASCII
 * character is a letter).
 */
const words = (column: string) => `translate(${column}, chr(9216) || chr(9217), '  ')`;

/** A commission's full-text document: names (A) > description (B) > metadata (C) > order id (D). */
export const SEARCH_TSV_SQL = `setweight(to_tsvector('english'::regconfig, ${words("c.merchant_name || ' ' || c.affiliate_name")}), 'A') ||
  setweight(to_tsvector('english'::regconfig, ${words('c.description')}), 'B') ||
  setweight(to_tsvector('english'::regconfig, ${words('c.metadata_text')}), 'C') ||
  setweight(to_tsvector('simple'::regconfig, ${words('c.order_id')}), 'D')`;

/** Name of an embedder's HNSW index of a type: derived from its id, fits Postgres' 63-byte limit. */
export function embedderIndexName(id: string, type: VectorIndexType = 'vector'): string {
  const h = createHash('sha256').update(id).digest('hex').slice(0, 16);
  // the vector index keeps the name it had before halfvec indexes existed
  return type === 'vector' ? `commission_embeddings_hnsw_${h}` : `commission_embeddings_hnswh_${h}`;
}

/** The type of an embedder's index from its name (embedderIndexName), or undefined for another name. */
export function embedderIndexType(id: string, indexName: string): VectorIndexType | undefined {
  if (indexName === embedderIndexName(id, 'vector')) return 'vector';
  if (indexName === embedderIndexName(id, 'halfvec')) return 'halfvec';
  return undefined;
}

/**
 * The expression an embedder's index of `type` is built over; a query must
 * order by exactly this (with the query vector cast alike) to use it.
 */
export function embeddingExpression(type: VectorIndexType, dimension: number): string {
  return `embedding::${type}(${dimension})`;
}

async function indexExists(tx: SqlExecutor, schema: string, index: string): Promise<boolean> {
  const { rows } = await tx.query<{ r: string | null }>(`SELECT to_regclass($1)::text AS r`, [
    `${schema}.${index}`,
  ]);
  return Boolean(rows[0]?.r);
}

/** The SQL literal of an embedder id (ids are restricted by EMBEDDER_ID_RE; quotes doubled anyway). */
export function embedderLiteral(id: string): string {
  return `'${id.replaceAll("'", "''")}'`;
}

/**
 * Whether a vector has a direction: finite, and not all zeros. The zero
 * vector's cosine distance to anything is NaN (and pgvector's HNSW index
 * leaves it out), so neither the indexer nor search use one.
 */
export function hasDirection(v: Float32Array): boolean {
  let norm = 0;
  for (const x of v) norm += x * x;
  return norm > 0 && Number.isFinite(norm);
}

/** The vector as pgvector's text form. */
export function vectorLiteral(v: Float32Array): string {
  return toSql(Array.from(v))!;
}

/** The indexer's two jobs: the full-text index and the embeddings. */
type IndexJob = 'text' | 'vectors';

/** A job's retry state: its failures in a row, when it is due again, and its last error while it fails. */
interface JobState {
  failures: number;
  retryAt: number;
  err?: unknown;
}

/** a job that has not failed: due now */
const healthyJob = (): JobState => ({ failures: 0, retryAt: 0 });

/** While the full-text job has work (it goes first), the embeddings still take a step this often. */
export const VECTOR_STEP_EVERY_MS = 1_000;

/**
 * A batch size that follows how long batches take: the next batch is sized so
 * that it should take about `targetMs`, at least `min`, at most `max`, and
 * never more than twice the last one (a fast batch may have been a lucky one).
 * It starts at `min`: nothing is known of the speed yet.
 */
export class PacedBatch {
  private current: number;

  constructor(
    readonly max: number,
    private readonly targetMs: number,
    readonly min = Math.min(8, max),
  ) {
    this.current = this.min;
  }

  get size(): number {
    return this.current;
  }

  /** `rows` took `ms`. */
  took(rows: number, ms: number): void {
    if (rows <= 0) return;
    const fit = ms > 0 ? Math.floor((rows * this.targetMs) / ms) : this.max;
    this.current = Math.max(this.min, Math.min(this.max, 2 * rows, fit));
  }
}

export class SearchIndexer {
  private readonly target: SqlTarget;
  readonly embedder: Embedder;
  private readonly vectorBatch: PacedBatch;
  private readonly textBatch: PacedBatch;
  private readonly log: SyncLogger;
  private active = false;
  /** the embedder's HNSW index is to be built when the backlog is embedded */
  private indexDeferred = false;
  /** the index the deferred one replaces once built (an index of the other type), if any */
  private replaces: string | undefined;
  /** the type of the HNSW index search uses now ('none': not built yet, search scans exactly) */
  private indexInUse: VectorIndexType | 'none' = 'none';
  private through = { height: -1, index: -1 };
  private textThrough = { height: -1, index: -1 };
  private embedded = 0;
  private errors = 0;
  private lastError: string | undefined;
  private state: IndexerStatus['state'] = 'ok';
  private running: Promise<void> | undefined;
  private stopping = false;
  private signalled = false;
  private wakeIdle: (() => void) | undefined;
  private wakeBackoff: (() => void) | undefined;

  constructor(private readonly opts: IndexerOptions) {
    this.target = opts.target;
    this.embedder = checkEmbedder(opts.embedder);
    const stepMs = opts.stepMs ?? 100;
    // down to one: a single HNSW insert took 20-40 ms on PGlite under full load, so 8 made steps of
    // 150-350 ms that the sink waited behind (docs/PERFORMANCE.md, mirror round 17)
    this.vectorBatch = new PacedBatch(opts.batchSize ?? 256, stepMs, 1);
    this.textBatch = new PacedBatch(opts.textBatchSize ?? 2000, stepMs);
    this.log = opts.logger ?? SILENT_LOGGER;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.state = 'ok';
    this.lastError = undefined;
    this.jobs.text = healthyJob();
    this.jobs.vectors = healthyJob();
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeIdle?.();
    this.wakeBackoff?.();
    await this.running;
    this.running = undefined;
    this.state = 'stopped';
  }

  /** New commissions may be there (the sink calls this after each batch). */
  notify(): void {
    this.signalled = true;
    this.wakeIdle?.();
  }

  status(): IndexerStatus {
    const s: IndexerStatus = {
      state: this.state,
      embedder: this.embedder.id,
      dimension: this.embedder.dimension,
      throughHeight: this.through.height,
      throughIndex: this.through.index,
      textThroughHeight: this.textThrough.height,
      textThroughIndex: this.textThrough.index,
      embedded: this.embedded,
      errors: this.errors,
      vectorIndex: this.indexInUse,
    };
    if (this.indexDeferred) s.vectorIndexBuilding = this.target.vectorIndexType;
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  /** Commissions not yet in the full-text index, and not yet embedded with the current embedder. */
  async pending(): Promise<{ text: number; vectors: number }> {
    const { rows } = await this.target.query<{ text: number; vectors: number }>(
      `SELECT
         (SELECT count(*) FROM commissions c, search_progress p WHERE p.job = 'text'
            AND (c.recorded_height, c.recorded_index) > (p.through_height, p.through_index))::int8 AS text,
         (SELECT count(*) FROM commissions c WHERE NOT EXISTS (
            SELECT 1 FROM embedders e WHERE e.id = $1
              AND (c.recorded_height, c.recorded_index) <= (e.through_height, e.through_index)))::int8 AS vectors`,
      [this.embedder.id],
    );
    return { text: Number(rows[0]?.text ?? 0), vectors: Number(rows[0]?.vectors ?? 0) };
  }

  /**
   * Add the next commissions to the full-text index: one statement (so one
   * implicit transaction) that computes their tsvectors, inserts them and
   * moves the watermark. Returns how many.
   */
  async textStep(): Promise<number> {
    await this.migrated();
    const started = performance.now();
    const { rows } = await this.target.query<{ n: number; h: number | null; i: number | null }>(
      `WITH p AS (SELECT through_height AS h, through_index AS i FROM search_progress WHERE job = 'text' FOR UPDATE),
       batch AS (
         SELECT c.id, c.recorded_height, c.recorded_index, ${SEARCH_TSV_SQL} AS tsv,
                c.merchant, c.affiliate, c.currency, c.amount, c.recorded_at
         FROM commissions c, p WHERE (c.recorded_height, c.recorded_index) > (p.h, p.i)
         ORDER BY c.recorded_height, c.recorded_index LIMIT $1
       ),
       last AS (SELECT recorded_height AS h, recorded_index AS i FROM batch ORDER BY 1 DESC, 2 DESC LIMIT 1),
       ins AS (INSERT INTO commission_text (commission_id, search_tsv, merchant, affiliate, currency, amount, recorded_at)
               SELECT id, tsv, merchant, affiliate, currency, amount, recorded_at FROM batch
               ON CONFLICT (commission_id) DO NOTHING RETURNING 1),
       moved AS (UPDATE search_progress s SET through_height = last.h, through_index = last.i FROM last
                 WHERE s.job = 'text' RETURNING 1)
       SELECT (SELECT count(*) FROM batch)::int8 AS n, (SELECT h FROM last) AS h, (SELECT i FROM last) AS i`,
      [this.textBatch.size],
    );
    const r = rows[0];
    if (r && r.h !== null && r.i !== null) this.textThrough = { height: Number(r.h), index: Number(r.i) };
    const n = Number(r?.n ?? 0);
    this.textBatch.took(n, performance.now() - started);
    return n;
  }

  /**
   * Make this embedder the current one: its watermark and HNSW index exist,
   * every other embedder's are gone. Idempotent; cheap when already active.
   */
  async activate(): Promise<void> {
    await this.migrated();
    const e = this.embedder;
    const index = embedderIndexName(e.id, this.target.vectorIndexType);
    await this.target.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [
        `bitnexus-sync-embedders:${this.target.schema}`,
      ]);
      const { rows } = await tx.query<{ id: string; dimension: number; index_name: string }>(
        `SELECT id, dimension, index_name FROM embedders`,
      );
      let inUse: string | undefined;
      for (const r of rows) {
        if (r.id === e.id && r.dimension !== e.dimension) {
          // its index and vectors are of the old dimension, under the same id: nothing here could
          // tell them from the new ones (EMBEDDER_ID_RE's contract: an id names one vector space)
          throw new Error(
            `embedder ${e.id} has vectors of dimension ${r.dimension} in this mirror and now makes ${e.dimension}: ` +
              `an embedder's id must change with its vectors (the mirror then re-embeds everything)`,
          );
        }
        if (r.id === e.id) {
          inUse = r.index_name;
          continue;
        }
        await tx.query(`DELETE FROM embedders WHERE id = $1`, [r.id]);
        if (r.index_name !== index) await tx.query(`DROP INDEX IF EXISTS ${r.index_name}`);
        this.log.info({ from: r.id, to: e.id }, 'embedder changed: re-embedding every commission');
      }
      if (inUse === undefined) {
        await tx.query(
          `INSERT INTO embedders (id, dimension, index_name) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
          [e.id, e.dimension, index],
        );
      }
      await this.readWatermark(tx);
      this.replaces = inUse !== undefined && inUse !== index ? inUse : undefined;
      this.indexDeferred = false;
      if (await indexExists(tx, this.target.schema, index)) {
        // built, but the switch did not happen (a crash in between): now
        if (this.replaces !== undefined) await this.switchIndex(tx);
        this.indexInUse = this.target.vectorIndexType;
        return;
      }
      this.indexInUse =
        this.replaces !== undefined && (await indexExists(tx, this.target.schema, this.replaces))
          ? (embedderIndexType(e.id, this.replaces) ?? 'none')
          : 'none';
      const { rows: backlog } = await tx.query<{ n: number }>(
        `SELECT count(*)::int8 AS n FROM commissions WHERE (recorded_height, recorded_index) > ($1, $2)`,
        [this.through.height, this.through.index],
      );
      if (this.replaces !== undefined) {
        // the old index serves search until the new one is built in the background
        this.indexDeferred = true;
        this.log.info(
          { embedder: e.id, from: this.replaces, to: index },
          `building a ${this.target.vectorIndexType} HNSW index to replace the embedder's current one`,
        );
      } else if (Number(backlog[0]?.n ?? 0) >= (this.opts.bulkBuildThreshold ?? 10_000)) {
        this.indexDeferred = true;
        this.log.info(
          { embedder: e.id, backlog: backlog[0]?.n },
          'embedding the backlog first, HNSW index after',
        );
      } else {
        // nearly empty: instant, then filled row by row
        await tx.query(this.createIndexSql());
        this.indexInUse = this.target.vectorIndexType;
      }
    });
    if (!this.indexDeferred) this.replaces = undefined; // switched (committed), or nothing to replace
    this.active = true;
  }

  private createIndexSql(): string {
    const e = this.embedder;
    const type = this.target.vectorIndexType;
    const m = this.opts.hnsw?.m ?? 24;
    const efc = this.opts.hnsw?.efConstruction ?? 100;
    return `CREATE INDEX IF NOT EXISTS ${embedderIndexName(e.id, type)} ON commission_embeddings
      USING hnsw ((${embeddingExpression(type, e.dimension)}) ${type}_cosine_ops) WITH (m = ${m}, ef_construction = ${efc})
      WHERE embedder = ${embedderLiteral(e.id)}`;
  }

  /**
   * Point the embedder at its new index and drop the one it replaces, in the
   * caller's transaction (`replaces` stays set until a later activate() or
   * build: a transaction that did not commit is redone then).
   */
  private async switchIndex(tx: SqlExecutor): Promise<void> {
    const old = this.replaces;
    if (old === undefined) return;
    const index = embedderIndexName(this.embedder.id, this.target.vectorIndexType);
    await tx.query(`UPDATE embedders SET index_name = $2 WHERE id = $1`, [this.embedder.id, index]);
    await tx.query(`DROP INDEX IF EXISTS ${old}`);
    this.log.info({ embedder: this.embedder.id, from: old, to: index }, 'HNSW index replaced');
  }

  /** Build the deferred HNSW index over everything embedded so far. */
  private async buildIndex(): Promise<void> {
    const mem = this.opts.buildMemory ?? '512MB';
    if (!/^[0-9]{1,6}(kB|MB|GB)$/.test(mem))
      throw new Error(`buildMemory ${mem} is not a Postgres memory size`);
    const t0 = Date.now();
    const build = (memory?: string) =>
      this.target.transaction(
        async (tx) => {
          if (memory !== undefined) await tx.query(`SET LOCAL maintenance_work_mem = '${memory}'`);
          await tx.query(this.createIndexSql());
          await this.switchIndex(tx);
        },
        { timeoutMs: MAINTENANCE_TIMEOUT_MS },
      );
    try {
      await build(mem);
    } catch (err) {
      // e.g. a PGlite heap that cannot grow that far: build with the server's default memory instead
      this.log.warn(
        { err: errorMessage(err), buildMemory: mem },
        'HNSW build failed, retrying with default memory',
      );
      await build();
    }
    this.indexDeferred = false;
    this.replaces = undefined;
    this.indexInUse = this.target.vectorIndexType;
    this.log.info({ embedder: this.embedder.id, ms: Date.now() - t0 }, 'HNSW index built');
  }

  /** Embed the next batch; the number of commissions embedded (0 when up to date). */
  async embedStep(): Promise<number> {
    if (!this.active) await this.activate();
    const started = performance.now();
    const from = { ...this.through };
    const { rows } = await this.target.query<{
      id: string;
      merchant_name: string;
      affiliate_name: string;
      description: string;
      metadata_text: string;
      recorded_height: number;
      recorded_index: number;
    }>(
      `SELECT id, merchant_name, affiliate_name, description, metadata_text, recorded_height, recorded_index
       FROM commissions WHERE (recorded_height, recorded_index) > ($1, $2)
       ORDER BY recorded_height, recorded_index LIMIT $3`,
      [from.height, from.index, this.vectorBatch.size],
    );
    const last = rows[rows.length - 1];
    if (!last) {
      if (this.indexDeferred) await this.buildIndex();
      return 0;
    }
    const texts = rows.map((r) =>
      searchableText({
        merchantName: r.merchant_name,
        affiliateName: r.affiliate_name,
        description: r.description,
        metadataText: r.metadata_text,
      }),
    );
    const vectors = await this.embedder.embed(texts);
    if (vectors.length !== rows.length || vectors.some((v) => v.length !== this.embedder.dimension)) {
      throw new SyncError(
        'BAD_EMBEDDING',
        `${this.embedder.id} returned vectors of the wrong number or size`,
      );
    }
    const to = { height: Number(last.recorded_height), index: Number(last.recorded_index) };
    // A text without a word the embedder knows (only stop words or punctuation) embeds to the zero
    // vector: its cosine distance to anything is NaN, so it is not stored (nor kept from an earlier
    // embedder); search finds that commission by its exact and full-text lists only.
    const keep: number[] = [];
    const zero: string[] = [];
    vectors.forEach((v, i) => (hasDirection(v) ? keep.push(i) : zero.push(rows[i]!.id)));
    await this.target.transaction(async (tx) => {
      const moved = await tx.query(
        `UPDATE embedders SET through_height = $2, through_index = $3
         WHERE id = $1 AND through_height = $4 AND through_index = $5`,
        [this.embedder.id, to.height, to.index, from.height, from.index],
      );
      if (moved.rowCount !== 1) {
        this.active = false;
        throw new SyncError(
          'CURSOR_MISMATCH',
          `the watermark of ${this.embedder.id} moved or was removed (another indexer?)`,
        );
      }
      if (keep.length > 0) {
        await tx.query(
          `INSERT INTO commission_embeddings (commission_id, embedder, embedding)
           SELECT u.id, $2, u.v::vector FROM unnest($1::text[], $3::text[]) AS u(id, v)
           ON CONFLICT (commission_id) DO UPDATE
             SET embedder = excluded.embedder, embedding = excluded.embedding, embedded_at = now()`,
          [keep.map((i) => rows[i]!.id), this.embedder.id, keep.map((i) => vectorLiteral(vectors[i]!))],
        );
      }
      if (zero.length > 0)
        await tx.query(`DELETE FROM commission_embeddings WHERE commission_id = ANY($1::text[])`, [zero]);
    });
    this.through = to;
    this.embedded += keep.length;
    this.vectorBatch.took(rows.length, performance.now() - started);
    return rows.length;
  }

  /** Bring both indexes up to date (tests, benchmarks, tools); the number of rows indexed. */
  async drain(): Promise<number> {
    const { indexed, failing } = await this.drainJobs();
    if (failing) throw failing.err;
    return indexed;
  }

  /**
   * Step the two jobs (full text, embeddings) until neither has anything to
   * do now. The full text goes first, one cheap step after another, but the
   * embeddings take a step once VECTOR_STEP_EVERY_MS has passed since their
   * last one began, and whenever the full text has nothing to do. Never one
   * job drained and then the other: under a load that never ends, the job
   * being drained never ran out of work, and the other one stood still for as
   * long as the load lasted. For the same reason a job whose step fails is
   * not left out until the other one runs out of work: it is retried after
   * its own backoff (`retry`), and its failure shows in status() at once (a
   * failing embedder leaves the full-text index going). Returns the rows
   * indexed, and, when a job is failing, its last error and how long until
   * it is due again.
   */
  private async drainJobs(): Promise<{ indexed: number; failing?: { err: unknown; retryInMs: number } }> {
    const steps = { text: () => this.textStep(), vectors: () => this.embedStep() };
    let indexed = 0;
    let lastVectorStep = performance.now();
    /** one step of a job that is due: the rows it indexed (0 when it failed or is not due yet) */
    const step = async (name: IndexJob): Promise<number> => {
      const job = this.jobs[name];
      if (performance.now() < job.retryAt) return 0;
      try {
        const n = await steps[name]();
        if (job.err !== undefined) this.recovered(name);
        indexed += n;
        return n;
      } catch (err) {
        this.failed(name, err);
        return 0;
      }
    };
    while (!this.stopping) {
      const text = await step('text');
      let vectors = 0;
      if (text === 0 || performance.now() - lastVectorStep >= VECTOR_STEP_EVERY_MS) {
        if (text > 0) await yieldThen(this.opts.between);
        if (this.stopping) break;
        lastVectorStep = performance.now();
        vectors = await step('vectors');
      }
      // nothing to do for either now (the embeddings had their step whenever the full text had none)
      if (text === 0 && vectors === 0) break;
      if (this.stopping) break;
      await yieldThen(this.opts.between);
    }
    const failing = Object.values(this.jobs).filter((j) => j.err !== undefined);
    if (failing.length === 0) return { indexed };
    const next = failing.reduce((a, b) => (a.retryAt <= b.retryAt ? a : b));
    return { indexed, failing: { err: next.err, retryInMs: Math.max(0, next.retryAt - performance.now()) } };
  }

  private readonly jobs: Record<IndexJob, JobState> = { text: healthyJob(), vectors: healthyJob() };

  /** A step failed: status `degraded` at once, and the job is due again after its backoff. */
  private failed(name: IndexJob, err: unknown): void {
    const job = this.jobs[name];
    const retryInMs = Math.min(
      this.opts.retry?.maxMs ?? 10_000,
      (this.opts.retry?.initialMs ?? 500) * 2 ** Math.min(job.failures++, 16),
    );
    job.err = err;
    job.retryAt = performance.now() + retryInMs;
    this.errors++;
    this.state = 'degraded';
    this.lastError = this.failingMessages();
    // a watermark that moved under us is fixed by activating again
    this.active = false;
    this.log.warn({ job: name, err: errorMessage(err), retryInMs }, 'search indexer degraded, retrying');
  }

  private recovered(name: IndexJob): void {
    this.jobs[name] = healthyJob();
    this.lastError = this.failingMessages();
    if (this.lastError === undefined && this.state === 'degraded') this.state = 'ok';
  }

  private failingMessages(): string | undefined {
    const errs = Object.values(this.jobs).flatMap((j) => (j.err === undefined ? [] : [errorMessage(j.err)]));
    return errs.length > 0 ? errs.join('; ') : undefined;
  }

  private migration: Promise<unknown> | undefined;

  /** The schema exists (the indexer may start before the sink). */
  private async migrated(): Promise<void> {
    this.migration ??= migrate(this.target).catch((err: unknown) => {
      this.migration = undefined;
      throw err;
    });
    await this.migration;
  }

  private async readWatermark(db: SqlExecutor): Promise<void> {
    const { rows } = await db.query<{ through_height: number; through_index: number }>(
      `SELECT through_height, through_index FROM embedders WHERE id = $1`,
      [this.embedder.id],
    );
    const r = rows[0];
    this.through = r
      ? { height: Number(r.through_height), index: Number(r.through_index) }
      : { height: -1, index: -1 };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.signalled = false;
      const { failing } = await this.drainJobs();
      if (this.stopping) break;
      if (failing) await this.sleep(failing.retryInMs, 'backoff');
      else if (!this.signalled) await this.sleep(this.opts.pollMs ?? 2_000, 'idle');
    }
  }

  private sleep(ms: number, kind: 'idle' | 'backoff'): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (kind === 'idle') this.wakeIdle = undefined;
        else this.wakeBackoff = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (kind === 'idle') this.wakeIdle = done;
      else this.wakeBackoff = done;
    });
  }
}
