import type { CommissionStatus } from '../ledger/index.js';
import type { Embedder } from './embedder.js';
import { errorMessage, SyncError } from './errors.js';
import { embedderLiteral, vectorLiteral } from './indexer.js';
import { SEARCH_SESSION_SETTINGS, type SqlExecutor, type SqlTarget } from './target.js';

/**
 * Hybrid search over the mirrored commissions (docs/SYNC.md §Search).
 *
 * Three ranked lists, fused by reciprocal rank fusion (score = Σ 1/(60 + rank)):
 *  - exact: the query is a commission id or an order id;
 *  - text: Postgres full-text search (`websearch_to_tsquery` on the weighted
 *    `commission_text.search_tsv`: names > description > metadata > order
 *    id), ranked by `ts_rank_cd`;
 *  - vector: cosine distance between the query's embedding (current embedder)
 *    and the commissions' embeddings, through that embedder's HNSW index.
 * Exact hits always come first. Filters apply inside every list, and the
 * vector list uses pgvector's iterative index scan (relaxed order, re-sorted
 * afterwards), so a selective filter still yields k hits when k exist.
 * An empty query lists the filtered commissions, newest first.
 */

export const COMMISSION_STATUSES: readonly CommissionStatus[] = ['pending', 'approved', 'voided', 'reversed'];

export interface SearchFilters {
  /** merchant public key (64 hex), or its registered name (case-insensitive) */
  merchant?: string;
  /** affiliate public key (64 hex), or its registered name (case-insensitive) */
  affiliate?: string;
  status?: CommissionStatus | readonly CommissionStatus[];
  /** ISO 4217 code */
  currency?: string;
  /** recorded at or after (Unix ms, block time) */
  from?: number;
  /** recorded before (Unix ms, block time) */
  to?: number;
  /** amount in minor units, inclusive bounds */
  minAmount?: string | bigint;
  maxAmount?: string | bigint;
}

export interface SearchRequest {
  q?: string;
  /** hits wanted (1–100, default 10) */
  k?: number;
  filters?: SearchFilters;
}

export interface SearchHit {
  id: string;
  score: number;
  /** the lists that found it */
  matchedBy: ('exact' | 'text' | 'vector')[];
  /** cosine distance to the query, when the vector list found it */
  distance?: number;
  merchant: string;
  merchantName: string;
  affiliate: string;
  affiliateName: string;
  currency: string;
  amount: string;
  approved: string;
  reversed: string;
  status: CommissionStatus;
  orderId: string;
  description: string;
  metadata: Record<string, string>;
  recordedHeight: number;
  /** block time, Unix ms */
  recordedAt: number;
  updatedHeight: number;
}

export interface SearchOptions {
  /** candidates taken from each list before fusion (default max(2k, 20)) */
  candidates?: number;
  /** RRF constant (default 60) */
  rrfK?: number;
  /** HNSW candidate list size (default: the session's, 100, or the candidates if more) */
  efSearch?: number;
  /** most index tuples an iterative scan visits before giving up (default 20,000) */
  maxScanTuples?: number;
  /** most full-text matches ranked (default 2,000); beyond it, an arbitrary subset of a very common term is ranked */
  textRankCap?: number;
  /**
   * When a merchant or affiliate filter leaves at most this many commissions
   * (default 2,000), their vectors are scored exactly instead of walking the
   * HNSW graph (0: always the index).
   */
  exactBelow?: number;
}

export interface SearchResult {
  hits: SearchHit[];
  /** false when the embedder failed and only the exact and text lists answered */
  vectorUsed: boolean;
  vectorError?: string;
}

const HEX_KEY = /^[0-9a-f]{64}$/;
const AMOUNT = /^(0|[1-9][0-9]{0,19})$/;

function invalid(message: string): SyncError {
  return new SyncError('INVALID_QUERY', message);
}

/** WHERE conditions on `c` (commissions) for the filters; values are appended to `params`. */
export function filterConditions(f: SearchFilters, params: unknown[]): string[] {
  const out: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  for (const side of ['merchant', 'affiliate'] as const) {
    const v = f[side];
    if (v === undefined) continue;
    if (HEX_KEY.test(v)) out.push(`c.${side} = ${p(v)}`);
    // by name: through the (small) participants table, so the index on commissions.<side> still serves
    else
      out.push(
        `c.${side} IN (SELECT pt.key FROM participants pt WHERE pt.role = '${side}' AND lower(pt.name) = lower(${p(v)}))`,
      );
  }
  if (f.status !== undefined) {
    const list = typeof f.status === 'string' ? [f.status] : [...f.status];
    for (const s of list)
      if (!COMMISSION_STATUSES.includes(s)) throw invalid(`unknown status ${JSON.stringify(s)}`);
    out.push(`c.status = ANY(${p(list)}::text[])`);
  }
  if (f.currency !== undefined) {
    if (!/^[A-Z]{3}$/.test(f.currency)) throw invalid('currency must be an ISO 4217 code');
    out.push(`c.currency = ${p(f.currency)}`);
  }
  if (f.from !== undefined) out.push(`c.recorded_at >= ${p(msToIso(f.from))}::timestamptz`);
  if (f.to !== undefined) out.push(`c.recorded_at < ${p(msToIso(f.to))}::timestamptz`);
  for (const [key, op] of [
    ['minAmount', '>='],
    ['maxAmount', '<='],
  ] as const) {
    const v = f[key];
    if (v === undefined) continue;
    const s = v.toString();
    if (!AMOUNT.test(s)) throw invalid(`${key} must be a non-negative integer in minor units`);
    out.push(`c.amount ${op} ${p(s)}::numeric`);
  }
  return out;
}

function msToIso(ms: number): string {
  if (!Number.isSafeInteger(ms)) throw invalid('times are integer Unix milliseconds');
  return new Date(ms).toISOString();
}

const where = (conds: string[]) => (conds.length ? conds.join(' AND ') : 'true');

interface Ranked {
  id: string;
  distance?: number;
}

async function exactList(db: SqlExecutor, q: string, f: SearchFilters, n: number): Promise<Ranked[]> {
  const params: unknown[] = [q];
  const conds = filterConditions(f, params);
  params.push(n);
  const { rows } = await db.query<{ id: string }>(
    `SELECT c.id FROM commissions c WHERE (c.id = $1 OR c.order_id = $1) AND ${where(conds)}
     ORDER BY c.recorded_height DESC, c.recorded_index DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}

async function textList(
  db: SqlExecutor,
  q: string,
  f: SearchFilters,
  n: number,
  cap: number,
): Promise<Ranked[]> {
  const params: unknown[] = [q];
  const conds = filterConditions(f, params);
  params.push(cap, n);
  const join = conds.length > 0 ? 'JOIN commissions c ON c.id = t.commission_id' : '';
  const { rows } = await db.query<{ id: string }>(
    `WITH query AS (SELECT websearch_to_tsquery('english', $1) AS tq),
     matched AS (
       SELECT t.commission_id AS id, t.search_tsv FROM commission_text t ${join}, query
       WHERE t.search_tsv @@ query.tq AND ${where(conds)}
       LIMIT $${params.length - 1}
     )
     SELECT m.id FROM matched m, query
     ORDER BY ts_rank_cd(m.search_tsv, query.tq) DESC, m.id LIMIT $${params.length}`,
    params,
  );
  return rows;
}

async function vectorList(
  target: SqlTarget,
  embedder: Embedder,
  vector: Float32Array,
  f: SearchFilters,
  n: number,
  opts: SearchOptions,
): Promise<Ranked[]> {
  const d = embedder.dimension;
  const params: unknown[] = [vectorLiteral(vector)];
  const filters = filterConditions(f, params);
  const conds = [`e.embedder = ${embedderLiteral(embedder.id)}`, ...filters];
  const distance = `e.embedding::vector(${d}) <=> $1::vector(${d})`;
  const exactBelow = opts.exactBelow ?? 2_000;
  if ((f.merchant !== undefined || f.affiliate !== undefined) && exactBelow > 0) {
    // One merchant's or affiliate's commissions (indexed, usually few): scoring them exactly beats
    // walking the graph past everyone else's. One statement: the candidates (at most exactBelow + 1),
    // their count, and — only when they are few enough — their nearest n.
    const exactParams = [...params, exactBelow + 1, n];
    const { rows } = await target.query<{ total: number; id: string | null; distance: number | null }>(
      `WITH cand AS MATERIALIZED (
         SELECT c.id FROM commissions c WHERE ${filters.join(' AND ')} LIMIT $${exactParams.length - 1}
       )
       SELECT t.total, v.id, v.distance
       FROM (SELECT count(*)::int8 AS total FROM cand) t
       LEFT JOIN LATERAL (
         SELECT cand.id, d.distance FROM cand
         -- LATERAL … LIMIT 1: one lookup per candidate, never a scan of every embedding
         CROSS JOIN LATERAL (
           SELECT ${distance} AS distance FROM commission_embeddings e
           WHERE e.commission_id = cand.id AND e.embedder = ${embedderLiteral(embedder.id)} LIMIT 1
         ) d
         ORDER BY 2, 1 LIMIT $${exactParams.length}
       ) v ON t.total <= ${Number(exactBelow)}
       ORDER BY v.distance, v.id`,
      exactParams,
    );
    if (Number(rows[0]?.total ?? 0) <= exactBelow) {
      return rows.flatMap((r) => (r.id === null ? [] : [{ id: r.id, distance: Number(r.distance) }]));
    }
  }
  params.push(n);
  // relaxed order may return the nearest slightly out of order: sort the materialised set again
  const sql = `WITH nearest AS MATERIALIZED (
       SELECT e.commission_id AS id, ${distance} AS distance
       FROM commission_embeddings e JOIN commissions c ON c.id = e.commission_id
       WHERE ${conds.join(' AND ')}
       ORDER BY ${distance} LIMIT $${params.length}
     )
     SELECT id, distance FROM nearest ORDER BY distance, id`;
  const toRanked = (rows: { id: string; distance: number }[]) =>
    rows.map((r) => ({ id: r.id, distance: Number(r.distance) }));
  const sessionEf = Number(SEARCH_SESSION_SETTINGS['hnsw.ef_search']);
  if (opts.efSearch === undefined && opts.maxScanTuples === undefined && n <= sessionEf) {
    // the session already scans iteratively with a large enough ef_search: one statement
    return toRanked((await target.query<{ id: string; distance: number }>(sql, params)).rows);
  }
  const ef = Math.min(1000, opts.efSearch ?? Math.max(n, sessionEf));
  const maxTuples = opts.maxScanTuples ?? Number(SEARCH_SESSION_SETTINGS['hnsw.max_scan_tuples']);
  return target.transaction(async (tx) => {
    await tx.query(
      `SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
              set_config('hnsw.ef_search', $1, true),
              set_config('hnsw.max_scan_tuples', $2, true)`,
      [String(ef), String(maxTuples)],
    );
    return toRanked((await tx.query<{ id: string; distance: number }>(sql, params)).rows);
  });
}

async function recentList(db: SqlExecutor, f: SearchFilters, n: number): Promise<Ranked[]> {
  const params: unknown[] = [];
  const conds = filterConditions(f, params);
  params.push(n);
  const { rows } = await db.query<{ id: string }>(
    `SELECT c.id FROM commissions c WHERE ${where(conds)}
     ORDER BY c.recorded_height DESC, c.recorded_index DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}

interface HitRow {
  id: string;
  merchant: string;
  merchant_name: string;
  affiliate: string;
  affiliate_name: string;
  currency: string;
  amount: string;
  approved: string;
  reversed: string;
  status: CommissionStatus;
  order_id: string;
  description: string;
  metadata: Record<string, string>;
  recorded_height: number;
  recorded_ms: number;
  updated_height: number;
}

async function fetchHits(db: SqlExecutor, ids: string[]): Promise<Map<string, HitRow>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<HitRow>(
    `SELECT id, merchant, merchant_name, affiliate, affiliate_name, currency, amount::text AS amount,
            approved::text AS approved, reversed::text AS reversed, status, order_id, description, metadata,
            recorded_height, (extract(epoch FROM recorded_at) * 1000)::int8 AS recorded_ms, updated_height
     FROM commissions WHERE id = ANY($1::text[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/** Search with fusion details (whether the vector list answered). */
export async function searchDetailed(
  target: SqlTarget,
  embedder: Embedder,
  req: SearchRequest,
  opts: SearchOptions = {},
): Promise<SearchResult> {
  const k = req.k ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > 100) throw invalid('k must be an integer in 1..100');
  const f = req.filters ?? {};
  const q = (req.q ?? '').trim();
  if (q.length > 1000) throw invalid('q is at most 1000 characters');
  const n = opts.candidates ?? Math.max(2 * k, 20);
  const rrfK = opts.rrfK ?? 60;
  filterConditions(f, []); // reject bad filters before any I/O

  const lists: { name: 'exact' | 'text' | 'vector'; items: Ranked[]; boost: number }[] = [];
  let vectorUsed = false;
  let vectorError: string | undefined;
  if (q === '') {
    lists.push({ name: 'exact', items: await recentList(target, f, k), boost: 0 });
  } else {
    // only the embedder may fail softly (a model server that is down); SQL errors are errors
    const vectorPart = (async () => {
      let v: Float32Array | undefined;
      try {
        [v] = await embedder.embed([q]);
        if (!v || v.length !== embedder.dimension) {
          throw new SyncError('BAD_EMBEDDING', 'query embedding has the wrong size');
        }
      } catch (err) {
        vectorError = errorMessage(err);
        return [];
      }
      const items = await vectorList(target, embedder, v, f, n, opts);
      vectorUsed = true;
      return items;
    })();
    const [exact, text, vector] = await Promise.all([
      exactList(target, q, f, n),
      textList(target, q, f, n, opts.textRankCap ?? 2_000),
      vectorPart,
    ]);
    lists.push({ name: 'exact', items: exact, boost: 1 }, { name: 'text', items: text, boost: 0 });
    lists.push({ name: 'vector', items: vector, boost: 0 });
  }

  const fused = new Map<string, { score: number; matchedBy: SearchHit['matchedBy']; distance?: number }>();
  for (const list of lists) {
    list.items.forEach((item, rank) => {
      const e = fused.get(item.id) ?? { score: 0, matchedBy: [] };
      e.score += list.boost + 1 / (rrfK + rank + 1);
      e.matchedBy.push(list.name);
      if (item.distance !== undefined) e.distance = item.distance;
      fused.set(item.id, e);
    });
  }
  const top = [...fused.entries()]
    .sort((a, b) => b[1].score - a[1].score || (a[0] < b[0] ? -1 : 1))
    .slice(0, k);
  const rows = await fetchHits(
    target,
    top.map(([id]) => id),
  );
  const hits: SearchHit[] = [];
  for (const [id, e] of top) {
    const r = rows.get(id);
    if (!r) continue;
    const hit: SearchHit = {
      id,
      score: q === '' ? 0 : e.score,
      matchedBy: q === '' ? [] : e.matchedBy,
      merchant: r.merchant,
      merchantName: r.merchant_name,
      affiliate: r.affiliate,
      affiliateName: r.affiliate_name,
      currency: r.currency,
      amount: r.amount,
      approved: r.approved,
      reversed: r.reversed,
      status: r.status,
      orderId: r.order_id,
      description: r.description,
      metadata: r.metadata,
      recordedHeight: Number(r.recorded_height),
      recordedAt: Number(r.recorded_ms),
      updatedHeight: Number(r.updated_height),
    };
    if (e.distance !== undefined) hit.distance = e.distance;
    hits.push(hit);
  }
  const result: SearchResult = { hits, vectorUsed: q === '' ? false : vectorUsed };
  if (vectorError !== undefined) result.vectorError = vectorError;
  return result;
}

/** Hybrid search: the function the API (`GET /v1/search`) and the CLI (`bitnexus search`) call. */
export async function search(
  target: SqlTarget,
  embedder: Embedder,
  req: SearchRequest,
  opts: SearchOptions = {},
): Promise<SearchHit[]> {
  return (await searchDetailed(target, embedder, req, opts)).hits;
}
