import type { Entry, Snapshot } from '../storage/raft/types.js';
import { limitSize, type LogStorage } from './memory-storage.js';

/**
 * Entries and snapshot not yet persisted (etcd log_unstable.go). `entries[i]`
 * has index `offset + i`; a pending snapshot, if any, ends at `offset - 1`.
 */
class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  maybeFirstIndex(): number | null {
    return this.snapshot === null ? null : this.snapshot.meta.index + 1;
  }

  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? null : this.snapshot.meta.index;
  }

  maybeTerm(i: number): number | null {
    if (i < this.offset) {
      return this.snapshot !== null && this.snapshot.meta.index === i ? this.snapshot.meta.term : null;
    }
    const last = this.maybeLastIndex();
    if (last === null || i > last) return null;
    return this.entries[i - this.offset]?.term ?? null;
  }

  /** Entries up to (i, t) reached disk; a mismatching term means they were replaced meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === null || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.meta.index === i) this.snapshot = null;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      this.entries = [...this.entries, ...ents];
    } else if (after <= this.offset) {
      // Replaces everything unstable, and maybe part of what is stable.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = [...this.entries.slice(0, after - this.offset), ...ents];
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The log as the core sees it: stable storage plus unstable tail (etcd log.go). */
export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  /** Highest index the application has applied (acknowledged by advance()). */
  applied: number;
  /** Highest index handed out in committedEntries (applied or being applied). */
  applying: number;

  constructor(readonly storage: LogStorage) {
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i, or null when it is compacted or beyond the end. */
  term(i: number): number | null {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return null;
    const t = this.unstable.maybeTerm(i);
    if (t !== null) return t;
    if (i < this.storage.firstIndex() - 1 || i > this.storage.lastIndex()) return null;
    return this.storage.term(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Raft §5.4.1: is a log ending at (lasti, term) at least as up-to-date as ours? */
  isUpToDate(lasti: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && lasti >= this.lastIndex());
  }

  /**
   * Follower side of AppendEntries. Returns the last index of the new entries
   * on success, null when (index, logTerm) does not match our log, or
   * 'conflictBelowCommit' for a (malformed) message that would rewrite
   * committed entries.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: readonly Entry[],
  ): number | null | 'conflictBelowCommit' {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) return 'conflictBelowCommit';
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length > 0) this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** First entry of `ents` that is not already in the log with the same term, or 0. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term: the
   * fast-backtracking hint (etcd findConflictByTerm). Unknown terms (compacted)
   * are reported as term 0.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const ours = this.term(index);
      if (ours === null) return [index, 0];
      if (ours <= term) return [index, ours];
    }
    return [0, 0];
  }

  commitTo(toCommit: number): void {
    if (toCommit > this.committed && toCommit <= this.lastIndex()) this.committed = toCommit;
  }

  /** Commit up to maxIndex if that entry is from `term` (Raft §5.4.2). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i <= this.applied || i > this.committed) return;
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  unstableEntries(): Entry[] {
    return [...this.unstable.entries];
  }

  hasNextCommittedEntries(): boolean {
    if (this.hasPendingSnapshot()) return false;
    return this.committed > Math.max(this.applying, this.firstIndex() - 1);
  }

  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1) ?? [];
  }

  /**
   * Entries in [lo, hi), at most maxEntries and maxBytes (but at least one).
   * Null when lo is compacted.
   */
  slice(lo: number, hi: number, maxBytes = Infinity, maxEntries = Infinity): Entry[] | null {
    if (lo < this.firstIndex()) return null;
    hi = Math.min(hi, this.lastIndex() + 1, lo + maxEntries);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      if (stored.length < Math.min(hi, off) - lo) return stored;
      out = stored;
    }
    if (hi > off) out = [...out, ...this.unstable.slice(Math.max(lo, off), hi)];
    return limitSize(out, maxBytes);
  }
}
