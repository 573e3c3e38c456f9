import { SyncError } from './errors.js';
import type {
  AccountRow,
  BatchRows,
  BlockRow,
  CommissionRow,
  PairRow,
  ParticipantRow,
  TotalsRow,
  TxRow,
} from './rows.js';
import { copyText, type SqlExecutor } from './target.js';

/** Where the mirror stands: the last block written, or height -1 with the genesis prevHash. */
export interface Cursor {
  height: number;
  hash: string;
}

export const EMPTY_CURSOR: Cursor = { height: -1, hash: '0'.repeat(64) };

export async function readCursor(db: SqlExecutor): Promise<Cursor> {
  const { rows } = await db.query<Cursor>(`SELECT height, hash FROM sync_cursor WHERE id`);
  const row = rows[0];
  if (!row) throw new SyncError('MIRROR_CORRUPT', 'sync_cursor has no row');
  return { height: Number(row.height), hash: row.hash };
}

function mismatch(from: Cursor, to: number, actual: Cursor): SyncError {
  return new SyncError(
    'CURSOR_MISMATCH',
    `expected the mirror cursor at height ${from.height} (${from.hash.slice(0, 16)}…) to write block ${to}, ` +
      `found height ${actual.height} (${actual.hash.slice(0, 16)}…)`,
    { expected: from, actual },
  );
}

/**
 * Move the cursor from `from` to `to` and nothing else, or fail loudly (used
 * on its own by tests and tools; a batch moves it inside writeBatch).
 */
export async function advanceCursor(
  tx: SqlExecutor,
  from: Cursor,
  to: Cursor & { chainId: string; time: string },
): Promise<void> {
  const res = await tx.query(
    `UPDATE sync_cursor SET height = $1, hash = $2, chain_id = $3, block_time = $4::timestamptz, updated_at = now()
     WHERE id AND height = $5 AND hash = $6`,
    [to.height, to.hash, to.chainId, to.time, from.height, from.hash],
  );
  if (res.rowCount !== 1) throw mismatch(from, to.height, await readCursor(tx));
}

interface Column<R> {
  name: string;
  type: string;
  get: (row: R) => unknown;
}

function col<R>(name: string, type: string, get: (row: R) => unknown): Column<R> {
  return { name, type, get };
}

/**
 * One batch as ONE statement: a chain of data-modifying CTEs, one round trip
 * whatever the number of blocks and rows. The first CTE is the cursor's
 * compare-and-set; every INSERT and UPDATE is guarded by it (`WHERE EXISTS
 * (SELECT FROM cur)`), so when the cursor is not where the sink expects,
 * nothing at all is written. Rows travel as one array parameter per column
 * (`unnest`), so there is no limit on rows per statement. The final SELECT
 * returns the count of every CTE for the checks in writeBatch.
 */
class BatchStatement {
  readonly params: unknown[] = [];
  private readonly ctes: string[] = [];
  /** CTE name → rows it must affect */
  readonly expected = new Map<string, Expected>();
  /** every write waits for the cursor's compare-and-set, unless the caller has done it already */
  private readonly guard: string;

  constructor(move?: { from: Cursor; to: BlockRow }) {
    const p = (v: unknown) => this.param(v);
    this.guard = move ? ' AND EXISTS (SELECT FROM cur)' : '';
    if (!move) return;
    const { from, to } = move;
    this.ctes.push(
      `cur AS (UPDATE sync_cursor SET height = ${p(to.height)}::int8, hash = ${p(to.hash)}::text,
         chain_id = ${p(to.chainId)}::text, block_time = ${p(to.time)}::timestamptz, updated_at = now()
       WHERE id AND height = ${p(from.height)}::int8 AND hash = ${p(from.hash)}::text RETURNING 1)`,
    );
  }

  get empty(): boolean {
    return this.ctes.length === 0;
  }

  private param(v: unknown): string {
    this.params.push(v);
    return `$${this.params.length}`;
  }

  private arrays<R>(columns: Column<R>[], rows: R[]): string {
    return columns.map((c) => `${this.param(rows.map(c.get))}::${c.type}[]`).join(', ');
  }

  insert<R>(table: string, columns: Column<R>[], rows: R[]): void {
    if (rows.length === 0) return;
    const name = `i_${table}`;
    const names = columns.map((c) => c.name).join(', ');
    this.ctes.push(
      `${name} AS (INSERT INTO ${table} (${names})
         SELECT * FROM unnest(${this.arrays(columns, rows)}) ${this.guard ? ` WHERE${this.guard.slice(' AND'.length)}` : ''} RETURNING 1)`,
    );
    this.expected.set(name, { table, rows: rows.length, update: false });
  }

  update<R>(table: string, key: Column<R>[], set: Column<R>[], rows: R[]): void {
    if (rows.length === 0) return;
    const name = `u_${table}`;
    const all = [...key, ...set];
    this.ctes.push(
      `${name} AS (UPDATE ${table} AS t SET ${set.map((c) => `${c.name} = u.${c.name}`).join(', ')}
         FROM unnest(${this.arrays(all, rows)}) AS u(${all.map((c) => c.name).join(', ')})
         WHERE ${key.map((c) => `t.${c.name} = u.${c.name}`).join(' AND ')}${this.guard} RETURNING 1)`,
    );
    this.expected.set(name, { table, rows: rows.length, update: true });
  }

  sql(): string {
    const names = [...(this.guard ? ['cur'] : []), ...this.expected.keys()];
    const counts = names.map((n) => `(SELECT count(*) FROM ${n})::int8 AS ${n}`);
    return `WITH ${this.ctes.join(',\n')}\nSELECT ${counts.join(', ')}`;
  }
}

const blockCols: Column<BlockRow>[] = [
  col('height', 'int8', (r) => r.height),
  col('hash', 'text', (r) => r.hash),
  col('prev_hash', 'text', (r) => r.prevHash),
  col('chain_id', 'text', (r) => r.chainId),
  col('block_time', 'timestamptz', (r) => r.time),
  col('term', 'int8', (r) => r.term),
  col('proposer', 'text', (r) => r.proposer),
  col('tx_count', 'int4', (r) => r.txCount),
  col('tx_root', 'text', (r) => r.txRoot),
  col('ledger_root', 'text', (r) => r.ledgerRoot),
  col('ledger_size', 'int8', (r) => r.ledgerSize),
  col('signature', 'text', (r) => r.signature),
  col('config', 'jsonb', (r) => r.config),
];

const txCols: Column<TxRow>[] = [
  col('height', 'int8', (r) => r.height),
  col('idx', 'int4', (r) => r.idx),
  col('tx_id', 'text', (r) => r.txId),
  col('kind', 'text', (r) => r.kind),
  col('signer', 'text', (r) => r.signer),
  col('nonce', 'text', (r) => r.nonce),
  col('tx_time', 'timestamptz', (r) => r.time),
  col('payload', 'jsonb', (r) => r.payload),
  col('signature', 'text', (r) => r.signature),
  col('code', 'text', (r) => r.code),
  col('commission_id', 'text', (r) => r.commission),
  col('existing', 'text', (r) => r.existing),
];

const participantCols: Column<ParticipantRow>[] = [
  col('key', 'text', (r) => r.key),
  col('role', 'text', (r) => r.role),
  col('name', 'text', (r) => r.name),
  col('since_height', 'int8', (r) => r.since),
  col('tx_id', 'text', (r) => r.txId),
];

const commissionKey: Column<CommissionRow>[] = [col('id', 'text', (r) => r.id)];
const commissionState: Column<CommissionRow>[] = [
  col('approved', 'numeric', (r) => r.approved),
  col('reversed', 'numeric', (r) => r.reversed),
  col('status', 'text', (r) => r.status),
  col('updated_height', 'int8', (r) => r.updatedHeight),
  col('updated_at', 'timestamptz', (r) => r.updatedAt),
];
const commissionCols: Column<CommissionRow>[] = [
  ...commissionKey,
  col('merchant', 'text', (r) => r.merchant),
  col('merchant_name', 'text', (r) => r.merchantName),
  col('affiliate', 'text', (r) => r.affiliate),
  col('affiliate_name', 'text', (r) => r.affiliateName),
  col('currency', 'text', (r) => r.currency),
  col('amount', 'numeric', (r) => r.amount),
  col('order_id', 'text', (r) => r.orderId),
  col('description', 'text', (r) => r.description),
  col('metadata', 'jsonb', (r) => r.metadata),
  col('metadata_text', 'text', (r) => r.metadataText),
  col('recorded_height', 'int8', (r) => r.recordedHeight),
  col('recorded_index', 'int4', (r) => r.recordedIndex),
  col('recorded_at', 'timestamptz', (r) => r.recordedAt),
  ...commissionState,
];

const pairKey: Column<PairRow>[] = [
  col('merchant', 'text', (r) => r.merchant),
  col('affiliate', 'text', (r) => r.affiliate),
  col('currency', 'text', (r) => r.currency),
];
const pairState: Column<PairRow>[] = [
  col('pending', 'numeric', (r) => r.pending),
  col('approved', 'numeric', (r) => r.approved),
  col('clawed_back', 'numeric', (r) => r.clawedBack),
  col('paid', 'numeric', (r) => r.paid),
  col('updated_height', 'int8', (r) => r.updatedHeight),
];

const accountKey: Column<AccountRow>[] = [
  col('side', 'text', (r) => r.side),
  col('participant', 'text', (r) => r.participant),
  col('currency', 'text', (r) => r.currency),
];
const accountState: Column<AccountRow>[] = [
  col('pending', 'numeric', (r) => r.pending),
  col('balance', 'numeric', (r) => r.balance),
  col('paid', 'numeric', (r) => r.paid),
  col('updated_height', 'int8', (r) => r.updatedHeight),
];

const totalsKey: Column<TotalsRow>[] = [col('currency', 'text', (r) => r.currency)];
const totalsState: Column<TotalsRow>[] = [
  col('merchant_pending', 'numeric', (r) => r.merchantPending),
  col('affiliate_pending', 'numeric', (r) => r.affiliatePending),
  col('merchant_liabilities', 'numeric', (r) => r.merchantLiabilities),
  col('affiliate_balances', 'numeric', (r) => r.affiliateBalances),
  col('merchant_paid', 'numeric', (r) => r.merchantPaid),
  col('affiliate_paid', 'numeric', (r) => r.affiliatePaid),
  col('updated_height', 'int8', (r) => r.updatedHeight),
];

export interface WriteOptions {
  /**
   * Insert new rows with COPY when the executor offers it (default): several
   * statements in the caller's transaction, the cursor's compare-and-set
   * first. `false`: the single statement of data-modifying CTEs.
   */
  copy?: boolean;
}

/**
 * Write one batch and move the cursor from `from` to its last block, inside
 * the caller's transaction (rolled back by the caller when this throws).
 * Returns the number of rows inserted or updated.
 *
 * Fails with CURSOR_MISMATCH when the cursor is not at `from` (nothing
 * written), and MIRROR_CORRUPT when a row that must be new exists already or
 * a row that must exist does not: exactly-once, checked row by row.
 */
export async function writeBatch(
  tx: SqlExecutor,
  rows: BatchRows,
  from: Cursor,
  opts: WriteOptions = {},
): Promise<number> {
  const last = rows.blocks[rows.blocks.length - 1];
  if (!last) return 0;
  if (opts.copy !== false && tx.copyFrom) return runPlan(tx, planBatch(rows, from)!);
  try {
    return await writeByStatement(tx, rows, from, last);
  } catch (err) {
    throw duplicateAsCorrupt(err);
  }
}

/** A unique violation (23505) in a batch means rows the cursor says are new exist already. */
function duplicateAsCorrupt(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code === '23505'
    ? new SyncError('MIRROR_CORRUPT', `a row the cursor says is new exists already: ${String(err)}`)
    : err;
}

/**
 * A batch's bulk write with everything but the round trips done: the cursor
 * move, each table's new rows as COPY data (UTF-8 bytes, so they can be
 * handed to another thread without copying), and the one statement of
 * updates with the rows it must touch. runPlan executes it; a PostgresTarget
 * runs it on a thread of its own (`writePlan`), so that Postgres is fed while
 * the sink's thread re-executes the next batch.
 */
export interface BatchPlan {
  from: Cursor;
  to: Cursor & { chainId: string; time: string };
  copies: { table: string; columns: string[]; data: Uint8Array; rows: number }[];
  updates?: { sql: string; params: unknown[]; expected: [string, Expected][] };
}

interface Expected {
  table: string;
  rows: number;
  update: boolean;
}

/** The plan of a batch's bulk write (COPY path); undefined for a batch without blocks. */
export function planBatch(rows: BatchRows, from: Cursor): BatchPlan | undefined {
  const last = rows.blocks[rows.blocks.length - 1];
  if (!last) return undefined;
  const copies: BatchPlan['copies'] = [];
  const add = <R>(table: string, columns: Column<R>[], list: R[]) => {
    if (list.length === 0) return;
    copies.push({
      table,
      columns: columns.map((c) => c.name),
      data: copyData(columns, list),
      rows: list.length,
    });
  };
  add('blocks', blockCols, rows.blocks);
  add('transactions', txCols, rows.txs);
  add('participants', participantCols, rows.participants);
  add('commissions', commissionCols, rows.commissions.insert);
  add('pair_balances', [...pairKey, ...pairState], rows.pairs.insert);
  add('account_balances', [...accountKey, ...accountState], rows.accounts.insert);
  add('currency_totals', [...totalsKey, ...totalsState], rows.totals.insert);
  const st = new BatchStatement();
  addUpdates(st, rows);
  return {
    from,
    to: { height: last.height, hash: last.hash, chainId: last.chainId, time: last.time },
    copies,
    ...(st.empty ? {} : { updates: { sql: st.sql(), params: st.params, expected: [...st.expected] } }),
  };
}

/**
 * Bulk path: the cursor's compare-and-set is the transaction's first
 * statement (it also locks the cursor row, so a second writer waits for this
 * transaction, then finds the cursor moved); only when it moved the cursor do
 * the new rows follow, one COPY per table, then one statement with every
 * UPDATE. Same transaction, same checks as the single statement: a COPY
 * either loads every row or fails (a duplicate key is MIRROR_CORRUPT), and
 * every UPDATE count must match. Returns the rows written (the cursor's too).
 */
export async function runPlan(tx: SqlExecutor, plan: BatchPlan): Promise<number> {
  const copy = tx.copyFrom?.bind(tx);
  if (!copy) throw new Error('runPlan needs an executor with copyFrom');
  try {
    await advanceCursor(tx, plan.from, plan.to);
    let n = 1;
    for (const c of plan.copies) {
      const got = await copy(c.table, c.columns, c.data);
      if (got !== c.rows) {
        throw new SyncError('MIRROR_CORRUPT', `${c.table}: copied ${got} rows for ${c.rows} records`);
      }
      n += got;
    }
    if (plan.updates) {
      const { rows } = await tx.query<Record<string, number>>(plan.updates.sql, plan.updates.params);
      n += checkCounts(new Map(plan.updates.expected), rows[0]!);
    }
    return n;
  } catch (err) {
    throw duplicateAsCorrupt(err);
  }
}

/** The update CTEs of a batch (both ways of writing use them); inserts only on the statement path. */
function addUpdates(st: BatchStatement, rows: BatchRows): void {
  st.update('commissions', commissionKey, commissionState, rows.commissions.update);
  st.update('pair_balances', pairKey, pairState, rows.pairs.update);
  st.update('account_balances', accountKey, accountState, rows.accounts.update);
  st.update('currency_totals', totalsKey, totalsState, rows.totals.update);
}

/** Run a statement of CTEs; its one row holds every CTE's count. */
async function runStatement(tx: SqlExecutor, st: BatchStatement): Promise<Record<string, number>> {
  const res = await tx.query<Record<string, number>>(st.sql(), st.params);
  return res.rows[0]!;
}

/** Every CTE must have written exactly its rows; returns their sum. */
function checkCounts(expected: ReadonlyMap<string, Expected>, counts: Record<string, number>): number {
  let n = 0;
  for (const [name, want] of expected) {
    const got = Number(counts[name]);
    if (got !== want.rows) {
      throw new SyncError(
        'MIRROR_CORRUPT',
        `${want.table}: ${want.update ? 'updated' : 'inserted'} ${got} rows for ${want.rows} records (rows missing from the mirror)`,
      );
    }
    n += got;
  }
  return n;
}

/** One statement: a chain of data-modifying CTEs, the cursor's compare-and-set first (BatchStatement). */
async function writeByStatement(
  tx: SqlExecutor,
  rows: BatchRows,
  from: Cursor,
  last: BlockRow,
): Promise<number> {
  const st = new BatchStatement({ from, to: last });
  st.insert('blocks', blockCols, rows.blocks);
  st.insert('transactions', txCols, rows.txs);
  st.insert('participants', participantCols, rows.participants);
  st.insert('commissions', commissionCols, rows.commissions.insert);
  st.insert('pair_balances', [...pairKey, ...pairState], rows.pairs.insert);
  st.insert('account_balances', [...accountKey, ...accountState], rows.accounts.insert);
  st.insert('currency_totals', [...totalsKey, ...totalsState], rows.totals.insert);
  addUpdates(st, rows);
  const counts = await runStatement(tx, st);
  if (Number(counts.cur) !== 1) throw mismatch(from, last.height, await readCursor(tx));
  return 1 + checkCounts(st.expected, counts);
}

/**
 * Rows in COPY's text format (fields by tab, rows by newline), as UTF-8.
 *
 * Encoded a chunk of rows at a time into one scratch buffer that lives as long
 * as the process, then copied out at its exact size. A batch's COPY data is
 * megabytes: built as one string, it had to be flattened into a fresh
 * large-object allocation of the JavaScript heap and then encoded into a
 * fresh buffer, and on a virtual machine every first touch of a fresh page is
 * a page fault (~13 µs on the project's machine, docs/PERFORMANCE.md). The
 * chunks are small strings of the young generation, whose pages are reused,
 * and the scratch buffer's pages are touched once for the life of the process.
 */
function copyData<R>(columns: Column<R>[], rows: R[]): Buffer {
  let out = '';
  let at = 0;
  const last = columns.length - 1;
  for (const row of rows) {
    for (let i = 0; i <= last; i++) {
      out += copyText(columns[i]!.get(row) as string | number | null);
      out += i === last ? '\n' : '\t';
    }
    if (out.length >= COPY_CHUNK) {
      at = scratchWrite(out, at);
      out = '';
    }
  }
  at = scratchWrite(out, at);
  const data = Buffer.allocUnsafeSlow(at);
  scratch.copy(data, 0, 0, at);
  return data;
}

/** characters of COPY text encoded at a time */
const COPY_CHUNK = 32 * 1024;
/** grows to the largest table of the largest batch, never shrinks */
let scratch = Buffer.allocUnsafeSlow(1 << 20);

/** Append `text` as UTF-8 at `at` of the scratch buffer, growing it first if it might not fit. */
function scratchWrite(text: string, at: number): number {
  const most = text.length * 3; // UTF-8 bytes per UTF-16 code unit, at most
  if (at + most > scratch.length) {
    const bigger = Buffer.allocUnsafeSlow(Math.max(scratch.length * 2, at + most));
    scratch.copy(bigger, 0, 0, at);
    scratch = bigger;
  }
  return at + scratch.write(text, at, 'utf8');
}
