import { canonicalBytes, signingMessage, signingMessageFromBody, toHex, fromHex } from '../codec/index.js';
import { sha256, sign, verify } from '../crypto/index.js';
import { ValidationError } from './errors.js';
import { amount, hex, int, obj, oneOf, str } from './schema.js';

export const TX_VERSION = 1;

export const TX_KINDS = [
  'participant.register',
  'commission.record',
  'commission.approve',
  'commission.reverse',
  'payout.record',
  'member.add',
  'member.promote',
  'member.remove',
] as const;
export type TxKind = (typeof TX_KINDS)[number];

export type Role = 'merchant' | 'affiliate';

export interface ParticipantRegisterPayload {
  participant: string;
  role: Role;
  name: string;
}
export interface CommissionRecordPayload {
  merchant: string;
  affiliate: string;
  amount: string;
  currency: string;
  orderId: string;
  description: string;
  metadata?: Record<string, string>;
}
export interface CommissionApprovePayload {
  commission: string;
}
export interface CommissionReversePayload {
  commission: string;
  amount: string;
  reason: string;
}
export interface PayoutRecordPayload {
  merchant: string;
  affiliate: string;
  amount: string;
  currency: string;
  reference: string;
}

/** Network membership: an operator adds a node (as a Raft learner), promotes it to voter, or removes it. */
export interface MemberPayload {
  node: string;
}

export interface PayloadByKind {
  'participant.register': ParticipantRegisterPayload;
  'commission.record': CommissionRecordPayload;
  'commission.approve': CommissionApprovePayload;
  'commission.reverse': CommissionReversePayload;
  'payout.record': PayoutRecordPayload;
  'member.add': MemberPayload;
  'member.promote': MemberPayload;
  'member.remove': MemberPayload;
}

interface UnsignedTxOf<K extends TxKind> {
  v: typeof TX_VERSION;
  kind: K;
  chainId: string;
  /** Ed25519 public key of the signer, hex. */
  signer: string;
  /** Client-chosen idempotency key, unique per signer forever. */
  nonce: string;
  /** Milliseconds since the Unix epoch, UTC. */
  timestamp: number;
  payload: PayloadByKind[K];
}
export type UnsignedTx = { [K in TxKind]: UnsignedTxOf<K> }[TxKind];
export type SignedTx = UnsignedTx & { signature: string };

/** A parsed transaction with the values every consumer needs, computed once. */
export interface DecodedTx {
  tx: SignedTx;
  /** hex of SHA-256(canonical unsigned form) */
  id: string;
  idBytes: Uint8Array;
  /** canonical JSON of the unsigned form: hashed for the id, and the body of the signed message */
  unsignedBytes: Uint8Array;
}

export const LIMITS = {
  /** canonical bytes of a signed transaction */
  maxTxBytes: 8 * 1024,
  name: 200,
  orderId: 128,
  description: 1000,
  reason: 500,
  reference: 200,
  metadataEntries: 32,
  metadataKey: 64,
  metadataValue: 256,
  nonce: 64,
} as const;

export const CHAIN_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NONCE_RE = /^[A-Za-z0-9._:-]+$/;
const CURRENCY_RE = /^[A-Z]{3}$/;
const METADATA_KEY_RE = /^[A-Za-z0-9._-]+$/;

export function chainIdField(value: unknown, path: string): string {
  return str(value, path, {
    max: 64,
    pattern: CHAIN_ID_RE,
    patternText: 'lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
  });
}

function currency(value: unknown, path: string): string {
  return str(value, path, {
    max: 3,
    pattern: CURRENCY_RE,
    patternText: 'three capital letters A-Z, as ISO 4217 codes are (the list itself is not checked)',
  });
}

function key(value: unknown, path: string): string {
  return hex(value, path, 32);
}

function parsePayload(kind: TxKind, value: unknown): PayloadByKind[TxKind] {
  const p = '$.payload';
  switch (kind) {
    case 'participant.register': {
      const o = obj(value, p, ['participant', 'role', 'name']);
      return {
        participant: key(o.participant, `${p}.participant`),
        role: oneOf(o.role, `${p}.role`, ['merchant', 'affiliate'] as const),
        name: str(o.name, `${p}.name`, { max: LIMITS.name }),
      };
    }
    case 'commission.record': {
      const o = obj(
        value,
        p,
        ['merchant', 'affiliate', 'amount', 'currency', 'orderId', 'description'],
        ['metadata'],
      );
      const out: CommissionRecordPayload = {
        merchant: key(o.merchant, `${p}.merchant`),
        affiliate: key(o.affiliate, `${p}.affiliate`),
        amount: amount(o.amount, `${p}.amount`),
        currency: currency(o.currency, `${p}.currency`),
        orderId: str(o.orderId, `${p}.orderId`, { max: LIMITS.orderId }),
        description: str(o.description, `${p}.description`, { min: 0, max: LIMITS.description }),
      };
      if (o.metadata !== undefined) out.metadata = metadata(o.metadata, `${p}.metadata`);
      return out;
    }
    case 'commission.approve': {
      const o = obj(value, p, ['commission']);
      return { commission: key(o.commission, `${p}.commission`) };
    }
    case 'commission.reverse': {
      const o = obj(value, p, ['commission', 'amount', 'reason']);
      return {
        commission: key(o.commission, `${p}.commission`),
        amount: amount(o.amount, `${p}.amount`),
        reason: str(o.reason, `${p}.reason`, { max: LIMITS.reason }),
      };
    }
    case 'payout.record': {
      const o = obj(value, p, ['merchant', 'affiliate', 'amount', 'currency', 'reference']);
      return {
        merchant: key(o.merchant, `${p}.merchant`),
        affiliate: key(o.affiliate, `${p}.affiliate`),
        amount: amount(o.amount, `${p}.amount`),
        currency: currency(o.currency, `${p}.currency`),
        reference: str(o.reference, `${p}.reference`, { max: LIMITS.reference }),
      };
    }
    case 'member.add':
    case 'member.promote':
    case 'member.remove': {
      const o = obj(value, p, ['node']);
      return { node: key(o.node, `${p}.node`) };
    }
  }
}

function metadata(value: unknown, path: string): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError('INVALID_FIELD', 'must be an object of strings', path);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > LIMITS.metadataEntries) {
    throw new ValidationError('INVALID_FIELD', `must have at most ${LIMITS.metadataEntries} entries`, path);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    str(k, `${path} key`, {
      max: LIMITS.metadataKey,
      pattern: METADATA_KEY_RE,
      patternText: 'letters, digits, ".", "_" or "-"',
    });
    // JSON.parse makes "__proto__" an own key, but `out[k] =` would call the prototype's setter
    // and drop it: the node would hash and verify another text than the client signed (and the
    // auditor's fast path would see the signed one). Refused, as FORMAT.md says.
    if (k === '__proto__')
      throw new ValidationError('INVALID_FIELD', '"__proto__" is not allowed', `${path} key`);
    out[k] = str(v, `${path}.${k}`, { min: 0, max: LIMITS.metadataValue });
  }
  return out;
}

/**
 * Strict structural validation of an untrusted signed transaction: every field
 * present, typed and within limits, no unknown fields. It does not check the
 * signature (see `verifyTxSignature`) nor anything that depends on ledger state.
 */
export function parseTransaction(value: unknown, expectedChainId?: string): SignedTx {
  const o = obj(value, '$', ['v', 'kind', 'chainId', 'signer', 'nonce', 'timestamp', 'payload', 'signature']);
  if (o.v !== TX_VERSION) throw new ValidationError('UNSUPPORTED_VERSION', `must be ${TX_VERSION}`, '$.v');
  if (typeof o.kind !== 'string' || !(TX_KINDS as readonly string[]).includes(o.kind)) {
    throw new ValidationError('UNKNOWN_KIND', `must be one of ${TX_KINDS.join(', ')}`, '$.kind');
  }
  const kind = o.kind as TxKind;
  const chainId = chainIdField(o.chainId, '$.chainId');
  if (expectedChainId !== undefined && chainId !== expectedChainId) {
    throw new ValidationError(
      'WRONG_CHAIN',
      `is ${JSON.stringify(chainId)}, this network is ${JSON.stringify(expectedChainId)}`,
      '$.chainId',
    );
  }
  const tx = {
    v: TX_VERSION,
    kind,
    chainId,
    signer: key(o.signer, '$.signer'),
    nonce: str(o.nonce, '$.nonce', {
      max: LIMITS.nonce,
      pattern: NONCE_RE,
      patternText: 'letters, digits, ".", "_", ":" or "-"',
    }),
    timestamp: int(o.timestamp, '$.timestamp', 0),
    payload: parsePayload(kind, o.payload),
    signature: hex(o.signature, '$.signature', 64),
  } as SignedTx;
  return tx;
}

/**
 * The signed form's canonical text is the unsigned form's with this member
 * inserted before the top-level "signer" (keys sorted: "signature" <
 * "signer"; only "timestamp" and "v", numbers, follow "signer", so the last
 * `,"signer":"` in the text is the top-level one).
 */
export const SIGNATURE_MEMBER = ',"signature":"';
/** canonical bytes of the signed form = unsigned form + `,"signature":"<128 hex>"` (14 + 128 + 1) */
export const SIGNATURE_FIELD_BYTES = SIGNATURE_MEMBER.length + 128 + 1;

const SIGNER_MEMBER = Buffer.from(',"signer":"');
const textEncoder = new TextEncoder();

/** The canonical signed form of a decoded transaction, in three parts, without canonicalising it again. */
export function signedTxParts(dtx: DecodedTx): [Uint8Array, Uint8Array, Uint8Array] {
  const u = dtx.unsignedBytes;
  const at = Buffer.from(u.buffer, u.byteOffset, u.byteLength).lastIndexOf(SIGNER_MEMBER);
  return [u.subarray(0, at), textEncoder.encode(`${SIGNATURE_MEMBER}${dtx.tx.signature}"`), u.subarray(at)];
}

/** The canonical signed form of a decoded transaction (= canonicalBytes(dtx.tx)). */
export function signedTxBytes(dtx: DecodedTx): Uint8Array {
  return Buffer.concat(signedTxParts(dtx));
}

export function unsignedPart(tx: SignedTx): UnsignedTx {
  const { signature: _sig, ...rest } = tx;
  return rest;
}

/** id = SHA-256(canonical JSON of the unsigned transaction). */
export function txIdBytes(unsigned: UnsignedTx): Uint8Array {
  return sha256(canonicalBytes(unsigned));
}

export function txId(unsigned: UnsignedTx): string {
  return toHex(txIdBytes(unsigned));
}

export function txSigningMessage(unsigned: UnsignedTx): Uint8Array {
  return signingMessage('tx', unsigned.chainId, unsigned);
}

export function signTransaction(unsigned: UnsignedTx, secretKey: Uint8Array): SignedTx {
  const signature = toHex(sign(txSigningMessage(unsigned), secretKey));
  return { ...unsigned, signature };
}

export function verifyTxSignature(tx: SignedTx): boolean {
  return verify(fromHex(tx.signature), txSigningMessage(unsignedPart(tx)), fromHex(tx.signer));
}

/**
 * Canonicalise once, hash for the id, and enforce the size limit (on the
 * canonical signed form: LIMITS.maxTxBytes).
 */
export function decodeTx(tx: SignedTx): DecodedTx {
  const unsignedBytes = canonicalBytes(unsignedPart(tx));
  if (unsignedBytes.length + SIGNATURE_FIELD_BYTES > LIMITS.maxTxBytes) {
    throw new ValidationError(
      'TOO_LARGE',
      `a transaction is at most ${LIMITS.maxTxBytes} canonical bytes`,
      '$',
    );
  }
  const idBytes = sha256(unsignedBytes);
  return { tx, id: toHex(idBytes), idBytes, unsignedBytes };
}

/**
 * Where the signature member starts in a transaction's canonical signed
 * text, or -1 when the text does not end that way. Keys are sorted, so it is
 * the last `,"signature":"`: only "signer", "timestamp" and "v" follow it (a
 * hex string and two numbers); removing it leaves the unsigned form.
 */
export function signatureMemberAt(signedText: string): number {
  const at = signedText.lastIndexOf(SIGNATURE_MEMBER);
  return at >= 0 && signedText.charCodeAt(at + SIGNATURE_FIELD_BYTES - 1) === 0x22 ? at : -1;
}

/**
 * decodeTx for a transaction whose canonical signed text is at hand, as in a
 * node's own store: the unsigned form is cut from that text instead of
 * canonicalising the value again. The caller vouches that `signedText` is
 * canonical (for a value parsed from canonical bytes, `JSON.stringify`
 * reproduces them); a wrong id would show as a wrong transaction root when
 * the block is processed. Undefined when the text has no signature member.
 */
export function decodeCanonicalTx(tx: SignedTx, signedText: string): DecodedTx | undefined {
  const at = signatureMemberAt(signedText);
  if (at < 0) return undefined;
  const unsignedText = signedText.slice(0, at) + signedText.slice(at + SIGNATURE_FIELD_BYTES);
  // hashed from the scratch buffer (consumed before this returns); see CanonicalTx
  if (unsignedText.length * 3 > canonicalScratch.length)
    canonicalScratch = Buffer.allocUnsafeSlow(unsignedText.length * 3); // UTF-8 bytes per code unit, at most
  const n = canonicalScratch.write(unsignedText, 0, 'utf8');
  const idBytes = sha256(canonicalScratch.subarray(0, n));
  return new CanonicalTx(tx, toHex(idBytes), idBytes, unsignedText);
}

/** where decodeCanonicalTx encodes a transaction's unsigned text to hash it; grows, never shrinks */
let canonicalScratch = Buffer.allocUnsafeSlow(16 * 1024);

/**
 * A DecodedTx from decodeCanonicalTx: its unsigned bytes are encoded from the
 * unsigned text when first read (a getter on the prototype, so read it as a
 * property; a spread copy of the object would not have it). Their only
 * reader on the sink's path, the id, hashes them from a scratch buffer: as a
 * Uint8Array of its own, each transaction's ~300 bytes were an off-heap
 * backing store (~1 µs to allocate and free, docs/PERFORMANCE.md).
 */
class CanonicalTx implements DecodedTx {
  private bytes: Uint8Array | undefined;

  constructor(
    public tx: SignedTx,
    public id: string,
    public idBytes: Uint8Array,
    private readonly unsignedText: string,
  ) {}

  get unsignedBytes(): Uint8Array {
    return (this.bytes ??= textEncoder.encode(this.unsignedText));
  }
}

/** The signed message of a decoded transaction, without canonicalising it again. */
export function decodedTxSigningMessage(dtx: DecodedTx): Uint8Array {
  return signingMessageFromBody('tx', dtx.tx.chainId, dtx.unsignedBytes);
}

/**
 * Parse, check the signature, and compute the id: what a node does with a
 * transaction from the outside world before it may enter a mempool.
 */
export function acceptTransaction(value: unknown, chainId: string): DecodedTx {
  const dtx = decodeTx(parseTransaction(value, chainId));
  if (!verify(fromHex(dtx.tx.signature), decodedTxSigningMessage(dtx), fromHex(dtx.tx.signer))) {
    throw new ValidationError('BAD_SIGNATURE', 'does not verify for the signer key', '$.signature');
  }
  return dtx;
}

/**
 * What a node does with a transaction gossiped by another member: parse and
 * compute the id, but leave the signature for later (see LedgerNode: the
 * leader checks it before proposing). Saves one verification per node per
 * transaction on the hot path.
 */
export function decodeUntrustedTransaction(value: unknown, chainId: string): DecodedTx {
  return decodeTx(parseTransaction(value, chainId));
}

const SIGNATURE_MEMBER_BUF = Buffer.from(SIGNATURE_MEMBER);

/**
 * The signature (hex) of a transaction given as its canonical signed JSON,
 * found without parsing: the last `,"signature":"` is the top-level member,
 * since only "signer", "timestamp" and "v" sort after it. For recognising a
 * copy of a transaction already held; anything unexpected gives undefined.
 */
export function signatureOfCanonicalTx(bytes: Uint8Array): string | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = b.lastIndexOf(SIGNATURE_MEMBER_BUF);
  if (at < 0) return undefined;
  const start = at + SIGNATURE_MEMBER_BUF.length;
  if (start + 129 > b.length || b[start + 128] !== 0x22) return undefined;
  return b.toString('latin1', start, start + 128);
}

export function verifyDecodedTx(dtx: DecodedTx): boolean {
  return verify(fromHex(dtx.tx.signature), decodedTxSigningMessage(dtx), fromHex(dtx.tx.signer));
}
