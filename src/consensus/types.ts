import type { ConfState, Entry, HardState, NodeId, Snapshot } from '../storage/raft/types.js';
import type { LogStorage } from './memory-storage.js';

/**
 * Every message the core sends or accepts. All are network messages; there are
 * no local pseudo-messages (ticks and proposals are method calls).
 *
 * - `app` / `appResp`: AppendEntries and its answer (`index` = last index on
 *   success; on reject `index` = the rejected prevLogIndex, `rejectHint` +
 *   `logTerm` = the follower's hint for fast backtracking).
 * - `vote` / `voteResp`, `preVote` / `preVoteResp`: RequestVote (real and pre-vote).
 * - `heartbeat` / `heartbeatResp`: leader liveness, commit propagation, and the
 *   ReadIndex confirmation round (`context`).
 * - `snap`: InstallSnapshot (answered with `appResp`).
 * - `readIndex` / `readIndexResp`: a follower's forwarded read and the answer.
 * - `timeoutNow`: leadership transfer: the receiver campaigns at once.
 * - `transferLeader`: a follower forwarding a transfer request to the leader.
 */
export type MessageType =
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap'
  | 'readIndex'
  | 'readIndexResp'
  | 'timeoutNow'
  | 'transferLeader';

export const MESSAGE_TYPES: readonly MessageType[] = Object.freeze([
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'readIndex',
  'readIndexResp',
  'timeoutNow',
  'transferLeader',
] as const);

/**
 * A plain, structuredClone-able message (no class instances). Fields that a
 * type does not use are 0 / false / empty. `term` 0 is only used by the local
 * `readIndex` / `transferLeader` forwards, which carry no term.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** app: term of `index` (prevLogTerm). vote: candidate's last log term. appResp reject: hint term. */
  logTerm: number;
  /** app: prevLogIndex. vote: candidate's last index. appResp: see MessageType. readIndexResp: read index. */
  index: number;
  entries: Entry[];
  /** Leader's commit index (app, heartbeat). */
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot?: Snapshot;
  /** ReadIndex request context, echoed by heartbeats and their answers. */
  context?: Uint8Array;
  /** vote / preVote sent because of a leadership transfer: the lease is ignored. */
  transfer?: boolean;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/** The answer to `readIndex(context)`: reads at `index` are linearizable once applied. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/** Membership change, one server at a time. */
export interface ConfChange {
  type: 'addLearner' | 'promoteLearner' | 'removeNode';
  nodeId: NodeId;
}

/**
 * What the driver must do, in this order (see README.md):
 * 1. persist `hardState`, `entries` and `snapshot` durably in one batch (fsync);
 * 2. install them in the LogStorage view (snapshot first, then entries);
 * 3. send `messages`;
 * 4. apply `committedEntries` in order (and `applyConfChange` for confChange
 *    entries), restore from `snapshot` if present; hand `readStates` to readers;
 * 5. call `advance()`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** The leader's view of one peer (etcd tracker.Progress). */
export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  /** True when the leader will not send more appends until it hears back. */
  paused: boolean;
  /** Number of append messages in flight (replicate state). */
  inflight: number;
  /** Snapshot index being sent (snapshot state), else 0. */
  pendingSnapshot: number;
  /** Heard from within the current check-quorum window. */
  recentActive: boolean;
  isLearner: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  role: Role;
  leader: NodeId | null;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  confState: ConfState;
  /** Target of a pending leadership transfer (leader only), else null. */
  leadTransferee: NodeId | null;
  /** Per-peer replication progress; present only on the leader (includes itself). */
  progress?: Record<NodeId, ProgressStatus>;
}

/** Deliberate bugs for the simulator's self-test. TEST-ONLY: never set them in production. */
export interface RaftFaults {
  /**
   * Let the leader advance its commit index by counting replicas of entries from
   * earlier terms (breaks Raft §5.4.2 / Figure 8).
   */
  commitPriorTermEntries?: boolean;
}

/** The subset of a pino logger the core uses. */
export interface RaftLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface RaftConfig {
  id: NodeId;
  /** The in-memory log view (usually MemoryStorage) that the driver appends to after persisting. */
  storage: LogStorage;
  /** Ticks without hearing from a leader before campaigning; randomized in [electionTick, 2*electionTick). Default 10. */
  electionTick?: number;
  /** Ticks between leader heartbeats. Default 1. */
  heartbeatTick?: number;
  /** Uniform in [0, 1), seeded by the caller: the only source of randomness. */
  random: () => number;
  /** Default true. */
  preVote?: boolean;
  /** Default true. */
  checkQuorum?: boolean;
  /** Max entries in one append message. Default 64. */
  maxMsgEntries?: number;
  /** Max entry bytes in one append message (at least one entry is always sent). Default 1 MiB. */
  maxMsgBytes?: number;
  /** Max append messages in flight per follower in replicate state. Default 256. */
  maxInflight?: number;
  /** Index already applied by the application (restart). Default: the storage snapshot index. */
  applied?: number;
  /**
   * Initial membership, used only when storage is empty. The node then starts
   * from a bootstrap snapshot at index 1, term 1 with this ConfState and empty
   * data; every founding member must pass the same ConfState.
   */
  bootstrap?: ConfState;
  /**
   * Refuse votes and pre-votes until a leader of the current term is heard
   * from (an append, heartbeat or snapshot). For a node whose store is empty
   * although it may have been a voter before (its disk was lost): it has no
   * record of the votes it gave, and could vote twice in one term. Default false.
   */
  abstainUntilLeader?: boolean;
  /** TEST-ONLY deliberate bugs; default off. */
  faults?: RaftFaults;
  logger?: RaftLogger;
}
