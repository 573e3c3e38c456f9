import type { CommissionStatus } from '../ledger/index.js';
import type { Embedder } from './embedder.js';
import { asCallError, errorMessage, SyncError } from './errors.js';
import {
  embedderIndexType,
  embedderLiteral,
  embeddingExpression,
  hasDirection,
  vectorLiteral,
} from './indexer.js';
import { SEARCH_SESSION_SETTINGS, type SqlTarget, type VectorIndexType } from './target.js';
import { fromMirrorJson, fromMirrorText, toMirrorText } from './text.js';

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
  /** merchant public key (64 hex digits, either case), or its registered name (case-insensitive) */
  merchant?: string;
  /** affiliate public key (64 hex digits, either case), or its registered name (case-insensitive) */
  affiliate?: string;
  status?: CommissionStatus | readonly CommissionStatus[];
  /** ISO 4217 code */
  currency?: string;
  /** recorded at or after (Unix ms, block time; TIME_RANGE_MS: years 1 to 9999) */
  from?: number;
  /** recorded before (Unix ms, block time; TIME_RANGE_MS) */
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
  /**
   * false when only the exact and text lists answered: the query was empty,
   * the embedder failed, or the query's embedding is the zero vector (no word
   * the embedder knows: only stop words or punctuation)
   */
  vectorUsed: boolean;
  /** why the vector list did not answer a non-empty query */
  vectorError?: string;
}

/** A public key: 64 hex digits. Either case; keys are stored lower-case. */
const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/**
 * The times a filter may name: what Postgres' timestamptz stores and reads
 * back as ISO 8601 with a four-digit year, 0001-01-01T00:00:00.000Z to
 * 9999-12-31T23:59:59.999Z (JavaScript writes year 0 and years past 9999 in
 * forms Postgres refuses).
 */
export const TIME_RANGE_MS = { min: -62_135_596_800_000, max: 253_402_300_799_999 } as const;
const AMOUNT = /^(0|[1-9][0-9]{0,19})$/;

function invalid(message: string): SyncError {
  return new SyncError('INVALID_QUERY', message);
}

/**
 * WHERE conditions for the filters; values are appended to `params`. The
 * fixed columns (merchant, affiliate, currency, amount, recorded_at) are
 * read from the table aliased `on` (default `c`, commissions; `t` for
 * commission_text, which holds copies of them), status from `statusOn`
 * (default: the same alias; it is only in commissions).
 */
export function filterConditions(
  f: SearchFilters,
  params: unknown[],
  opts: { on?: string; statusOn?: string } = {},
): string[] {
  const on = opts.on ?? 'c';
  const statusOn = opts.statusOn ?? on;
  const out: string[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  for (const side of ['merchant', 'affiliate'] as const) {
    const v = f[side];
    if (v === undefined) continue;
    if (HEX_KEY.test(v)) out.push(`${on}.${side} = ${p(v.toLowerCase())}`);
    // by name: through the (small) participants table, so the index on commissions.<side> still serves
    else
      out.push(
        `${on}.${side} IN (SELECT pt.key FROM participants pt WHERE pt.role = '${side}' AND lower(pt.name) = lower(${p(toMirrorText(v))}))`,
      );
  }
  if (f.status !== undefined) {
    const list = typeof f.status === 'string' ? [f.status] : [...f.status];
    for (const s of list)
      if (!COMMISSION_STATUSES.includes(s)) throw invalid(`unknown status ${JSON.stringify(s)}`);
    out.push(`${statusOn}.status = ANY(${p(list)}::text[])`);
  }
  if (f.currency !== undefined) {
    if (!/^[A-Z]{3}$/.test(f.currency)) throw invalid('currency must be an ISO 4217 code');
    out.push(`${on}.currency = ${p(f.currency)}`);
  }
  if (f.from !== undefined) out.push(`${on}.recorded_at >= ${p(msToIso(f.from, 'from'))}::timestamptz`);
  if (f.to !== undefined) out.push(`${on}.recorded_at < ${p(msToIso(f.to, 'to'))}::timestamptz`);
  for (const [key, op] of [
    ['minAmount', '>='],
    ['maxAmount', '<='],
  ] as const) {
    const v = f[key];
    if (v === undefined) continue;
    const s = v.toString();
    if (!AMOUNT.test(s)) throw invalid(`${key} must be a non-negative integer in minor units`);
    out.push(`${on}.amount ${op} ${p(s)}::numeric`);
  }
  return out;
}

function msToIso(ms: number, field: string): string {
  if (!Number.isSafeInteger(ms)) throw invalid(`${field}: times are integer Unix milliseconds`);
  if (ms < TIME_RANGE_MS.min || ms > TIME_RANGE_MS.max)
    throw invalid(
      `${field}: ${ms} is outside the times the mirror can hold (0001-01-01 to 9999-12-31, Unix ms ${TIME_RANGE_MS.min} to ${TIME_RANGE_MS.max})`,
    );
  return new Date(ms).toISOString();
}

const where = (conds: string[]) => (conds.length ? conds.join(' AND ') : 'true');

/** The columns of a hit, from `commissions c`. */
const HIT_COLUMNS = `c.id, c.merchant, c.merchant_name, c.affiliate, c.affiliate_name, c.currency,
  c.amount::text AS amount, c.approved::text AS approved, c.reversed::text AS reversed, c.status,
  c.order_id, c.description, c.metadata, c.recorded_height,
  (extract(epoch FROM c.recorded_at) * 1000)::int8 AS recorded_ms, c.updated_height`;

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

/** A fused hit: its 1-based rank in each list that found it (null: not found there). */
interface FusedRow extends HitRow {
  score: number;
  exact_rank: number | null;
  text_rank: number | null;
  vector_rank: number | null;
  distance: number | null;
}

/** A hit with its texts as the ledger holds them (the mirror escapes U+0000 and U+2400: text.ts). */
function toHit(r: HitRow, score: number, matchedBy: SearchHit['matchedBy']): SearchHit {
  return {
    id: r.id,
    score,
    matchedBy,
    merchant: r.merchant,
    merchantName: fromMirrorText(r.merchant_name),
    affiliate: r.affiliate,
    affiliateName: fromMirrorText(r.affiliate_name),
    currency: r.currency,
    amount: r.amount,
    approved: r.approved,
    reversed: r.reversed,
    status: r.status,
    orderId: fromMirrorText(r.order_id),
    description: fromMirrorText(r.description),
    metadata: fromMirrorJson(r.metadata),
    recordedHeight: Number(r.recorded_height),
    recordedAt: Number(r.recorded_ms),
    updatedHeight: Number(r.updated_height),
  };
}

/**
 * The whole hybrid search as one statement (one round trip; on PGlite one
 * turn of its single session): each list is a CTE with the filters inside
 * it, ranked 1…n; fusion and the hits' rows are SQL too.
 *
 *  - exact: the commission or order id, through their indexes;
 *  - text: the GIN index finds at most `cap` matches (no ranking work
 *    beyond them), `ts_rank_cd` orders only those. Under a merchant or
 *    affiliate filter with few commissions (below), the matches are taken
 *    among those candidates instead: a common word ("boots", 4 % of all
 *    commissions) no longer fetches every match's commission row to test
 *    the filter (44,000 buffers and 63 ms on PGlite over 100,000
 *    commissions, against ~11,000). Other filters are tested on the
 *    entry's own copies of the commission's fixed fields; status alone
 *    needs the commission row;
 *  - vector: `ORDER BY distance LIMIT n` through the embedder's HNSW index,
 *    scanned iteratively under filters (the session's settings), materialised
 *    and re-sorted because of the relaxed order. With a merchant or affiliate
 *    filter, their commissions (at most exactBelow + 1, through the
 *    (merchant|affiliate, recorded_at) indexes) are counted first: when few,
 *    they are scored exactly and the index branch is gated off by a one-time
 *    filter; otherwise the exact branch is, and the index is walked.
 *
 * Scores are float8 sums in the same order as JavaScript would add them
 * (exact + 1, text, vector), so ties and ordering are those of plain RRF.
 */
function hybridStatement(
  q: { exact: string; words: string },
  f: SearchFilters,
  vector: { literal: string; embedder: Embedder; indexType: VectorIndexType } | undefined,
  k: number,
  n: number,
  opts: SearchOptions,
): { sql: string; params: unknown[] } {
  // $1: the query as the mirror stores texts (an id or order id); $2: as full-text search reads it
  const params: unknown[] = [q.exact, q.words];
  const filters = filterConditions(f, params);
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const nP = p(n);
  const rrf = opts.rrfK ?? 60;
  if (!Number.isFinite(rrf) || rrf < 0) throw invalid('rrfK must be a non-negative number');
  const rrfP = `${p(rrf)}::float8`;
  const cap = opts.textRankCap ?? 2_000;
  if (!Number.isInteger(cap) || cap < 1) throw invalid('textRankCap must be a positive integer');
  const w = where(filters);
  const joinC = (alias: string) => (filters.length > 0 ? `JOIN commissions c ON c.id = ${alias}` : '');
  const exactBelow = opts.exactBelow ?? 2_000;
  if (!Number.isInteger(exactBelow) || exactBelow < 0)
    throw invalid('exactBelow must be a non-negative integer');
  // a merchant or affiliate filter: its commissions are counted first, up to exactBelow + 1
  const few = (f.merchant !== undefined || f.affiliate !== undefined) && exactBelow > 0;
  const fewCtes = few
    ? [
        // LIMIT exactBelow + 1: counting stops as soon as there are too many
        `cand AS MATERIALIZED (SELECT c.id FROM commissions c WHERE ${w} LIMIT ${p(exactBelow + 1)})`,
        `few AS MATERIALIZED (SELECT count(*) <= ${p(exactBelow)}::int8 AS yes FROM cand)`,
      ]
    : [];
  // the full-text matches: among the candidates when they are few (then they are every commission
  // the filters pass), else through the GIN index with the filters tested on each match's text row
  // (which holds the commission's fixed fields); only a status filter needs the commission itself
  const textWhere = where(filterConditions(f, params, { on: 't', statusOn: 'c' }));
  const textJoin = f.status !== undefined ? 'JOIN commissions c ON c.id = t.commission_id' : '';
  const filteredText = `SELECT t.commission_id AS id, t.search_tsv FROM commission_text t ${textJoin}, tq
       WHERE t.search_tsv @@ tq.tq AND ${textWhere}`;
  const textMatches = few
    ? `SELECT * FROM (
         SELECT g.id, g.search_tsv FROM (
           -- OFFSET 0 keeps this a scan of the GIN index and the text rows' pages (each read once),
           -- joined to the candidates by hash, never a lookup per candidate
           SELECT t.commission_id AS id, t.search_tsv FROM commission_text t, tq WHERE t.search_tsv @@ tq.tq OFFSET 0
         ) g JOIN cand ON cand.id = g.id
         WHERE (SELECT yes FROM few)
         UNION ALL
         ${filteredText} AND NOT (SELECT yes FROM few)
       ) m LIMIT ${p(cap)}`
    : `${filteredText} LIMIT ${p(cap)}`;
  const ctes = [
    ...fewCtes,
    `exact AS (
       SELECT c.id, row_number() OVER (ORDER BY c.recorded_height DESC, c.recorded_index DESC) AS rank
       FROM commissions c WHERE (c.id = $1 OR c.order_id = $1) AND ${w}
       ORDER BY c.recorded_height DESC, c.recorded_index DESC LIMIT ${nP}
     )`,
    `tq AS (SELECT websearch_to_tsquery('english', $2) AS tq)`,
    `matched AS (${textMatches})`,
    `text AS (
       SELECT m.id, row_number() OVER (ORDER BY ts_rank_cd(m.search_tsv, tq.tq) DESC, m.id) AS rank
       FROM matched m, tq ORDER BY 2 LIMIT ${nP}
     )`,
  ];
  const lists = [
    `SELECT id, rank AS exact_rank, NULL::int8 AS text_rank, NULL::int8 AS vector_rank, NULL::float8 AS distance FROM exact`,
    `SELECT id, NULL, rank, NULL, NULL FROM text`,
  ];
  if (vector) {
    const { embedder, indexType } = vector;
    const d = embedder.dimension;
    const vP = p(vector.literal);
    // distances are reported (and lists re-ranked) in full precision; the index walk orders by the
    // index's own expression, which may be half precision
    const distance = `e.${embeddingExpression('vector', d)} <=> ${vP}::vector(${d})`;
    const indexOrder = `e.${embeddingExpression(indexType, d)} <=> ${vP}::${indexType}(${d})`;
    const mine = `e.embedder = ${embedderLiteral(embedder.id)}`;
    if (few) {
      ctes.push(
        // one lookup per candidate (LATERAL … LIMIT 1), never a scan of every embedding
        `vec_exact AS MATERIALIZED (
           SELECT cand.id, d.distance FROM cand
           CROSS JOIN LATERAL (
             SELECT ${distance} AS distance FROM commission_embeddings e
             WHERE e.commission_id = cand.id AND ${mine} LIMIT 1
           ) d
           WHERE (SELECT yes FROM few)
           ORDER BY 2, 1 LIMIT ${nP}
         )`,
      );
    }
    ctes.push(
      // `+ 0`: Postgres ≥ 17 (PGlite is 18) carries a materialised CTE's sort order to its readers,
      // and with a `vector` index the distance would be the very expression the walk is ordered by:
      // the planner would then take the relaxed order for sorted and, past 32 rows, sort only
      // ties (Incremental Sort), leaving vector ranks out of distance order
      `vec_index AS MATERIALIZED (
         SELECT e.commission_id AS id, (${distance}) + 0::float8 AS distance
         FROM commission_embeddings e ${joinC('e.commission_id')}
         WHERE ${[mine, ...filters, ...(few ? ['NOT (SELECT yes FROM few)'] : [])].join(' AND ')}
         ORDER BY ${indexOrder} LIMIT ${nP}
       )`,
      // relaxed order may return the nearest slightly out of order: ranked again here
      // a distance that is not a number (a zero vector, which neither the indexer nor search
      // store or use) ranks nothing
      `vector AS (
         SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS rank
         FROM (${few ? 'SELECT id, distance FROM vec_exact UNION ALL ' : ''}SELECT id, distance FROM vec_index) v
         WHERE distance <> 'NaN'::float8
       )`,
    );
    lists.push(`SELECT id, NULL, NULL, rank, distance FROM vector`);
  }
  ctes.push(
    `lists AS (${lists.join(' UNION ALL ')})`,
    `fused AS (
       SELECT id, min(exact_rank) AS exact_rank, min(text_rank) AS text_rank, min(vector_rank) AS vector_rank,
              min(distance) AS distance
       FROM lists GROUP BY id
     )`,
    `top AS (
       SELECT fused.*,
              coalesce(1 + 1 / (${rrfP} + exact_rank), 0) + coalesce(1 / (${rrfP} + text_rank), 0)
                + coalesce(1 / (${rrfP} + vector_rank), 0) AS score
       FROM fused ORDER BY score DESC, id COLLATE "C" LIMIT ${p(k)}
     )`,
  );
  const sql = `WITH ${ctes.join(',\n')}
    SELECT ${HIT_COLUMNS}, top.score, top.exact_rank, top.text_rank, top.vector_rank, top.distance
    FROM top JOIN commissions c ON c.id = top.id
    ORDER BY top.score DESC, top.id COLLATE "C"`;
  return { sql, params };
}

/** How long search trusts what it read of an embedder's index (a switch is seen this late: slower, never wrong). */
const INDEX_TYPE_TTL_MS = 2_000;
const indexTypes = new WeakMap<SqlTarget, Map<string, { type: VectorIndexType; until: number }>>();

/**
 * The type of the HNSW index search can use for `embedder`: the one
 * `embedders.index_name` names, when it is built; `vector` otherwise (no
 * index: an exact scan, in full precision). Read at most every
 * INDEX_TYPE_TTL_MS per target and embedder; a stale answer only means the
 * query's expression does not match the index for a moment (an exact scan),
 * never another result set.
 */
export async function searchIndexType(target: SqlTarget, embedder: Embedder): Promise<VectorIndexType> {
  let known = indexTypes.get(target);
  if (!known) indexTypes.set(target, (known = new Map<string, { type: VectorIndexType; until: number }>()));
  const now = performance.now();
  const hit = known.get(embedder.id);
  if (hit && hit.until > now) return hit.type;
  const { rows } = await target.query<{ index_name: string; built: boolean }>(
    `SELECT index_name, to_regclass(index_name) IS NOT NULL AS built FROM embedders
     WHERE id = $1 AND dimension = $2`,
    [embedder.id, embedder.dimension],
  );
  const r = rows[0];
  const type = (r?.built ? embedderIndexType(embedder.id, r.index_name) : undefined) ?? 'vector';
  known.set(embedder.id, { type, until: now + INDEX_TYPE_TTL_MS });
  return type;
}

/** What the vector list says when the query's embedding is the zero vector. */
export const ZERO_QUERY_VECTOR =
  'the query has no word the embedder can place (only stop words or punctuation): its embedding is the zero vector, so the vector list was not used';

/**
 * Search with fusion details (whether the vector list answered). Errors:
 * SyncError INVALID_QUERY for a request it cannot answer as asked,
 * MIRROR_UNAVAILABLE when the database cannot be reached (errors.ts
 * isUnavailable), and any other database error as it is (a fault).
 */
export async function searchDetailed(
  target: SqlTarget,
  embedder: Embedder,
  req: SearchRequest,
  opts: SearchOptions = {},
): Promise<SearchResult> {
  try {
    return await searchOnce(target, embedder, req, opts);
  } catch (err) {
    throw asCallError(err);
  }
}

async function searchOnce(
  target: SqlTarget,
  embedder: Embedder,
  req: SearchRequest,
  opts: SearchOptions,
): Promise<SearchResult> {
  const k = req.k ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > 100) throw invalid('k must be an integer in 1..100');
  const f = req.filters ?? {};
  const q = (req.q ?? '').trim();
  if (q.length > 1000) throw invalid('q is at most 1000 characters');
  const n = opts.candidates ?? Math.max(2 * k, 20);
  if (!Number.isInteger(n) || n < 1) throw invalid('candidates must be a positive integer');

  if (q === '') {
    const params: unknown[] = [];
    const conds = filterConditions(f, params);
    params.push(k);
    const { rows } = await target.query<HitRow>(
      `SELECT ${HIT_COLUMNS} FROM commissions c WHERE ${where(conds)}
       ORDER BY c.recorded_height DESC, c.recorded_index DESC LIMIT $${params.length}`,
      params,
    );
    return { hits: rows.map((r) => toHit(r, 0, [])), vectorUsed: false };
  }

  filterConditions(f, []); // reject bad filters before any I/O
  // only the embedder may fail softly (a model server that is down); SQL errors are errors
  let literal: string | undefined;
  let vectorError: string | undefined;
  try {
    const [v] = await embedder.embed([q]);
    if (!v || v.length !== embedder.dimension) {
      throw new SyncError('BAD_EMBEDDING', 'query embedding has the wrong size');
    }
    if (!v.every(Number.isFinite))
      throw new SyncError('BAD_EMBEDDING', 'query embedding holds a value that is not a finite number');
    // the zero vector's cosine distance to every commission is NaN: no ranking at all
    if (hasDirection(v)) literal = vectorLiteral(v);
    else vectorError = ZERO_QUERY_VECTOR;
  } catch (err) {
    vectorError = errorMessage(err);
  }
  const vector =
    literal === undefined
      ? undefined
      : { literal, embedder, indexType: await searchIndexType(target, embedder) };
  const words = q.replace(/[\0\u2400\u2401]/g, ' '); // as the full-text index reads texts (indexer.ts)
  const { sql, params } = hybridStatement({ exact: toMirrorText(q), words }, f, vector, k, n, opts);

  let rows: FusedRow[];
  const sessionEf = Number(SEARCH_SESSION_SETTINGS['hnsw.ef_search']);
  if (!vector || (opts.efSearch === undefined && opts.maxScanTuples === undefined && n <= sessionEf)) {
    // every session already scans iteratively with a large enough ef_search: one statement
    rows = (await target.query<FusedRow>(sql, params)).rows;
  } else {
    const ef = Math.min(1000, opts.efSearch ?? Math.max(n, sessionEf));
    const maxTuples = opts.maxScanTuples ?? Number(SEARCH_SESSION_SETTINGS['hnsw.max_scan_tuples']);
    rows = await target.transaction(async (tx) => {
      await tx.query(
        `SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
                set_config('hnsw.ef_search', $1, true),
                set_config('hnsw.max_scan_tuples', $2, true)`,
        [String(ef), String(maxTuples)],
      );
      return (await tx.query<FusedRow>(sql, params)).rows;
    });
  }

  const hits = rows.map((r) => {
    const matchedBy: SearchHit['matchedBy'] = [];
    if (r.exact_rank !== null) matchedBy.push('exact');
    if (r.text_rank !== null) matchedBy.push('text');
    if (r.vector_rank !== null) matchedBy.push('vector');
    const hit = toHit(r, Number(r.score), matchedBy);
    const distance = r.distance === null ? NaN : Number(r.distance);
    if (r.vector_rank !== null && Number.isFinite(distance)) hit.distance = distance;
    return hit;
  });
  const result: SearchResult = { hits, vectorUsed: vector !== undefined };
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
