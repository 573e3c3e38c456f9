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
  readonly expected = new Map<string, { table: string; rows: number; update: boolean }>();
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
  try {
    return opts.copy !== false && tx.copyFrom
      ? await writeByCopy(tx, tx.copyFrom.bind(tx), rows, from, last)
      : await writeByStatement(tx, rows, from, last);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === '23505') {
      throw new SyncError('MIRROR_CORRUPT', `a row the cursor says is new exists already: ${String(err)}`);
    }
    throw err;
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
function checkCounts(st: BatchStatement, counts: Record<string, number>): number {
  let n = 0;
  for (const [name, want] of st.expected) {
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
  return 1 + checkCounts(st, counts);
}

/**
 * Bulk path: the cursor's compare-and-set is the transaction's first
 * statement (it also locks the cursor row, so a second writer waits for this
 * transaction, then finds the cursor moved); only when it moved the cursor do
 * the new rows follow, one COPY per table, then one statement with every
 * UPDATE. Same transaction, same checks as the single statement: a COPY
 * either loads every row or fails (a duplicate key is MIRROR_CORRUPT), and
 * every UPDATE count must match.
 */
async function writeByCopy(
  tx: SqlExecutor,
  copy: NonNullable<SqlExecutor['copyFrom']>,
  rows: BatchRows,
  from: Cursor,
  last: BlockRow,
): Promise<number> {
  await advanceCursor(tx, from, last);
  let n = 1;
  const load = async <R>(table: string, columns: Column<R>[], list: R[]) => {
    if (list.length === 0) return;
    const got = await copy(
      table,
      columns.map((c) => c.name),
      copyRows(columns, list),
    );
    if (got !== list.length) {
      throw new SyncError('MIRROR_CORRUPT', `${table}: copied ${got} rows for ${list.length} records`);
    }
    n += got;
  };
  await load('blocks', blockCols, rows.blocks);
  await load('transactions', txCols, rows.txs);
  await load('participants', participantCols, rows.participants);
  await load('commissions', commissionCols, rows.commissions.insert);
  await load('pair_balances', [...pairKey, ...pairState], rows.pairs.insert);
  await load('account_balances', [...accountKey, ...accountState], rows.accounts.insert);
  await load('currency_totals', [...totalsKey, ...totalsState], rows.totals.insert);
  const st = new BatchStatement();
  addUpdates(st, rows);
  if (!st.empty) n += checkCounts(st, await runStatement(tx, st));
  return n;
}

/** Rows in COPY's text format: fields by tab, rows by newline. */
function copyRows<R>(columns: Column<R>[], rows: R[]): string {
  let out = '';
  const last = columns.length - 1;
  for (const row of rows) {
    for (let i = 0; i <= last; i++) {
      out += copyText(columns[i]!.get(row) as string | number | null);
      out += i === last ? '\n' : '\t';
    }
  }
  return out;
}
