import type { KeyValueStore } from '../../src/storage/index.js';
import { pub, TestChain, tx, withParticipants, type keyFor } from './ledger-fixture.js';

/**
 * A small chain that exercises every transaction kind and several receipt
 * codes: registrations, commissions (one duplicate order), approvals,
 * reversals, payouts and a failed payout.
 */
export async function buildSampleChain(kv?: KeyValueStore): Promise<TestChain> {
  const tc = await TestChain.create(undefined, kv);
  const { merchants, affiliates } = await withParticipants(tc, ['shop-a', 'shop-b'], ['aff-x', 'aff-y']);
  const [m1, m2] = merchants as [ReturnType<typeof keyFor>, ReturnType<typeof keyFor>];
  const [a1, a2] = affiliates as [ReturnType<typeof keyFor>, ReturnType<typeof keyFor>];
  const rec = (m: typeof m1, a: typeof a1, orderId: string, amount: string, currency = 'EUR') =>
    tx('commission.record', m, {
      merchant: pub(m),
      affiliate: pub(a),
      amount,
      currency,
      orderId,
      description: `Order ${orderId} via ${pub(a).slice(0, 6)}`,
      metadata: { campaign: 'autumn' },
    });
  const c1 = rec(m1, a1, 'A-1', '12000');
  const c2 = rec(m1, a2, 'A-2', '5000', 'USD');
  const c3 = rec(m2, a1, 'B-1', '800');
  await tc.append(c1, c2, c3, rec(m1, a1, 'A-1', '1'));
  await tc.append(
    tx('commission.approve', m1, { commission: c1.id }),
    tx('commission.reverse', m1, { commission: c2.id, amount: '1000', reason: 'partial return' }),
    tx('commission.approve', tc.fx.operator, { commission: c3.id }),
  );
  await tc.append(
    tx('payout.record', tc.fx.operator, {
      merchant: pub(m1),
      affiliate: pub(a1),
      amount: '7000',
      currency: 'EUR',
      reference: 'SEPA-1',
    }),
    tx('payout.record', tc.fx.operator, {
      merchant: pub(m2),
      affiliate: pub(a1),
      amount: '801',
      currency: 'EUR',
      reference: 'SEPA-2',
    }),
    tx('commission.reverse', m1, { commission: c1.id, amount: '500', reason: 'chargeback' }),
  );
  return tc;
}
