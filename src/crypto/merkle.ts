import { bytesEqual } from '../codec/index.js';
import { sha256, sha256One } from './hash.js';

/**
 * RFC 6962 / RFC 9162 Merkle trees with SHA-256 (docs/CRYPTO.md §Merkle).
 *
 *   leaf hash  = SHA-256(0x00 || leaf bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *   MTH(D[n])  = node hash(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *
 * Every function below takes leaf HASHES. Sizes and indices are JavaScript
 * numbers up to 2^53 − 1, so the arithmetic avoids 32-bit bitwise operators.
 *
 * Errors: a bad argument from our own code (index out of range, a hash that
 * is not 32 bytes) throws RangeError; the verifiers take outside input and
 * answer false instead of throwing.
 */

export const HASH_BYTES = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

// Inputs are assembled in buffers reused by every call (hashing reads them
// synchronously): a fresh 65-byte array per node would live off V8's heap,
// and its allocation cost as much as the hash (PERFORMANCE.md, round 15).
const leafScratch = new Uint8Array(1 + HASH_BYTES);
const nodeScratch = new Uint8Array(1 + 2 * HASH_BYTES);

/** A run of leaves [start, start + size) whose RFC 6962 root a proof needs. */
export interface LeafRange {
  start: number;
  size: number;
}

/** SHA-256(0x00 || data): the hash of one leaf. The ledger's leaf is a 32-byte transaction id. */
export function leafHash(data: Uint8Array): Uint8Array {
  const buf = data.length === HASH_BYTES ? leafScratch : new Uint8Array(1 + data.length);
  buf[0] = LEAF_PREFIX;
  buf.set(data, 1);
  return sha256One(buf);
}

/** SHA-256(0x01 || left || right): the hash of an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES) {
    throw new RangeError('Merkle child hashes must be 32 bytes');
  }
  const buf = nodeScratch;
  buf[0] = NODE_PREFIX;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_BYTES);
  return sha256One(buf);
}

/** The root of the empty tree, SHA-256(""). */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** MTH(D[n]) of the given leaf hashes. */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  assertHashes(leafHashes, 'leaf hash');
  if (leafHashes.length === 0) return emptyRoot();
  // Pairing level by level, carrying an odd last node up unchanged, builds
  // exactly the RFC tree: it is left-complete, with every left subtree a
  // perfect power of two.
  let level: Uint8Array[] = [...leafHashes];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return Uint8Array.from(level[0]!);
}

/** The RFC 6962 audit path PATH(index, D[n]), leaf side first. */
export function inclusionProof(index: number, leafHashes: readonly Uint8Array[]): Uint8Array[] {
  return inclusionProofRanges(index, leafHashes.length).map((r) => rangeRoot(r, leafHashes));
}

/** The RFC 6962 consistency proof PROOF(m, D[n]); empty when m = 0 or m = n. */
export function consistencyProof(m: number, leafHashes: readonly Uint8Array[]): Uint8Array[] {
  return consistencyProofRanges(m, leafHashes.length).map((r) => rangeRoot(r, leafHashes));
}

function rangeRoot(r: LeafRange, leafHashes: readonly Uint8Array[]): Uint8Array {
  return merkleRoot(leafHashes.slice(r.start, r.start + r.size));
}

/**
 * The leaf ranges whose roots make up PATH(index, D[size]), in proof order
 * (RFC 6962 §2.1.1 / RFC 9162 §2.1.3.1):
 *
 *   PATH(m, D[1]) = {}
 *   PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])     if m < k
 *                 = PATH(m − k, D[k:n]) : MTH(D[0:k]) if m ≥ k
 */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  assertSize(size);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new RangeError(`leaf index ${index} is not in a tree of size ${size}`);
  }
  const out: LeafRange[] = [];
  // Walk from the root down; prepend, so the deepest sibling comes first.
  let m = index;
  let start = 0;
  let n = size;
  while (n > 1) {
    const k = largestPowerOfTwoBelow(n);
    if (m < k) {
      out.unshift({ start: start + k, size: n - k });
      n = k;
    } else {
      out.unshift({ start, size: k });
      m -= k;
      start += k;
      n -= k;
    }
  }
  return out;
}

/**
 * The leaf ranges whose roots make up PROOF(m, D[n]), in proof order
 * (RFC 6962 §2.1.2 / RFC 9162 §2.1.4.1):
 *
 *   PROOF(m, D[n])          = SUBPROOF(m, D[n], true)
 *   SUBPROOF(m, D[m], true) = {}
 *   SUBPROOF(m, D[m], false) = {MTH(D[m])}
 *   SUBPROOF(m, D[n], b)    = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])         if m ≤ k
 *                           = SUBPROOF(m − k, D[k:n], false) : MTH(D[0:k]) if m > k
 *
 * The RFC defines it for 0 < m < n; for m = 0 and m = n the proof is empty
 * (see verifyConsistency).
 */
export function consistencyProofRanges(m: number, n: number): LeafRange[] {
  assertSize(n);
  if (!Number.isSafeInteger(m) || m < 0 || m > n) {
    throw new RangeError(`tree size ${m} is not between 0 and ${n}`);
  }
  if (m === 0 || m === n) return [];
  const out: LeafRange[] = [];
  let start = 0;
  let size = n;
  let first = m;
  let whole = true; // the "b" flag: still on the path of the old tree's root
  while (first !== size) {
    const k = largestPowerOfTwoBelow(size);
    if (first <= k) {
      out.unshift({ start: start + k, size: size - k });
      size = k;
    } else {
      out.unshift({ start, size: k });
      first -= k;
      start += k;
      size -= k;
      whole = false;
    }
  }
  if (!whole) out.unshift({ start, size });
  return out;
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show that `leaf` (a leaf hash) is at
 * `index` in the tree of `treeSize` leaves whose root is `root`?
 * Never throws; malformed input answers false.
 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isHash(leaf) || !isHash(root) || !isProof(proof)) return false;
  if (!isCount(index) || !isCount(treeSize) || index >= treeSize) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && bytesEqual(r, root);
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of `m` leaves with root
 * `rootM` is a prefix of the tree of `n` leaves with root `rootN`?
 *
 * The RFC's algorithm covers 0 < m < n. At the edges (docs/CRYPTO.md):
 *  - m = n: true iff the proof is empty and rootM = rootN;
 *  - m = 0: true iff the proof is empty and rootM = SHA-256("") (the empty
 *    tree is a prefix of every tree), and when n = 0 also rootN = rootM.
 * Never throws; malformed input answers false.
 */
export function verifyConsistency(
  m: number,
  n: number,
  rootM: Uint8Array,
  rootN: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isHash(rootM) || !isHash(rootN) || !isProof(proof)) return false;
  if (!isCount(m) || !isCount(n) || m > n) return false;
  if (m === 0)
    return proof.length === 0 && bytesEqual(rootM, emptyRoot()) && (n > 0 || bytesEqual(rootN, rootM));
  if (m === n) return proof.length === 0 && bytesEqual(rootM, rootN);
  // 1. An empty proof fails.
  if (proof.length === 0) return false;
  // 2. If m is an exact power of two, the old root itself starts the path.
  const path = isPowerOfTwo(m) ? [rootM, ...proof] : [...proof];
  // 3.
  let fn = m - 1;
  let sn = n - 1;
  // 4.
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return sn === 0 && bytesEqual(fr, rootM) && bytesEqual(sr, rootN);
}

/** The largest power of two strictly less than n (n ≥ 2). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function isPowerOfTwo(n: number): boolean {
  return n === 1 || (n > 1 && largestPowerOfTwoBelow(n) * 2 === n);
}

function half(n: number): number {
  return Math.floor(n / 2);
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function assertSize(n: number): void {
  if (!isCount(n)) throw new RangeError(`tree size ${n} is not a non-negative safe integer`);
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_BYTES;
}

function isProof(proof: unknown): proof is readonly Uint8Array[] {
  return Array.isArray(proof) && proof.every(isHash);
}

function assertHashes(hashes: readonly Uint8Array[], what: string): void {
  for (const h of hashes) if (!isHash(h)) throw new RangeError(`${what} must be 32 bytes`);
}
