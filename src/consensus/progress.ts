import type { ConfState, NodeId } from '../storage/raft/types.js';
import type { ProgressState, ProgressStatus } from './types.js';

/** Last indexes of append messages in flight to one follower, oldest first (etcd tracker/inflights.go). */
export class Inflights {
  private readonly ends: number[] = [];
  constructor(readonly capacity: number) {}

  add(lastIndex: number): void {
    this.ends.push(lastIndex);
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.ends.length && (this.ends[n] ?? Infinity) <= index) n++;
    this.ends.splice(0, n);
  }

  freeFirstOne(): void {
    this.ends.shift();
  }

  full(): boolean {
    return this.ends.length >= this.capacity;
  }

  count(): number {
    return this.ends.length;
  }

  reset(): void {
    this.ends.length = 0;
  }
}

/**
 * The leader's view of one follower (etcd tracker/progress.go).
 * - probe: one append at a time until the follower's match is found;
 * - replicate: optimistic pipelining, up to `inflights.capacity` messages;
 * - snapshot: a snapshot is on its way; nothing else is sent.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  pendingSnapshot = 0;
  recentActive = false;
  /** Leader ticks since this peer last answered (check-quorum). */
  ticksSinceActive = 0;
  /** Probe: an append was sent and not answered yet. Replicate: the window is full. */
  msgAppFlowPaused = false;
  /** Snapshot state survived one full election timeout without an answer. */
  snapshotStale = false;
  /**
   * A refusal said the follower holds less than `match` (maybeDecrTo); one
   * more in a row, with no acknowledgement between, and it is believed.
   */
  lossSuspected = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.snapshotStale = false;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Book-keeping after sending an append with `entries` entries. */
  sentEntries(entries: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === 'probe') {
      this.msgAppFlowPaused = true;
    }
  }

  /** An append up to n was acknowledged. Returns whether match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    this.lossSuspected = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `matchHint` is the highest
   * index that may match. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    if (matchHint < this.match) {
      // The follower no longer holds entries it acknowledged (a healthy one always matches up
      // to `match`): its store was lost, or restored from an older copy. Probing on from
      // match + 1 would be refused for ever, each refusal answered at once (tens of thousands a
      // second). Start again from what it holds; the commit index never goes back, so a lower
      // match only delays what counts it. A refusal from before the acknowledgement, delivered
      // late or twice, says the same once: so the first one is only noted and the probe sent
      // again (a healthy follower acknowledges it, which clears the note), the second believed.
      if (!this.lossSuspected) {
        this.lossSuspected = true;
        this.msgAppFlowPaused = false;
        return true;
      }
      this.lossSuspected = false;
      this.match = Math.max(0, matchHint);
      this.next = this.match + 1;
      this.msgAppFlowPaused = false;
      return true;
    }
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
      case 'replicate':
        return this.msgAppFlowPaused;
      case 'snapshot':
        return true;
    }
  }

  status(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      paused: this.isPaused(),
      inflight: this.inflights.count(),
      pendingSnapshot: this.pendingSnapshot,
      recentActive: this.recentActive,
      isLearner: this.isLearner,
    };
  }
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Membership, per-peer progress and votes (etcd tracker/tracker.go, majority config only). */
export class ProgressTracker {
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  constructor(private readonly maxInflight: number) {}

  /** Switch to `cs`, keeping the progress of members that stay; new members start at `next`. */
  applyConfState(cs: ConfState, next: number): void {
    this.voters = [...cs.voters].sort(compareIds);
    this.learners = [...cs.learners].sort(compareIds);
    const members = new Set([...this.voters, ...this.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = this.learners.includes(id);
      const pr = this.progress.get(id);
      if (pr === undefined) {
        const fresh = new Progress(next, this.maxInflight, isLearner);
        // A new member is presumed active, so that it may be sent a snapshot.
        fresh.recentActive = true;
        this.progress.set(id, fresh);
      } else {
        pr.isLearner = isLearner;
      }
    }
  }

  /** Fresh progress for everyone (new term): next = lastIndex + 1, self matching lastIndex. */
  resetProgress(lastIndex: number, self: NodeId): void {
    for (const [id, pr] of this.progress) {
      const fresh = new Progress(lastIndex + 1, this.maxInflight, pr.isLearner);
      if (id === self) fresh.match = lastIndex;
      this.progress.set(id, fresh);
    }
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  /** Members in a deterministic order (voters then learners, each sorted). */
  ids(): NodeId[] {
    return [...this.voters, ...this.learners];
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  isSingleton(): boolean {
    return this.voters.length === 1;
  }

  /** The largest index replicated on a majority of voters. */
  committed(): number {
    if (this.voters.length === 0) return 0;
    const matches = this.voters.map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    return matches[this.quorum() - 1] ?? 0;
  }

  /** Did a majority of voters answer within the last `window` ticks? `self` always counts. */
  quorumActive(self: NodeId, window: number): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === self || (pr !== undefined && pr.ticksSinceActive < window)) active++;
    }
    return active >= this.quorum();
  }

  /** Is `acks` a majority of voters? */
  hasQuorum(acks: ReadonlySet<NodeId>): boolean {
    let n = 0;
    for (const id of this.voters) if (acks.has(id)) n++;
    return n >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Only voters' answers count: a learner's grant is ignored. */
  tallyVotes(): VoteResult {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    if (granted >= q) return 'won';
    if (this.voters.length - rejected < q) return 'lost';
    return 'pending';
  }
}

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
