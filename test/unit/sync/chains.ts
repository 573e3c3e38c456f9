import type { KeyPair } from '../../../src/crypto/index.js';
import type { DecodedTx } from '../../../src/ledger/index.js';
import { pub, tx, withParticipants } from '../../support/ledger-fixture.js';
import type { FollowedChain } from './helpers.js';

export interface Parties {
  merchants: KeyPair[];
  affiliates: KeyPair[];
}

/** Register participants and notify followers (withParticipants appends without notifying). */
export async function register(
  fc: FollowedChain,
  merchants: string[],
  affiliates: string[],
): Promise<Parties> {
  const parties = await withParticipants(fc.tc, merchants, affiliates);
  fc.source.committed(fc.height);
  return parties;
}

let order = 0;

export function record(
  m: KeyPair,
  a: KeyPair,
  opts: {
    amount?: string;
    currency?: string;
    description?: string;
    metadata?: Record<string, string>;
    orderId?: string;
  } = {},
): DecodedTx {
  return tx('commission.record', m, {
    merchant: pub(m),
    affiliate: pub(a),
    amount: opts.amount ?? '1000',
    currency: opts.currency ?? 'EUR',
    orderId: opts.orderId ?? `ord-${++order}`,
    description: opts.description ?? `Order ${order}`,
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
}

/** Blocks of mixed traffic: records, an approval, a partial reversal, a payout (3 blocks per round). */
export async function appendTraffic(
  fc: FollowedChain,
  p: Parties,
  rounds: number,
  perBlock = 3,
): Promise<void> {
  const m = p.merchants[0]!;
  const m2 = p.merchants[1] ?? m;
  const a = p.affiliates[0]!;
  const a2 = p.affiliates[1] ?? a;
  for (let r = 0; r < rounds; r++) {
    const recs = Array.from({ length: perBlock }, (_, i) =>
      record(i % 2 ? m2 : m, i % 3 ? a : a2, { amount: `${1000 + r * 10 + i}` }),
    );
    await fc.append(...recs);
    // recs[0] is m → a2; recs[1] (if any) is m2 → a
    const reversed = recs[1] ?? recs[0]!;
    await fc.append(
      tx('commission.approve', m, { commission: recs[0]!.id }),
      tx('commission.reverse', recs[1] ? m2 : m, {
        commission: reversed.id,
        amount: '10',
        reason: 'partial return',
      }),
    );
    await fc.append(
      tx('payout.record', fc.tc.fx.operator, {
        merchant: pub(m),
        affiliate: pub(a2),
        amount: '100',
        currency: 'EUR',
        reference: `P-${r}`,
      }),
    );
  }
}
