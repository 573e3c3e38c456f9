import type { Entry, HardState, Snapshot } from './types.js';

/** Everything a Raft node persisted, as loaded at startup. */
export interface PersistedRaftState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** The log after the snapshot, contiguous, in index order. */
  entries: Entry[];
}

/** One durable write: a Ready's hardState + entries + snapshot. */
export interface RaftWrite {
  hardState?: HardState;
  entries?: readonly Entry[];
  snapshot?: Snapshot;
  /**
   * fsync before resolving (default true). Raft needs it whenever entries, a
   * snapshot, the term or the vote change; a write that only moves the
   * commit index may skip it (etcd's MustSync): a commit index lost in a
   * crash is learned again from the leader.
   */
  sync?: boolean;
}

/**
 * Durable Raft state for a driver. Semantics shared by every implementation:
 *
 * - `save` applies, in ONE atomic write that is on disk (fsync) when the
 *   promise resolves: first the snapshot, then the entries, then the hard state.
 *   - A snapshot not newer than the stored one is ignored. Otherwise it is
 *     stored; if the log holds the snapshot's last entry (same index and term),
 *     the entries after it stay (Log Matching: they extend it); if not, the
 *     whole log is replaced by the snapshot.
 *   - Entries starting at index i replace everything stored from i on (a
 *     conflicting suffix is dropped). Entries the snapshot covers are skipped.
 *     A gap after the last stored index is an error (RaftStoreError 'gap').
 * - `compact(index)` drops entries <= min(index, snapshot index) to reclaim
 *   space; `load` never returns entries the snapshot covers anyway.
 * - Calls must not overlap: await each one (implementations serialize them anyway).
 */
export interface RaftStore {
  load(): Promise<PersistedRaftState>;
  save(write: RaftWrite): Promise<void>;
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}

export type RaftStoreErrorCode = 'gap' | 'closed' | 'corrupt';

export class RaftStoreError extends Error {
  override readonly name = 'RaftStoreError';
  constructor(
    readonly code: RaftStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Runs async operations one after another. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
