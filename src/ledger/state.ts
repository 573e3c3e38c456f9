import { canonicalBytes } from '../codec/index.js';
import { recordText } from './record-text.js';
import type { GenesisConfig } from './genesis.js';

/**
 * Ledger state: immutable records under string keys (docs/FORMAT.md §State).
 * A record is never modified in place; apply writes a new record under the
 * same key, so an overlay of writes can be checked, persisted in one batch,
 * and only then merged into the base state.
 *
 * Keys (hex keys are lower-case, `hex(text)` is the UTF-8 bytes of a
 * client-chosen string in hex, so no separator can be smuggled in):
 *   config                             the genesis config
 *   head                               height, hash, timestamp, whole-ledger frontier
 *   members                            node keys of the network: voters (may propose blocks) and learners
 *   p/<key>                            participant
 *   c/<commissionId>                   commission (its id is the id of the recording tx)
 *   o/<merchant>/<hex(orderId)>        idempotency key merchant + order id → commission
 *   n/<signer>/<hex(nonce)>            idempotency key signer + nonce → transaction id
 *   pair/<merchant>/<affiliate>/<CUR>  what one merchant owes one affiliate
 *   ma/<merchant>/<CUR>                merchant account (sum over its pairs)
 *   aa/<affiliate>/<CUR>               affiliate account (sum over its pairs)
 *   tot/<CUR>                          totals per currency, both sides of every posting
 */

export type ParticipantRole = 'operator' | 'merchant' | 'affiliate';
export type CommissionStatus = 'pending' | 'approved' | 'voided' | 'reversed';

export interface ParticipantRec {
  t: 'participant';
  key: string;
  role: ParticipantRole;
  name: string;
  /** height of registration (0 for operators from genesis) */
  since: number;
  /** the registering transaction, null for genesis operators */
  tx: string | null;
}

export interface CommissionRec {
  t: 'commission';
  id: string;
  merchant: string;
  affiliate: string;
  currency: string;
  amount: bigint;
  orderId: string;
  description: string;
  metadata: Record<string, string>;
  status: CommissionStatus;
  /** amount moved to payable at approval (the remainder at that time) */
  approved: bigint;
  /** sum of all reversals, before and after approval */
  reversed: bigint;
  recordedAt: number;
  updatedAt: number;
}

export interface OrderRec {
  t: 'order';
  commission: string;
}

export interface NonceRec {
  t: 'nonce';
  tx: string;
}

/** The merchant ↔ affiliate position in one currency. payable = approved − clawedBack − paid. */
export interface PairRec {
  t: 'pair';
  pending: bigint;
  approved: bigint;
  clawedBack: bigint;
  paid: bigint;
}

/** merchant: pending = pending commissions, balance = liability (approved, not yet paid); affiliate: the same seen from the other side. */
export interface AccountRec {
  t: 'account';
  pending: bigint;
  balance: bigint;
  paid: bigint;
}

export interface TotalsRec {
  t: 'totals';
  merchantPending: bigint;
  affiliatePending: bigint;
  merchantLiabilities: bigint;
  affiliateBalances: bigint;
  merchantPaid: bigint;
  affiliatePaid: bigint;
}

export interface HeadRec {
  t: 'head';
  height: number;
  hash: string;
  timestamp: number;
  ledgerSize: number;
  /** roots of the perfect subtrees of the whole-ledger tree, left to right (hex) */
  peaks: string[];
}

/**
 * Node keys of the network (the Raft membership the ledger wants; the Raft
 * leader reconciles its configuration towards it). Only voters may propose
 * blocks. Lists keep the order in which nodes were added.
 */
export interface MembersRec {
  t: 'members';
  voters: string[];
  learners: string[];
}

export interface ConfigRec {
  t: 'config';
  config: GenesisConfig;
}

export type StateRecord =
  | ParticipantRec
  | CommissionRec
  | OrderRec
  | NonceRec
  | PairRec
  | AccountRec
  | TotalsRec
  | HeadRec
  | MembersRec
  | ConfigRec;

export const keys = {
  config: 'config',
  head: 'head',
  members: 'members',
  participant: (key: string) => `p/${key}`,
  commission: (id: string) => `c/${id}`,
  order: (merchant: string, orderId: string) =>
    `o/${merchant}/${Buffer.from(orderId, 'utf8').toString('hex')}`,
  nonce: (signer: string, nonce: string) => `n/${signer}/${Buffer.from(nonce, 'utf8').toString('hex')}`,
  pair: (merchant: string, affiliate: string, currency: string) =>
    `pair/${merchant}/${affiliate}/${currency}`,
  merchantAccount: (merchant: string, currency: string) => `ma/${merchant}/${currency}`,
  affiliateAccount: (affiliate: string, currency: string) => `aa/${affiliate}/${currency}`,
  totals: (currency: string) => `tot/${currency}`,
} as const;

/** Anything apply can read state through. */
export interface StateView {
  get(key: string): StateRecord | undefined;
}

/** The whole state in memory (loaded from storage at start, or rebuilt by an auditor). */
export class LedgerState implements StateView {
  readonly records = new Map<string, StateRecord>();

  get(key: string): StateRecord | undefined {
    return this.records.get(key);
  }

  merge(writes: ReadonlyMap<string, StateRecord>): void {
    for (const [k, v] of writes) this.records.set(k, v);
  }
}

/** Writes of one block on top of a base view; nothing reaches the base until merged. */
export class StateOverlay implements StateView {
  readonly writes = new Map<string, StateRecord>();
  constructor(private readonly base: StateView) {}

  get(key: string): StateRecord | undefined {
    return this.writes.get(key) ?? this.base.get(key);
  }

  set(key: string, record: StateRecord): void {
    this.writes.set(key, record);
  }
}

const BIGINT_FIELDS: Partial<Record<StateRecord['t'], readonly string[]>> = {
  commission: ['amount', 'approved', 'reversed'],
  pair: ['pending', 'approved', 'clawedBack', 'paid'],
  account: ['pending', 'balance', 'paid'],
  totals: [
    'merchantPending',
    'affiliatePending',
    'merchantLiabilities',
    'affiliateBalances',
    'merchantPaid',
    'affiliatePaid',
  ],
};

const textEncoder = new TextEncoder();

/** Canonical JSON of a record; amounts (bigint) as decimal strings. */
export function encodeRecord(record: StateRecord): Uint8Array {
  const text = recordText(record);
  if (text !== undefined) return textEncoder.encode(text);
  return encodeRecordGeneric(record);
}

/** The definition: the generic canonicaliser over the record with amounts as decimal strings. */
export function encodeRecordGeneric(record: StateRecord): Uint8Array {
  const fields = BIGINT_FIELDS[record.t];
  if (!fields) return canonicalBytes(record);
  const plain: Record<string, unknown> = { ...record };
  for (const f of fields) plain[f] = (plain[f] as bigint).toString();
  return canonicalBytes(plain);
}

export function decodeRecord(bytes: Uint8Array): StateRecord {
  const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  const t = value.t as StateRecord['t'];
  for (const f of BIGINT_FIELDS[t] ?? []) {
    const s = value[f];
    if (typeof s !== 'string' || !/^(0|-?[1-9][0-9]*)$/.test(s))
      throw new Error(`record field ${f} is not an integer`);
    value[f] = BigInt(s);
  }
  return value as unknown as StateRecord;
}
