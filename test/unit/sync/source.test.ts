import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ChainStore,
  chainKeys,
  LevelStore,
  MemoryStore,
  type KeyValueStore,
} from '../../../src/storage/index.js';
import { ChainStoreSource, readReceipts } from '../../../src/sync/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';

/** A store that counts its reads. */
function counting(inner: KeyValueStore): KeyValueStore & { reads: number } {
  const kv = {
    reads: 0,
    get: (key: string) => {
      kv.reads++;
      return inner.get(key);
    },
    iterate: (prefix: string, opts?: { gte?: string; lt?: string }) => {
      kv.reads++;
      return inner.iterate(prefix, opts);
    },
    batch: inner.batch.bind(inner),
    close: inner.close.bind(inner),
  };
  return kv;
}

describe('ChainStoreSource', () => {
  it('serves a block handed over with its commit from memory, once, then from the store', async () => {
    const mem = new MemoryStore();
    const tc = await buildSampleChain(mem);
    const kv = counting(mem);
    const store = new ChainStore(kv);
    const source = new ChainStoreSource(store, () => tc.chain.height);
    const h = tc.chain.height;
    const bytes = (await store.getBlock(h))!;
    const receipts = await readReceipts(store, h);
    expect(receipts.length).toBeGreaterThan(0);
    kv.reads = 0;

    const heard: number[] = [];
    source.onCommitted((height) => heard.push(height));
    source.committed(h, { bytes, receipts });
    expect(heard).toEqual([h]);
    expect(await source.getBlockBytes(h)).toBe(bytes);
    expect(await source.getReceipts(h)).toBe(receipts);
    expect(kv.reads).toBe(0);
    // used: a second reading (a retry) goes to the store, and finds the same
    expect(await source.getBlockBytes(h)).toEqual(bytes);
    expect(await source.getReceipts(h)).toEqual(receipts);
    expect(kv.reads).toBe(2);
    // a notice without the block: the store, as before
    source.committed(h - 1);
    expect(await source.getBlockBytes(h - 1)).toEqual(await store.getBlock(h - 1));
  });

  it('keeps at most 4096 blocks waiting and drops the oldest', async () => {
    const kv = counting(new MemoryStore());
    const source = new ChainStoreSource(new ChainStore(kv), () => 5000);
    for (let h = 1; h <= 4100; h++) source.committed(h, { bytes: Uint8Array.of(h % 256), receipts: [] });
    expect(await source.getBlockBytes(4)).toBeUndefined(); // dropped: the (empty) store answers
    expect(kv.reads).toBe(1);
    expect(await source.getBlockBytes(5)).toEqual(Uint8Array.of(5));
    expect(await source.getBlockBytes(4100)).toEqual(Uint8Array.of(4100 % 256));
    expect(kv.reads).toBe(1);
  });

  it('keeps at most 32 MiB of them waiting, dropping the oldest', async () => {
    const kv = counting(new MemoryStore());
    const source = new ChainStoreSource(new ChainStore(kv), () => 50);
    const mib = 1024 * 1024;
    for (let h = 1; h <= 40; h++) source.committed(h, { bytes: new Uint8Array(mib).fill(h), receipts: [] });
    expect(await source.getBlockBytes(8)).toBeUndefined(); // dropped: the (empty) store answers
    expect(kv.reads).toBe(1);
    expect((await source.getBlockBytes(9))?.[0]).toBe(9);
    expect((await source.getBlockBytes(40))?.[0]).toBe(40);
    expect(kv.reads).toBe(1);
  });
});

describe('readReceipts', () => {
  it('reads the same receipts from LevelDB (as text) as from memory (as bytes): byte-order mark, U+FFFD, bytes that are not UTF-8', async () => {
    const receipt = (tx: string) => `{"code":"OK","height":7,"index":0,"tx":"${tx}"}`;
    const values = [
      Buffer.from(receipt('plain')),
      Buffer.from(`\ufeff${receipt('after a byte-order mark')}`),
      Buffer.from(receipt('Grüße, 東京 🚲')),
      Buffer.from(receipt('a\ufffdb')),
      Buffer.concat([Buffer.from(receipt('x').slice(0, -3)), Buffer.of(0xff, 0xc0, 0x80), Buffer.from('"}')]),
    ];
    const ops = values.map((value, i) => ({ type: 'put' as const, key: chainKeys.receipt(7, i), value }));
    const memory = new MemoryStore();
    await memory.batch(ops);
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-receipts-'));
    const level = await LevelStore.open(dir);
    try {
      await level.batch(ops);
      const want = await readReceipts(new ChainStore(memory), 7);
      expect(want.map((r) => r.tx)).toEqual([
        'plain',
        'after a byte-order mark',
        'Grüße, 東京 🚲',
        'a\ufffdb',
        '\ufffd\ufffd\ufffd',
      ]);
      expect(await readReceipts(new ChainStore(level), 7)).toEqual(want);
    } finally {
      await level.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
