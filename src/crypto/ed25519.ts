import {
  createPrivateKey,
  createPublicKey,
  sign as osslSign,
  verify as osslVerify,
  type KeyObject,
} from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

ed.hashes.sha512 = sha512;

/**
 * Ed25519 with ONE verification rule for the whole product (docs/CRYPTO.md
 * §2): strict RFC 8032 as @noble/ed25519 implements it with
 * `{ zip215: false }`:
 *
 *  - S must be canonical (S < L);
 *  - A and R must be canonical encodings (y < p, and no "negative zero" x);
 *  - A must not be a small-order point (the 8 torsion points);
 *  - the cofactored equation [8][S]B = [8]R + [8][k]A must hold.
 *
 * Nodes, the CLI and auditors must never disagree on validity, so the noble
 * implementation is the definition. OpenSSL (node:crypto) is used as a fast
 * path: it checks the cofactorless equation [S]B = R + [k]A, which implies
 * the cofactored one, so an OpenSSL "valid" after our own encoding checks is a
 * noble "valid". An OpenSSL "invalid" is re-checked by noble, so signatures
 * that only the cofactored equation accepts (torsion components a signer can
 * only craft on purpose) still get noble's answer. Invalid signatures
 * therefore cost one noble verification (~1 ms): callers that accept
 * unauthenticated input should bound how many they check.
 */

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export interface KeyPair {
  /** The 32-byte RFC 8032 seed ("private key"). */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function generateKeyPair(): KeyPair {
  const { secretKey, publicKey } = ed.keygen();
  return { secretKey, publicKey };
}

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();
const derivedPublicKeys = new Map<string, Uint8Array>();
const KEY_CACHE_LIMIT = 10_000;

function cached(cache: Map<string, KeyObject>, raw: Uint8Array, make: () => KeyObject): KeyObject {
  const id = Buffer.from(raw).toString('hex');
  let key = cache.get(id);
  if (key === undefined) {
    if (cache.size >= KEY_CACHE_LIMIT) cache.clear();
    key = make();
    cache.set(id, key);
  }
  return key;
}

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  return cached(privateKeys, secretKey, () =>
    createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' }),
  );
}

/**
 * The public key of a 32-byte seed. Derived by OpenSSL and remembered per
 * seed: a block leader asks for its own key on every block, and noble's
 * BigInt scalar multiplication costs about a millisecond. A test checks it
 * against noble on the RFC 8032 vectors.
 */
export function publicKeyFromSecret(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== SECRET_KEY_BYTES) throw new RangeError('secret key must be 32 bytes');
  const id = Buffer.from(secretKey).toString('hex');
  let pub = derivedPublicKeys.get(id);
  if (pub === undefined) {
    const spki = createPublicKey(privateKeyObject(secretKey)).export({ format: 'der', type: 'spki' });
    pub = new Uint8Array(spki.subarray(SPKI_PREFIX.length));
    if (derivedPublicKeys.size >= KEY_CACHE_LIMIT) derivedPublicKeys.clear();
    derivedPublicKeys.set(id, pub);
  }
  return pub.slice();
}

/** Deterministic RFC 8032 signature (OpenSSL and noble produce the same bytes). */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== SECRET_KEY_BYTES) throw new RangeError('secret key must be 32 bytes');
  return new Uint8Array(osslSign(null, message, privateKeyObject(secretKey)));
}

/** The reference: noble in strict mode. Exported for tests and independent checks. */
export function verifyReference(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** Verify under the product's rule (see above). Never throws. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  if (!isCanonicalScalar(signature.subarray(32))) return false;
  if (!isCanonicalPoint(publicKey) || !isCanonicalPoint(signature.subarray(0, 32))) return false;
  if (isSmallOrderEncoding(publicKey)) return false;
  let fast = false;
  try {
    const key = cached(publicKeys, publicKey, () =>
      createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }),
    );
    fast = osslVerify(null, message, key, signature);
  } catch {
    fast = false;
  }
  return fast || verifyReference(signature, message, publicKey);
}

// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');
// p = 2^255 - 19, little-endian.
const P = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex');

/** value (little-endian) < bound (little-endian)? */
function lessThanLE(value: Uint8Array, bound: Uint8Array): boolean {
  for (let i = value.length - 1; i >= 0; i--) {
    const a = value[i]!;
    const b = bound[i]!;
    if (a !== b) return a < b;
  }
  return false;
}

function isCanonicalScalar(s: Uint8Array): boolean {
  return lessThanLE(s, L);
}

/** y < p, ignoring the sign bit of x (the top bit of the last byte). */
function isCanonicalPoint(enc: Uint8Array): boolean {
  const y = Uint8Array.from(enc);
  y[31] = y[31]! & 0x7f;
  return lessThanLE(y, P);
}

// The 8 small-order points in canonical form, plus the two "x = 0 with the
// sign bit set" spellings of y = 1 and y = p − 1. A test checks this list
// against noble's Point.isSmallOrder().
export const SMALL_ORDER_ENCODINGS: ReadonlySet<string> = new Set([
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
]);

function isSmallOrderEncoding(enc: Uint8Array): boolean {
  return SMALL_ORDER_ENCODINGS.has(Buffer.from(enc).toString('hex'));
}
