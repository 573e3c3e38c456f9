import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/audit/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';

async function sample() {
  const kv = new MemoryStore();
  const tc = await buildSampleChain(kv);
  return { kv, tc };
}

/** A copy of the store with one byte of one value changed. */
function tampered(kv: MemoryStore, key: string, pos: number): MemoryStore {
  const copy = new MemoryStore();
  for (const [k, v] of kv.data) copy.data.set(k, Uint8Array.from(v));
  const v = copy.data.get(key)!;
  // change the byte to a different printable character so it stays "plausible"
  v[pos] = v[pos] === 0x31 ? 0x32 : 0x31;
  return copy;
}

describe('verify', () => {
  it('passes on an honest chain and reports what it checked', async () => {
    const { kv, tc } = await sample();
    const report = await verifyChain(kv, { threads: 0 });
    expect(report.failure).toBeUndefined();
    expect(report).toMatchObject({
      ok: true,
      height: tc.chain.height,
      blocks: tc.chain.height + 1,
      transactions: 14,
    });
  });

  it('fails, naming the place, when any single byte of any stored entry is altered', async () => {
    const { kv } = await sample();
    const keys = [...kv.data.keys()].sort();
    expect(keys.some((k) => k.startsWith('b/'))).toBe(true);
    let checked = 0;
    for (const key of keys) {
      const len = kv.data.get(key)!.length;
      for (const pos of new Set(
        [0, Math.floor(len / 3), Math.floor(len / 2), len - 2, len - 1].filter((p) => p >= 0),
      )) {
        const report = await verifyChain(tampered(kv, key, pos), { threads: 0 });
        const where = `${key} byte ${pos}`;
        expect(report.ok, where).toBe(false);
        const f = report.failure!;
        if (key.startsWith('b/')) {
          // a block names its height (the altered one, or the next, whose link breaks)
          expect(f.height, `${where}: ${f.message}`).toBeGreaterThanOrEqual(Number(key.slice(2)));
          expect(f.height, `${where}: ${f.message}`).toBeLessThanOrEqual(Number(key.slice(2)) + 1);
        } else if (key.startsWith('r/')) {
          expect([f.height, f.txIndex], `${where}: ${f.message}`).toEqual([
            Number(key.split('/')[1]),
            Number(key.split('/')[2]),
          ]);
        } else {
          expect(f.key ?? '', `${where}: ${f.message}`).not.toBe('');
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300);
  });

  it('names the transaction whose contents were altered after signing', async () => {
    const { kv } = await sample();
    const key = 'b/000000000003';
    const text = Buffer.from(kv.data.get(key)!).toString('utf8');
    const copy = new MemoryStore();
    for (const [k, v] of kv.data) copy.data.set(k, v);
    copy.data.set(key, Buffer.from(text.replace('"amount":"1000"', '"amount":"9000"')));
    const report = await verifyChain(copy, { threads: 0 });
    expect(report.failure).toMatchObject({ code: 'BAD_TX_SIGNATURE', height: 3, txIndex: 1 });
  });

  it('fails on a missing block, a missing entry and an extra entry', async () => {
    const { kv } = await sample();
    const withoutBlock = new MemoryStore();
    for (const [k, v] of kv.data) if (k !== 'b/000000000002') withoutBlock.data.set(k, v);
    expect((await verifyChain(withoutBlock, { threads: 0 })).failure?.code).toBe('MISSING_BLOCK');

    const withoutState = new MemoryStore();
    const stateKey = [...kv.data.keys()].find((k) => k.startsWith('s/c/'))!;
    for (const [k, v] of kv.data) if (k !== stateKey) withoutState.data.set(k, v);
    expect((await verifyChain(withoutState, { threads: 0 })).failure).toMatchObject({
      code: 'MISSING_ENTRY',
      key: stateKey,
    });

    const extra = new MemoryStore();
    for (const [k, v] of kv.data) extra.data.set(k, v);
    extra.data.set('s/p/' + 'ab'.repeat(32), Buffer.from('{}'));
    expect((await verifyChain(extra, { threads: 0 })).failure?.code).toBe('UNEXPECTED_ENTRY');
  });

  it('names a receipt that belongs to no transaction, a missing receipt, and keys outside every store', async () => {
    const { kv } = await sample();
    const copyWith = (change: (m: Map<string, Uint8Array>) => void) => {
      const copy = new MemoryStore();
      for (const [k, v] of kv.data) copy.data.set(k, v);
      change(copy.data);
      return copy;
    };
    const extraReceipt = 'r/000000000002/000099';
    expect(
      (
        await verifyChain(
          copyWith((m) => m.set(extraReceipt, Buffer.from('{}'))),
          { threads: 0 },
        )
      ).failure,
    ).toMatchObject({ code: 'UNEXPECTED_ENTRY', key: extraReceipt, height: 2, txIndex: 99 });
    const receipt = 'r/000000000003/000001';
    expect(
      (
        await verifyChain(
          copyWith((m) => m.delete(receipt)),
          { threads: 0 },
        )
      ).failure,
    ).toMatchObject({
      code: 'MISSING_ENTRY',
      key: receipt,
      height: 3,
      txIndex: 1,
    });
    for (const key of ['a/x', 'b/\uffff', 'c', 'r/\uffffz', 'zz/1']) {
      expect(
        (
          await verifyChain(
            copyWith((m) => m.set(key, Buffer.from('1'))),
            { threads: 0 },
          )
        ).failure,
        key,
      ).toMatchObject({ code: 'UNEXPECTED_ENTRY', key });
    }
    for (const prefix of ['t/', 'h/', 'm/']) {
      const key = [...kv.data.keys()].find((k) => k.startsWith(prefix))!;
      expect(
        (
          await verifyChain(
            copyWith((m) => m.delete(key)),
            { threads: 0 },
          )
        ).failure,
        key,
      ).toMatchObject({
        code: 'MISSING_ENTRY',
        key,
      });
    }
  });

  it('reports store problems in store order: a missing index entry before a wrong state record', async () => {
    const { kv } = await sample();
    const copy = new MemoryStore();
    for (const [k, v] of kv.data) copy.data.set(k, Uint8Array.from(v));
    const txKey = [...kv.data.keys()].find((k) => k.startsWith('t/'))!;
    const stateKey = [...kv.data.keys()].find((k) => k.startsWith('s/c/'))!;
    copy.data.delete(txKey);
    copy.data.set(
      stateKey,
      Buffer.from(Buffer.from(kv.data.get(stateKey)!).toString('utf8').replace('"t":', '"t" :')),
    );
    expect((await verifyChain(copy, { threads: 0 })).failure).toMatchObject({
      code: 'MISSING_ENTRY',
      key: txKey,
    });
    copy.data.set(txKey, kv.data.get(txKey)!);
    expect((await verifyChain(copy, { threads: 0 })).failure).toMatchObject({
      code: 'ENTRY_MISMATCH',
      key: stateKey,
    });
  });

  it('refuses an empty store', async () => {
    expect((await verifyChain(new MemoryStore(), { threads: 0 })).failure?.code).toBe('EMPTY_CHAIN');
  });
});
