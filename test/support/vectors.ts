import { canonicalize, signingMessage, toHex } from '../../src/codec/index.js';
import {
  blockSigningMessage,
  buildBlock,
  encodeBlock,
  encodeReceipt,
  encodeRecord,
  genesisConfigHash,
  processBlock,
  processGenesis,
  txSigningMessage,
  unsignedPart,
  type DecodedBlock,
  type DecodedTx,
  type StateRecord,
} from '../../src/ledger/index.js';
import { keyFor, pub, T0, TestChain, tx } from './ledger-fixture.js';

/**
 * The ledger test vectors (test/vectors/ledger.json, described in
 * docs/FORMAT.md §9): fixed keys, the genesis block and three blocks whose
 * transactions include every kind (blocks 1 and 2, all OK) and every failing
 * receipt code (block 3), with every intermediate byte string an independent
 * implementation needs to reproduce: canonical forms, ids, signed messages,
 * stored blocks, receipts, each block's state writes and the final state.
 * Regenerate with
 * `UPDATE_VECTORS=1 npx vitest run --project unit test/unit/ledger/vectors.test.ts`
 * after a deliberate change (for a byte-format change, bump the version
 * fields first: docs/FORMAT.md §8).
 */
export async function buildLedgerVectors() {
  const tc = await TestChain.create();
  const merchant = keyFor('vector-merchant');
  const affiliate = keyFor('vector-affiliate');
  const affiliate2 = keyFor('vector-affiliate-2');
  const stranger = keyFor('vector-stranger');
  const node2 = keyFor('vector-node-2');
  const node3 = keyFor('vector-node-3');
  const op = tc.fx.operator;
  const node1 = tc.fx.node;
  const at = (i: number) => ({ nonce: `vec-${i}`, timestamp: T0 + 1500 + i });

  // Block 1 (height 1): registrations and one commission's life, all OK.
  const record1 = tx(
    'commission.record',
    merchant,
    {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount: '123456',
      currency: 'EUR',
      orderId: 'ORD-2026-0001',
      description: 'Noise-cancelling headphones — “spring” campaign',
      metadata: { campaign: 'spring', channel: 'email' },
    },
    at(3),
  );
  const c1 = record1.id;
  const payout1 = tx(
    'payout.record',
    op,
    {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount: '50000',
      currency: 'EUR',
      reference: 'SEPA-2026-11-0001',
    },
    at(6),
  );
  const block1Txs: DecodedTx[] = [
    tx(
      'participant.register',
      op,
      { participant: pub(merchant), role: 'merchant', name: 'Vector Shop' },
      at(1),
    ),
    tx(
      'participant.register',
      op,
      { participant: pub(affiliate), role: 'affiliate', name: 'Vector Blog' },
      at(2),
    ),
    record1,
    tx('commission.approve', merchant, { commission: c1 }, at(4)),
    tx('commission.reverse', merchant, { commission: c1, amount: '23456', reason: 'partial return' }, at(5)),
    payout1,
  ];

  // Block 2 (height 2): the other status transitions, a second currency and
  // the membership kinds, all OK.
  const record2 = tx(
    'commission.record',
    merchant,
    {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount: '990',
      currency: 'USD',
      orderId: 'ORD-2026-0002',
      description: '',
    },
    at(7),
  );
  const c2 = record2.id;
  const record3 = tx(
    'commission.record',
    merchant,
    {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount: '5000',
      currency: 'EUR',
      orderId: 'ORDER/ä-😀-3',
      description: 'Cancelled before shipping',
      metadata: { zone: 'été 😀', Campaign: 'autumn' },
    },
    at(11),
  );
  const c3 = record3.id;
  const block2Txs: DecodedTx[] = [
    record2,
    tx('commission.reverse', merchant, { commission: c2, amount: '90', reason: 'price adjustment' }, at(8)),
    tx('commission.approve', op, { commission: c2 }, at(9)),
    tx('commission.reverse', op, { commission: c2, amount: '900', reason: 'chargeback' }, at(10)),
    record3,
    tx('commission.reverse', merchant, { commission: c3, amount: '5000', reason: 'order cancelled' }, at(12)),
    tx(
      'participant.register',
      op,
      { participant: pub(affiliate2), role: 'affiliate', name: 'Second Blog' },
      at(13),
    ),
    tx('member.add', op, { node: pub(node2) }, at(14)),
    tx('member.add', op, { node: pub(node3) }, at(15)),
    tx('member.promote', op, { node: pub(node2) }, at(16)),
    tx('member.remove', op, { node: pub(node3) }, at(17)),
  ];

  // Block 3 (height 3, timestamp T3): every failing receipt code, in cases that
  // show the order of the checks (docs/FORMAT.md §6).
  const T3 = T0 + 4000;
  const { txMaxAgeMs, txMaxFutureMs } = tc.fx.config.params;
  const payout = (n: number, m: string, a: string, amount: string) =>
    tx(
      'payout.record',
      op,
      { merchant: m, affiliate: a, amount, currency: 'EUR', reference: `PAY-${n}` },
      at(n),
    );
  const recordBy = (n: number, signer: typeof merchant, orderId: string, aff: string, nonce = `vec-${n}`) =>
    tx(
      'commission.record',
      signer,
      { merchant: pub(merchant), affiliate: aff, amount: '1', currency: 'EUR', orderId, description: 'x' },
      { nonce, timestamp: T0 + 1500 + n },
    );
  const expired = tx(
    'participant.register',
    op,
    { participant: pub(stranger), role: 'affiliate', name: 'Too late' },
    { nonce: 'vec-expired', timestamp: T3 - txMaxAgeMs - 1 },
  );
  const block3Txs: DecodedTx[] = [
    // an affiliate approving the id of a payout: no such commission, checked before authorization
    tx('commission.approve', affiliate, { commission: payout1.id }, at(18)),
    tx('commission.approve', affiliate, { commission: c1 }, at(19)), // UNAUTHORIZED before INVALID_STATE
    tx('commission.approve', merchant, { commission: c1 }, at(20)), // already approved
    tx('commission.reverse', merchant, { commission: c3, amount: '1', reason: 'again' }, at(21)), // voided
    tx('commission.reverse', merchant, { commission: c1, amount: '100001', reason: 'too much' }, at(22)),
    tx('commission.reverse', merchant, { commission: c1, amount: '60000', reason: 'beyond payable' }, at(23)),
    payout(24, pub(merchant), pub(affiliate), '50001'), // payable is 50000
    payout(25, pub(merchant), pub(affiliate2), '1'), // no pair yet: payable 0
    payout(26, pub(affiliate), pub(merchant), '1'), // roles swapped
    payout(27, pub(merchant), pub(stranger), '1'),
    // a second record of order 0001, with an unregistered affiliate: the order is checked first
    recordBy(28, merchant, 'ORD-2026-0001', pub(stranger)),
    recordBy(29, affiliate, 'ORD-2026-0004', pub(affiliate)), // signed by the affiliate
    recordBy(30, merchant, 'ORD-2026-0004', pub(stranger)),
    recordBy(31, merchant, 'ORD-2026-0005', pub(op)), // the operator as affiliate
    tx('participant.register', merchant, { participant: pub(stranger), role: 'merchant', name: 'S' }, at(32)),
    // at the oldest timestamp the window allows
    tx(
      'participant.register',
      op,
      { participant: pub(merchant), role: 'merchant', name: 'Again' },
      { nonce: 'vec-33', timestamp: T3 - txMaxAgeMs },
    ),
    // at the newest timestamp the window allows
    tx('member.add', op, { node: pub(node1) }, { nonce: 'vec-34', timestamp: T3 + txMaxFutureMs }),
    tx('member.promote', op, { node: pub(node2) }, at(35)), // a voter, not a learner
    tx('member.remove', op, { node: pub(node3) }, at(36)), // removed in block 2
    tx('member.add', merchant, { node: pub(node3) }, at(37)),
    tx('member.remove', op, { node: pub(node2) }, at(38)), // OK: node-1 stays the only voter
    tx('member.remove', op, { node: pub(node1) }, at(39)),
    tx(
      'participant.register',
      stranger,
      { participant: pub(stranger), role: 'affiliate', name: 'Me' },
      at(40),
    ),
    expired,
    tx('member.add', op, { node: pub(node3) }, { nonce: 'vec-42', timestamp: T3 + txMaxFutureMs + 1 }),
    recordBy(43, merchant, 'ORD-2026-0006', pub(affiliate), 'vec-3'), // the nonce of record1
    payout1, // the very same transaction again
    // the nonce of the expired transaction: consumed although it failed
    tx(
      'participant.register',
      op,
      { participant: pub(stranger), role: 'affiliate', name: 'Stranger' },
      { nonce: 'vec-expired', timestamp: T0 + 1545 },
    ),
    payout(46, pub(merchant), pub(affiliate), '50000'), // exactly the payable balance: OK
  ];

  const genesisWrites = processGenesis(tc.fx.genesis, { checkSignatures: true }).writes;
  const blocks = [];
  for (const [txs, timestamp, term] of [
    [block1Txs, T0 + 2000, 3],
    [block2Txs, T0 + 3000, 3],
    [block3Txs, T3, 4],
  ] as const) {
    const block = buildBlock(tc.chain.state, txs, { timestamp, term, proposerSecretKey: node1.secretKey });
    const { writes } = processBlock(tc.chain.state, block, { checkSignatures: true });
    const receipts = await tc.chain.commit(block);
    blocks.push(
      blockVector(
        block,
        receipts.map((r) => Buffer.from(encodeReceipt(r)).toString('utf8')),
        writes,
      ),
    );
  }
  const finalState: Record<string, string> = {};
  for await (const [k, v] of tc.chain.store.stateEntries()) finalState[k] = Buffer.from(v).toString('utf8');

  const g = tc.fx.genesis.block;
  const key = (label: string, k: typeof op) => ({
    label,
    secretKey: toHex(k.secretKey),
    publicKey: pub(k),
  });
  return {
    description:
      'BitNexus Ledger format vectors; see docs/FORMAT.md §9. All hex is lower-case; all text is UTF-8.',
    keys: [
      key('operator', op),
      key('node-1', node1),
      key('merchant', merchant),
      key('affiliate', affiliate),
      key('affiliate-2', affiliate2),
      key('stranger', stranger),
      key('node-2', node2),
      key('node-3', node3),
    ],
    canonicalJson: [
      {
        value: { b: 1, a: 'x', A: [true, null] },
        canonical: canonicalize({ b: 1, a: 'x', A: [true, null] }),
      },
      { value: { '€': 1, z: 2, '😀': 'é\n"' }, canonical: canonicalize({ '€': 1, z: 2, '😀': 'é\n"' }) },
      // UTF-16 order is not code-point (or UTF-8) order: U+FF5A sorts after U+1F600's surrogates
      { value: { ｚ: 1, '😀': 2 }, canonical: canonicalize({ ｚ: 1, '😀': 2 }) },
    ],
    signingMessageExample: {
      domain: 'tx',
      chainId: 'bitnexus-test',
      body: { a: 1 },
      messageHex: toHex(signingMessage('tx', 'bitnexus-test', { a: 1 })),
    },
    genesis: {
      config: g.config,
      canonicalConfig: canonicalize(g.config),
      configHash: genesisConfigHash(g.config!),
      header: g.header,
      canonicalHeader: canonicalize(g.header),
      hash: tc.fx.genesis.hash,
      signingMessageHex: toHex(blockSigningMessage(g.header)),
      signature: g.signature,
      stored: Buffer.from(encodeBlock(g)).toString('utf8'),
      stateWrites: stateText(genesisWrites),
    },
    transactions: blocks.flatMap((b, i) =>
      [block1Txs, block2Txs, block3Txs][i]!.map((t, index) => ({
        height: b.height,
        index,
        kind: t.tx.kind,
        canonicalUnsigned: canonicalize(unsignedPart(t.tx)),
        id: t.id,
        signingMessageHex: toHex(txSigningMessage(unsignedPart(t.tx))),
        signature: t.tx.signature,
        signed: t.tx,
      })),
    ),
    blocks,
    finalState,
  };
}

/** State records as the chain store holds them (`s/<key>` → canonical JSON), keys sorted. */
function stateText(writes: ReadonlyMap<string, StateRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...writes.keys()].sort())
    out[k] = Buffer.from(encodeRecord(writes.get(k)!)).toString('utf8');
  return out;
}

function blockVector(block: DecodedBlock, receipts: string[], writes: ReadonlyMap<string, StateRecord>) {
  const h = block.block.header;
  return {
    height: h.height,
    header: h,
    canonicalHeader: canonicalize(h),
    hash: block.hash,
    signingMessageHex: toHex(blockSigningMessage(h)),
    signature: block.block.signature,
    stored: Buffer.from(encodeBlock(block.block)).toString('utf8'),
    txIds: block.txs.map((t) => t.id),
    receipts,
    /** what the block writes to the state (including the new head) */
    stateWrites: stateText(writes),
  };
}
