import { describe, expect, it } from 'vitest';
import {
  keys,
  payable,
  type AccountRec,
  type CommissionRec,
  type PairRec,
  type TotalsRec,
} from '../../../src/ledger/index.js';
import { keyFor, pub, T0, TestChain, tx, withParticipants } from '../../support/ledger-fixture.js';

async function setup() {
  const tc = await TestChain.create();
  const { merchants, affiliates } = await withParticipants(tc, ['shop-a', 'shop-b'], ['aff-x', 'aff-y']);
  const [shopA, shopB] = merchants as [ReturnType<typeof keyFor>, ReturnType<typeof keyFor>];
  const [affX, affY] = affiliates as [ReturnType<typeof keyFor>, ReturnType<typeof keyFor>];
  const record = (
    orderId: string,
    amount = '10000',
    signer = shopA,
    merchant = shopA,
    affiliate = affX,
    currency = 'EUR',
  ) =>
    tx('commission.record', signer, {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount,
      currency,
      orderId,
      description: `order ${orderId}`,
    });
  const get = <T>(key: string) => tc.chain.state.get(key) as T;
  return { tc, shopA, shopB, affX, affY, record, get };
}

describe('commission lifecycle', () => {
  it('records a pending commission and keeps both sides of the books equal', async () => {
    const { tc, shopA, affX, record, get } = await setup();
    const t = record('o-1');
    const [r] = await tc.append(t);
    expect(r).toMatchObject({ code: 'OK', commission: t.id, index: 0, height: 2 });
    const c = get<CommissionRec>(keys.commission(t.id));
    expect(c).toMatchObject({
      status: 'pending',
      amount: 10000n,
      merchant: pub(shopA),
      affiliate: pub(affX),
    });
    expect(get<PairRec>(keys.pair(pub(shopA), pub(affX), 'EUR')).pending).toBe(10000n);
    const tot = get<TotalsRec>(keys.totals('EUR'));
    expect(tot.merchantPending).toBe(10000n);
    expect(tot.affiliatePending).toBe(10000n);
  });

  it('answers "exists" with the first id for a second record of the same merchant + order id', async () => {
    const { tc, record } = await setup();
    const first = record('o-1');
    const second = record('o-1', '999');
    const receipts = await tc.append(first, second);
    expect(receipts.map((r) => r.code)).toEqual(['OK', 'COMMISSION_EXISTS']);
    expect(receipts[1]!.existing).toBe(first.id);
  });

  it('answers "exists" for a second record of an order even when its affiliate is unknown or no affiliate', async () => {
    const { tc, shopA, shopB, record } = await setup();
    const first = record('o-1');
    const stranger = keyFor('never-registered');
    const receipts = await tc.append(
      first,
      record('o-1', '10000', shopA, shopA, stranger), // was UNKNOWN_PARTICIPANT
      record('o-1', '10000', shopA, shopA, shopB), // was WRONG_ROLE
    );
    expect(receipts.map((r) => r.code)).toEqual(['OK', 'COMMISSION_EXISTS', 'COMMISSION_EXISTS']);
    expect(receipts.slice(1).map((r) => r.existing)).toEqual([first.id, first.id]);
  });

  it('lets two merchants use the same order id', async () => {
    const { tc, shopB, record } = await setup();
    const receipts = await tc.append(record('o-1'), record('o-1', '500', shopB, shopB));
    expect(receipts.map((r) => r.code)).toEqual(['OK', 'OK']);
  });

  it('approves, reverses in part, pays out, and never beyond what remains', async () => {
    const {
      tc,
      shopA,
      affX,
      record,
      get,
      tc: { fx },
    } = await setup();
    const rec = record('o-1', '10000');
    await tc.append(rec);
    const partialVoid = tx('commission.reverse', shopA, {
      commission: rec.id,
      amount: '2000',
      reason: 'item returned',
    });
    const approve = tx('commission.approve', shopA, { commission: rec.id });
    const tooMuchPayout = tx('payout.record', fx.operator, {
      merchant: pub(shopA),
      affiliate: pub(affX),
      amount: '8001',
      currency: 'EUR',
      reference: 'p1',
    });
    const payout = tx('payout.record', fx.operator, {
      merchant: pub(shopA),
      affiliate: pub(affX),
      amount: '5000',
      currency: 'EUR',
      reference: 'p2',
    });
    const clawbackTooMuch = tx('commission.reverse', shopA, {
      commission: rec.id,
      amount: '3001',
      reason: 'fraud',
    });
    const clawback = tx('commission.reverse', shopA, { commission: rec.id, amount: '3000', reason: 'fraud' });
    const receipts = await tc.append(partialVoid, approve, tooMuchPayout, payout, clawbackTooMuch, clawback);
    expect(receipts.map((r) => r.code)).toEqual([
      'OK',
      'OK',
      'INSUFFICIENT_BALANCE',
      'OK',
      'INSUFFICIENT_BALANCE',
      'OK',
    ]);
    const c = get<CommissionRec>(keys.commission(rec.id));
    // 2000 voided before approval, 3000 clawed back after: 5000 remain, all of it paid out
    expect(c).toMatchObject({ status: 'approved', approved: 8000n, reversed: 5000n });
    const pair = get<PairRec>(keys.pair(pub(shopA), pub(affX), 'EUR'));
    expect(pair).toMatchObject({ pending: 0n, approved: 8000n, paid: 5000n, clawedBack: 3000n });
    expect(payable(pair)).toBe(0n);
    expect(get<AccountRec>(keys.affiliateAccount(pub(affX), 'EUR'))).toMatchObject({
      balance: 0n,
      paid: 5000n,
    });
    expect(get<AccountRec>(keys.merchantAccount(pub(shopA), 'EUR'))).toMatchObject({
      balance: 0n,
      paid: 5000n,
    });
    // what remains was paid out: it can no longer be clawed back from the payable balance
    const [again] = await tc.append(
      tx('commission.reverse', shopA, { commission: rec.id, amount: '1', reason: 'x' }),
    );
    expect(again!.code).toBe('INSUFFICIENT_BALANCE');
  });

  it('voids a pending commission in full, and refuses to approve it afterwards', async () => {
    const { tc, shopA, record, get } = await setup();
    const rec = record('o-1', '700');
    await tc.append(rec);
    const receipts = await tc.append(
      tx('commission.reverse', shopA, { commission: rec.id, amount: '701', reason: 'too much' }),
      tx('commission.reverse', shopA, { commission: rec.id, amount: '700', reason: 'cancelled' }),
      tx('commission.approve', shopA, { commission: rec.id }),
    );
    expect(receipts.map((r) => r.code)).toEqual(['EXCEEDS_REMAINING', 'OK', 'INVALID_STATE']);
    expect(get<CommissionRec>(keys.commission(rec.id)).status).toBe('voided');
  });

  it('claws back an approved, unpaid commission in full (status reversed)', async () => {
    const { tc, shopA, affX, record, get } = await setup();
    const rec = record('o-1', '900');
    await tc.append(rec);
    const receipts = await tc.append(
      tx('commission.approve', shopA, { commission: rec.id }),
      tx('commission.reverse', shopA, { commission: rec.id, amount: '900', reason: 'chargeback' }),
    );
    expect(receipts.map((r) => r.code)).toEqual(['OK', 'OK']);
    expect(get<CommissionRec>(keys.commission(rec.id)).status).toBe('reversed');
    expect(get<AccountRec>(keys.affiliateAccount(pub(affX), 'EUR')).balance).toBe(0n);
  });
});

describe('authorization', () => {
  it('refuses an unregistered signer', async () => {
    const { tc, affX } = await setup();
    const stranger = keyFor('stranger');
    const [r] = await tc.append(
      tx('commission.record', stranger, {
        merchant: pub(stranger),
        affiliate: pub(affX),
        amount: '1',
        currency: 'EUR',
        orderId: 'x',
        description: '',
      }),
    );
    expect(r!.code).toBe('UNKNOWN_SIGNER');
  });

  it('refuses a merchant recording for another merchant', async () => {
    const { tc, shopA, shopB, record } = await setup();
    const [r] = await tc.append(record('o-9', '100', shopA, shopB));
    expect(r!.code).toBe('UNAUTHORIZED');
  });

  it('refuses an affiliate approving its own commission, and another merchant approving it', async () => {
    const { tc, affX, shopB, record } = await setup();
    const rec = record('o-1');
    await tc.append(rec);
    const receipts = await tc.append(
      tx('commission.approve', affX, { commission: rec.id }),
      tx('commission.approve', shopB, { commission: rec.id }),
    );
    expect(receipts.map((r) => r.code)).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED']);
  });

  it('lets an operator approve, and only operators register participants and record payouts', async () => {
    const { tc, shopA, affX, record } = await setup();
    const rec = record('o-1');
    await tc.append(rec);
    const receipts = await tc.append(
      tx('participant.register', shopA, { participant: pub(keyFor('new')), role: 'affiliate', name: 'n' }),
      tx('payout.record', shopA, {
        merchant: pub(shopA),
        affiliate: pub(affX),
        amount: '1',
        currency: 'EUR',
        reference: 'r',
      }),
      tx('commission.approve', tc.fx.operator, { commission: rec.id }),
    );
    expect(receipts.map((r) => r.code)).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED', 'OK']);
  });

  it('refuses registering a key twice, and a commission for an unknown or non-affiliate key', async () => {
    const { tc, shopA, shopB, record } = await setup();
    const receipts = await tc.append(
      tx('participant.register', tc.fx.operator, {
        participant: pub(shopA),
        role: 'affiliate',
        name: 'again',
      }),
      record('o-2', '1', shopA, shopA, keyFor('nobody')),
      record('o-3', '1', shopA, shopA, shopB),
    );
    expect(receipts.map((r) => r.code)).toEqual(['PARTICIPANT_EXISTS', 'UNKNOWN_PARTICIPANT', 'WRONG_ROLE']);
  });
});

describe('idempotency and time', () => {
  it('answers a resubmitted transaction with DUPLICATE_TX and a reused nonce with NONCE_REUSED', async () => {
    const { tc, record, shopA, affX } = await setup();
    const t = record('o-1');
    await tc.append(t);
    const reuse = tx(
      'commission.record',
      shopA,
      {
        merchant: pub(shopA),
        affiliate: pub(affX),
        amount: '5',
        currency: 'EUR',
        orderId: 'o-2',
        description: '',
      },
      { nonce: t.tx.nonce },
    );
    const receipts = await tc.append(t, reuse);
    expect(receipts.map((r) => [r.code, r.existing])).toEqual([
      ['DUPLICATE_TX', t.id],
      ['NONCE_REUSED', t.id],
    ]);
  });

  it('refuses transactions outside the time window of their block', async () => {
    const { tc, shopA, affX } = await setup();
    const p = { merchant: pub(shopA), affiliate: pub(affX), amount: '5', currency: 'EUR', description: '' };
    const blockTime = tc.time + 1000;
    const { txMaxAgeMs, txMaxFutureMs } = tc.fx.config.params;
    const receipts = await tc.append(
      tx('commission.record', shopA, { ...p, orderId: 'old' }, { timestamp: blockTime - txMaxAgeMs - 1 }),
      tx(
        'commission.record',
        shopA,
        { ...p, orderId: 'future' },
        { timestamp: blockTime + txMaxFutureMs + 1 },
      ),
      tx('commission.record', shopA, { ...p, orderId: 'edge-old' }, { timestamp: blockTime - txMaxAgeMs }),
      tx('commission.record', shopA, { ...p, orderId: 'edge-new' }, { timestamp: blockTime + txMaxFutureMs }),
    );
    expect(receipts.map((r) => r.code)).toEqual(['TX_EXPIRED', 'TX_FROM_FUTURE', 'OK', 'OK']);
    expect(T0).toBeLessThan(blockTime);
  });
});

describe('network membership', () => {
  it('adds a learner, promotes it, removes a voter, and never the last voter; operators only', async () => {
    const tc = await TestChain.create();
    const op = tc.fx.operator;
    const n2 = pub(keyFor('node-2'));
    const n1 = pub(tc.fx.node);
    const receipts = await tc.append(
      tx('member.promote', op, { node: n2 }),
      tx('member.add', op, { node: n2 }),
      tx('member.add', op, { node: n2 }),
      tx('member.add', keyFor('node-2'), { node: pub(keyFor('node-3')) }),
      tx('member.promote', op, { node: n2 }),
      tx('member.remove', op, { node: n1 }),
      tx('member.remove', op, { node: n2 }),
    );
    expect(receipts.map((r) => r.code)).toEqual([
      'UNKNOWN_MEMBER',
      'OK',
      'MEMBER_EXISTS',
      'UNKNOWN_SIGNER',
      'OK',
      'OK',
      'LAST_VOTER',
    ]);
    expect(tc.chain.state.get(keys.members)).toEqual({ t: 'members', voters: [n2], learners: [] });
  });

  it('accepts blocks only from voting members', async () => {
    const tc = await TestChain.create();
    const n2 = keyFor('node-2');
    await tc.append(tx('member.add', tc.fx.operator, { node: pub(n2) }));
    const { buildBlock, processBlock, BlockError } = await import('../../../src/ledger/index.js');
    const asLearner = buildBlock(tc.chain.state, [], {
      timestamp: tc.time + 10,
      term: 2,
      proposerSecretKey: n2.secretKey,
    });
    expect(() => processBlock(tc.chain.state, asLearner, { checkSignatures: true })).toThrow(BlockError);
    await tc.append(tx('member.promote', tc.fx.operator, { node: pub(n2) }));
    const asVoter = buildBlock(tc.chain.state, [], {
      timestamp: tc.time + 10,
      term: 2,
      proposerSecretKey: n2.secretKey,
    });
    expect(() => processBlock(tc.chain.state, asVoter, { checkSignatures: true })).not.toThrow();
  });
});
