import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/audit/index.js';
import { ChainStore, LevelStore, MemoryStore } from '../../../src/storage/index.js';
import { decodeBlock, parseBlock } from '../../../src/ledger/index.js';
import { CHAIN_ID } from '../../support/ledger-fixture.js';
import { buildSampleChain } from '../../support/sample-chain.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bitnexus-verify-'));
  dirs.push(dir);
  return dir;
}

async function sample() {
  const kv = new MemoryStore();
  const tc = await buildSampleChain(kv);
  return { kv, tc };
}

/** A copy of the store, changed by `change`. */
function copyWith(kv: MemoryStore, change: (m: Map<string, Uint8Array>) => void): MemoryStore {
  const copy = new MemoryStore();
  for (const [k, v] of kv.data) copy.data.set(k, Uint8Array.from(v));
  change(copy.data);
  return copy;
}

/** Move the value stored at `from` to `to`. */
const rename = (from: string, to: string) => (m: Map<string, Uint8Array>) => {
  m.set(to, m.get(from)!);
  m.delete(from);
};

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

  it('names the chain it checked, and refuses another genesis than the one pinned', async () => {
    const { kv, tc } = await sample();
    const hashAt = async (h: number) =>
      decodeBlock(
        parseBlock(JSON.parse(Buffer.from((await new ChainStore(kv).getBlock(h))!).toString('utf8'))),
      ).hash;
    const report = await verifyChain(kv, { threads: 0 });
    expect(report).toMatchObject({
      ok: true,
      chainId: CHAIN_ID,
      genesisHash: await hashAt(0),
      headHash: await hashAt(tc.chain.height),
    });
    expect(await verifyChain(kv, { threads: 0, genesisHash: report.genesisHash! })).toMatchObject({
      ok: true,
    });
    const other = await verifyChain(kv, { threads: 0, genesisHash: 'ab'.repeat(32) });
    expect(other).toMatchObject({ ok: false, failure: { code: 'GENESIS_MISMATCH', height: 0 } });
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

  it('refuses a block stored under a key a node cannot read, naming the key', async () => {
    const { kv, tc } = await sample();
    const top = tc.chain.height;
    const head = `b/${String(top).padStart(12, '0')}`;
    // [change, the height reported missing, the key named]
    const cases: [(m: Map<string, Uint8Array>) => void, number, string][] = [
      [rename('b/000000000002', 'b/000000000002.0'), 2, 'b/000000000002.0'],
      [rename('b/000000000002', 'b/ 00000000002'), 2, 'b/ 00000000002'],
      [rename(head, `b/${top}`), top, `b/${top}`],
      [rename('b/000000000000', 'b/'), 0, 'b/'],
    ];
    for (const [change, height, key] of cases) {
      const copy = copyWith(kv, change);
      // what a node reads: the block is gone
      expect(await new ChainStore(copy).getBlock(height), key).toBeUndefined();
      const f = (await verifyChain(copy, { threads: 0 })).failure;
      expect(f, key).toMatchObject({ code: 'MISSING_BLOCK', height, key });
      expect(f?.message, key).toContain(JSON.stringify(key));
      expect(f?.message, key).not.toContain('NaN');
    }
    // the only block of a chain, renamed: a missing block, not an empty store
    const one = new MemoryStore();
    one.data.set('b/0', kv.data.get('b/000000000000')!);
    expect((await verifyChain(one, { threads: 0 })).failure).toMatchObject({
      code: 'MISSING_BLOCK',
      height: 0,
      key: 'b/0',
    });
    // a stray key beside a complete chain is an entry of no store
    for (const key of ['b/', 'b/x', `b/${String(top + 1).padStart(13, '0')}`]) {
      const f = (
        await verifyChain(
          copyWith(kv, (m) => m.set(key, Buffer.from('{}'))),
          { threads: 0 },
        )
      ).failure;
      expect(f, key).toMatchObject({ code: 'UNEXPECTED_ENTRY', key });
      expect(f?.message, key).toContain('not a block key');
    }
  });

  it('reports the head block deleted as a missing block, not its receipts as unexpected', async () => {
    const { kv, tc } = await sample();
    const top = tc.chain.height;
    const head = `b/${String(top).padStart(12, '0')}`;
    const f = (
      await verifyChain(
        copyWith(kv, (m) => m.delete(head)),
        { threads: 0 },
      )
    ).failure;
    expect(f).toMatchObject({ code: 'MISSING_BLOCK', height: top, key: head });
    expect(f?.message).toContain(`the stored head names height ${top}`);
    // the last two deleted: the first of them is missing
    const two = copyWith(kv, (m) => {
      m.delete(head);
      m.delete(`b/${String(top - 1).padStart(12, '0')}`);
    });
    expect((await verifyChain(two, { threads: 0 })).failure).toMatchObject({
      code: 'MISSING_BLOCK',
      height: top - 1,
    });
  });

  it('names the transaction in a failure of its index entry', async () => {
    const { kv } = await sample();
    const txKey = [...kv.data.keys()].find((k) => k.startsWith('t/'))!;
    const id = txKey.slice(2);
    const wrong = (
      await verifyChain(
        copyWith(kv, (m) => m.set(txKey, Buffer.from('0:0'))),
        { threads: 0 },
      )
    ).failure;
    expect(wrong).toMatchObject({ code: 'ENTRY_MISMATCH', key: txKey, txId: id });
    expect(wrong?.message).toContain(id);
    const missing = (
      await verifyChain(
        copyWith(kv, (m) => m.delete(txKey)),
        { threads: 0 },
      )
    ).failure;
    expect(missing).toMatchObject({ code: 'MISSING_ENTRY', key: txKey, txId: id });
    expect(missing?.message).toContain(id);
  });

  it('gives the same verdict from LevelDB (values read as text) as in memory, for any altered byte of the text stores', async () => {
    const { kv } = await sample();
    const level = await LevelStore.open(await tempDir());
    await level.batch([...kv.data].map(([key, value]) => ({ type: 'put' as const, key, value })));
    const without = ({ seconds: _s, ...rest }: { seconds: number }) => rest;
    try {
      expect((await verifyChain(level, { threads: 0 })).ok).toBe(true);
      let checked = 0;
      // receipts, state, transaction index, block-hash index: the stores read as text
      for (const key of [...kv.data.keys()].filter((k) => /^[rsth]\//.test(k)).sort()) {
        const value = kv.data.get(key)!;
        for (const pos of new Set([0, Math.floor(value.length / 2)])) {
          // a byte that is not UTF-8, an encoded U+FFFD in place of a byte, another ASCII character
          for (const bytes of [[0xff], [0xef, 0xbf, 0xbd], [value[pos] === 0x31 ? 0x32 : 0x31]]) {
            const changed = Buffer.concat([
              value.subarray(0, pos),
              Buffer.from(bytes),
              value.subarray(pos + 1),
            ]);
            const memory = copyWith(kv, (m) => m.set(key, changed));
            await level.batch([{ type: 'put', key, value: changed }]);
            const want = await verifyChain(memory, { threads: 0 });
            const got = await verifyChain(level, { threads: 0 });
            const where = `${key} byte ${pos} → ${Buffer.from(bytes).toString('hex')}`;
            expect(want.ok, where).toBe(false);
            expect(without(got), where).toEqual(without(want));
            checked++;
          }
        }
        await level.batch([{ type: 'put', key, value }]);
      }
      expect(checked).toBeGreaterThan(100);
      expect((await verifyChain(level, { threads: 0 })).ok).toBe(true);
    } finally {
      await level.close();
    }
  });

  it('finds keys at and above U+FFFF, in memory and in LevelDB, even bytes that are not UTF-8', async () => {
    const stray = ['\uffff', '\uffff/x', '\u{1F600}/junk', 'r/\u{1F600}', 's/\uffff'];
    const { kv } = await sample();
    for (const key of stray) {
      expect(
        (
          await verifyChain(
            copyWith(kv, (m) => m.set(key, Buffer.from('1'))),
            { threads: 0 },
          )
        ).failure,
        key,
      ).toMatchObject({ code: 'UNEXPECTED_ENTRY', key });
    }
    const dir = await tempDir();
    const level = await LevelStore.open(dir);
    await buildSampleChain(level);
    expect((await verifyChain(level, { threads: 0 })).ok).toBe(true);
    for (const key of stray) {
      await level.batch([{ type: 'put', key, value: Buffer.from('1') }]);
      expect((await verifyChain(level, { threads: 0 })).failure, key).toMatchObject({
        code: 'UNEXPECTED_ENTRY',
        key,
      });
      await level.batch([{ type: 'del', key }]);
    }
    await level.close();
    // bytes ff 00, no UTF-8 at all, written by other software: above every UTF-8 key
    const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw.open();
    await raw.put(Uint8Array.of(0xff, 0x00), Uint8Array.of(1));
    await raw.close();
    const again = await LevelStore.open(dir);
    try {
      expect((await verifyChain(again, { threads: 0 })).failure).toMatchObject({
        code: 'UNEXPECTED_ENTRY',
        key: Buffer.from([0xff, 0x00]).toString('utf8'),
      });
    } finally {
      await again.close();
    }
    // in a store read as text, a key and a value that are not UTF-8: an entry of no store, not a
    // read failure (its key, decoded, names nothing that can be read again)
    const raw2 = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw2.open();
    await raw2.del(Uint8Array.of(0xff, 0x00));
    await raw2.put(Uint8Array.of(0x73, 0x2f, 0xff), Uint8Array.of(0xff));
    await raw2.close();
    const third = await LevelStore.open(dir);
    try {
      expect((await verifyChain(third, { threads: 0 })).failure).toMatchObject({
        code: 'UNEXPECTED_ENTRY',
        key: 's/\ufffd',
      });
    } finally {
      await third.close();
    }
  });

  it('reports a store that fails a read as STORE_CORRUPT, naming the store and the last key read', async () => {
    const { kv } = await sample();
    /** The store, but a walk fails after `after`, as a failing disk would. */
    class Failing extends MemoryStore {
      constructor(private readonly after: string) {
        super();
        for (const [k, v] of kv.data) this.data.set(k, v);
      }
      override async *iterate(prefix: string, opts: { gte?: string; lt?: string } = {}) {
        for await (const e of super.iterate(prefix, opts)) {
          if (e[0] > this.after && e[0].slice(0, 2) === this.after.slice(0, 2))
            throw new Error('IO error: read failed');
          yield e;
        }
      }
    }
    const stateKey = [...kv.data.keys()].filter((k) => k.startsWith('s/')).sort()[2]!;
    const cases: [string, string, number | undefined][] = [
      ['b/000000000002', 'the block store (b/)', 2],
      ['r/000000000002/000000', 'the receipt store (r/)', 2],
      [stateKey, 'the state and transaction index stores (s/, t/)', undefined],
    ];
    for (const [after, store, height] of cases) {
      const f = (await verifyChain(new Failing(after), { threads: 0 })).failure;
      expect(f, after).toMatchObject({ code: 'STORE_CORRUPT', key: after });
      expect(f?.height, after).toBe(height);
      expect(f?.message, after).toBe(
        `${store} cannot be read (IO error: read failed); the last key read is ${JSON.stringify(after)}`,
      );
    }
  });

  it('reports a damaged LevelDB table as STORE_CORRUPT, naming the entry it cannot read', async () => {
    const dir = await tempDir();
    const kv = await LevelStore.open(dir);
    await buildSampleChain(kv);
    await kv.close();
    // reopening replays the write-ahead log into a table (.ldb), whose blocks are compressed
    await (await LevelStore.open(dir)).close();
    const tables = (await readdir(dir)).filter((f) => f.endsWith('.ldb'));
    expect(tables).toHaveLength(1);
    const table = join(dir, tables[0]!);
    const original = await readFile(table);
    // Damage 8 bytes from an offset: the table's first data block holds the first keys (blocks
    // 0, 1, …), later ones the other stores. Offsets are tried from `from` until LevelDB opens the
    // store and fails a read, so the test does not depend on where a block boundary falls.
    const damaged = async (from: number) => {
      for (let at = from; at < original.length - 64; at += 97) {
        const bytes = Buffer.from(original);
        for (let i = 0; i < 8; i++) bytes[at + i]! ^= 0xff;
        await writeFile(table, bytes);
        let store: LevelStore;
        try {
          store = await LevelStore.open(dir, { createIfMissing: false });
        } catch {
          continue;
        }
        try {
          const report = await verifyChain(store, { threads: 0 });
          expect(report.ok, `offset ${at}`).toBe(false);
          const f = report.failure!;
          if (f.code !== 'STORE_CORRUPT') continue;
          // the entry named is stored, and this damaged store cannot read it
          expect(f.key, f.message).toBeDefined();
          const key = f.key!;
          await expect(store.get(key), f.message).rejects.toThrow(/Corruption/);
          return f;
        } finally {
          await store.close();
        }
      }
      throw new Error(`no damage from offset ${from} made a read fail`);
    };
    const first = await damaged(16);
    expect(first).toMatchObject({ height: 0, key: 'b/000000000000' });
    expect(first.message).toMatch(/^block 0 cannot be read \(Corruption: /);
    const later = await damaged(Math.floor(original.length / 2));
    expect(later.message).toMatch(/ cannot be read \(Corruption: /);
    await writeFile(table, original);
    const intact = await LevelStore.open(dir);
    expect(await intact.get(later.key!)).toBeDefined();
    await intact.close();
  });
});
