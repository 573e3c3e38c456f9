// RaftStore contract, run against the level implementation and the in-memory
// one: both must behave the same.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  LevelRaftStore,
  MemoryRaftStore,
  RaftStoreError,
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  type Entry,
  type RaftStore,
  type Snapshot,
} from '../../../src/storage/raft/index.js';

const enc = new TextEncoder();

function ents(from: number, terms: number[]): Entry[] {
  return terms.map((term, i) => ({
    index: from + i,
    term,
    type: i % 3 === 2 ? ('confChange' as const) : ('normal' as const),
    data: enc.encode(`e${from + i}t${term}`),
  }));
}

function snap(index: number, term: number, data = 'snap'): Snapshot {
  return {
    meta: { index, term, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } },
    data: enc.encode(data),
  };
}

const indexes = (es: Entry[]): number[] => es.map((e) => e.index);

interface Harness {
  open(): Promise<RaftStore>;
  /** Reopen from "disk" (null when the implementation has no disk). */
  reopen: ((s: RaftStore) => Promise<RaftStore>) | null;
  cleanup(): Promise<void>;
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const implementations: [string, () => Harness][] = [
  [
    'LevelRaftStore',
    () => {
      let dir = '';
      return {
        async open() {
          dir = await mkdtemp(join(tmpdir(), 'bitnexus-raft-store-'));
          dirs.push(dir);
          return LevelRaftStore.open(dir);
        },
        async reopen(s) {
          await s.close();
          return LevelRaftStore.open(dir);
        },
        async cleanup() {},
      };
    },
  ],
  [
    'MemoryRaftStore',
    () => ({
      open: () => Promise.resolve(new MemoryRaftStore()),
      reopen: null,
      async cleanup() {},
    }),
  ],
];

describe.each(implementations)('%s', (_name, make) => {
  it('loads an empty state from a new store', async () => {
    const s = await make().open();
    expect(await s.load()).toEqual({
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: null,
      entries: [],
    });
    await s.close();
  });

  it('saves hard state and entries together and loads them back', async () => {
    const h = make();
    let s = await h.open();
    await s.save({ hardState: { term: 3, vote: 'node-b', commit: 2 }, entries: ents(1, [1, 2, 3]) });
    if (h.reopen !== null) s = await h.reopen(s);
    const st = await s.load();
    expect(st.hardState).toEqual({ term: 3, vote: 'node-b', commit: 2 });
    expect(st.entries).toEqual(ents(1, [1, 2, 3]));
    expect(st.snapshot).toBeNull();
    await s.close();
  });

  it('replaces a conflicting suffix from the first new index on', async () => {
    const h = make();
    let s = await h.open();
    await s.save({ entries: ents(1, [1, 1, 1, 1, 1]) });
    await s.save({ entries: ents(3, [2]) });
    if (h.reopen !== null) s = await h.reopen(s);
    const st = await s.load();
    expect(indexes(st.entries)).toEqual([1, 2, 3]);
    expect(st.entries.map((e) => e.term)).toEqual([1, 1, 2]);
    // Appending after the shortened log works and never resurrects old entries.
    await s.save({ entries: ents(4, [2, 2]) });
    expect((await s.load()).entries.map((e) => e.term)).toEqual([1, 1, 2, 2, 2]);
    await s.close();
  });

  it('refuses a gap after the last index and changes nothing', async () => {
    const s = await make().open();
    await s.save({ entries: ents(1, [1, 1]) });
    await expect(
      s.save({ hardState: { term: 9, vote: null, commit: 0 }, entries: ents(5, [1]) }),
    ).rejects.toSatisfy((e) => e instanceof RaftStoreError && e.code === 'gap');
    const st = await s.load();
    expect(st.hardState.term).toBe(0);
    expect(indexes(st.entries)).toEqual([1, 2]);
    await s.close();
  });

  it('a snapshot matching the log keeps the entries after it; compact drops those it covers', async () => {
    const h = make();
    let s = await h.open();
    await s.save({ entries: ents(1, [1, 1, 2, 2, 3]) });
    await s.save({ snapshot: snap(3, 2) });
    let st = await s.load();
    expect(st.snapshot?.meta.index).toBe(3);
    expect(indexes(st.entries)).toEqual([4, 5]);
    await s.compact(10); // clamped to the snapshot index
    if (h.reopen !== null) s = await h.reopen(s);
    st = await s.load();
    expect(st.snapshot).toEqual(snap(3, 2));
    expect(indexes(st.entries)).toEqual([4, 5]);
    await s.close();
  });

  it('a snapshot that does not match the log replaces it, with entries after it in the same write', async () => {
    const h = make();
    let s = await h.open();
    await s.save({ entries: ents(1, [1, 1, 1, 1, 1, 1]) });
    await s.save({
      snapshot: snap(4, 3),
      entries: ents(5, [3]),
      hardState: { term: 3, vote: null, commit: 4 },
    });
    if (h.reopen !== null) s = await h.reopen(s);
    const st = await s.load();
    expect(st.snapshot?.meta).toEqual(snap(4, 3).meta);
    expect(st.entries).toEqual(ents(5, [3]));
    expect(st.hardState.commit).toBe(4);
    // The old entry 6 must not come back when the log grows past it.
    await s.save({ entries: ents(6, [3, 3]) });
    expect((await s.load()).entries.map((e) => [e.index, e.term])).toEqual([
      [5, 3],
      [6, 3],
      [7, 3],
    ]);
    await s.close();
  });

  it('ignores a snapshot older than the stored one, and entries it covers', async () => {
    const s = await make().open();
    await s.save({ snapshot: snap(5, 2) });
    await s.save({ snapshot: snap(3, 1, 'old'), entries: ents(4, [2, 2, 2]) });
    const st = await s.load();
    expect(st.snapshot?.meta.index).toBe(5);
    expect(indexes(st.entries)).toEqual([6]);
    await s.close();
  });
});

describe('record encodings', () => {
  it('round-trip and reject corrupt bytes', () => {
    const e = ents(7, [4])[0] as Entry;
    expect(decodeEntry(7, encodeEntry(e))).toEqual(e);
    const hs = { term: 2 ** 40, vote: 'peer-ü', commit: 12 };
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs);
    expect(decodeHardState(encodeHardState({ term: 1, vote: null, commit: 0 }))).toEqual({
      term: 1,
      vote: null,
      commit: 0,
    });
    expect(decodeSnapshot(encodeSnapshot(snap(9, 3)))).toEqual(snap(9, 3));
    expect(() => decodeHardState(encodeHardState(hs).subarray(0, 10))).toThrow(/truncated/);
    const bad = encodeSnapshot(snap(9, 3));
    bad[0] = 7;
    expect(() => decodeSnapshot(bad)).toThrow(/version/);
  });

  it('level keys sort entries in index order across byte boundaries', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-raft-store-'));
    dirs.push(dir);
    const s = await LevelRaftStore.open(dir);
    const many = ents(
      1,
      Array.from({ length: 300 }, () => 1),
    );
    await s.save({ entries: many });
    expect(indexes((await s.load()).entries)).toEqual(indexes(many));
    await s.close();
  });
});
