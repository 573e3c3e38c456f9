import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MemoryMerkleNodes,
  appendLeaves,
  consistencyProofFromNodes,
  emptyFrontier,
  frontierFromNodes,
  frontierRoot,
  inclusionProofFromNodes,
  rootFromNodes,
  type MerkleFrontier,
  type MerkleNode,
} from '../../../src/crypto/merkle-log.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from '../../../src/crypto/merkle.js';
import { bytesToHex, flipBit, hexToBytes, readVectors } from './helpers.js';

interface MerkleVectors {
  leaves: string[];
  roots: string[];
  nodes: string[][];
}

const vectors = readVectors<MerkleVectors>('merkle.json');
const ctLeaves = vectors.leaves.map((l) => leafHash(hexToBytes(l)));

function distinctLeaves(count: number, salt: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => leafHash(new TextEncoder().encode(`tx ${salt} ${i}`)));
}

/** Appends `leaves` in batches of the given sizes (cycled), storing every new node. */
function build(
  leaves: Uint8Array[],
  batches: number[],
): { frontier: MerkleFrontier; store: MemoryMerkleNodes; roots: Map<number, Uint8Array> } {
  const store = new MemoryMerkleNodes();
  const roots = new Map<number, Uint8Array>();
  let frontier = emptyFrontier();
  let at = 0;
  for (let b = 0; at < leaves.length; b++) {
    const take = Math.min(batches[b % batches.length]!, leaves.length - at);
    const appended = appendLeaves(frontier, leaves.slice(at, at + take));
    store.put(appended.nodes);
    frontier = appended.frontier;
    at += take;
    roots.set(at, frontierRoot(frontier));
  }
  return { frontier, store, roots };
}

describe('whole-ledger Merkle log: Certificate Transparency test data', () => {
  it('creates exactly the published perfect-subtree nodes, one leaf at a time', () => {
    let frontier = emptyFrontier();
    const created: MerkleNode[] = [];
    for (let n = 0; n < ctLeaves.length; n++) {
      expect(bytesToHex(frontierRoot(frontier))).toBe(vectors.roots[n]);
      const appended = appendLeaves(frontier, [ctLeaves[n]!]);
      created.push(...appended.nodes);
      frontier = appended.frontier;
    }
    expect(bytesToHex(frontierRoot(frontier))).toBe(vectors.roots[8]);
    const published = vectors.nodes.flatMap((row, level) =>
      row.map((hash, index) => ({ level, index, hash })),
    );
    const ours = created.map((n) => ({ level: n.level, index: n.index, hash: bytesToHex(n.hash) }));
    const order = (a: { level: number; index: number }, b: { level: number; index: number }): number =>
      a.level - b.level || a.index - b.index;
    expect(ours.sort(order)).toEqual(published.sort(order));
  });

  it('keeps one peak per set bit of the size (the compact range)', () => {
    // transparency-dev testonly.CompactTrees: size 7 = 4 + 2 + 1.
    const { frontier } = appendLeaves(emptyFrontier(), ctLeaves.slice(0, 7));
    expect(frontier.peaks.map(bytesToHex)).toEqual([
      vectors.nodes[2]![0],
      vectors.nodes[1]![2],
      vectors.nodes[0]![6],
    ]);
  });
});

describe('whole-ledger Merkle log: unit behaviour', () => {
  it('is pure: the input frontier is left untouched', () => {
    const first = appendLeaves(emptyFrontier(), ctLeaves.slice(0, 3)).frontier;
    const snapshot = { size: first.size, peaks: first.peaks.map(bytesToHex) };
    appendLeaves(first, ctLeaves.slice(3, 8));
    expect({ size: first.size, peaks: first.peaks.map(bytesToHex) }).toEqual(snapshot);
  });

  it('appending nothing changes nothing', () => {
    const f = appendLeaves(emptyFrontier(), ctLeaves.slice(0, 5)).frontier;
    const again = appendLeaves(f, []);
    expect(again.nodes).toEqual([]);
    expect(again.frontier).toEqual(f);
  });

  it('throws RangeError on an inconsistent frontier or a bad leaf hash', () => {
    const peak = ctLeaves[0]!;
    expect(() => appendLeaves({ size: 3, peaks: [peak] }, [])).toThrow(RangeError);
    expect(() => frontierRoot({ size: 2, peaks: [peak, peak] })).toThrow(RangeError);
    expect(() => frontierRoot({ size: -1, peaks: [] })).toThrow(RangeError);
    expect(() => frontierRoot({ size: 1, peaks: [new Uint8Array(31)] })).toThrow(RangeError);
    expect(() => appendLeaves(emptyFrontier(), [new Uint8Array(33)])).toThrow(RangeError);
  });

  it('reports a missing node and refuses bad sizes', async () => {
    const store = new MemoryMerkleNodes();
    store.put(appendLeaves(emptyFrontier(), ctLeaves.slice(0, 4)).nodes);
    expect(store.count).toBe(4 + 2 + 1);
    await expect(rootFromNodes(4, store)).resolves.toEqual(hexToBytes(vectors.roots[4]!));
    await expect(rootFromNodes(5, store)).rejects.toThrow(/missing Merkle node 0\/4/);
    await expect(rootFromNodes(0, store)).resolves.toEqual(hexToBytes(vectors.roots[0]!));
    await expect(rootFromNodes(-1, store)).rejects.toThrow(RangeError);
    await expect(inclusionProofFromNodes(4, 4, store)).rejects.toThrow(RangeError);
    await expect(consistencyProofFromNodes(5, 4, store)).rejects.toThrow(RangeError);
  });
});

describe('whole-ledger Merkle log: properties', () => {
  const batchesArb = fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 12 });

  it('frontierRoot after any batching equals merkleRoot of all leaves, and nodes are exactly the perfect subtrees', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), batchesArb, fc.integer(), (size, batches, salt) => {
        const leaves = distinctLeaves(size, salt);
        const { frontier, store, roots } = build(leaves, batches);
        expect(frontier.size).toBe(size);
        expect(frontierRoot(frontier)).toEqual(merkleRoot(leaves));
        for (const [n, root] of roots)
          expect(root, `root after ${n} leaves`).toEqual(merkleRoot(leaves.slice(0, n)));
        let perfect = 0;
        for (let w = 1; w <= size; w *= 2) perfect += Math.floor(size / w);
        expect(store.count).toBe(perfect);
      }),
      { numRuns: 40 },
    );
  });

  it('node (level, index) is the root of leaves [index·2^level, (index+1)·2^level)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3000 }),
        batchesArb,
        fc.integer(),
        fc.nat(),
        fc.nat(),
        async (size, batches, salt, a, b) => {
          const leaves = distinctLeaves(size, salt);
          const { store } = build(leaves, batches);
          const maxLevel = Math.floor(Math.log2(size));
          const level = a % (maxLevel + 1);
          const width = 2 ** level;
          const index = b % Math.floor(size / width);
          expect(await store.getNode(level, index)).toEqual(
            merkleRoot(leaves.slice(index * width, (index + 1) * width)),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('roots, frontiers and proofs of every historical size from stored nodes equal those from the full leaf list', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3000 }),
        batchesArb,
        fc.integer(),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        async (size, batches, salt, s0, m0, i0) => {
          const leaves = distinctLeaves(size, salt);
          const { store } = build(leaves, batches);
          const n = 1 + (s0 % size); // a historical size
          const m = m0 % (n + 1);
          const i = i0 % n;
          const prefix = leaves.slice(0, n);
          const rootN = merkleRoot(prefix);
          const rootM = merkleRoot(leaves.slice(0, m));

          expect(await rootFromNodes(n, store)).toEqual(rootN);
          expect(await frontierFromNodes(n, store)).toEqual(appendLeaves(emptyFrontier(), prefix).frontier);

          const incl = await inclusionProofFromNodes(i, n, store);
          expect(incl).toEqual(inclusionProof(i, prefix));
          expect(verifyInclusion(leaves[i]!, i, n, incl, rootN)).toBe(true);

          const cons = await consistencyProofFromNodes(m, n, store);
          expect(cons).toEqual(consistencyProof(m, prefix));
          expect(verifyConsistency(m, n, rootM, rootN, cons)).toBe(true);

          // Altered hashes, index or sizes fail.
          expect(verifyInclusion(flipBit(leaves[i]!, i0 % 256), i, n, incl, rootN)).toBe(false);
          expect(verifyInclusion(leaves[i]!, i, n, incl, flipBit(rootN, s0 % 256))).toBe(false);
          if (n > 1) expect(verifyInclusion(leaves[i]!, (i + 1) % n, n, incl, rootN)).toBe(false);
          if (n < size)
            expect(verifyInclusion(leaves[i]!, i, n + 1, incl, merkleRoot(leaves.slice(0, n + 1)))).toBe(
              false,
            );
          if (cons.length > 0) {
            const bad = [...cons];
            bad[0] = flipBit(bad[0]!, m0 % 256);
            expect(verifyConsistency(m, n, rootM, rootN, bad)).toBe(false);
            expect(verifyConsistency(m, n, flipBit(rootM, 0), rootN, cons)).toBe(false);
            expect(verifyConsistency(m, n, rootM, flipBit(rootN, 0), cons)).toBe(false);
            expect(verifyConsistency(m - 1, n, merkleRoot(leaves.slice(0, m - 1)), rootN, cons)).toBe(false);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads few nodes: O(log² n) for a proof, popcount(n) for a root', async () => {
    const size = 1000;
    const { store } = build(distinctLeaves(size, 7), [size]);
    let reads = 0;
    const counting = {
      getNode: (level: number, index: number): Promise<Uint8Array> => {
        reads += 1;
        return store.getNode(level, index);
      },
    };
    await rootFromNodes(size, counting);
    expect(reads).toBe(6); // 1000 = 0b1111101000
    reads = 0;
    await inclusionProofFromNodes(999, size, counting);
    expect(reads).toBeLessThanOrEqual(10 * 10);
  });
});
