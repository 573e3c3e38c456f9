import type { Block, Receipt, SignedTx } from '../ledger/index.js';
import type { CheckReport, SearchRequest, SearchResult, SyncServiceStatus } from '../sync/index.js';

/**
 * What the HTTP API (and the libp2p submit protocol) needs from a running
 * node. src/node implements it; tests use a fake. Every method may throw an
 * ApiError (errors.ts) whose `code` maps to an HTTP status in one place.
 */
export interface LedgerNodeApi {
  readonly chainId: string;
  /** this node's public key (hex) */
  readonly nodeId: string;

  /**
   * Accept a signed transaction (untrusted JSON): validate, check the
   * signature, check it against current state (unknown signer, nonce reuse,
   * time window), put it in the mempool, propagate it. With `wait: true`
   * resolve once it is committed and applied here (the receipt); with
   * `wait: false` resolve as soon as it is accepted. Resubmitting a committed
   * transaction returns its original receipt at once (`status: 'committed'`).
   * Throws ApiError: validation codes (400), REJECTED (409, with the receipt
   * code that would be recorded), TIMEOUT (504, not committed within
   * timeoutMs — it may still commit later), NOT_READY (503).
   */
  submit(
    tx: unknown,
    opts: { wait: boolean; timeoutMs: number; signal?: AbortSignal },
  ): Promise<SubmitResult>;

  getTransaction(id: string): Promise<TransactionView | undefined>;
  getBlock(height: number): Promise<Block | undefined>;
  getParticipant(key: string): ParticipantView | undefined;
  getAffiliateBalances(key: string): BalanceView[] | undefined;
  status(): NodeStatus;

  /**
   * Committed blocks as they are applied, starting after height `after`
   * (already-committed blocks first, then live ones). Returns an unsubscribe
   * function. Used by GET /v1/events (SSE, resumable with Last-Event-ID = height).
   * `onBlock` is called in the apply path for live blocks and returns at once;
   * the promise it may return settles when the subscriber can take another
   * block. The replay of committed blocks should wait for it (a slow client
   * then holds back only its own replay); live delivery never waits.
   */
  subscribeBlocks(after: number, onBlock: (block: Block, hash: string) => void | Promise<void>): () => void;

  /** liveness: the process is up */
  health(): { ok: boolean };
  /** readiness: can serve writes (running, has a leader, applied close to commit; the mirror is reported, not required) — per-check detail */
  readiness(): { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> };

  /**
   * Operator-signed admin request (untrusted JSON): membership changes and
   * leadership transfer. Throws ApiError UNAUTHORIZED (403) when the signer is
   * not an operator or the signature fails.
   */
  admin(request: unknown): Promise<AdminResult>;

  /**
   * Hybrid search (full text + vector, reciprocal rank fusion) over this
   * node's Postgres/pgvector mirror of the committed chain (docs/SYNC.md).
   * Throws ApiError NOT_READY when the node runs without a mirror or the
   * mirror's database is unreachable.
   */
  search(request: SearchRequest): Promise<SearchResult>;

  /** The mirror's sink and embedding-index status; undefined when the node runs without a mirror. */
  syncStatus(): SyncServiceStatus | undefined;

  /**
   * Compare the mirror with this node's chain: every mirrored block hash and
   * per-block row counts. Throws ApiError NOT_READY without a mirror.
   */
  syncCheck(): Promise<CheckReport>;
}

export interface SubmitResult {
  id: string;
  /** accepted: in the mempool (wait=none); committed: applied with a receipt */
  status: 'accepted' | 'committed';
  receipt?: Receipt;
  blockHash?: string;
}

export interface TransactionView {
  id: string;
  tx: SignedTx;
  receipt: Receipt;
  blockHash: string;
}

export interface ParticipantView {
  key: string;
  role: 'operator' | 'merchant' | 'affiliate';
  name: string;
  since: number;
}

export interface BalanceView {
  currency: string;
  /** decimal strings, minor units */
  pending: string;
  payable: string;
  paid: string;
}

export interface PeerProgress {
  nodeId: string;
  role: 'voter' | 'learner';
  /** leader only: highest log index known replicated */
  match?: number;
  next?: number;
  state?: string;
  connected: boolean;
}

export interface NodeStatus {
  nodeId: string;
  chainId: string;
  role: 'leader' | 'follower' | 'candidate' | 'preCandidate' | 'learner';
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  height: number;
  headHash: string;
  mempool: number;
  /** Raft's configuration: `members` of the chain's ledger once Raft has followed it */
  members: PeerProgress[];
  /**
   * Leader only, and only while a membership change waits: why Raft's configuration does not
   * follow the ledger's membership yet (a learner not caught up and connected, voters that would
   * have no live majority), one reason per waiting change.
   */
  membershipWaiting?: string[];
}

export interface AdminResult {
  ok: true;
  action: string;
  detail?: string;
}
