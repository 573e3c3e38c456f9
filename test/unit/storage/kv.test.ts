import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { LevelStore, MemoryStore, prefixEnd, type KeyValueStore } from '../../../src/storage/index.js';
import { iterateStored, storedBytes } from '../../../src/storage/kv.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bitnexus-kv-'));
  dirs.push(dir);
  return dir;
}

async function open(): Promise<LevelStore> {
  return LevelStore.open(await tempDir());
}

async function keysOf(kv: KeyValueStore, prefix: string, opts: { gte?: string; lt?: string } = {}) {
  const keys: string[] = [];
  for await (const [k] of kv.iterate(prefix, opts)) keys.push(k);
  return keys;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

const pad = (n: number) => String(n).padStart(5, '0');

describe('LevelStore.iterate', () => {
  it('yields every entry under a prefix in key order, across read batches, and honours gte/lt', async () => {
    const kv = await open();
    const ops = [];
    for (let i = 0; i < 2500; i++)
      ops.push({ type: 'put' as const, key: `a/${pad(i)}`, value: Uint8Array.of(i % 256) });
    ops.push(
      { type: 'put' as const, key: 'b/0', value: Uint8Array.of(1) },
      { type: 'put' as const, key: 'a', value: Uint8Array.of(2) },
    );
    await kv.batch(ops, { sync: false });
    const all: string[] = [];
    for await (const [k, v] of kv.iterate('a/')) {
      expect(v[0]).toBe(Number(k.slice(2)) % 256);
      all.push(k);
    }
    expect(all).toEqual(Array.from({ length: 2500 }, (_, i) => `a/${pad(i)}`));
    const range: string[] = [];
    for await (const [k] of kv.iterate('a/', { gte: 'a/00998', lt: 'a/01003' })) range.push(k);
    expect(range).toEqual(['a/00998', 'a/00999', 'a/01000', 'a/01001', 'a/01002']);
    // a consumer that stops early leaves no iterator open: the store still closes
    for await (const [k] of kv.iterate('a/')) if (k === 'a/00005') break;
    await kv.close();
  });
});

describe('LevelStore.batch', () => {
  it('writes puts and deletes in order, later operations on a key winning, and the data survives a reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-kv-'));
    dirs.push(dir);
    const kv = await LevelStore.open(dir);
    await kv.batch([
      { type: 'put', key: 'k/1', value: Uint8Array.of(1) },
      { type: 'put', key: 'k/2', value: Uint8Array.of(2) },
      { type: 'put', key: 'k/3', value: Uint8Array.of(3) },
    ]);
    await kv.batch([
      { type: 'del', key: 'k/1' },
      { type: 'put', key: 'k/2', value: Uint8Array.of(20) },
      { type: 'del', key: 'k/3' },
      { type: 'put', key: 'k/3', value: Uint8Array.of(30) },
      { type: 'del', key: 'k/missing' },
    ]);
    await kv.close();
    const again = await LevelStore.open(dir);
    expect(await again.get('k/1')).toBeUndefined();
    const entries: [string, number][] = [];
    for await (const [k, v] of again.iterate('k/')) entries.push([k, v[0]!]);
    expect(entries).toEqual([
      ['k/2', 20],
      ['k/3', 30],
    ]);
    await again.close();
  });
});

describe('key order: UTF-8 bytes, as LevelDB', () => {
  // in UTF-8 byte order; JavaScript's string order puts the surrogate pairs (😀, U+10000) before
  // U+E000 and U+FFFF
  const keys = [
    '',
    'a',
    'b/',
    'b/1',
    'b/\u00e9',
    'b/\ud7ff',
    'b/\ue000',
    'b/\uffff',
    'b/\u{10000}',
    'b/\u{1F600}',
    'b/\u{10FFFF}',
    'b0',
    'c\u{10FFFF}',
    'c\u{10FFFF}\u{10FFFF}x',
    'd',
    '\u00ff',
    '\uffff',
    '\uffff/x',
    '\u{1F600}/junk',
    '\u{10FFFF}',
  ];

  it('prefixEnd bounds exactly the keys that start with the prefix', () => {
    expect(prefixEnd('b/')).toBe('b0');
    expect(prefixEnd('r/000000000001/')).toBe('r/0000000000010');
    expect(prefixEnd('a\uffff')).toBe('a\u{10000}');
    expect(prefixEnd('a\ud7ff')).toBe('a\ue000');
    expect(prefixEnd('a\u{1F600}')).toBe('a\u{1F601}');
    expect(prefixEnd('a\u{10FFFF}')).toBe('b');
    expect(prefixEnd('\u{10FFFF}\u{10FFFF}')).toBeUndefined();
    expect(prefixEnd('')).toBeUndefined();
    for (const prefix of [...keys, 'b', 'c', 'c\u{10FFFF}\u{10FFFF}', '\u{1F600}']) {
      const end = prefixEnd(prefix);
      for (const key of keys) {
        const inRange =
          Buffer.compare(utf8(key), utf8(prefix)) >= 0 &&
          (end === undefined || Buffer.compare(utf8(key), utf8(end)) < 0);
        expect(inRange, `${JSON.stringify(key)} in range of ${JSON.stringify(prefix)}`).toBe(
          key.startsWith(prefix),
        );
      }
    }
  });

  it('LevelStore and MemoryStore iterate in the same order, the prefix "" with no upper bound', async () => {
    const sorted = [...keys].sort((a, b) => Buffer.compare(utf8(a), utf8(b)));
    expect(sorted).toEqual(keys);
    const stored = keys.filter((k) => k !== ''); // LevelDB refuses an empty key
    for (const kv of [new MemoryStore(), await open()]) {
      await kv.batch(
        [...stored].reverse().map((key) => ({ type: 'put' as const, key, value: Uint8Array.of(1) })),
      );
      const name = kv.constructor.name;
      expect(await keysOf(kv, ''), name).toEqual(stored);
      expect(await keysOf(kv, 'b/'), name).toEqual(stored.filter((k) => k.startsWith('b/')));
      expect(await keysOf(kv, '', { gte: 'd' }), name).toEqual(stored.slice(stored.indexOf('d')));
      expect(await keysOf(kv, '\uffff'), name).toEqual(['\uffff', '\uffff/x']);
      await kv.close();
    }
  });

  it('iterateText gives a value as text only when the text stands for exactly its bytes', async () => {
    const values: Record<string, Uint8Array> = {
      'v/ascii': utf8('{"t":"nonce","tx":"ab"}'),
      'v/empty': new Uint8Array(0),
      'v/non-ascii': utf8('Grüße, 東京 🚲'),
      'v/bom-nul': utf8('\ufeff{"a":"\0"}'),
      'v/fffd': utf8('a\ufffdb'),
      'v/invalid': Uint8Array.of(0x61, 0xff, 0x62),
      'v/overlong': Uint8Array.of(0xc0, 0x80),
      'v/surrogate': Uint8Array.of(0xed, 0xa0, 0x80),
      'v/truncated': Uint8Array.of(0x61, 0xe2, 0x82),
      'v/binary': Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 200) % 256),
    };
    const ops = Object.entries(values).map(([key, value]) => ({ type: 'put' as const, key, value }));
    const level = await open();
    await level.batch(ops);
    const memory = new MemoryStore();
    await memory.batch(ops);
    const asText = new Set(['v/ascii', 'v/empty', 'v/non-ascii', 'v/bom-nul']);
    for (const kv of [level, memory]) {
      const seen: string[] = [];
      for await (const [k, v] of iterateStored(kv, 'v/')) {
        seen.push(k);
        expect(typeof v === 'string', k).toBe(kv === level && asText.has(k));
        expect(Buffer.from(storedBytes(v)).equals(values[k]!), k).toBe(true);
      }
      expect(seen).toEqual(Object.keys(values).sort());
    }
    await level.close();
  });

  it('LevelStore walks keys that are not UTF-8, written by other software', async () => {
    const dir = await tempDir();
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw.open();
    await raw.put(utf8('a'), Uint8Array.of(1));
    await raw.put(Uint8Array.of(0xff, 0x00), Uint8Array.of(2));
    await raw.close();
    const kv = await LevelStore.open(dir);
    expect(await keysOf(kv, '')).toEqual(['a', Buffer.from([0xff, 0x00]).toString('utf8')]);
    expect(await keysOf(kv, '', { gte: '\u{10FFFF}' })).toHaveLength(1);
    await kv.close();
  });
});

describe('LevelStore.iterate over a damaged table', () => {
  it('yields every entry that can be read, then fails', async () => {
    const dir = await tempDir();
    const kv = await LevelStore.open(dir);
    const n = 2500;
    const ops = [];
    for (let i = 0; i < n; i++)
      ops.push({ type: 'put' as const, key: `a/${pad(i)}`, value: utf8(`{"i":${i},"text":"value ${i}"}`) });
    await kv.batch(ops);
    await kv.close();
    // reopening replays the write-ahead log into a table (.ldb) of compressed blocks
    await (await LevelStore.open(dir)).close();
    const tables = (await readdir(dir)).filter((f) => f.endsWith('.ldb'));
    expect(tables).toHaveLength(1);
    const table = join(dir, tables[0]!);
    const bytes = await readFile(table);
    // one block of the table, in the middle of the entries and of a read batch
    const at = Math.floor(bytes.length * 0.55);
    for (let i = 0; i < 8; i++) bytes[at + i]! ^= 0xff;
    await writeFile(table, bytes);
    const damaged = await LevelStore.open(dir);
    const read: string[] = [];
    await expect(
      (async () => {
        for await (const [k] of damaged.iterate('a/')) read.push(k);
      })(),
    ).rejects.toThrow(/Corruption/);
    // LevelDB skipped the damaged block: the entries read are those before and after it
    expect(read[0]).toBe('a/00000');
    expect(read.at(-1)).toBe(`a/${pad(n - 1)}`);
    const lost = Array.from({ length: n }, (_, i) => `a/${pad(i)}`).filter((k) => !read.includes(k));
    expect(lost.length).toBeGreaterThan(0);
    expect(lost.length).toBeLessThan(n / 10);
    for (const k of lost) await expect(damaged.get(k)).rejects.toThrow(/Corruption/);
    await damaged.close();
  });
});
