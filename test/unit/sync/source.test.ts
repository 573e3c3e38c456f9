import { describe, expect, it } from 'vitest';
import { ChainStore, MemoryStore, type KeyValueStore } from '../../../src/storage/index.js';
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
