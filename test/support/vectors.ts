import { canonicalize, signingMessage, toHex } from '../../src/codec/index.js';
import {
  blockSigningMessage,
  buildBlock,
  encodeBlock,
  encodeReceipt,
  genesisConfigHash,
  txSigningMessage,
  unsignedPart,
  type DecodedTx,
} from '../../src/ledger/index.js';
import { keyFor, pub, T0, TestChain, tx } from './ledger-fixture.js';

/**
 * The ledger test vectors (test/vectors/ledger.json): fixed keys, one signed
 * transaction of each kind, the genesis block and a block holding them, with
 * every intermediate byte string an independent implementation needs to
 * reproduce. Regenerate with `UPDATE_VECTORS=1 npx vitest run test/unit/ledger/vectors.test.ts`
 * after a deliberate format change (and bump the version fields).
 */
export async function buildLedgerVectors() {
  const tc = await TestChain.create();
  const merchant = keyFor('vector-merchant');
  const affiliate = keyFor('vector-affiliate');
  const op = tc.fx.operator;
  const at = (i: number) => ({ nonce: `vec-${i}`, timestamp: T0 + 1500 + i });
  const txs: DecodedTx[] = [
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
    tx(
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
    ),
  ];
  const recordId = txs[2]!.id;
  txs.push(
    tx('commission.approve', merchant, { commission: recordId }, at(4)),
    tx(
      'commission.reverse',
      merchant,
      { commission: recordId, amount: '23456', reason: 'partial return' },
      at(5),
    ),
    tx(
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
    ),
  );
  const block = buildBlock(tc.chain.state, txs, {
    timestamp: T0 + 2000,
    term: 3,
    proposerSecretKey: tc.fx.node.secretKey,
  });
  const receipts = await tc.chain.commit(block);
  // a second block, so the whole-ledger root (8 leaves) differs from the block's own root (2 leaves)
  const extra = tx(
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
  const addNode = tx('member.add', op, { node: pub(keyFor('vector-node-2')) }, at(8));
  const block2 = buildBlock(tc.chain.state, [extra, addNode], {
    timestamp: T0 + 3000,
    term: 3,
    proposerSecretKey: tc.fx.node.secretKey,
  });
  await tc.chain.commit(block2);
  const g = tc.fx.genesis.block;
  return {
    description:
      'BitNexus Ledger format vectors; see docs/FORMAT.md. All hex is lower-case; all text is UTF-8.',
    keys: [
      { label: 'operator', secretKey: toHex(op.secretKey), publicKey: pub(op) },
      { label: 'node-1', secretKey: toHex(tc.fx.node.secretKey), publicKey: pub(tc.fx.node) },
      { label: 'merchant', secretKey: toHex(merchant.secretKey), publicKey: pub(merchant) },
      { label: 'affiliate', secretKey: toHex(affiliate.secretKey), publicKey: pub(affiliate) },
    ],
    canonicalJson: [
      {
        value: { b: 1, a: 'x', A: [true, null] },
        canonical: canonicalize({ b: 1, a: 'x', A: [true, null] }),
      },
      { value: { '€': 1, z: 2, '😀': 'é\n"' }, canonical: canonicalize({ '€': 1, z: 2, '😀': 'é\n"' }) },
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
    },
    transactions: txs.map((t) => ({
      kind: t.tx.kind,
      canonicalUnsigned: canonicalize(unsignedPart(t.tx)),
      id: t.id,
      signingMessageHex: toHex(txSigningMessage(unsignedPart(t.tx))),
      signature: t.tx.signature,
      signed: t.tx,
    })),
    block: {
      header: block.block.header,
      canonicalHeader: canonicalize(block.block.header),
      hash: block.hash,
      signingMessageHex: toHex(blockSigningMessage(block.block.header)),
      signature: block.block.signature,
      stored: Buffer.from(encodeBlock(block.block)).toString('utf8'),
      receipts: receipts.map((r) => Buffer.from(encodeReceipt(r)).toString('utf8')),
    },
    block2: {
      header: block2.block.header,
      canonicalHeader: canonicalize(block2.block.header),
      hash: block2.hash,
      signature: block2.block.signature,
      stored: Buffer.from(encodeBlock(block2.block)).toString('utf8'),
      txIds: [extra.id, addNode.id],
      allTxIds: [...txs.map((t) => t.id), extra.id, addNode.id],
    },
  };
}
