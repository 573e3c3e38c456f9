import type { AbstractBatchOperation, AbstractBatchOptions, AbstractLevel } from 'abstract-level';
import { Level } from 'level';
import {
  RaftRecordError,
  decodeEntry,
  decodeHardState,
  decodeLogMeta,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeLogMeta,
  encodeSnapshot,
} from './codec.js';
import {
  RaftStoreError,
  SerialQueue,
  type PersistedRaftState,
  type RaftStore,
  type RaftWrite,
} from './store.js';
import type { HardState, Snapshot } from './types.js';

/** A level database (or sublevel) with binary keys and values. */
export type BinaryLevel = AbstractLevel<string | Uint8Array | Buffer, Uint8Array, Uint8Array>;

// Key layout, all under the store's namespace prefix (default "raft/"):
//   <prefix> 'h'                  -> HardState
//   <prefix> 's'                  -> Snapshot (the latest one)
//   <prefix> 'm'                  -> LogMeta: the last valid log index
//   <prefix> 'e' <index u64 BE>   -> Entry (big-endian index: keys sort in log order)
// Value layouts are in codec.ts.
//
// Why LogMeta: replacing a log suffix or the whole log (snapshot restore) must
// be atomic, but deleting an unbounded key range inside one batch is not
// cheap. So the batch rewrites LogMeta's last index instead, and load() reads
// only entries in (snapshot index, last index]. Every key in that range was
// written after the truncation, because appends are contiguous. Keys outside
// it are garbage, deleted after the batch (best effort, harmless if a crash
// interrupts it).
const KIND_HARD = 0x68; // 'h'
const KIND_SNAPSHOT = 0x73; // 's'
const KIND_META = 0x6d; // 'm'
const KIND_ENTRY = 0x65; // 'e'

type SyncBatchOptions = AbstractBatchOptions<Uint8Array, Uint8Array> & { sync: boolean };
const SYNC: SyncBatchOptions = { sync: true };
const NO_SYNC: SyncBatchOptions = { sync: false };
type Op = AbstractBatchOperation<BinaryLevel, Uint8Array, Uint8Array>;

export class LevelRaftStore implements RaftStore {
  private readonly prefix: Uint8Array;
  private readonly queue = new SerialQueue();
  /** Cached after the first load()/save(): the stored snapshot index and last log index. */
  private cache: { snapIndex: number; lastIndex: number } | null = null;

  /**
   * @param db binary-keyed level database, shared with other stores
   * @param options.prefix namespace for this store's keys
   * @param options.ownsDb close the database on close()
   */
  constructor(
    private readonly db: BinaryLevel,
    private readonly options: { prefix?: string; ownsDb?: boolean } = {},
  ) {
    this.prefix = new TextEncoder().encode(options.prefix ?? 'raft/');
  }

  /** Open (creating if needed) a database of its own at `location`. */
  static async open(location: string): Promise<LevelRaftStore> {
    const db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    return new LevelRaftStore(db, { ownsDb: true });
  }

  private key(kind: number, index?: number): Uint8Array {
    const k = new Uint8Array(this.prefix.length + 1 + (index === undefined ? 0 : 8));
    k.set(this.prefix);
    k[this.prefix.length] = kind;
    if (index !== undefined) new DataView(k.buffer).setBigUint64(this.prefix.length + 1, BigInt(index));
    return k;
  }

  private get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.db.get<Uint8Array, Uint8Array>(key, { keyEncoding: 'view', valueEncoding: 'view' });
  }

  private async readSnapshot(): Promise<Snapshot | null> {
    const raw = await this.get(this.key(KIND_SNAPSHOT));
    return raw === undefined ? null : decodeSnapshot(raw);
  }

  private async positions(): Promise<{ snapIndex: number; lastIndex: number }> {
    if (this.cache !== null) return this.cache;
    const snap = await this.readSnapshot();
    const snapIndex = snap?.meta.index ?? 0;
    const meta = await this.get(this.key(KIND_META));
    const lastIndex = Math.max(meta === undefined ? 0 : decodeLogMeta(meta), snapIndex);
    this.cache = { snapIndex, lastIndex };
    return this.cache;
  }

  private async termAt(index: number, pos: { snapIndex: number; lastIndex: number }): Promise<number | null> {
    if (index <= pos.snapIndex || index > pos.lastIndex) return null;
    const raw = await this.get(this.key(KIND_ENTRY, index));
    return raw === undefined ? null : decodeEntry(index, raw).term;
  }

  private checkOpen(): void {
    if (this.db.status !== 'open') throw new RaftStoreError('closed', `database is ${this.db.status}`);
  }

  load(): Promise<PersistedRaftState> {
    return this.queue.run(async () => {
      this.checkOpen();
      try {
        const rawHard = await this.get(this.key(KIND_HARD));
        const hardState: HardState =
          rawHard === undefined ? { term: 0, vote: null, commit: 0 } : decodeHardState(rawHard);
        const snapshot = await this.readSnapshot();
        this.cache = null;
        const pos = await this.positions();
        const entries = [];
        let expected = pos.snapIndex + 1;
        for await (const [k, v] of this.db.iterator<Uint8Array, Uint8Array>({
          gt: this.key(KIND_ENTRY, pos.snapIndex),
          lte: this.key(KIND_ENTRY, pos.lastIndex),
          keyEncoding: 'view',
          valueEncoding: 'view',
        })) {
          const index = Number(
            new DataView(k.buffer, k.byteOffset, k.byteLength).getBigUint64(this.prefix.length + 1),
          );
          if (index !== expected) throw new RaftStoreError('corrupt', `log has a hole at ${expected}`);
          entries.push(decodeEntry(index, v));
          expected++;
        }
        if (expected !== pos.lastIndex + 1)
          throw new RaftStoreError('corrupt', `log ends at ${expected - 1}`);
        return { hardState, snapshot, entries };
      } catch (e) {
        if (e instanceof RaftRecordError) throw new RaftStoreError('corrupt', e.message);
        throw e;
      }
    });
  }

  save(write: RaftWrite): Promise<void> {
    return this.queue.run(async () => {
      this.checkOpen();
      const pos = await this.positions();
      let { snapIndex, lastIndex } = pos;
      const ops: Op[] = [];
      const garbage: [number, number][] = [];
      const s = write.snapshot;
      if (s !== undefined && s.meta.index > snapIndex) {
        const matches = (await this.termAt(s.meta.index, pos)) === s.meta.term;
        ops.push({ type: 'put', key: this.key(KIND_SNAPSHOT), value: encodeSnapshot(s) });
        if (!matches) {
          // The old log is not a prefix of the snapshot's: all of it goes.
          garbage.push([pos.snapIndex + 1, Math.min(pos.lastIndex, s.meta.index)]);
          lastIndex = s.meta.index;
        }
        snapIndex = s.meta.index;
        lastIndex = Math.max(lastIndex, snapIndex);
      }
      const fresh = (write.entries ?? []).filter((e) => e.index > snapIndex);
      const head = fresh[0];
      const tail = fresh[fresh.length - 1];
      if (head !== undefined && tail !== undefined) {
        if (head.index > lastIndex + 1) {
          throw new RaftStoreError('gap', `entry ${head.index} after last index ${lastIndex}`);
        }
        for (const e of fresh)
          ops.push({ type: 'put', key: this.key(KIND_ENTRY, e.index), value: encodeEntry(e) });
        lastIndex = tail.index;
      }
      // Keys above the new last index are stale (replaced suffix or old log).
      garbage.push([lastIndex + 1, pos.lastIndex]);
      if (lastIndex !== pos.lastIndex) {
        ops.push({ type: 'put', key: this.key(KIND_META), value: encodeLogMeta(lastIndex) });
      }
      if (write.hardState !== undefined) {
        ops.push({ type: 'put', key: this.key(KIND_HARD), value: encodeHardState(write.hardState) });
      }
      if (ops.length === 0) return;
      await this.db.batch<Uint8Array, Uint8Array>(ops, {
        ...(write.sync === false ? NO_SYNC : SYNC),
        keyEncoding: 'view',
        valueEncoding: 'view',
      });
      this.cache = { snapIndex, lastIndex };
      for (const [lo, hi] of garbage) if (lo <= hi) await this.clearEntries(lo, hi);
    });
  }

  /** Delete entry keys in [lo, hi]; not atomic, only ever used on keys load() ignores. */
  private async clearEntries(lo: number, hi: number): Promise<void> {
    await this.db.clear<Uint8Array>({
      gte: this.key(KIND_ENTRY, lo),
      lte: this.key(KIND_ENTRY, hi),
      keyEncoding: 'view',
    });
  }

  compact(index: number): Promise<void> {
    return this.queue.run(async () => {
      this.checkOpen();
      const { snapIndex } = await this.positions();
      const upTo = Math.min(index, snapIndex);
      if (upTo >= 1) await this.clearEntries(0, upTo);
    });
  }

  async close(): Promise<void> {
    await this.queue.run(() => Promise.resolve());
    if (this.options.ownsDb === true) await this.db.close();
  }
}
