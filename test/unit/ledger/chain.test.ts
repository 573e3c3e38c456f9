import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../src/codec/index.js';
import { merkleRoot, leafHash } from '../../../src/crypto/index.js';
import {
  BlockError,
  buildBlock,
  decodeBlock,
  encodeRecord,
  processBlock,
  StateOverlay,
  signBlockHeader,
  type DecodedBlock,
} from '../../../src/ledger/index.js';
import { LedgerChain } from '../../../src/node/ledger-chain.js';
import { LevelStore } from '../../../src/storage/index.js';
import { keyFor, pub, TestChain, tx, withParticipants } from '../../support/ledger-fixture.js';

function resign(b: DecodedBlock, secretKey: Uint8Array): DecodedBlock {
  return decodeBlock({ ...b.block, signature: signBlockHeader(b.block.header, secretKey) });
}

/** The operator registers merchant `m`: a valid transaction for the next block. */
function registerMerchant(tc: TestChain) {
  return tx('participant.register', tc.fx.operator, {
    participant: pub(keyFor('m')),
    role: 'merchant',
    name: 'm',
  });
}

function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof BlockError) return err.code;
    throw err;
  }
  return 'none';
}

describe('block validation against the chain head', () => {
  it('links blocks by hash and carries both Merkle roots', async () => {
    const tc = await TestChain.create();
    const { merchants, affiliates } = await withParticipants(tc, ['m'], ['a']);
    const t = tx('commission.record', merchants[0]!, {
      merchant: pub(merchants[0]!),
      affiliate: pub(affiliates[0]!),
      amount: '1',
      currency: 'USD',
      orderId: 'o',
      description: '',
    });
    const b = tc.block([t]);
    expect(b.block.header.prevHash).toBe(tc.chain.head!.hash);
    expect(b.block.header.txRoot).toBe(toHex(merkleRoot([leafHash(t.idBytes)])));
    expect(b.block.header.ledgerSize).toBe(3);
    await tc.chain.commit(b);
    expect(tc.chain.height).toBe(2);
  });

  it.each([
    ['BAD_HEIGHT', { height: 5 }],
    ['BAD_PREV_HASH', { prevHash: 'ab'.repeat(32) }],
    ['WRONG_CHAIN', { chainId: 'other' }],
    ['BAD_TIMESTAMP', { timestamp: 1 }],
    ['BAD_TX_COUNT', { txCount: 7 }],
    ['BAD_TX_ROOT', { txRoot: 'cd'.repeat(32) }],
    ['BAD_LEDGER_ROOT', { ledgerRoot: 'ef'.repeat(32) }],
    ['BAD_LEDGER_ROOT', { ledgerSize: 99 }],
  ] as const)('refuses a block with %s', async (code, change) => {
    const tc = await TestChain.create();
    const t = registerMerchant(tc);
    const b = tc.block([t]);
    const bad = resign(
      decodeBlock({ ...b.block, header: { ...b.block.header, ...change } }),
      tc.fx.node.secretKey,
    );
    expect(errorCode(() => processBlock(tc.chain.state, bad, { checkSignatures: true }))).toBe(code);
  });

  it('with trustRoots takes the roots as given, checks the size, and never mixes with checked roots', async () => {
    const tc = await TestChain.create();
    const t = registerMerchant(tc);
    const b = tc.block([t]);
    const trust = { checkSignatures: false, trustRoots: true };
    const wrongRoot = decodeBlock({ ...b.block, header: { ...b.block.header, txRoot: 'cd'.repeat(32) } });
    const trusted = processBlock(tc.chain.state, wrongRoot, trust);
    const checked = processBlock(tc.chain.state, b, { checkSignatures: false });
    expect(trusted.receipts).toEqual(checked.receipts);
    expect(trusted.head).toMatchObject({
      height: checked.head.height,
      ledgerSize: checked.head.ledgerSize,
      peaks: [],
    });
    expect(trusted.merkleNodes).toEqual([]);
    const wrongLedgerRoot = decodeBlock({
      ...b.block,
      header: { ...b.block.header, ledgerRoot: 'ef'.repeat(32) },
    });
    expect(processBlock(tc.chain.state, wrongLedgerRoot, trust).receipts).toEqual(checked.receipts);
    // such a result is never stored
    await expect(tc.chain.commit(wrongRoot, { checkSignatures: false, processed: trusted })).rejects.toThrow(
      /trustRoots/,
    );
    const wrongSize = decodeBlock({ ...b.block, header: { ...b.block.header, ledgerSize: 99 } });
    expect(errorCode(() => processBlock(tc.chain.state, wrongSize, trust))).toBe('BAD_LEDGER_ROOT');
    // a state whose head came from a trusted block has no frontier: checking roots on it must fail loudly
    const trustedState = new StateOverlay(tc.chain.state);
    for (const [k, v] of processBlock(tc.chain.state, b, trust).writes) trustedState.set(k, v);
    await tc.chain.commit(b);
    const next = tc.block([]);
    expect(processBlock(trustedState, next, trust).head.height).toBe(next.block.header.height);
    expect(() => processBlock(trustedState, next, { checkSignatures: false })).toThrow(/trustRoots/);
  });

  it('refuses a block from a non-member and a block or transaction with a bad signature', async () => {
    const tc = await TestChain.create();
    const t = registerMerchant(tc);
    const stranger = keyFor('stranger');
    const byStranger = buildBlock(tc.chain.state, [t], {
      timestamp: tc.time + 1,
      term: 1,
      proposerSecretKey: stranger.secretKey,
    });
    expect(errorCode(() => processBlock(tc.chain.state, byStranger, { checkSignatures: true }))).toBe(
      'BAD_PROPOSER',
    );
    const b = tc.block([t]);
    const badSig = decodeBlock({ ...b.block, signature: 'aa'.repeat(64) });
    expect(errorCode(() => processBlock(tc.chain.state, badSig, { checkSignatures: true }))).toBe(
      'BAD_BLOCK_SIGNATURE',
    );
    const forgedTx = { ...t.tx, signature: 'bb'.repeat(64) };
    const withForged = buildBlock(tc.chain.state, [{ ...t, tx: forgedTx }], {
      timestamp: tc.time + 1,
      term: 1,
      proposerSecretKey: tc.fx.node.secretKey,
    });
    expect(errorCode(() => processBlock(tc.chain.state, withForged, { checkSignatures: true }))).toBe(
      'BAD_TX_SIGNATURE',
    );
  });

  it('applies deterministically: two nodes reach byte-identical state', async () => {
    const a = await TestChain.create();
    const b = await TestChain.create();
    const { merchants, affiliates } = await withParticipants(a, ['m1', 'm2'], ['a1']);
    const blocks: DecodedBlock[] = [];
    for (let i = 0; i < 5; i++) {
      const blk = a.block([
        tx('commission.record', merchants[i % 2]!, {
          merchant: pub(merchants[i % 2]!),
          affiliate: pub(affiliates[0]!),
          amount: String(100 + i),
          currency: 'EUR',
          orderId: `o${i}`,
          description: 'd',
        }),
      ]);
      await a.chain.commit(blk);
      blocks.push(blk);
    }
    // replay node a's blocks (registration block first) on node b
    for (let h = 1; h <= a.chain.height; h++) {
      const bytes = await a.chain.store.getBlock(h);
      const { parseBlock } = await import('../../../src/ledger/index.js');
      await b.chain.commit(decodeBlock(parseBlock(JSON.parse(Buffer.from(bytes!).toString('utf8')))));
    }
    const dump = (c: LedgerChain) =>
      [...c.state.records].map(([k, v]) => [k, Buffer.from(encodeRecord(v)).toString()]).sort();
    expect(dump(b.chain)).toEqual(dump(a.chain));
  });
});

describe('chain store on LevelDB', () => {
  it('persists a block atomically and reloads the same state after reopening', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-chain-'));
    try {
      const tc = await TestChain.create(undefined, await LevelStore.open(dir));
      await withParticipants(tc, ['m'], ['a']);
      const before = [...tc.chain.state.records].map(([k, v]) => [
        k,
        Buffer.from(encodeRecord(v)).toString(),
      ]);
      await tc.chain.close();
      const reopened = await LedgerChain.open(await LevelStore.open(dir));
      const after = [...reopened.state.records].map(([k, v]) => [k, Buffer.from(encodeRecord(v)).toString()]);
      expect(after.sort()).toEqual(before.sort());
      expect(reopened.height).toBe(1);
      const loc = await reopened.store.getTxLocation(
        [...reopened.state.records.values()].flatMap((r) =>
          r.t === 'participant' && r.tx ? [r.tx] : [],
        )[0]!,
      );
      expect(loc).toEqual({ height: 1, index: expect.any(Number) as number });
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('encodeDecodedBlock', () => {
  it('produces exactly encodeBlock bytes, also when metadata has a "signer" key', async () => {
    const { encodeBlock, encodeDecodedBlock } = await import('../../../src/ledger/index.js');
    const tc = await TestChain.create();
    const { merchants, affiliates } = await withParticipants(tc, ['m'], ['a']);
    const m = merchants[0]!;
    const t = tx('commission.record', m, {
      merchant: pub(m),
      affiliate: pub(affiliates[0]!),
      amount: '1',
      currency: 'USD',
      orderId: 'o',
      description: 'a "quoted" ,"signer":" text',
      metadata: { a: '1', signer: 'x', zz: ',"signer":"' },
    });
    const b = tc.block([
      t,
      tx('participant.register', tc.fx.operator, {
        participant: pub(keyFor('z')),
        role: 'affiliate',
        name: 'z',
      }),
    ]);
    expect(Buffer.from(encodeDecodedBlock(b)).toString()).toBe(Buffer.from(encodeBlock(b.block)).toString());
    const empty = tc.block([]);
    expect(Buffer.from(encodeDecodedBlock(empty)).toString()).toBe(
      Buffer.from(encodeBlock(empty.block)).toString(),
    );
  });
});
