import type { DecodedBlock } from './block.js';
import { InvariantViolation } from './errors.js';
import type { GenesisConfig } from './genesis.js';
import type { Receipt, ResultCode } from './receipt.js';
import {
  keys,
  StateOverlay,
  type AccountRec,
  type CommissionRec,
  type ConfigRec,
  type MembersRec,
  type NonceRec,
  type OrderRec,
  type PairRec,
  type ParticipantRec,
  type StateRecord,
  type StateView,
  type TotalsRec,
} from './state.js';
import type { DecodedTx, SignedTx } from './transaction.js';

/**
 * The commission state machine. `applyBlock` reads only the block and the
 * state, never a clock or randomness, so every node and every auditor gets
 * the same receipts and the same writes. It assumes the block passed
 * `validateBlock` (links, roots, signatures); what it checks are the rules
 * that depend on state, and each failure is a receipt code.
 *
 * Every transaction in a block consumes its signer's nonce whatever its
 * result (except a duplicate, which changes nothing), so resubmitting a
 * transaction always finds the first receipt; a failed transaction is retried
 * with a new nonce.
 */

export interface ApplyResult {
  receipts: Receipt[];
  /** the state writes of the block, to persist in one batch and then merge */
  writes: Map<string, StateRecord>;
}

const ZERO = 0n;

export function applyBlock(state: StateView, block: DecodedBlock): ApplyResult {
  const overlay = new StateOverlay(state);
  const config = (state.get(keys.config) as ConfigRec | undefined)?.config;
  if (!config) throw new Error('state has no genesis config: apply the genesis block first');
  const { height, timestamp } = block.block.header;
  const receipts = block.txs.map((dtx, index) => {
    const result = applyTx(overlay, config, dtx, height, timestamp);
    const receipt: Receipt = { tx: dtx.id, height, index, code: result.code };
    if (result.commission !== undefined) receipt.commission = result.commission;
    if (result.existing !== undefined) receipt.existing = result.existing;
    return receipt;
  });
  checkBlockInvariants(overlay, height);
  return { receipts, writes: overlay.writes };
}

/**
 * Outcomes that a node refuses at admission instead of recording in a block:
 * they say nothing about the commission ledger (a replay, a stale or
 * unauthenticated sender) and would only let anyone fill the chain. Apply
 * still handles them deterministically if such a transaction reaches a block.
 */
export const REJECTED_AT_ADMISSION: ReadonlySet<ResultCode> = new Set<ResultCode>([
  'DUPLICATE_TX',
  'NONCE_REUSED',
  'TX_EXPIRED',
  'TX_FROM_FUTURE',
  'UNKNOWN_SIGNER',
]);

/**
 * Apply one transaction to an overlay as if it were in the next block at
 * `blockTime` (admission checks and block building). Writes go to `overlay`.
 */
export function applyTransaction(
  overlay: StateOverlay,
  dtx: DecodedTx,
  height: number,
  blockTime: number,
): TxResult {
  const config = (overlay.get(keys.config) as ConfigRec | undefined)?.config;
  if (!config) throw new Error('state has no genesis config');
  return applyTx(overlay, config, dtx, height, blockTime);
}

export interface TxResult {
  code: ResultCode;
  commission?: string;
  existing?: string;
}

function applyTx(
  s: StateOverlay,
  config: GenesisConfig,
  dtx: DecodedTx,
  height: number,
  blockTime: number,
): TxResult {
  const tx = dtx.tx;
  const nonceKey = keys.nonce(tx.signer, tx.nonce);
  const used = s.get(nonceKey) as NonceRec | undefined;
  if (used) return { code: used.tx === dtx.id ? 'DUPLICATE_TX' : 'NONCE_REUSED', existing: used.tx };
  s.set(nonceKey, { t: 'nonce', tx: dtx.id });

  if (tx.timestamp < blockTime - config.params.txMaxAgeMs) return { code: 'TX_EXPIRED' };
  if (tx.timestamp > blockTime + config.params.txMaxFutureMs) return { code: 'TX_FROM_FUTURE' };
  const signer = s.get(keys.participant(tx.signer)) as ParticipantRec | undefined;
  if (!signer) return { code: 'UNKNOWN_SIGNER' };
  return applyKind(s, tx, dtx.id, signer, height);
}

function applyKind(
  s: StateOverlay,
  tx: SignedTx,
  id: string,
  signer: ParticipantRec,
  height: number,
): TxResult {
  switch (tx.kind) {
    case 'participant.register': {
      const p = tx.payload;
      if (signer.role !== 'operator') return { code: 'UNAUTHORIZED' };
      const key = keys.participant(p.participant);
      if (s.get(key)) return { code: 'PARTICIPANT_EXISTS' };
      s.set(key, {
        t: 'participant',
        key: p.participant,
        role: p.role,
        name: p.name,
        since: height,
        tx: id,
      });
      return { code: 'OK' };
    }
    case 'commission.record': {
      const p = tx.payload;
      if (signer.role !== 'merchant' || p.merchant !== tx.signer) return { code: 'UNAUTHORIZED' };
      // Idempotent on merchant + order id before anything else about the payload: a second
      // submit of an order answers "exists" with the first commission, whatever else it says.
      const orderKey = keys.order(p.merchant, p.orderId);
      const order = s.get(orderKey) as OrderRec | undefined;
      if (order) return { code: 'COMMISSION_EXISTS', existing: order.commission };
      const affiliate = s.get(keys.participant(p.affiliate)) as ParticipantRec | undefined;
      if (!affiliate) return { code: 'UNKNOWN_PARTICIPANT' };
      if (affiliate.role !== 'affiliate') return { code: 'WRONG_ROLE' };
      const amount = BigInt(p.amount);
      s.set(keys.commission(id), {
        t: 'commission',
        id,
        merchant: p.merchant,
        affiliate: p.affiliate,
        currency: p.currency,
        amount,
        orderId: p.orderId,
        description: p.description,
        metadata: p.metadata ?? {},
        status: 'pending',
        approved: ZERO,
        reversed: ZERO,
        recordedAt: height,
        updatedAt: height,
      });
      s.set(orderKey, { t: 'order', commission: id });
      post(s, p.merchant, p.affiliate, p.currency, { pending: amount });
      return { code: 'OK', commission: id };
    }
    case 'commission.approve': {
      const key = keys.commission(tx.payload.commission);
      const c = s.get(key) as CommissionRec | undefined;
      if (!c) return { code: 'UNKNOWN_COMMISSION' };
      if (!mayManage(signer, c)) return { code: 'UNAUTHORIZED' };
      if (c.status !== 'pending') return { code: 'INVALID_STATE' };
      const remaining = c.amount - c.reversed;
      s.set(key, { ...c, status: 'approved', approved: remaining, updatedAt: height });
      post(s, c.merchant, c.affiliate, c.currency, { pending: -remaining, approved: remaining });
      return { code: 'OK' };
    }
    case 'commission.reverse': {
      const p = tx.payload;
      const key = keys.commission(p.commission);
      const c = s.get(key) as CommissionRec | undefined;
      if (!c) return { code: 'UNKNOWN_COMMISSION' };
      if (!mayManage(signer, c)) return { code: 'UNAUTHORIZED' };
      if (c.status === 'voided' || c.status === 'reversed') return { code: 'INVALID_STATE' };
      const amount = BigInt(p.amount);
      const remaining = c.amount - c.reversed;
      if (amount > remaining) return { code: 'EXCEEDS_REMAINING' };
      const left = remaining - amount;
      if (c.status === 'pending') {
        post(s, c.merchant, c.affiliate, c.currency, { pending: -amount });
        s.set(key, {
          ...c,
          reversed: c.reversed + amount,
          status: left === ZERO ? 'voided' : 'pending',
          updatedAt: height,
        });
      } else {
        const pair = getPair(s, c.merchant, c.affiliate, c.currency);
        if (amount > payable(pair)) return { code: 'INSUFFICIENT_BALANCE' };
        post(s, c.merchant, c.affiliate, c.currency, { clawedBack: amount });
        s.set(key, {
          ...c,
          reversed: c.reversed + amount,
          status: left === ZERO ? 'reversed' : 'approved',
          updatedAt: height,
        });
      }
      return { code: 'OK' };
    }
    case 'payout.record': {
      const p = tx.payload;
      if (signer.role !== 'operator') return { code: 'UNAUTHORIZED' };
      const merchant = s.get(keys.participant(p.merchant)) as ParticipantRec | undefined;
      const affiliate = s.get(keys.participant(p.affiliate)) as ParticipantRec | undefined;
      if (!merchant || !affiliate) return { code: 'UNKNOWN_PARTICIPANT' };
      if (merchant.role !== 'merchant' || affiliate.role !== 'affiliate') return { code: 'WRONG_ROLE' };
      const amount = BigInt(p.amount);
      if (amount > payable(getPair(s, p.merchant, p.affiliate, p.currency)))
        return { code: 'INSUFFICIENT_BALANCE' };
      post(s, p.merchant, p.affiliate, p.currency, { paid: amount });
      return { code: 'OK' };
    }
    case 'member.add':
    case 'member.promote':
    case 'member.remove':
      if (signer.role !== 'operator') return { code: 'UNAUTHORIZED' };
      return applyMembership(s, tx.kind, tx.payload.node);
  }
}

function applyMembership(
  s: StateOverlay,
  kind: 'member.add' | 'member.promote' | 'member.remove',
  node: string,
): TxResult {
  const m = s.get(keys.members) as MembersRec;
  const isVoter = m.voters.includes(node);
  const isLearner = m.learners.includes(node);
  switch (kind) {
    case 'member.add':
      if (isVoter || isLearner) return { code: 'MEMBER_EXISTS' };
      s.set(keys.members, { t: 'members', voters: m.voters, learners: [...m.learners, node] });
      return { code: 'OK' };
    case 'member.promote':
      if (!isLearner) return { code: 'UNKNOWN_MEMBER' };
      s.set(keys.members, {
        t: 'members',
        voters: [...m.voters, node],
        learners: m.learners.filter((k) => k !== node),
      });
      return { code: 'OK' };
    case 'member.remove':
      if (!isVoter && !isLearner) return { code: 'UNKNOWN_MEMBER' };
      if (isVoter && m.voters.length === 1) return { code: 'LAST_VOTER' };
      s.set(keys.members, {
        t: 'members',
        voters: m.voters.filter((k) => k !== node),
        learners: m.learners.filter((k) => k !== node),
      });
      return { code: 'OK' };
  }
}

/** The commission's merchant, or any operator; never the affiliate. */
function mayManage(signer: ParticipantRec, c: CommissionRec): boolean {
  return signer.role === 'operator' || (signer.role === 'merchant' && signer.key === c.merchant);
}

export function payable(pair: PairRec): bigint {
  return pair.approved - pair.clawedBack - pair.paid;
}

const EMPTY_PAIR: PairRec = { t: 'pair', pending: ZERO, approved: ZERO, clawedBack: ZERO, paid: ZERO };
const EMPTY_ACCOUNT: AccountRec = { t: 'account', pending: ZERO, balance: ZERO, paid: ZERO };
const EMPTY_TOTALS: TotalsRec = {
  t: 'totals',
  merchantPending: ZERO,
  affiliatePending: ZERO,
  merchantLiabilities: ZERO,
  affiliateBalances: ZERO,
  merchantPaid: ZERO,
  affiliatePaid: ZERO,
};

function getPair(s: StateView, m: string, a: string, cur: string): PairRec {
  return (s.get(keys.pair(m, a, cur)) as PairRec | undefined) ?? EMPTY_PAIR;
}

interface Posting {
  pending?: bigint;
  approved?: bigint;
  clawedBack?: bigint;
  paid?: bigint;
}

/**
 * Double entry: one movement is written to the pair and, independently, to
 * the merchant's side and the affiliate's side (accounts and currency totals).
 * The invariants then check that the sides still agree.
 */
function post(s: StateOverlay, merchant: string, affiliate: string, currency: string, m: Posting): void {
  const pending = m.pending ?? ZERO;
  const approved = m.approved ?? ZERO;
  const clawedBack = m.clawedBack ?? ZERO;
  const paid = m.paid ?? ZERO;
  // each key built once: a new key string is hashed again on every lookup (~0.5 µs for these lengths)
  const pairKey = keys.pair(merchant, affiliate, currency);
  const pair = (s.get(pairKey) as PairRec | undefined) ?? EMPTY_PAIR;
  s.set(pairKey, {
    t: 'pair',
    pending: pair.pending + pending,
    approved: pair.approved + approved,
    clawedBack: pair.clawedBack + clawedBack,
    paid: pair.paid + paid,
  });
  const balanceDelta = approved - clawedBack - paid;
  for (const key of [keys.merchantAccount(merchant, currency), keys.affiliateAccount(affiliate, currency)]) {
    const acc = (s.get(key) as AccountRec | undefined) ?? EMPTY_ACCOUNT;
    s.set(key, {
      t: 'account',
      pending: acc.pending + pending,
      balance: acc.balance + balanceDelta,
      paid: acc.paid + paid,
    });
  }
  const totKey = keys.totals(currency);
  const tot = (s.get(totKey) as TotalsRec | undefined) ?? EMPTY_TOTALS;
  s.set(totKey, {
    t: 'totals',
    merchantPending: tot.merchantPending + pending,
    affiliatePending: tot.affiliatePending + pending,
    merchantLiabilities: tot.merchantLiabilities + balanceDelta,
    affiliateBalances: tot.affiliateBalances + balanceDelta,
    merchantPaid: tot.merchantPaid + paid,
    affiliatePaid: tot.affiliatePaid + paid,
  });
}

/** Invariants over what one block wrote (cheap enough to run after every block). */
export function checkBlockInvariants(s: StateOverlay, height: number): void {
  for (const [key, rec] of s.writes) checkRecord(s, key, rec, height);
}

function fail(height: number, key: string, what: string): never {
  throw new InvariantViolation(height, `${key}: ${what}`);
}

function checkRecord(s: StateView, key: string, rec: StateRecord, height: number): void {
  switch (rec.t) {
    case 'pair':
      if (rec.pending < ZERO || rec.approved < ZERO || rec.clawedBack < ZERO || rec.paid < ZERO)
        fail(height, key, 'negative amount');
      if (payable(rec) < ZERO) fail(height, key, 'paid out or clawed back more than was approved');
      return;
    case 'account':
      if (rec.pending < ZERO || rec.balance < ZERO || rec.paid < ZERO) fail(height, key, 'negative balance');
      return;
    case 'totals':
      if (rec.merchantLiabilities !== rec.affiliateBalances)
        fail(height, key, 'merchant liabilities ≠ affiliate balances');
      if (rec.merchantPending !== rec.affiliatePending)
        fail(height, key, 'merchant pending ≠ affiliate pending');
      if (rec.merchantPaid !== rec.affiliatePaid) fail(height, key, 'merchant paid ≠ affiliate paid');
      if (rec.merchantLiabilities < ZERO || rec.merchantPending < ZERO) fail(height, key, 'negative total');
      return;
    case 'commission':
      if (rec.reversed < ZERO || rec.reversed > rec.amount) fail(height, key, 'reversed beyond the amount');
      if (rec.approved > rec.amount) fail(height, key, 'approved beyond the amount');
      return;
    case 'order': {
      const c = s.get(keys.commission(rec.commission)) as CommissionRec | undefined;
      if (!c || key !== keys.order(c.merchant, c.orderId))
        fail(height, key, 'idempotency key does not name its commission');
      return;
    }
    case 'participant':
    case 'nonce':
    case 'head':
    case 'members':
    case 'config':
      return;
  }
}

/**
 * The whole-state check an auditor runs: every account and every total is
 * recomputed from the pairs, and every commission has exactly one
 * idempotency record. O(state), so the node runs it only on demand.
 */
export function checkAllInvariants(records: ReadonlyMap<string, StateRecord>, height: number): void {
  const sums = new Map<string, { pending: bigint; balance: bigint; paid: bigint }>();
  const add = (key: string, pending: bigint, balance: bigint, paid: bigint) => {
    const cur = sums.get(key) ?? { pending: ZERO, balance: ZERO, paid: ZERO };
    sums.set(key, { pending: cur.pending + pending, balance: cur.balance + balance, paid: cur.paid + paid });
  };
  let orders = 0;
  let commissions = 0;
  for (const [key, rec] of records) {
    checkRecord({ get: (k) => records.get(k) }, key, rec, height);
    if (rec.t === 'order') orders++;
    if (rec.t === 'commission') commissions++;
    if (rec.t !== 'pair') continue;
    const [, m, a, cur] = key.split('/') as [string, string, string, string];
    const bal = payable(rec);
    add(keys.merchantAccount(m, cur), rec.pending, bal, rec.paid);
    add(keys.affiliateAccount(a, cur), rec.pending, bal, rec.paid);
    add(`m-tot/${cur}`, rec.pending, bal, rec.paid);
    add(`a-tot/${cur}`, rec.pending, bal, rec.paid);
  }
  if (orders !== commissions)
    fail(height, 'o/*', `${orders} idempotency records for ${commissions} commissions`);
  for (const [key, rec] of records) {
    if (rec.t === 'account') {
      const sum = sums.get(key);
      if (!sum || sum.pending !== rec.pending || sum.balance !== rec.balance || sum.paid !== rec.paid) {
        fail(height, key, 'account does not equal the sum of its pairs');
      }
    } else if (rec.t === 'totals') {
      const cur = key.slice('tot/'.length);
      const m = sums.get(`m-tot/${cur}`);
      const a = sums.get(`a-tot/${cur}`);
      if (!m || !a || m.balance !== rec.merchantLiabilities || a.balance !== rec.affiliateBalances) {
        fail(height, key, 'totals do not equal the sum of the pairs');
      }
      if (m.pending !== rec.merchantPending || m.paid !== rec.merchantPaid)
        fail(height, key, 'totals do not equal the sum of the pairs');
    }
  }
}
