import type { ApiErrorCode } from './errors.js';
import {
  AdminRequest,
  AdminResult,
  AffiliateBalances,
  BlockEnvelope,
  BlockList,
  CheckReport,
  ErrorResponse,
  eventsHeaders,
  eventsQuery,
  Health,
  heightParams,
  keyParams,
  listBlocksQuery,
  NodeStatus,
  objectBody,
  Participant,
  Readiness,
  searchQuery,
  SearchResult,
  SignedTransaction,
  SubmitAccepted,
  SubmitCommitted,
  submitQuery,
  SyncStatus,
  TransactionView,
  txIdParams,
  type JsonSchema,
} from './schemas.js';

/**
 * Every route of the API: its fastify schema and what the OpenAPI document
 * says about it. server.ts attaches the handlers; openapi.ts renders
 * docs/openapi.yaml from this table, so the two are always in step.
 */
export interface RouteSpec {
  method: 'GET' | 'POST';
  /** fastify syntax (`/v1/blocks/:height`) */
  url: string;
  operationId: string;
  tag: 'transactions' | 'chain' | 'state' | 'search' | 'sync' | 'events' | 'operations' | 'admin';
  summary: string;
  description?: string;
  schema: {
    params?: JsonSchema;
    querystring?: JsonSchema;
    headers?: JsonSchema;
    body?: JsonSchema;
    /** successful replies only; error replies are added for every route by server.ts */
    response: Record<string, JsonSchema>;
  };
  /** error codes the route may answer with; their statuses come from HTTP_STATUS */
  errors: readonly ApiErrorCode[];
  /** documentation where the validated schema is deliberately looser or the reply is not JSON */
  docs?: {
    requestBody?: JsonSchema;
    responses?: Record<string, { description: string; mediaType: string; schema: JsonSchema }>;
  };
  /** descriptions of the success statuses */
  replies: Record<string, string>;
}

const TX_VALIDATION: readonly ApiErrorCode[] = [
  'MALFORMED_JSON',
  'INVALID_FIELD',
  'UNKNOWN_FIELD',
  'MISSING_FIELD',
  'UNKNOWN_KIND',
  'UNSUPPORTED_VERSION',
  'BAD_HEX',
  'WRONG_CHAIN',
  'BAD_SIGNATURE',
  'TOO_LARGE',
];

/** Errors every route can answer with. */
export const COMMON_ERRORS: readonly ApiErrorCode[] = ['INTERNAL'];

/** Fastify schema for error replies, shared by every route. */
export const ERROR_REPLIES: Record<string, JsonSchema> = { '4xx': ErrorResponse, '5xx': ErrorResponse };

export const ROUTES = {
  submitTransaction: {
    method: 'POST',
    url: '/v1/transactions',
    operationId: 'submitTransaction',
    tag: 'transactions',
    summary: 'Submit a signed transaction',
    description:
      'Validates the transaction, checks its signature and whether the ledger would accept it, and hands it to ' +
      'the leader. With wait=commit (default) the reply carries the receipt once the block is committed. ' +
      'Safe to retry: resubmitting a committed transaction returns its original receipt.',
    schema: {
      querystring: submitQuery,
      body: objectBody,
      response: { 200: SubmitCommitted, 202: SubmitAccepted },
    },
    errors: [
      ...TX_VALIDATION,
      'BAD_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      'REJECTED',
      'NOT_READY',
      'TIMEOUT',
    ],
    docs: { requestBody: SignedTransaction },
    replies: {
      200: 'committed: the receipt (its code may still be a failing one such as COMMISSION_EXISTS)',
      202: 'accepted into the mempool (wait=none)',
    },
  },
  getTransaction: {
    method: 'GET',
    url: '/v1/transactions/:id',
    operationId: 'getTransaction',
    tag: 'transactions',
    summary: 'A committed transaction with its receipt',
    schema: { params: txIdParams, response: { 200: TransactionView } },
    errors: ['BAD_REQUEST', 'NOT_FOUND', 'NOT_READY'],
    replies: { 200: 'the transaction, its receipt and the hash of its block' },
  },
  getBlock: {
    method: 'GET',
    url: '/v1/blocks/:height',
    operationId: 'getBlock',
    tag: 'chain',
    summary: 'One committed block',
    description:
      'Shares the 64 MiB budget of blocks not yet written to their clients with `GET /v1/blocks`: ' +
      'past it, 503 NOT_READY (retry later).',
    schema: { params: heightParams, response: { 200: BlockEnvelope } },
    errors: ['BAD_REQUEST', 'NOT_FOUND', 'NOT_READY'],
    replies: { 200: 'the block with its height and hash' },
  },
  listBlocks: {
    method: 'GET',
    url: '/v1/blocks',
    operationId: 'listBlocks',
    tag: 'chain',
    summary: 'Committed blocks in ascending height',
    description:
      'Page with `from=next` while `next <= head`. A page also ends once it holds about 8 MiB of blocks ' +
      '(a bigger block comes alone), so it may hold fewer than `limit` before the head: always go on from `next`. ' +
      'Pages (and single blocks) not yet written to their clients hold at most 64 MiB together: past that a page ends ' +
      'early, or is refused with 503 NOT_READY when not even its first block fits (retry later).',
    schema: { querystring: listBlocksQuery, response: { 200: BlockList } },
    errors: ['BAD_REQUEST', 'NOT_READY'],
    replies: { 200: 'up to `limit` blocks from `from`, fewer past about 8 MiB' },
  },
  getParticipant: {
    method: 'GET',
    url: '/v1/participants/:key',
    operationId: 'getParticipant',
    tag: 'state',
    summary: 'A registered participant (operator, merchant or affiliate)',
    schema: { params: keyParams, response: { 200: Participant } },
    errors: ['BAD_REQUEST', 'NOT_FOUND', 'NOT_READY'],
    replies: { 200: 'the participant' },
  },
  getAffiliateBalances: {
    method: 'GET',
    url: '/v1/affiliates/:key/balances',
    operationId: 'getAffiliateBalances',
    tag: 'state',
    summary: "An affiliate's balances per currency",
    schema: { params: keyParams, response: { 200: AffiliateBalances } },
    errors: ['BAD_REQUEST', 'NOT_FOUND', 'NOT_READY'],
    replies: { 200: 'pending, payable and paid amounts per currency, in minor units' },
  },
  getStatus: {
    method: 'GET',
    url: '/v1/status',
    operationId: 'getStatus',
    tag: 'operations',
    summary: 'Raft role, term, indexes, chain head, mempool and peers of this node',
    schema: { response: { 200: NodeStatus } },
    errors: [],
    replies: { 200: 'the node status' },
  },
  search: {
    method: 'GET',
    url: '/v1/search',
    operationId: 'search',
    tag: 'search',
    summary: 'Find commissions by text and meaning (hybrid search over the mirror)',
    description:
      "Searches this node's Postgres/pgvector mirror of the committed chain: an exact commission id or order " +
      'id first, then full-text and vector (embedding) matches fused by reciprocal rank. Filters apply to every ' +
      'list; unknown parameters are refused (400), so a misspelt filter never widens a search. The mirror ' +
      'follows the chain and may lag it (GET /v1/sync/status). 503 NOT_READY when the node runs without a ' +
      'mirror or its database is unreachable.',
    schema: { querystring: searchQuery, response: { 200: SearchResult } },
    errors: ['BAD_REQUEST', 'NOT_READY'],
    replies: { 200: 'at most k hits, best first (vectorUsed false: the embedder failed, text matches only)' },
  },
  getSyncStatus: {
    method: 'GET',
    url: '/v1/sync/status',
    operationId: 'getSyncStatus',
    tag: 'sync',
    summary: "The mirror's cursor, lag, state and embedding index",
    description:
      'Whatever the state (ok, degraded, stopped) the answer is 200: the client decides. 503 NOT_READY when ' +
      'the node runs without a mirror, like the other mirror routes.',
    schema: { response: { 200: SyncStatus } },
    errors: ['NOT_READY'],
    replies: { 200: 'the sink and embedding-index status' },
  },
  checkSync: {
    method: 'GET',
    url: '/v1/sync/check',
    operationId: 'checkSync',
    tag: 'sync',
    summary: "Compare the mirror with this node's chain",
    description:
      'Every mirrored block hash and its transaction rows, and, when the mirror is at the head, every state ' +
      'row. Reads the whole mirror: slow on a long chain. 200 whatever the outcome (`ok` false names the ' +
      'first difference); 503 NOT_READY when the node runs without a mirror, its database is unreachable, ' +
      'or another check is running on this node (one at a time).',
    schema: { response: { 200: CheckReport } },
    errors: ['NOT_READY'],
    replies: { 200: 'the report; ok is false when the mirror differs from the chain' },
  },
  streamEvents: {
    method: 'GET',
    url: '/v1/events',
    operationId: 'streamEvents',
    tag: 'events',
    summary: 'Committed blocks as Server-Sent Events',
    description:
      'Each committed block is one event: `id: <height>`, `event: block`, ' +
      '`data: {"height":…,"hash":…,"block":{…}}`. Resumable: send `Last-Event-ID: <height>` (or `?after=`) to ' +
      'receive every block after that height, then live ones. A comment line (`: heartbeat`) every 15 s keeps ' +
      'proxies from closing the stream. The replay of stored blocks goes at each client’s pace; a client that falls far behind the live blocks is disconnected and should resume. ' +
      'A node serves at most 256 streams at once; beyond that it answers 503 NOT_READY (retry later).',
    schema: { querystring: eventsQuery, headers: eventsHeaders, response: {} },
    errors: ['BAD_REQUEST', 'NOT_READY'],
    docs: {
      responses: {
        200: {
          description: 'an event stream of committed blocks',
          mediaType: 'text/event-stream',
          schema: { type: 'string', description: 'each event carries a BlockEnvelope as `data`' },
        },
      },
    },
    replies: {},
  },
  health: {
    method: 'GET',
    url: '/healthz',
    operationId: 'health',
    tag: 'operations',
    summary: 'Liveness: the process is up',
    schema: { response: { 200: Health, 503: Health } },
    errors: [],
    replies: { 200: 'alive', 503: 'not alive' },
  },
  ready: {
    method: 'GET',
    url: '/readyz',
    operationId: 'ready',
    tag: 'operations',
    summary:
      'Readiness: can serve writes (running, leader known, applied close to commit); the mirror is reported, not required',
    schema: { response: { 200: Readiness, 503: Readiness } },
    errors: [],
    replies: { 200: 'ready', 503: 'not ready; `checks` says which check failed' },
  },
  metrics: {
    method: 'GET',
    url: '/metrics',
    operationId: 'metrics',
    tag: 'operations',
    summary: 'Prometheus metrics (text exposition format)',
    schema: { response: {} },
    errors: ['NOT_FOUND'],
    docs: {
      responses: {
        200: {
          description: 'metrics in the Prometheus text format (404 NOT_FOUND when metrics are off)',
          mediaType: 'text/plain',
          schema: { type: 'string' },
        },
      },
    },
    replies: {},
  },
  admin: {
    method: 'POST',
    url: '/v1/admin',
    operationId: 'admin',
    tag: 'admin',
    summary: 'An operator-signed admin request (leadership transfer)',
    description: 'The node verifies the operator signature; anything else is refused with 403 UNAUTHORIZED.',
    schema: { body: objectBody, response: { 200: AdminResult } },
    errors: [
      ...TX_VALIDATION,
      'BAD_REQUEST',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      'UNAUTHORIZED',
      'NOT_READY',
      'NO_LEADER',
    ],
    docs: { requestBody: AdminRequest },
    replies: { 200: 'done' },
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteName = keyof typeof ROUTES;

/** The fastify `schema` option of a route: its own parts plus the shared error replies. */
export function fastifySchema(spec: RouteSpec): Record<string, unknown> {
  const { response, ...parts } = spec.schema;
  return { ...parts, response: { ...response, ...ERROR_REPLIES } };
}
