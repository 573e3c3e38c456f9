import { signingPrefix, toHex } from '../codec/index.js';
import { sha256 } from '../crypto/index.js';
import {
  LIMITS,
  parseBlock,
  SIGNATURE_FIELD_BYTES,
  signatureMemberAt,
  type Block,
  type DecodedBlock,
  type DecodedTx,
} from '../ledger/index.js';
import type { SignaturePool } from './signature-pool.js';

/**
 * The auditor's fast path for one stored (non-genesis) block: the same
 * verdict as parse → canonicalise every transaction → compare with the stored
 * bytes (verify.ts `decodeStored`), for a fraction of the work, and the
 * block's signature checks written straight into the signature pool.
 *
 * Why it is exact. After `parseBlock` accepted the JSON, every string in it is
 * well-formed (schema `str`/`hex`/`oneOf`), every number a safe integer, and
 * there are no arrays but `txs`, no null and no boolean. For such a value,
 * canonical JSON (RFC 8785) and `JSON.stringify` differ only in the order of
 * object keys: canonical JSON sorts them, `JSON.stringify` keeps the parsed
 * order. So when every object's keys are in strictly ascending order (checked)
 * and `JSON.stringify` of the parsed value reproduces the stored text exactly
 * (checked: this also rules out white space, other escapes, duplicate keys,
 * `-0`, `1.0` and `1e3`), the stored text is the canonical encoding. The
 * text is decoded strictly (invalid UTF-8 or a byte-order mark is no match),
 * so equal text means equal bytes. `parseBlock` returns exactly the parsed
 * values, so this is the canonical encoding of the parsed block too.
 *
 * A transaction's canonical text is its part of the block's text; its
 * unsigned form is that text without the top-level `,"signature":"…"`
 * member, which is the last occurrence of that sequence (keys are sorted:
 * only "signer", "timestamp" and "v" follow it, a hex string and two
 * numbers). That unsigned text is written once, into the signed message in
 * the pool's batch buffer, and hashed there for the transaction id.
 *
 * Anything unusual (genesis, any doubt at all) returns undefined and the
 * caller takes the exact slow path, which also produces the error message.
 * Nothing is written to the pool before every check has passed.
 */

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Fast-path transactions carry no unsigned bytes: nothing in the audit reads them. */
const NO_BYTES = new Uint8Array(0);

interface RawBlock {
  header: Record<string, unknown>;
  signature: string;
  txs: Record<string, unknown>[];
}

export function decodeStoredFast(
  height: number,
  bytes: Uint8Array,
  pool: SignaturePool,
  tag: (height: number, index: number) => number,
): DecodedBlock | undefined {
  if (height === 0) return undefined;
  let text: string;
  let raw: RawBlock;
  let block: Block;
  try {
    text = strict.decode(bytes);
    raw = JSON.parse(text) as RawBlock;
    block = parseBlock(raw);
  } catch {
    return undefined;
  }
  if (block.header.height !== height || block.config !== undefined) return undefined;
  if (!sortedKeys(raw)) return undefined;
  const n = raw.txs.length;
  const header = JSON.stringify(raw.header);
  const txTexts = new Array<string>(n);
  const cuts = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t = JSON.stringify(raw.txs[i]);
    const at = signatureMemberAt(t);
    if (at < 0) return undefined;
    if (Buffer.byteLength(t) > LIMITS.maxTxBytes) return undefined; // the signed canonical text itself
    txTexts[i] = t;
    cuts[i] = at;
  }
  if (!isBlockText(text, `{"header":${header},"signature":"${raw.signature}","txs":[`, txTexts))
    return undefined;

  // Canonical: write the signed messages, hash the header and each unsigned form in place.
  const chainId = block.header.chainId;
  pool.beginMessage();
  pool.writeAscii(signingPrefix('block', chainId));
  const h0 = pool.writeUtf8(header);
  const hash = toHex(sha256(pool.view(h0, pool.offset)));
  pool.endMessage(tag(height, -1), block.signature, block.header.proposer);
  const txs = new Array<DecodedTx>(n);
  let prefixChain = '';
  let prefix = '';
  for (let i = 0; i < n; i++) {
    const tx = block.txs[i]!;
    if (tx.chainId !== prefixChain) {
      prefixChain = tx.chainId;
      prefix = signingPrefix('tx', tx.chainId);
    }
    const t = txTexts[i]!;
    const at = cuts[i]!;
    pool.beginMessage();
    pool.writeAscii(prefix);
    const u0 = pool.writeUtf8(t.slice(0, at));
    pool.writeUtf8(t.slice(at + SIGNATURE_FIELD_BYTES));
    const idBytes = sha256(pool.view(u0, pool.offset));
    pool.endMessage(tag(height, i), tx.signature, tx.signer);
    txs[i] = { tx, id: toHex(idBytes), idBytes, unsignedBytes: NO_BYTES };
  }
  return { block, hash, txs };
}

/**
 * text === `${head}${txTexts.join(',')}]}`, compared piece by piece: the
 * joined string of a large block is a large object of the JavaScript heap,
 * fresh pages whose first touch is a page fault each (~13 µs on the project's
 * machine, docs/PERFORMANCE.md), and comparing it with `text` flattened it
 * into another one.
 */
function isBlockText(text: string, head: string, txTexts: readonly string[]): boolean {
  let length = head.length + 2 + Math.max(0, txTexts.length - 1);
  for (const t of txTexts) length += t.length;
  if (text.length !== length || !text.startsWith(head)) return false;
  let at = head.length;
  for (let i = 0; i < txTexts.length; i++) {
    if (i > 0) {
      if (text.charCodeAt(at) !== COMMA) return false;
      at++;
    }
    const t = txTexts[i]!;
    if (!text.startsWith(t, at)) return false;
    at += t.length;
  }
  return text.endsWith(']}');
}

const COMMA = 0x2c;

/** Every object's keys in strictly ascending UTF-16 order, all the way down. */
function sortedKeys(v: unknown): boolean {
  if (Array.isArray(v)) {
    for (const x of v) if (typeof x === 'object' && x !== null && !sortedKeys(x)) return false;
    return true;
  }
  const o = v as Record<string, unknown>;
  let prev: string | undefined;
  for (const k in o) {
    if (prev !== undefined && !(prev < k)) return false;
    prev = k;
    const x = o[k];
    if (typeof x === 'object' && x !== null && !sortedKeys(x)) return false;
  }
  return true;
}
