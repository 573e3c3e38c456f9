import {
  keys,
  type AccountRec,
  type CommissionRec,
  type DecodedBlock,
  type PairRec,
  type ParticipantRec,
  type ProcessedBlock,
  type StateRecord,
  type StateView,
  type TotalsRec,
} from '../ledger/index.js';
import { toMirrorJson, toMirrorText } from './text.js';

/**
 * Rows of the mirror, derived from blocks and the state writes that
 * re-executing them produced. A batch is one or more consecutive blocks that
 * go to Postgres in one transaction; it is also the StateView the next
 * block of the batch is applied on, so the writes of block h are visible to
 * block h + 1 before anything is committed.
 *
 * Each state record the batch changed becomes one row: an INSERT when the
 * record did not exist before the batch, an UPDATE of exactly one row
 * otherwise. The writer checks both (a conflict or a missing row is a
 * corrupt mirror), which is the row-level half of the exactly-once argument
 * in docs/SYNC.md.
 */

export interface BlockRow {
  height: number;
  hash: string;
  prevHash: string;
  chainId: string;
  time: string;
  term: number;
  proposer: string;
  txCount: number;
  txRoot: string;
  ledgerRoot: string;
  ledgerSize: number;
  signature: string;
  config: string | null;
}

/** A transaction of a block with its receipt. */
export interface TxRow {
  height: number;
  idx: number;
  txId: string;
  kind: string;
  signer: string;
  nonce: string;
  time: string;
  payload: string;
  signature: string;
  code: string;
  commission: string | null;
  existing: string | null;
}

export interface ParticipantRow {
  key: string;
  role: string;
  name: string;
  since: number;
  txId: string | null;
}

export interface CommissionRow {
  id: string;
  merchant: string;
  merchantName: string;
  affiliate: string;
  affiliateName: string;
  currency: string;
  amount: string;
  approved: string;
  reversed: string;
  status: string;
  orderId: string;
  description: string;
  metadata: string;
  metadataText: string;
  recordedHeight: number;
  recordedIndex: number;
  recordedAt: string;
  updatedHeight: number;
  updatedAt: string;
}

export interface PairRow {
  merchant: string;
  affiliate: string;
  currency: string;
  pending: string;
  approved: string;
  clawedBack: string;
  paid: string;
  updatedHeight: number;
}

export interface AccountRow {
  side: 'merchant' | 'affiliate';
  participant: string;
  currency: string;
  pending: string;
  balance: string;
  paid: string;
  updatedHeight: number;
}

export interface TotalsRow {
  currency: string;
  merchantPending: string;
  affiliatePending: string;
  merchantLiabilities: string;
  affiliateBalances: string;
  merchantPaid: string;
  affiliatePaid: string;
  updatedHeight: number;
}

/** New rows (`insert`) and changed rows (`update`) of one table. */
export interface Changes<R> {
  insert: R[];
  update: R[];
}

export interface BatchRows {
  blocks: BlockRow[];
  txs: TxRow[];
  participants: ParticipantRow[];
  commissions: Changes<CommissionRow>;
  pairs: Changes<PairRow>;
  accounts: Changes<AccountRow>;
  totals: Changes<TotalsRow>;
}

/**
 * The text a commission's embedding is computed from: names, description and
 * metadata. Order ids are left out: they are arbitrary codes that would make
 * every commission look a little like every other; the exact and full-text
 * lists of search find them.
 */
export function searchableText(c: {
  merchantName: string;
  affiliateName: string;
  description: string;
  metadataText: string;
}): string {
  return [c.merchantName, c.affiliateName, c.description, c.metadataText]
    .filter((s) => s.length > 0)
    .join(' \n ');
}

/** Metadata as text: `key value` pairs in key order (keys often say what a value means). */
export function metadataText(metadata: Record<string, string>): string {
  return Object.keys(metadata)
    .sort()
    .map((k) => `${k} ${metadata[k]}`)
    .join(' ');
}

/** Last second formatted by isoTime, and its text up to the second ("YYYY-MM-DDTHH:MM:SS"). */
let isoSecond = NaN;
let isoPrefix = '';
/** 10000-01-01T00:00:00Z: from there on toISOString writes a six-digit, signed year */
const ISO_FOUR_DIGIT_YEARS = 253_402_300_800_000;

/**
 * = new Date(ms).toISOString(), for the mirror's timestamptz columns. A batch
 * formats one time per transaction and they cluster within seconds, so the
 * text up to the second is remembered and only the milliseconds are written.
 */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= ISO_FOUR_DIGIT_YEARS) return new Date(ms).toISOString();
  const milli = ms % 1000;
  const second = ms - milli;
  if (second !== isoSecond) {
    isoPrefix = new Date(second).toISOString().slice(0, 19);
    isoSecond = second;
  }
  return `${isoPrefix}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Record types that become rows; the others (idempotency keys, head, membership, config) are state only. */
const MIRRORED: Readonly<Record<StateRecord['t'], boolean>> = {
  participant: true,
  commission: true,
  pair: true,
  account: true,
  totals: true,
  order: false,
  nonce: false,
  head: false,
  members: false,
  config: false,
};

interface Touch {
  height: number;
  time: number;
  /** the record did not exist before the batch */
  created: boolean;
  /** commission.record's index in its block */
  index?: number;
}

export class MirrorBatch implements StateView {
  /** only the ends are kept: a batch holds rows, not decoded blocks (less for the GC to copy) */
  private firstBlock: DecodedBlock | undefined;
  private lastBlock: DecodedBlock | undefined;
  blockCount = 0;
  readonly writes = new Map<string, StateRecord>();
  private readonly touched = new Map<string, Touch>();
  private readonly blockRows: BlockRow[] = [];
  private readonly txRows: TxRow[] = [];
  private readonly blockTimes = new Map<number, number>();
  txCount = 0;

  constructor(private base: StateView) {}

  /**
   * Read through `base` from now on: called when the batch this one was built
   * on has been committed and merged into `base`, which then reads the same.
   */
  rebase(base: StateView): void {
    this.base = base;
  }

  get(key: string): StateRecord | undefined {
    return this.writes.get(key) ?? this.base.get(key);
  }

  get first(): DecodedBlock | undefined {
    return this.firstBlock;
  }

  get last(): DecodedBlock | undefined {
    return this.lastBlock;
  }

  /** Add the next block and what processing it (on this batch as the state view) produced. */
  add(block: DecodedBlock, processed: ProcessedBlock): void {
    const h = block.block.header;
    this.firstBlock ??= block;
    this.lastBlock = block;
    this.blockCount++;
    this.blockTimes.set(h.height, h.timestamp);
    this.txCount += block.txs.length;
    this.blockRows.push({
      height: h.height,
      hash: block.hash,
      prevHash: h.prevHash,
      chainId: h.chainId,
      time: isoTime(h.timestamp),
      term: h.term,
      proposer: h.proposer,
      txCount: h.txCount,
      txRoot: h.txRoot,
      ledgerRoot: h.ledgerRoot,
      ledgerSize: h.ledgerSize,
      signature: block.block.signature,
      config: block.block.config ? toMirrorJson(block.block.config) : null,
    });
    const recordIndex = new Map<string, number>();
    block.txs.forEach((dtx, idx) => {
      const t = dtx.tx;
      const r = processed.receipts[idx]!;
      this.txRows.push({
        height: h.height,
        idx,
        txId: dtx.id,
        kind: t.kind,
        signer: t.signer,
        nonce: t.nonce,
        time: isoTime(t.timestamp),
        payload: toMirrorJson(t.payload),
        signature: t.signature,
        code: r.code,
        commission: r.commission ?? null,
        existing: r.existing ?? null,
      });
      if (r.commission !== undefined) recordIndex.set(r.commission, idx);
    });
    for (const [key, rec] of processed.writes) {
      this.writes.set(key, rec);
      if (!MIRRORED[rec.t]) continue; // nonce, order, head, …: state only, never a row
      const prev = this.touched.get(key);
      const created = prev ? prev.created : this.base.get(key) === undefined;
      const touch: Touch = { height: h.height, time: h.timestamp, created };
      const index = rec.t === 'commission' ? (recordIndex.get(rec.id) ?? prev?.index) : undefined;
      if (index !== undefined) touch.index = index;
      // a commission keeps the block time it was recorded at; later writes only move updated_*
      if (prev?.created && rec.t === 'commission') touch.time = prev.time;
      this.touched.set(key, touch);
    }
  }

  /** Every row the batch writes. */
  rows(): BatchRows {
    const out: BatchRows = {
      blocks: this.blockRows,
      txs: this.txRows,
      participants: [],
      commissions: { insert: [], update: [] },
      pairs: { insert: [], update: [] },
      accounts: { insert: [], update: [] },
      totals: { insert: [], update: [] },
    };
    const put = <R>(c: Changes<R>, created: boolean, row: R) => (created ? c.insert : c.update).push(row);
    for (const [key, touch] of this.touched) {
      const rec = this.writes.get(key)!;
      switch (rec.t) {
        case 'participant':
          if (touch.created) out.participants.push(participantRow(rec));
          break;
        case 'commission':
          put(out.commissions, touch.created, this.commissionRow(rec, touch));
          break;
        case 'pair': {
          const [, merchant, affiliate, currency] = key.split('/') as [string, string, string, string];
          put(out.pairs, touch.created, pairRow(rec, merchant, affiliate, currency, touch.height));
          break;
        }
        case 'account': {
          const [prefix, participant, currency] = key.split('/') as [string, string, string];
          const side = prefix === 'ma' ? 'merchant' : 'affiliate';
          put(out.accounts, touch.created, accountRow(rec, side, participant, currency, touch.height));
          break;
        }
        case 'totals':
          put(out.totals, touch.created, totalsRow(rec, key.slice('tot/'.length), touch.height));
          break;
        case 'order':
        case 'nonce':
        case 'head':
        case 'members':
        case 'config':
          break;
      }
    }
    return out;
  }

  private commissionRow(c: CommissionRec, touch: Touch): CommissionRow {
    const name = (key: string) =>
      toMirrorText((this.get(keys.participant(key)) as ParticipantRec | undefined)?.name ?? '');
    const updatedAt = this.blockTime(c.updatedAt);
    return {
      id: c.id,
      merchant: c.merchant,
      merchantName: name(c.merchant),
      affiliate: c.affiliate,
      affiliateName: name(c.affiliate),
      currency: c.currency,
      amount: c.amount.toString(),
      approved: c.approved.toString(),
      reversed: c.reversed.toString(),
      status: c.status,
      orderId: toMirrorText(c.orderId),
      description: toMirrorText(c.description),
      metadata: toMirrorJson(c.metadata),
      metadataText: toMirrorText(metadataText(c.metadata)),
      recordedHeight: c.recordedAt,
      recordedIndex: touch.index ?? -1,
      recordedAt: isoTime(touch.created ? touch.time : updatedAt),
      updatedHeight: c.updatedAt,
      updatedAt: isoTime(updatedAt),
    };
  }

  private blockTime(height: number): number {
    const t = this.blockTimes.get(height);
    if (t === undefined) throw new Error(`block ${height} is not in this batch`);
    return t;
  }
}

function participantRow(p: ParticipantRec): ParticipantRow {
  return { key: p.key, role: p.role, name: toMirrorText(p.name), since: p.since, txId: p.tx };
}

function pairRow(p: PairRec, merchant: string, affiliate: string, currency: string, height: number): PairRow {
  return {
    merchant,
    affiliate,
    currency,
    pending: p.pending.toString(),
    approved: p.approved.toString(),
    clawedBack: p.clawedBack.toString(),
    paid: p.paid.toString(),
    updatedHeight: height,
  };
}

function accountRow(
  a: AccountRec,
  side: 'merchant' | 'affiliate',
  participant: string,
  currency: string,
  height: number,
): AccountRow {
  return {
    side,
    participant,
    currency,
    pending: a.pending.toString(),
    balance: a.balance.toString(),
    paid: a.paid.toString(),
    updatedHeight: height,
  };
}

function totalsRow(t: TotalsRec, currency: string, height: number): TotalsRow {
  return {
    currency,
    merchantPending: t.merchantPending.toString(),
    affiliatePending: t.affiliatePending.toString(),
    merchantLiabilities: t.merchantLiabilities.toString(),
    affiliateBalances: t.affiliateBalances.toString(),
    merchantPaid: t.merchantPaid.toString(),
    affiliatePaid: t.affiliatePaid.toString(),
    updatedHeight: height,
  };
}
