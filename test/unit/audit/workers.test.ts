import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/audit/index.js';
import { SignaturePool } from '../../../src/audit/signature-pool.js';
import { generateKeyPair, sign } from '../../../src/crypto/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';

// The pool runs the compiled worker (dist/), as the CLI does: `npm run build` first.
const compiledWorker = fileURLToPath(new URL('../../../dist/src/audit/signature-worker.js', import.meta.url));
const built = existsSync(compiledWorker);

function worker(source: string): URL {
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

async function sample() {
  const kv = new MemoryStore();
  const tc = await buildSampleChain(kv);
  return { kv, tc };
}

/** A copy of the store with transaction `index` of block `height` given a wrong (well-formed) signature. */
function badSignature(kv: MemoryStore, height: number, index: number): { store: MemoryStore; id: string } {
  const key = `b/${String(height).padStart(12, '0')}`;
  const block = JSON.parse(Buffer.from(kv.data.get(key)!).toString('utf8')) as {
    txs: { signature: string }[];
  };
  const sig = block.txs[index]!.signature;
  const forged = Buffer.from(sign(Buffer.from('something else'), generateKeyPair().secretKey)).toString(
    'hex',
  );
  const text = Buffer.from(kv.data.get(key)!).toString('utf8').replace(sig, forged);
  const store = new MemoryStore();
  for (const [k, v] of kv.data) store.data.set(k, v);
  store.data.set(key, Buffer.from(text));
  // the id covers the unsigned form only, so the receipt still names the transaction
  const receipt = JSON.parse(
    Buffer.from(
      kv.data.get(`r/${String(height).padStart(12, '0')}/${String(index).padStart(6, '0')}`)!,
    ).toString('utf8'),
  ) as { tx: string };
  return { store, id: receipt.tx };
}

describe('signature checks off the calling thread', () => {
  it('the pool gives the same verdicts with 0, 1 and 2 workers, across batch boundaries', async () => {
    if (!built) return expect.fail(`build first: ${compiledWorker} is missing`);
    const k = generateKeyPair();
    const jobs = Array.from({ length: 301 }, (_, i) => {
      const message = Buffer.from(`message ${i}`);
      const signature = sign(message, k.secretKey);
      if (i % 37 === 5) signature[3] = signature[3]! ^ 1;
      return { message, signature, publicKey: k.publicKey, tag: 1000 + i };
    });
    const want = jobs.filter((_, i) => i % 37 === 5).map((j) => j.tag);
    for (const threads of [0, 1, 2]) {
      const pool = new SignaturePool({ threads, batch: 16 });
      for (const j of jobs) pool.add(j);
      // a key or signature of the wrong size never verifies
      pool.add({ message: Buffer.from('x'), signature: new Uint8Array(10), publicKey: k.publicKey, tag: 1 });
      pool.add({
        message: Buffer.from('x'),
        signature: jobs[0]!.signature,
        publicKey: new Uint8Array(31),
        tag: 2,
      });
      expect(await pool.drain(), `threads ${threads}`).toEqual([1, 2, ...want]);
      await pool.close();
    }
  });

  it('verify passes on an honest chain with worker threads', async () => {
    if (!built) return expect.fail(`build first: ${compiledWorker} is missing`);
    const { kv } = await sample();
    for (const threads of [1, 2]) {
      const report = await verifyChain(kv, { threads });
      expect(report.failure, `threads ${threads}`).toBeUndefined();
      expect(report.transactions).toBe(14);
    }
  });

  it('a bad signature found by a worker is reported with its height, index and transaction id', async () => {
    if (!built) return expect.fail(`build first: ${compiledWorker} is missing`);
    const { kv } = await sample();
    const { store, id } = badSignature(kv, 3, 1);
    for (const threads of [0, 2]) {
      const report = await verifyChain(store, { threads });
      expect(report.failure, `threads ${threads}`).toMatchObject({
        code: 'BAD_TX_SIGNATURE',
        height: 3,
        txIndex: 1,
        txId: id,
        field: 'txs[1].signature',
      });
      expect(report.failure!.message).toContain('block 3 transaction 1');
    }
  });

  it('a bad block signature is reported before a later store problem', async () => {
    const { kv } = await sample();
    const key = 'b/000000000002';
    const text = Buffer.from(kv.data.get(key)!).toString('utf8');
    const sig = (JSON.parse(text) as { signature: string }).signature;
    const store = new MemoryStore();
    for (const [k, v] of kv.data) store.data.set(k, v);
    store.data.set(
      key,
      Buffer.from(text.replace(sig, sig.slice(0, 10) + (sig[10] === 'a' ? 'b' : 'a') + sig.slice(11))),
    );
    store.data.set('s/zz', Buffer.from('{}'));
    expect((await verifyChain(store, { threads: 0 })).failure).toMatchObject({
      code: 'BAD_BLOCK_SIGNATURE',
      height: 2,
      field: 'signature',
    });
  });

  it('a worker that throws makes verify fail with an error, not hang', async () => {
    const { kv } = await sample();
    const throwing = worker(
      "import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => { throw new Error('boom'); });",
    );
    await expect(verifyChain(kv, { threads: 2, signatureWorker: throwing })).rejects.toThrow(
      /signature worker \d failed: boom/,
    );
  });

  it('a worker that exits makes verify fail with an error, not hang', async () => {
    const { kv } = await sample();
    const exiting = worker(
      "import { parentPort } from 'node:worker_threads'; import process from 'node:process'; parentPort.on('message', () => process.exit(7));",
    );
    await expect(verifyChain(kv, { threads: 1, signatureWorker: exiting })).rejects.toThrow(
      /signature worker 0 exited \(code 7\)/,
    );
  });
});
