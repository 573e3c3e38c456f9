import type { ConfState, Entry, HardState, Snapshot } from '../storage/raft/types.js';
import { RaftUsageError } from './errors.js';
import { entrySize } from './message-size.js';

/**
 * The log as the core reads it (etcd's raft.Storage): what the driver has
 * already persisted. The core never writes it; the driver appends Ready.entries
 * and installs Ready.snapshot here after persisting them durably.
 *
 * Indexes outside [firstIndex() - 1, lastIndex()] are never asked for; doing
 * so is a contract violation and throws.
 */
export interface LogStorage {
  /** Hard state and the membership of the latest snapshot, read once at construction. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most `maxBytes` in total (but at least one). lo >= firstIndex(), hi <= lastIndex() + 1. */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of entry i, for firstIndex() - 1 <= i <= lastIndex() (firstIndex() - 1 is the snapshot). */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (index 0 / term 0 with empty membership when there is none). */
  snapshot(): Snapshot;
}

const EMPTY_SNAPSHOT: Snapshot = {
  meta: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  data: new Uint8Array(0),
};

/**
 * In-memory LogStorage (etcd MemoryStorage). Element 0 of `ents` is a dummy
 * standing for the snapshot (its index and term), so entry i lives at
 * `ents[i - ents[0].index]`.
 */
export class MemoryStorage implements LogStorage {
  private hard: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot = EMPTY_SNAPSHOT;
  private ents: Entry[] = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }];

  /** Rebuild the view from what a durable store loaded at startup. */
  static fromPersisted(state: {
    hardState: HardState;
    snapshot: Snapshot | null;
    entries: Entry[];
  }): MemoryStorage {
    const s = new MemoryStorage();
    if (state.snapshot !== null) s.applySnapshot(state.snapshot);
    s.append(state.entries);
    s.setHardState(state.hardState);
    return s;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hard }, confState: cloneConfState(this.snap.meta.confState) };
  }

  setHardState(hs: HardState): void {
    this.hard = { ...hs };
  }

  private get offset(): number {
    return this.ents[0]?.index ?? 0;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  term(i: number): number {
    const e = this.ents[i - this.offset];
    if (i < this.offset || e === undefined) {
      throw new RaftUsageError(
        'storageUnavailable',
        `term(${i}) outside [${this.offset}, ${this.lastIndex()}]`,
      );
    }
    return e.term;
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw new RaftUsageError(
        'storageUnavailable',
        `entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
      );
    }
    return limitSize(this.ents.slice(lo - this.offset, hi - this.offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Install a snapshot: one received from the leader (Ready.snapshot) or one
   * made locally by RaftNode.compact(). Entries up to its index are dropped.
   * Entries after it are kept only when the log holds the snapshot's last
   * entry (same index and term): by Log Matching they extend it. Otherwise the
   * whole log is replaced. An older snapshot than the current one is ignored.
   */
  applySnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.meta;
    if (index <= this.offset) return;
    const matches = index <= this.lastIndex() && this.ents[index - this.offset]?.term === term;
    const rest = matches ? this.ents.slice(index - this.offset + 1) : [];
    this.snap = snapshot;
    this.ents = [{ index, term, type: 'normal', data: new Uint8Array(0) }, ...rest];
  }

  /**
   * Append persisted entries. Entries already covered by the snapshot are
   * skipped; a conflicting suffix from the first new index on is replaced.
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const skip = Math.max(0, this.firstIndex() - first.index);
    const fresh = entries.slice(skip);
    const head = fresh[0];
    if (head === undefined) return;
    if (head.index > this.lastIndex() + 1) {
      throw new RaftUsageError(
        'storageUnavailable',
        `append at ${head.index} leaves a gap after last index ${this.lastIndex()}`,
      );
    }
    this.ents = [...this.ents.slice(0, head.index - this.offset), ...fresh];
  }
}

/** Keep a prefix of `ents` within `maxBytes`, always at least one entry. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0 || maxBytes === Infinity) return ents;
  let size = entrySize(ents[0] as Entry);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n] as Entry);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
