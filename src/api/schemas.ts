import {
  ADMIN_KINDS,
  BLOCK_HEADER_FIELDS,
  LIMITS,
  RESULT_CODES,
  TX_KINDS,
  type CommissionStatus,
} from '../ledger/index.js';
import { API_ERROR_CODES } from './errors.js';
import { hinted } from './patterns.js';

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

const hex32 = { type: 'string', pattern: hinted('^[0-9a-f]{64}$', '64 lower-case hex digits') } as const;
const hex64 = { type: 'string', pattern: hinted('^[0-9a-f]{128}$', '128 lower-case hex digits') } as const;
const height = { type: 'integer', minimum: 0, maximum: MAX_HEIGHT } as const;
const decimal = {
  type: 'string',
  pattern: hinted('^(0|[1-9][0-9]*)$', 'a whole number in decimal digits, without leading zeros'),
  description: 'integer minor units, decimal',
};
const currencyCode = hinted('^[A-Z]{3}$', 'three upper-case letters (an ISO 4217 code such as EUR)');

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

/** The ledger's header fields (ledger/block.ts); a test checks `properties` names exactly those. */
export const BlockHeader: JsonSchema = {
  type: 'object',
  required: [...BLOCK_HEADER_FIELDS],
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
    next: {
      ...height,
      description: 'the `from` of the next page (a page may end before `limit`: go on from here)',
    },
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
    currency: { type: 'string', pattern: currencyCode },
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
    members: { type: 'array', items: PeerProgress, description: "Raft's configuration" },
    membershipWaiting: {
      type: 'array',
      items: { type: 'string' },
      minItems: 1,
      description:
        "leader only, while a membership change waits: why Raft's configuration does not follow the ledger's membership yet, one reason per change",
    },
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

// Search and the mirror (src/sync, docs/SYNC.md).

/** Every commission status, exhaustively (the ledger only exports the type). */
const STATUS_SET: Record<CommissionStatus, true> = {
  pending: true,
  approved: true,
  voided: true,
  reversed: true,
};
export const COMMISSION_STATUSES = Object.keys(STATUS_SET) as CommissionStatus[];
const commissionStatus = { type: 'string', enum: COMMISSION_STATUSES } as const;

export const SearchHit: JsonSchema = {
  type: 'object',
  description: 'A commission as mirrored (its state at `updatedHeight`), with how the search found it.',
  required: [
    'id',
    'score',
    'matchedBy',
    'merchant',
    'merchantName',
    'affiliate',
    'affiliateName',
    'currency',
    'amount',
    'approved',
    'reversed',
    'status',
    'orderId',
    'description',
    'metadata',
    'recordedHeight',
    'recordedAt',
    'updatedHeight',
  ],
  properties: {
    id: { ...hex32, description: 'commission id (the id of its commission.record transaction)' },
    score: {
      type: 'number',
      description:
        'reciprocal-rank-fusion score (+1 for an exact id or order-id match); 0 for an empty query',
    },
    matchedBy: {
      type: 'array',
      items: { type: 'string', enum: ['exact', 'text', 'vector'] },
      description: 'the ranked lists that found it (empty for an empty query)',
    },
    distance: {
      type: 'number',
      description: 'cosine distance to the query (always a number), when the vector list found it',
    },
    merchant: hex32,
    merchantName: { type: 'string' },
    affiliate: hex32,
    affiliateName: { type: 'string' },
    currency: { type: 'string', pattern: currencyCode },
    amount: decimal,
    approved: decimal,
    reversed: decimal,
    status: commissionStatus,
    orderId: { type: 'string' },
    description: { type: 'string' },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    recordedHeight: height,
    recordedAt: { type: 'integer', description: 'block time of the record, Unix ms' },
    updatedHeight: height,
  },
};

export const SearchResult: JsonSchema = {
  type: 'object',
  required: ['hits', 'vectorUsed'],
  properties: {
    hits: { type: 'array', items: SearchHit, description: 'best first, at most k' },
    vectorUsed: {
      type: 'boolean',
      description:
        'false when the embedder failed, the query was empty, or its embedding is the zero vector (only stop words or punctuation): only exact and full-text matches',
    },
    vectorError: { type: 'string', description: 'why the vector list did not answer a non-empty query' },
  },
};

const state = { type: 'string', enum: ['ok', 'degraded', 'stopped'] } as const;
const count = { type: 'integer', minimum: 0 } as const;
/** a chain position that is -1 before anything was written */
const position = { type: 'integer', minimum: -1, maximum: MAX_HEIGHT } as const;

export const EmbeddingIndexStatus: JsonSchema = {
  type: 'object',
  required: [
    'state',
    'embedder',
    'dimension',
    'throughHeight',
    'throughIndex',
    'textThroughHeight',
    'textThroughIndex',
    'embedded',
    'vectorIndex',
    'errors',
  ],
  properties: {
    state,
    embedder: { type: 'string', description: 'id of the current embedder' },
    dimension: count,
    throughHeight: { ...position, description: 'last commission (chain order) embedded: block height …' },
    throughIndex: { ...position, description: '… and transaction index' },
    textThroughHeight: { ...position, description: 'last commission in the full-text index: height …' },
    textThroughIndex: { ...position, description: '… and transaction index' },
    embedded: { ...count, description: 'embeddings written since start' },
    vectorIndex: {
      type: 'string',
      enum: ['vector', 'halfvec', 'none'],
      description:
        "element type of the HNSW index search uses (halfvec on Postgres, vector on PGlite); 'none' until one is built, meanwhile search scans exactly",
    },
    vectorIndexBuilding: {
      type: 'string',
      enum: ['vector', 'halfvec'],
      description:
        'the HNSW index being built in the background, if one is (after a backlog, or to replace the one in use)',
    },
    errors: { ...count, description: 'failed attempts since start' },
    lastError: { type: 'string' },
  },
};

export const MirrorMaintenanceStatus: JsonSchema = {
  type: 'object',
  description:
    "VACUUM and ANALYZE of the mirror's tables, which a node runs itself on PGlite (no autovacuum there) and on a real Postgres whose autovacuum is off; on PGlite also CHECKPOINT (no checkpointer there).",
  required: ['rounds', 'analyzed', 'vacuumed', 'checkpoints', 'failed'],
  properties: {
    rounds: { ...count, description: 'checks of the tables, since start (every 10 s)' },
    analyzed: { ...count, description: 'tables analyzed since start' },
    vacuumed: { ...count, description: 'tables vacuumed since start' },
    checkpoints: {
      ...count,
      description:
        'PGlite only: checkpoints since start (after 16 MiB of WAL, or 5 minutes with more than 8 KiB)',
    },
    failed: { ...count, description: 'rounds that failed since start' },
    lastError: { type: 'string', description: 'why the last round failed, until one succeeds' },
    serverAutovacuum: {
      type: 'boolean',
      description:
        "a real Postgres only: whether the server's autovacuum looked after the mirror at the last round (then the node did nothing)",
    },
  },
};

export const SyncStatus: JsonSchema = {
  type: 'object',
  description: "The mirror's sink (Postgres rows) and its embedding index.",
  required: [
    'state',
    'height',
    'hash',
    'lagBlocks',
    'lagSeconds',
    'rowsWritten',
    'errors',
    'index',
    'maintenance',
  ],
  properties: {
    state: {
      ...state,
      description:
        'ok; degraded: the database is away, retrying; stopped: a fatal disagreement, rows the database ' +
        'refuses (DATA_REJECTED), or the mirror thread exited (see lastError)',
    },
    height: { ...position, description: 'the last mirrored block (-1 before genesis)' },
    hash: { ...hex32, description: 'its hash (64 zeros before genesis)' },
    lagBlocks: {
      ...count,
      description: 'blocks this node has committed that the mirror has not reported written',
    },
    lagSeconds: {
      type: 'number',
      minimum: 0,
      description: 'how long ago this node committed the oldest block not yet mirrored',
    },
    lastError: { type: 'string' },
    rowsWritten: { ...count, description: 'rows inserted or updated since start' },
    errors: { ...count, description: 'failed attempts since start' },
    index: EmbeddingIndexStatus,
    maintenance: MirrorMaintenanceStatus,
  },
};

export const CheckDifference: JsonSchema = {
  type: 'object',
  description: 'The first difference found between the chain and the mirror.',
  required: ['height', 'what', 'expected', 'actual'],
  properties: {
    height: { ...position, description: 'block height, or -1 for a difference in the state tables' },
    what: { type: 'string', description: 'what differs (block hash, transaction 3, state row c/…)' },
    expected: { type: 'string', description: 'from the chain' },
    actual: { type: 'string', description: 'in the mirror' },
  },
};

export const CheckReport: JsonSchema = {
  type: 'object',
  description:
    "The mirror compared with this node's chain. A mirror that is only behind is `ok` (that is lag).",
  required: ['ok', 'chainHeight', 'mirrorHeight', 'blocksChecked', 'transactionsChecked', 'stateChecked'],
  properties: {
    ok: { type: 'boolean' },
    chainHeight: position,
    mirrorHeight: position,
    blocksChecked: count,
    transactionsChecked: count,
    stateChecked: {
      type: 'boolean',
      description:
        'whether state rows were compared: only when the mirror is at the chain head, and both stood still while they were read',
    },
    difference: CheckDifference,
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
  SearchHit,
  SearchResult,
  EmbeddingIndexStatus,
  MirrorMaintenanceStatus,
  SyncStatus,
  CheckDifference,
  CheckReport,
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
      pattern: hinted('^(0|[1-9][0-9]{0,15})$', 'a block height: a whole number'),
      description: 'height of the last block received; overrides `after` (EventSource sends it on reconnect)',
    },
  },
};

/** Outer shape only: the ledger's parser gives field-precise error codes. */
export const objectBody: JsonSchema = { type: 'object' };

export const SEARCH_K = { default: 10, min: 1, max: 100 } as const;
/** the longest query text the search accepts */
export const MAX_QUERY_LENGTH = 1000;

/** Unix ms, or an ISO 8601 date (UTC midnight) or date-time with a zone (`Z` or `±hh:mm`). */
export const UNIX_MS_RE = /^(0|[1-9][0-9]{0,15})$/;
export const ISO_DATE_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:?\d{2}))?$/;

const time = (description: string) => ({
  type: 'string',
  pattern: hinted(
    `${UNIX_MS_RE.source}|${ISO_DATE_RE.source}`,
    'Unix ms, or ISO 8601: a date (2024-05-01, UTC midnight) or a date and time with a zone (2024-05-01T12:00:00Z or …+02:00; a time of day without a zone is refused)',
  ),
  description: `${description}: Unix ms, or ISO 8601 (\`2024-05-01\` = UTC midnight, \`2024-05-01T12:00:00+02:00\`; a time of day needs a zone); from 0001-01-01 to 9999-12-31T23:59:59.999Z`,
});

const party = (role: string) => ({
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.name,
  description: `${role} public key (64 hex digits, either case) or registered name (case-insensitive)`,
});

const statusList = `(${COMMISSION_STATUSES.join('|')})`;

export const searchQuery: JsonSchema = {
  type: 'object',
  properties: {
    q: {
      type: 'string',
      maxLength: MAX_QUERY_LENGTH,
      default: '',
      description:
        'free text (web-search syntax: "quoted phrase", -word, or), a commission id or an order id; ' +
        'empty: the filtered commissions, newest first',
    },
    k: {
      type: 'integer',
      minimum: SEARCH_K.min,
      maximum: SEARCH_K.max,
      default: SEARCH_K.default,
      description: 'hits wanted',
    },
    merchant: party('merchant'),
    affiliate: party('affiliate'),
    status: {
      type: 'array',
      items: {
        type: 'string',
        pattern: hinted(
          `^${statusList}(,${statusList})*$`,
          `${COMMISSION_STATUSES.join(', ')}, or several of them separated by commas`,
        ),
      },
      description: `any of ${COMMISSION_STATUSES.join(', ')}; repeat the parameter or separate with commas`,
    },
    currency: { type: 'string', pattern: currencyCode, description: 'ISO 4217 code' },
    from: time('recorded at or after (block time)'),
    to: time('recorded before (block time)'),
    minAmount: { ...decimal, maxLength: 20, description: 'smallest amount, minor units, inclusive' },
    maxAmount: { ...decimal, maxLength: 20, description: 'largest amount, minor units, inclusive' },
  },
  additionalProperties: false,
};
