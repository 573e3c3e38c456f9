import {
  blockHash,
  decodeRecord,
  type BlockHeader,
  type Receipt,
  type StateRecord,
} from '../ledger/index.js';
import type { ChainStore } from '../storage/index.js';
import { asCallError } from './errors.js';
import { readReceipts, storedHeight } from './source.js';
import { metadataText } from './rows.js';
import { toMirrorText } from './text.js';
import type { SqlExecutor, SqlTarget } from './target.js';
import { readCursor } from './writer.js';

/**
 * `bitnexus sync check`: compare the mirror with a chain store. Every
 * mirrored block's hash and its transaction rows (count, ids, and each
 * receipt: result code, commission, existing) are compared with the chain; rows above the cursor are a
 * difference (a write that escaped the cursor); when the mirror is at the
 * chain's head, the participant, commission and balance rows are compared
 * with the chain's state records, field by field. A mirror that is merely
 * behind is not a difference (it is lag, see `sync status`).
 */

export interface CheckDifference {
  /** block height, or -1 for differences in the state tables */
  height: number;
  what: string;
  expected: string;
  actual: string;
}

export interface CheckReport {
  ok: boolean;
  chainHeight: number;
  mirrorHeight: number;
  blocksChecked: number;
  transactionsChecked: number;
  /** whether state rows were compared (only when the mirror is at the chain's head) */
  stateChecked: boolean;
  /** the first difference found */
  difference?: CheckDifference;
}

export interface CheckOptions {
  /** blocks fetched per query (default 1000) */
  chunk?: number;
  /** compare state rows when the mirror is at the head (default true) */
  state?: boolean;
}

const decoder = new TextDecoder();

class Different extends Error {
  constructor(readonly diff: CheckDifference) {
    super(`${diff.what} at ${diff.height}`);
  }
}

function differ(height: number, what: string, expected: unknown, actual: unknown): never {
  throw new Different({ height, what, expected: String(expected), actual: String(actual) });
}

/**
 * A node keeps committing and its sink keeps writing while this runs, so
 * nothing here may compare two sides read at different heights: blocks up
 * to the cursor read first never change; the rows above the cursor are read
 * in one statement with it; the state tables are read in one snapshot with
 * the cursor (REPEATABLE READ, when `db` is a target), and compared only
 * when that cursor and the chain's height, before and after its state is
 * read, are one and the same height.
 *
 * Throws SyncError MIRROR_UNAVAILABLE when the database cannot be reached
 * (errors.ts isUnavailable); other errors as they are.
 */
export async function checkMirror(
  db: SqlExecutor | SqlTarget,
  store: ChainStore,
  opts: CheckOptions = {},
): Promise<CheckReport> {
  try {
    return await checkOnce(db, store, opts);
  } catch (err) {
    throw asCallError(err);
  }
}

async function checkOnce(
  db: SqlExecutor | SqlTarget,
  store: ChainStore,
  opts: CheckOptions,
): Promise<CheckReport> {
  const chainHeight = await storedHeight(store);
  const cursor = await readCursor(db);
  const report: CheckReport = {
    ok: true,
    chainHeight,
    mirrorHeight: cursor.height,
    blocksChecked: 0,
    transactionsChecked: 0,
    stateChecked: false,
  };
  try {
    if (cursor.height > chainHeight)
      differ(cursor.height, 'mirror ahead of the chain', chainHeight, cursor.height);
    await checkAboveCursor(db);
    const chunk = opts.chunk ?? 1000;
    for (let lo = 0; lo <= cursor.height; lo += chunk) {
      const hi = Math.min(cursor.height, lo + chunk - 1);
      await checkBlocks(db, store, lo, hi, report);
    }
    if (cursor.height >= 0) {
      const { rows } = await db.query<{ hash: string }>(`SELECT hash FROM blocks WHERE height = $1`, [
        cursor.height,
      ]);
      if (rows[0]?.hash !== cursor.hash) differ(cursor.height, 'cursor hash', rows[0]?.hash, cursor.hash);
    }
    if (opts.state !== false && cursor.height === chainHeight && chainHeight >= 0) {
      report.stateChecked = await checkState(db, store);
    }
  } catch (err) {
    if (!(err instanceof Different)) throw err;
    report.ok = false;
    report.difference = err.diff;
    // a state row that differs was compared (at one height on both sides): the report says so
    if (err.diff.height === -1) report.stateChecked = true;
  }
  return report;
}

/** Rows above the cursor, read in one statement with it (a sink writing meanwhile moves both). */
async function checkAboveCursor(db: SqlExecutor): Promise<void> {
  const { rows } = await db.query<{ cursor: number; blocks: number | null; txs: number | null }>(
    `SELECT (SELECT height FROM sync_cursor WHERE id) AS cursor,
       (SELECT max(height) FROM blocks) AS blocks, (SELECT max(height) FROM transactions) AS txs`,
  );
  const row = rows[0]!;
  const cursor = Number(row.cursor);
  for (const [table, max] of [
    ['blocks', row.blocks],
    ['transactions', row.txs],
  ] as const) {
    if (max !== null && Number(max) > cursor) {
      differ(Number(max), `${table} row above the cursor`, `≤ ${cursor}`, max);
    }
  }
}

async function checkBlocks(db: SqlExecutor, store: ChainStore, lo: number, hi: number, report: CheckReport) {
  const blocks = new Map(
    (
      await db.query<{ height: number; hash: string; tx_count: number }>(
        `SELECT height, hash, tx_count FROM blocks WHERE height BETWEEN $1 AND $2`,
        [lo, hi],
      )
    ).rows.map((r) => [Number(r.height), r]),
  );
  const txs = groupByHeight(
    (
      await db.query<{
        height: number;
        idx: number;
        tx_id: string;
        code: string;
        commission_id: string | null;
        existing: string | null;
      }>(
        `SELECT height, idx, tx_id, code, commission_id, existing FROM transactions
         WHERE height BETWEEN $1 AND $2 ORDER BY height, idx`,
        [lo, hi],
      )
    ).rows,
  );
  for (let h = lo; h <= hi; h++) {
    const bytes = await store.getBlock(h);
    if (!bytes) differ(h, 'block missing from the chain store', 'a block', 'none');
    const header = (JSON.parse(decoder.decode(bytes)) as { header: BlockHeader }).header;
    const hash = blockHash(header);
    const row = blocks.get(h);
    if (!row) differ(h, 'block row missing', hash, 'none');
    if (row.hash !== hash) differ(h, 'block hash', hash, row.hash);
    if (Number(row.tx_count) !== header.txCount) differ(h, 'block tx_count', header.txCount, row.tx_count);
    const chain = await readReceipts(store, h);
    const t = txs.get(h) ?? [];
    if (t.length !== chain.length) differ(h, 'transaction rows', chain.length, t.length);
    chain.forEach((c: Receipt, i) => {
      const row = t[i]!;
      const want = `${i} ${c.tx} ${c.code} ${c.commission ?? '-'} ${c.existing ?? '-'}`;
      const got = `${row.idx} ${row.tx_id} ${row.code} ${row.commission_id ?? '-'} ${row.existing ?? '-'}`;
      if (want !== got) differ(h, `transaction ${i}`, want, got);
    });
    report.blocksChecked++;
    report.transactionsChecked += chain.length;
  }
}

function groupByHeight<R extends { height: number }>(rows: R[]): Map<number, R[]> {
  const out = new Map<number, R[]>();
  for (const r of rows) {
    const h = Number(r.height);
    const list = out.get(h);
    if (list) list.push(r);
    else out.set(h, [r]);
  }
  return out;
}

/** Fingerprints of the state tables, one string per row keyed by primary key. */
async function mirrorState(db: SqlExecutor): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const add = async (sql: string) => {
    for (const r of (await db.query<{ k: string; v: string }>(sql)).rows) out.set(r.k, r.v);
  };
  // concat_ws skips NULLs: coalesce keeps the field count fixed
  await add(
    `SELECT 'p/' || key AS k, concat_ws('|', role, name, since_height, coalesce(tx_id, '-')) AS v FROM participants`,
  );
  await add(
    `SELECT 'c/' || id AS k, concat_ws('|', merchant, merchant_name, affiliate, affiliate_name, currency, amount,
       approved, reversed, status, order_id, description, metadata_text, recorded_height, updated_height) AS v
     FROM commissions`,
  );
  await add(
    `SELECT 'pair/' || merchant || '/' || affiliate || '/' || currency AS k,
       concat_ws('|', pending, approved, clawed_back, paid) AS v FROM pair_balances`,
  );
  await add(
    `SELECT CASE side WHEN 'merchant' THEN 'ma/' ELSE 'aa/' END || participant || '/' || currency AS k,
       concat_ws('|', pending, balance, paid) AS v FROM account_balances`,
  );
  await add(
    `SELECT 'tot/' || currency AS k, concat_ws('|', merchant_pending, affiliate_pending, merchant_liabilities,
       affiliate_balances, merchant_paid, affiliate_paid) AS v FROM currency_totals`,
  );
  return out;
}

/**
 * A state record as mirrorState reads its row; `names` holds the participants
 * read before it (p/ < c/). Texts as the mirror stores them (text.ts: U+0000
 * and U+2400 escaped).
 */
function chainFingerprint(rec: StateRecord, names: ReadonlyMap<string, string>): string | undefined {
  switch (rec.t) {
    case 'participant':
      return [rec.role, toMirrorText(rec.name), rec.since, rec.tx ?? '-'].join('|');
    case 'commission':
      return [
        rec.merchant,
        toMirrorText(names.get(rec.merchant) ?? ''),
        rec.affiliate,
        toMirrorText(names.get(rec.affiliate) ?? ''),
        rec.currency,
        rec.amount,
        rec.approved,
        rec.reversed,
        rec.status,
        toMirrorText(rec.orderId),
        toMirrorText(rec.description),
        toMirrorText(metadataText(rec.metadata)),
        rec.recordedAt,
        rec.updatedAt,
      ].join('|');
    case 'pair':
      return [rec.pending, rec.approved, rec.clawedBack, rec.paid].join('|');
    case 'account':
      return [rec.pending, rec.balance, rec.paid].join('|');
    case 'totals':
      return [
        rec.merchantPending,
        rec.affiliatePending,
        rec.merchantLiabilities,
        rec.affiliateBalances,
        rec.merchantPaid,
        rec.affiliatePaid,
      ].join('|');
    case 'order':
    case 'nonce':
    case 'head':
    case 'members':
    case 'config':
      return undefined;
  }
}

/**
 * The state tables against the chain's state records. Returns false, with
 * nothing compared, when the two cannot be read at one height: the sink or
 * the chain moved on meanwhile (a live node; run the check again).
 */
async function checkState(db: SqlExecutor | SqlTarget, store: ChainStore): Promise<boolean> {
  const height = await storedHeight(store);
  const readMirror = async (tx: SqlExecutor) =>
    (await readCursor(tx)).height === height ? mirrorState(tx) : undefined;
  const mirror =
    'transaction' in db
      ? await db.transaction(async (tx) => {
          await tx.query(`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`);
          return readMirror(tx);
        })
      : await readMirror(db);
  if (!mirror) return false;
  const chain = new Map<string, string>();
  const names = new Map<string, string>();
  for (const prefix of ['p/', 'c/', 'pair/', 'ma/', 'aa/', 'tot/']) {
    for await (const [key, bytes] of store.kv.iterate(`s/${prefix}`)) {
      const rec = decodeRecord(bytes);
      if (rec.t === 'participant') names.set(rec.key, rec.name);
      const want = chainFingerprint(rec, names);
      if (want !== undefined) chain.set(key.slice(2), want);
    }
  }
  // each block's state is written in one batch with the head: an unchanged head means one height
  if ((await storedHeight(store)) !== height) return false;
  for (const [key, want] of chain) {
    const got = mirror.get(key);
    if (got !== want) differ(-1, `state row ${key}`, want, got ?? 'none');
  }
  for (const k of mirror.keys()) if (!chain.has(k)) differ(-1, `state row ${k}`, 'none', mirror.get(k));
  return true;
}
