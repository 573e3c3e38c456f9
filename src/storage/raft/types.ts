// Plain data that Raft persists. It lives in storage/ (the lowest layer) so that
// both the stores here and consensus/ above can name it; nothing here knows how
// Raft uses it.

/** A cluster member's id. In production a libp2p peer id string. */
export type NodeId = string;

/** `confChange` entries carry an encoded ConfChange (see consensus/conf-change.ts). */
export type EntryType = 'normal' | 'confChange';

/**
 * One Raft log entry. The no-op a leader appends at the start of its term is a
 * `normal` entry with empty `data`.
 */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be on disk before any message that depends on it is sent. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

/** Cluster membership: voters count toward quorums, learners only receive the log. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  /** Index of the last entry the snapshot covers. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Membership as of `index`. */
  confState: ConfState;
}

/**
 * A snapshot of the applied state up to `meta.index`. In this product `data`
 * names a block height and hash; the follower fetches the blocks itself. Empty
 * `data` marks the bootstrap snapshot (index 1, nothing to restore).
 */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export const EMPTY_HARD_STATE: Readonly<HardState> = Object.freeze({ term: 0, vote: null, commit: 0 });
