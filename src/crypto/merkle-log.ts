import {
  HASH_BYTES,
  consistencyProofRanges,
  emptyRoot,
  inclusionProofRanges,
  nodeHash,
  type LeafRange,
} from './merkle.js';

/**
 * The whole-ledger Merkle log: one append-only RFC 6962 tree over every
 * transaction ever committed (docs/CRYPTO.md §Merkle log).
 *
 * The tree is kept as its PERFECT subtrees only. Node (level, index) is the
 * root of leaves [index·2^level, (index+1)·2^level); level 0 holds the leaf
 * hashes. Such a node never changes once its last leaf is appended, so it is
 * written once and never rewritten. A tree of any size is a sequence of
 * perfect subtrees, one per set bit of the size (largest first), and its RFC
 * 6962 root is their right fold:
 *
 *   root = nodeHash(peak_0, nodeHash(peak_1, … nodeHash(peak_{j-1}, peak_j)))
 *
 * Appending is a binary counter: O(1) amortised hashes and new nodes per leaf
 * (on average one node hash and two nodes), no reads. Proofs for any
 * historical size read O(log² n) stored nodes in the worst case.
 */

/** The roots of the perfect subtrees that make up leaves [0, size), left to right. */
export interface MerkleFrontier {
  size: number;
  peaks: Uint8Array[];
}

/** A perfect-subtree node to persist: the root of leaves [index·2^level, (index+1)·2^level). */
export interface MerkleNode {
  level: number;
  index: number;
  hash: Uint8Array;
}

/** Where proofs read stored nodes from. Must reject when a node is missing. */
export interface MerkleNodeReader {
  getNode(level: number, index: number): Promise<Uint8Array>;
}

export function emptyFrontier(): MerkleFrontier {
  return { size: 0, peaks: [] };
}

/**
 * Append leaf hashes. Pure: the input frontier is not changed. Returns the new
 * frontier and every perfect-subtree node that the appended leaves complete
 * (their own level-0 nodes included), in creation order. Hashes are not
 * copied.
 */
export function appendLeaves(
  frontier: MerkleFrontier,
  leafHashes: readonly Uint8Array[],
): { frontier: MerkleFrontier; nodes: MerkleNode[] } {
  assertFrontier(frontier);
  const peaks = [...frontier.peaks];
  const nodes: MerkleNode[] = [];
  let size = frontier.size;
  if (size + leafHashes.length > Number.MAX_SAFE_INTEGER) throw new RangeError('Merkle log is full');
  for (const leaf of leafHashes) {
    if (leaf.length !== HASH_BYTES) throw new RangeError('leaf hash must be 32 bytes');
    let hash = leaf;
    let level = 0;
    let index = size;
    nodes.push({ level, index, hash });
    // Each trailing 1 bit of the old size is a peak of the same height as
    // the subtree being built: merge them (binary carry).
    for (let carry = size; carry % 2 === 1; carry = half(carry)) {
      hash = nodeHash(peaks.pop()!, hash);
      level += 1;
      index = half(index);
      nodes.push({ level, index, hash });
    }
    peaks.push(hash);
    size += 1;
  }
  return { frontier: { size, peaks }, nodes };
}

/** The RFC 6962 root of the first `frontier.size` leaves (SHA-256("") when empty). */
export function frontierRoot(frontier: MerkleFrontier): Uint8Array {
  assertFrontier(frontier);
  return foldPeaks(frontier.peaks);
}

/** The frontier of the first `size` leaves, read from stored nodes (popcount(size) reads). */
export async function frontierFromNodes(size: number, reader: MerkleNodeReader): Promise<MerkleFrontier> {
  assertCount(size, 'tree size');
  const peaks = await readNodes(perfectParts({ start: 0, size }), reader);
  return { size, peaks };
}

/** The RFC 6962 root of the first `size` leaves, from stored nodes. */
export async function rootFromNodes(size: number, reader: MerkleNodeReader): Promise<Uint8Array> {
  assertCount(size, 'tree size');
  if (size === 0) return emptyRoot();
  return rangeRoot({ start: 0, size }, reader);
}

/** PATH(index, D[size]) as merkle.ts inclusionProof gives it, from stored nodes. */
export async function inclusionProofFromNodes(
  index: number,
  size: number,
  reader: MerkleNodeReader,
): Promise<Uint8Array[]> {
  return Promise.all(inclusionProofRanges(index, size).map((r) => rangeRoot(r, reader)));
}

/** PROOF(m, D[n]) as merkle.ts consistencyProof gives it, from stored nodes. */
export async function consistencyProofFromNodes(
  m: number,
  n: number,
  reader: MerkleNodeReader,
): Promise<Uint8Array[]> {
  return Promise.all(consistencyProofRanges(m, n).map((r) => rangeRoot(r, reader)));
}

/** An in-memory node store (tests, tools). */
export class MemoryMerkleNodes implements MerkleNodeReader {
  readonly #nodes = new Map<string, Uint8Array>();

  put(nodes: readonly MerkleNode[]): void {
    for (const n of nodes) this.#nodes.set(key(n.level, n.index), n.hash);
  }

  getNode(level: number, index: number): Promise<Uint8Array> {
    const hash = this.#nodes.get(key(level, index));
    if (hash === undefined) return Promise.reject(new RangeError(`missing Merkle node ${level}/${index}`));
    return Promise.resolve(hash);
  }

  get count(): number {
    return this.#nodes.size;
  }
}

function key(level: number, index: number): string {
  return `${level}/${index}`;
}

/**
 * The root of a run of leaves that occurs in the RFC recursion: it starts at a
 * multiple of the smallest power of two ≥ its size, so it splits into aligned
 * perfect subtrees, one per set bit of its size, largest first.
 */
async function rangeRoot(range: LeafRange, reader: MerkleNodeReader): Promise<Uint8Array> {
  return foldPeaks(await readNodes(perfectParts(range), reader));
}

function perfectParts(range: LeafRange): { level: number; index: number }[] {
  const parts: { level: number; index: number }[] = [];
  let start = range.start;
  let width = 1;
  let level = 0;
  while (width * 2 <= range.size) {
    width *= 2;
    level += 1;
  }
  for (; level >= 0; level -= 1, width /= 2) {
    if (Math.floor(range.size / width) % 2 === 0) continue;
    if (start % width !== 0) throw new RangeError(`leaf range at ${range.start} is not aligned`);
    parts.push({ level, index: start / width });
    start += width;
  }
  return parts;
}

async function readNodes(
  parts: { level: number; index: number }[],
  reader: MerkleNodeReader,
): Promise<Uint8Array[]> {
  const hashes = await Promise.all(parts.map((p) => reader.getNode(p.level, p.index)));
  for (const h of hashes)
    if (h.length !== HASH_BYTES) throw new RangeError('stored Merkle node is not 32 bytes');
  return hashes;
}

function foldPeaks(peaks: readonly Uint8Array[]): Uint8Array {
  if (peaks.length === 0) return emptyRoot();
  let root = peaks[peaks.length - 1]!;
  for (let j = peaks.length - 2; j >= 0; j--) root = nodeHash(peaks[j]!, root);
  return Uint8Array.from(root);
}

function assertFrontier(f: MerkleFrontier): void {
  assertCount(f.size, 'frontier size');
  if (f.peaks.length !== popcount(f.size)) {
    throw new RangeError(`a frontier of size ${f.size} has ${popcount(f.size)} peaks, not ${f.peaks.length}`);
  }
  for (const p of f.peaks)
    if (p.length !== HASH_BYTES) throw new RangeError('frontier peaks must be 32 bytes');
}

function assertCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${what} ${n} is not a non-negative safe integer`);
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = half(x)) c += x % 2;
  return c;
}

function half(n: number): number {
  return Math.floor(n / 2);
}
