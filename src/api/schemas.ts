import { ADMIN_KINDS, RESULT_CODES, TX_KINDS } from '../ledger/index.js';
import { API_ERROR_CODES } from './errors.js';

/**
 * JSON schemas shared by the routes (validation and reply serialisation) and
 * the OpenAPI document (openapi.ts), so the two cannot drift apart. Each named
 * schema below becomes `#/components/schemas/<Name>` in docs/openapi.yaml.
 *
 * Objects that carry hashed ledger data (blocks, headers, transactions,
 * receipts) allow additional properties: reply serialisation must never drop
 * a field an auditor needs to recompute a hash.
 */
export type JsonSchema = Readonly<Record<string, unknown>>;

export const MAX_HEIGHT = Number.MAX_SAFE_INTEGER;

const hex32 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const hex64 = { type: 'string', pattern: '^[0-9a-f]{128}$' } as const;
const height = { type: 'integer', minimum: 0, maximum: MAX_HEIGHT } as const;
const decimal = { type: 'string', pattern: '^(0|[1-9][0-9]*)$', description: 'integer minor units, decimal' };

export const ErrorResponse: JsonSchema = {
  type: 'object',
  description: 'The one shape of every error response.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: API_ERROR_CODES, description: 'stable; see docs/ERRORS.md' },
        message: { type: 'string', description: 'for humans; may change' },
        field: {
          type: 'string',
          description: 'JSON path ($.payload.amount) or request part (querystring.limit)',
        },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
};

export const SignedTransaction: JsonSchema = {
  type: 'object',
  description: 'A signed transaction (docs/FORMAT.md §3). The node validates it field by field.',
  required: ['v', 'kind', 'chainId', 'signer', 'nonce', 'timestamp', 'payload', 'signature'],
  properties: {
    v: { type: 'integer', enum: [1] },
    kind: { type: 'string', enum: TX_KINDS },
    chainId: { type: 'string' },
    signer: hex32,
    nonce: { type: 'string', minLength: 1, maxLength: 64 },
    timestamp: { type: 'integer', description: 'Unix ms' },
    payload: { type: 'object', additionalProperties: true, description: 'per kind, docs/FORMAT.md §3' },
    signature: hex64,
  },
  additionalProperties: true,
};

export const Receipt: JsonSchema = {
  type: 'object',
  required: ['tx', 'height', 'index', 'code'],
  properties: {
    tx: hex32,
    height,
    index: { type: 'integer', minimum: 0 },
    code: { type: 'string', enum: RESULT_CODES },
    commission: { ...hex32, description: 'commission created (commission.record with OK)' },
    existing: { ...hex32, description: 'the earlier record this transaction collided with' },
  },
  additionalProperties: true,
};

export const BlockHeader: JsonSchema = {
  type: 'object',
  required: [
    'v',
    'chainId',
    'height',
    'prevHash',
    'txRoot',
    'txCount',
    'ledgerRoot',
    'ledgerSize',
    'timestamp',
    'term',
    'proposer',
  ],
  properties: {
    v: { type: 'integer' },
    chainId: { type: 'string' },
    height,
    prevHash: hex32,
    txRoot: hex32,
    txCount: { type: 'integer', minimum: 0 },
    ledgerRoot: hex32,
    ledgerSize: { type: 'integer', minimum: 0 },
    timestamp: { type: 'integer' },
    term: { type: 'integer', minimum: 0 },
    proposer: hex32,
    configHash: { ...hex32, description: 'genesis only' },
  },
  additionalProperties: true,
};

export const Block: JsonSchema = {
  type: 'object',
  description: 'A block as stored (docs/FORMAT.md §4). Block hash = SHA-256(canonical JSON of header).',
  required: ['header', 'signature', 'txs'],
  properties: {
    header: BlockHeader,
    signature: hex64,
    txs: { type: 'array', items: SignedTransaction },
    config: { type: 'object', additionalProperties: true, description: 'genesis config, genesis block only' },
  },
  additionalProperties: true,
};

export const BlockEnvelope: JsonSchema = {
  type: 'object',
  required: ['height', 'hash', 'block'],
  properties: { height, hash: hex32, block: Block },
};

export const BlockList: JsonSchema = {
  type: 'object',
  required: ['blocks', 'next', 'head'],
  properties: {
    blocks: { type: 'array', items: BlockEnvelope },
    next: { ...height, description: 'the `from` of the next page' },
    head: { ...height, description: "this node's current height" },
  },
};

export const TransactionView: JsonSchema = {
  type: 'object',
  required: ['id', 'tx', 'receipt', 'blockHash'],
  properties: { id: hex32, tx: SignedTransaction, receipt: Receipt, blockHash: hex32 },
};

export const SubmitCommitted: JsonSchema = {
  type: 'object',
  required: ['id', 'status', 'receipt', 'blockHash'],
  properties: {
    id: hex32,
    status: { type: 'string', enum: ['committed'] },
    receipt: Receipt,
    blockHash: hex32,
  },
};

export const SubmitAccepted: JsonSchema = {
  type: 'object',
  required: ['id', 'status'],
  properties: { id: hex32, status: { type: 'string', enum: ['accepted'] } },
};

export const Participant: JsonSchema = {
  type: 'object',
  required: ['key', 'role', 'name', 'since'],
  properties: {
    key: hex32,
    role: { type: 'string', enum: ['operator', 'merchant', 'affiliate'] },
    name: { type: 'string' },
    since: { ...height, description: 'height of registration (0 for genesis operators)' },
  },
};

export const Balance: JsonSchema = {
  type: 'object',
  required: ['currency', 'pending', 'payable', 'paid'],
  properties: {
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    pending: decimal,
    payable: decimal,
    paid: decimal,
  },
};

export const AffiliateBalances: JsonSchema = {
  type: 'object',
  required: ['affiliate', 'balances'],
  properties: { affiliate: hex32, balances: { type: 'array', items: Balance } },
};

export const PeerProgress: JsonSchema = {
  type: 'object',
  required: ['nodeId', 'role', 'connected'],
  properties: {
    nodeId: hex32,
    role: { type: 'string', enum: ['voter', 'learner'] },
    match: { type: 'integer', minimum: 0, description: 'leader only' },
    next: { type: 'integer', minimum: 0, description: 'leader only' },
    state: { type: 'string', description: 'leader only: probe, replicate or snapshot' },
    connected: { type: 'boolean' },
  },
};

export const NodeStatus: JsonSchema = {
  type: 'object',
  required: [
    'nodeId',
    'chainId',
    'role',
    'term',
    'leader',
    'commitIndex',
    'appliedIndex',
    'height',
    'headHash',
    'mempool',
    'members',
  ],
  properties: {
    nodeId: hex32,
    chainId: { type: 'string' },
    role: { type: 'string', enum: ['leader', 'follower', 'candidate', 'preCandidate', 'learner'] },
    term: { type: 'integer', minimum: 0 },
    leader: { type: ['string', 'null'], description: 'node id of the known leader' },
    commitIndex: { type: 'integer', minimum: 0 },
    appliedIndex: { type: 'integer', minimum: 0 },
    height,
    headHash: hex32,
    mempool: { type: 'integer', minimum: 0 },
    members: { type: 'array', items: PeerProgress },
  },
};

export const Health: JsonSchema = {
  type: 'object',
  required: ['ok'],
  properties: { ok: { type: 'boolean' } },
};

export const Readiness: JsonSchema = {
  type: 'object',
  required: ['ready', 'checks'],
  properties: {
    ready: { type: 'boolean' },
    checks: {
      type: 'object',
      description: 'one entry per check (leader, caught-up, sinks, ...)',
      additionalProperties: {
        type: 'object',
        required: ['ok'],
        properties: { ok: { type: 'boolean' }, detail: { type: 'string' } },
      },
    },
  },
};

export const AdminRequest: JsonSchema = {
  type: 'object',
  description:
    'An operator-signed admin request (docs/FORMAT.md §Admin requests): Ed25519 under the `admin` domain, ' +
    "within a short window of the node's clock. The node checks the signer and the signature.",
  required: ['v', 'kind', 'chainId', 'signer', 'nonce', 'timestamp', 'payload', 'signature'],
  properties: {
    v: { type: 'integer', enum: [1] },
    kind: { type: 'string', enum: ADMIN_KINDS },
    chainId: { type: 'string' },
    signer: hex32,
    nonce: { type: 'string', minLength: 1, maxLength: 64 },
    timestamp: { type: 'integer', description: 'Unix ms' },
    payload: {
      type: 'object',
      additionalProperties: true,
      description: 'leader.transfer: `{ "to": <node id> }`',
    },
    signature: hex64,
  },
  additionalProperties: true,
};

export const AdminResult: JsonSchema = {
  type: 'object',
  required: ['ok', 'action'],
  properties: {
    ok: { type: 'boolean', enum: [true] },
    action: { type: 'string' },
    detail: { type: 'string' },
  },
};

/** Named schemas: `#/components/schemas/<key>` in the OpenAPI document. */
export const COMPONENTS: Readonly<Record<string, JsonSchema>> = {
  ErrorResponse,
  SignedTransaction,
  Receipt,
  BlockHeader,
  Block,
  BlockEnvelope,
  BlockList,
  TransactionView,
  SubmitCommitted,
  SubmitAccepted,
  Participant,
  Balance,
  AffiliateBalances,
  PeerProgress,
  NodeStatus,
  Health,
  Readiness,
  AdminRequest,
  AdminResult,
};

// Request parts.

export const txIdParams: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { ...hex32, description: 'transaction id: 64 lower-case hex' } },
  additionalProperties: false,
};

export const keyParams: JsonSchema = {
  type: 'object',
  required: ['key'],
  properties: { key: { ...hex32, description: 'public key: 64 lower-case hex' } },
  additionalProperties: false,
};

export const heightParams: JsonSchema = {
  type: 'object',
  required: ['height'],
  properties: { height },
  additionalProperties: false,
};

export const SUBMIT_TIMEOUT = { default: 10_000, min: 1, max: 60_000 } as const;

export const submitQuery: JsonSchema = {
  type: 'object',
  properties: {
    wait: {
      type: 'string',
      enum: ['commit', 'none'],
      default: 'commit',
      description: 'commit: answer with the receipt once committed; none: answer once accepted (202)',
    },
    timeoutMs: {
      type: 'integer',
      minimum: SUBMIT_TIMEOUT.min,
      maximum: SUBMIT_TIMEOUT.max,
      default: SUBMIT_TIMEOUT.default,
      description: 'with wait=commit: how long to wait for the receipt before 504 TIMEOUT',
    },
  },
  additionalProperties: false,
};

export const LIST_LIMIT = { default: 20, max: 100 } as const;

export const listBlocksQuery: JsonSchema = {
  type: 'object',
  properties: {
    from: { ...height, default: 0, description: 'first height (inclusive)' },
    limit: { type: 'integer', minimum: 1, maximum: LIST_LIMIT.max, default: LIST_LIMIT.default },
  },
  additionalProperties: false,
};

export const eventsQuery: JsonSchema = {
  type: 'object',
  properties: {
    after: {
      type: 'integer',
      minimum: -1,
      maximum: MAX_HEIGHT,
      description:
        'send every block above this height, then live ones (-1: from genesis). Default: live only',
    },
  },
  additionalProperties: false,
};

export const eventsHeaders: JsonSchema = {
  type: 'object',
  properties: {
    'last-event-id': {
      type: 'string',
      pattern: '^(0|[1-9][0-9]{0,15})$',
      description: 'height of the last block received; overrides `after` (EventSource sends it on reconnect)',
    },
  },
};

/** Outer shape only: the ledger's parser gives field-precise error codes. */
export const objectBody: JsonSchema = { type: 'object' };
