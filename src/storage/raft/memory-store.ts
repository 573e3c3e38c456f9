import {
  RaftStoreError,
  SerialQueue,
  type PersistedRaftState,
  type RaftStore,
  type RaftWrite,
} from './store.js';
import type { Entry, HardState, Snapshot } from './types.js';

/**
 * RaftStore in memory, with the same semantics as LevelRaftStore (see
 * store.ts). Values are copied in and out, as a disk would. For tests and the
 * simulator; nothing survives the process.
 */
export class MemoryRaftStore implements RaftStore {
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private snapshot: Snapshot | null = null;
  /** Contiguous entries; may start at or below the snapshot index until compacted. */
  private entries: Entry[] = [];
  private closed = false;
  private readonly queue = new SerialQueue();

  private snapIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  private lastIndex(): number {
    return this.entries[this.entries.length - 1]?.index ?? this.snapIndex();
  }

  private termAt(index: number): number | null {
    const first = this.entries[0];
    if (first === undefined) return null;
    return this.entries[index - first.index]?.term ?? null;
  }

  /** Open again after close(), as a restarted process reopens the same disk (tests). */
  reopen(): void {
    this.closed = false;
  }

  private check(): void {
    if (this.closed) throw new RaftStoreError('closed', 'store is closed');
  }

  load(): Promise<PersistedRaftState> {
    return this.queue.run(() => {
      this.check();
      const floor = this.snapIndex();
      return Promise.resolve({
        hardState: { ...this.hardState },
        snapshot: this.snapshot === null ? null : structuredClone(this.snapshot),
        entries: structuredClone(this.entries.filter((e) => e.index > floor)),
      });
    });
  }

  save(write: RaftWrite): Promise<void> {
    return this.queue.run(() => {
      this.check();
      // Stage on copies so that a failing write changes nothing (atomicity).
      let snapshot = this.snapshot;
      let entries = this.entries;
      const s = write.snapshot;
      if (s !== undefined && s.meta.index > (snapshot?.meta.index ?? 0)) {
        const matches = this.termAt(s.meta.index) === s.meta.term;
        snapshot = structuredClone(s);
        if (!matches) entries = [];
      }
      const floor = snapshot?.meta.index ?? 0;
      const fresh = (write.entries ?? []).filter((e) => e.index > floor);
      const head = fresh[0];
      if (head !== undefined) {
        const first = entries[0];
        const last = entries[entries.length - 1]?.index ?? floor;
        if (head.index > last + 1) {
          return Promise.reject(new RaftStoreError('gap', `entry ${head.index} after last index ${last}`));
        }
        const keep = first === undefined ? [] : entries.slice(0, Math.max(0, head.index - first.index));
        entries = [...keep, ...structuredClone(fresh)];
      }
      this.snapshot = snapshot;
      this.entries = entries;
      if (write.hardState !== undefined) this.hardState = { ...write.hardState };
      return Promise.resolve();
    });
  }

  compact(index: number): Promise<void> {
    return this.queue.run(() => {
      this.check();
      const upTo = Math.min(index, this.snapIndex());
      this.entries = this.entries.filter((e) => e.index > upTo);
      return Promise.resolve();
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
