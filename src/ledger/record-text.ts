import { canonicalize } from '../codec/index.js';
import type { Receipt } from './receipt.js';
import type { StateRecord } from './state.js';

/**
 * Canonical JSON of receipts and state records as strings, without the
 * generic canonicaliser's sorting and copying: each record type's keys are
 * sorted once. They give exactly the generic canonical form (a test holds
 * them to it) or undefined, and then `encodeReceipt` / `encodeRecord` use the
 * generic canonicaliser. A record must have exactly the listed keys (counted)
 * for the fast form to be used, so a new field can never be silently left
 * out. Every node writes these bytes for every block, and the auditor
 * compares stored entries against the text without encoding it.
 */

type Kind = 'str' | 'int' | 'big' | 'json' | 'strOrNull';

const SHAPES: Partial<Record<StateRecord['t'], readonly (readonly [string, Kind])[]>> = {
  nonce: shape({ t: 'str', tx: 'str' }),
  order: shape({ t: 'str', commission: 'str' }),
  participant: shape({ t: 'str', key: 'str', role: 'str', name: 'str', since: 'int', tx: 'strOrNull' }),
  commission: shape({
    t: 'str',
    id: 'str',
    merchant: 'str',
    affiliate: 'str',
    currency: 'str',
    amount: 'big',
    orderId: 'str',
    description: 'str',
    metadata: 'json',
    status: 'str',
    approved: 'big',
    reversed: 'big',
    recordedAt: 'int',
    updatedAt: 'int',
  }),
  pair: shape({ t: 'str', pending: 'big', approved: 'big', clawedBack: 'big', paid: 'big' }),
  account: shape({ t: 'str', pending: 'big', balance: 'big', paid: 'big' }),
  totals: shape({
    t: 'str',
    merchantPending: 'big',
    affiliatePending: 'big',
    merchantLiabilities: 'big',
    affiliateBalances: 'big',
    merchantPaid: 'big',
    affiliatePaid: 'big',
  }),
};

function shape(fields: Record<string, Kind>): readonly (readonly [string, Kind])[] {
  return Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Canonical JSON of a state record (amounts as decimal strings), or undefined: use encodeRecord. */
export function recordText(rec: StateRecord): string | undefined {
  const fields = SHAPES[rec.t];
  if (fields === undefined) return undefined;
  let count = 0;
  for (const _ in rec) count++;
  if (count !== fields.length) return undefined;
  const r = rec as unknown as Record<string, unknown>;
  let out = '{';
  for (let i = 0; i < fields.length; i++) {
    const [key, kind] = fields[i]!;
    const v = value(r[key], kind);
    if (v === undefined) return undefined;
    out += (i === 0 ? '"' : ',"') + key + '":' + v;
  }
  return out + '}';
}

function value(v: unknown, kind: Kind): string | undefined {
  switch (kind) {
    case 'str':
      return typeof v === 'string' ? str(v) : undefined;
    case 'strOrNull':
      return v === null ? 'null' : typeof v === 'string' ? str(v) : undefined;
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : undefined;
    case 'big':
      return typeof v === 'bigint' ? `"${v}"` : undefined;
    case 'json':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
      for (const _ in v) return canonicalize(v);
      return '{}';
  }
}

function str(s: string): string | undefined {
  return (s as string & { isWellFormed(): boolean }).isWellFormed() ? JSON.stringify(s) : undefined;
}

/** Canonical JSON of a receipt, or undefined: use encodeReceipt. */
export function receiptText(r: Receipt): string | undefined {
  let count = 0;
  for (const _ in r) count++;
  const { code, commission, existing, height, index, tx } = r;
  if (count !== 4 + (commission === undefined ? 0 : 1) + (existing === undefined ? 0 : 1)) return undefined;
  if (typeof code !== 'string' || typeof tx !== 'string') return undefined;
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(index)) return undefined;
  if (Object.is(height, -0) || Object.is(index, -0)) return undefined;
  if (commission !== undefined && typeof commission !== 'string') return undefined;
  if (existing !== undefined && typeof existing !== 'string') return undefined;
  const parts = [
    str(code),
    commission === undefined ? '' : str(commission),
    existing === undefined ? '' : str(existing),
    str(tx),
  ];
  if (parts.includes(undefined)) return undefined;
  const [c, m, e, t] = parts as string[];
  return (
    `{"code":${c}` +
    (commission === undefined ? '' : `,"commission":${m}`) +
    (existing === undefined ? '' : `,"existing":${e}`) +
    `,"height":${height},"index":${index},"tx":${t}}`
  );
}
