import { canonicalBytes } from '../codec/index.js';
import { receiptText } from './record-text.js';

/**
 * Result of applying one transaction inside a committed block: the same on
 * every node. A failing rule is a result, never an exception: the chain goes on.
 */
export const RESULT_CODES = [
  'OK',
  /** commission.record for a merchant + order id that already has a commission; `existing` names it */
  'COMMISSION_EXISTS',
  /** the very same transaction (same id) was already applied; `existing` is its id */
  'DUPLICATE_TX',
  /** the signer already used this nonce for another transaction; `existing` names it */
  'NONCE_REUSED',
  'TX_EXPIRED',
  'TX_FROM_FUTURE',
  'UNKNOWN_SIGNER',
  'UNAUTHORIZED',
  'PARTICIPANT_EXISTS',
  'UNKNOWN_PARTICIPANT',
  'WRONG_ROLE',
  'UNKNOWN_COMMISSION',
  'INVALID_STATE',
  'EXCEEDS_REMAINING',
  'INSUFFICIENT_BALANCE',
  /** member.add of a node that is already a member */
  'MEMBER_EXISTS',
  /** member.promote / member.remove of a node that is not a member (or not a learner, for promote) */
  'UNKNOWN_MEMBER',
  /** member.remove of the last voter */
  'LAST_VOTER',
] as const;
export type ResultCode = (typeof RESULT_CODES)[number];

export interface Receipt {
  tx: string;
  height: number;
  index: number;
  code: ResultCode;
  /** id of the commission created (commission.record with OK) */
  commission?: string;
  /** the earlier record this transaction collided with */
  existing?: string;
}

export function encodeReceipt(receipt: Receipt): Uint8Array {
  const text = receiptText(receipt);
  return text !== undefined ? textEncoder.encode(text) : canonicalBytes(receipt);
}

/** The definition: the generic canonicaliser. */
export function encodeReceiptGeneric(receipt: Receipt): Uint8Array {
  return canonicalBytes(receipt);
}

const textEncoder = new TextEncoder();
