import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LevelStore } from '../../../src/storage/index.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function open(): Promise<LevelStore> {
  const dir = await mkdtemp(join(tmpdir(), 'bitnexus-kv-'));
  dirs.push(dir);
  return LevelStore.open(dir);
}

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
