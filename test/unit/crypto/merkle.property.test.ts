import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from '../../../src/crypto/merkle.js';
import { flipBit } from './helpers.js';
import { mth, path, proof } from './rfc6962-reference.js';

const MAX = 160;

/** MAX distinct leaf hashes (distinct, so no two subtrees share a hash). */
function makeLeaves(salt: number): Uint8Array[] {
  return Array.from({ length: MAX }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${salt} ${i}`)));
}

const leavesArb = fc.integer().map(makeLeaves);
const bitFlip = fc.nat({ max: 255 });

/** Length of the part of PATH(index, D[size]) below the split from the right border (RFC 9162 "inner"). */
const innerLength = (index: number, size: number): number =>
  (index ^ (size - 1)).toString(2).replace(/^0+/, '').length;

describe('Merkle tree properties against a literal RFC 6962 transcription', () => {
  it('merkleRoot = MTH for every size', () => {
    fc.assert(
      fc.property(leavesArb, fc.integer({ min: 0, max: MAX }), (leaves, n) => {
        expect(merkleRoot(leaves.slice(0, n))).toEqual(mth(leaves.slice(0, n)));
      }),
      { numRuns: 200 },
    );
  });

  it('inclusionProof = PATH and consistencyProof = PROOF', () => {
    fc.assert(
      fc.property(leavesArb, fc.integer({ min: 1, max: MAX }), fc.nat(), fc.nat(), (leaves, n, i, j) => {
        const d = leaves.slice(0, n);
        expect(inclusionProof(i % n, d)).toEqual(path(i % n, d));
        const m = j % (n + 1);
        expect(consistencyProof(m, d)).toEqual(m === 0 || m === n ? [] : proof(m, d));
      }),
      { numRuns: 200 },
    );
  });
});

describe('inclusion proof verification', () => {
  it('accepts every honest proof and rejects any altered hash, index, or size with its root', () => {
    fc.assert(
      fc.property(
        leavesArb,
        fc.integer({ min: 1, max: MAX }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: MAX }),
        bitFlip,
        fc.nat(),
        (leaves, n, i0, j0, n2, bit, which) => {
          const i = i0 % n;
          const d = leaves.slice(0, n);
          const root = merkleRoot(d);
          const leaf = leaves[i]!;
          const p = inclusionProof(i, d);
          expect(verifyInclusion(leaf, i, n, p, root)).toBe(true);

          expect(verifyInclusion(flipBit(leaf, bit), i, n, p, root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, p, flipBit(root, bit))).toBe(false);
          if (p.length > 0) {
            const q = [...p];
            const at = which % q.length;
            q[at] = flipBit(q[at]!, bit);
            expect(verifyInclusion(leaf, i, n, q, root)).toBe(false);
            expect(verifyInclusion(leaf, i, n, p.slice(1), root)).toBe(false);
          }
          expect(verifyInclusion(leaf, i, n, [...p, root], root)).toBe(false);

          const j = j0 % n;
          if (j !== i) expect(verifyInclusion(leaf, j, n, p, root)).toBe(false);

          if (n2 !== n && i < n2) {
            // Another size with that size's root: always rejected.
            expect(verifyInclusion(leaf, i, n2, p, merkleRoot(leaves.slice(0, n2)))).toBe(false);
            // Another size with the SAME root: the RFC algorithm only looks at
            // the proof's shape, which depends on the size only through
            // inner = bit length of index XOR (size - 1). The root is what
            // binds the size: take both from one signed header.
            expect(verifyInclusion(leaf, i, n2, p, root)).toBe(innerLength(i, n) === innerLength(i, n2));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('consistency proof verification', () => {
  it('accepts every honest proof and rejects any altered hash, or size with its root', () => {
    fc.assert(
      fc.property(
        leavesArb,
        fc.integer({ min: 1, max: MAX }),
        fc.nat(),
        fc.integer({ min: 0, max: MAX }),
        bitFlip,
        fc.nat(),
        (leaves, n, m0, other, bit, which) => {
          const m = m0 % (n + 1);
          const rootM = merkleRoot(leaves.slice(0, m));
          const rootN = merkleRoot(leaves.slice(0, n));
          const p = consistencyProof(m, leaves.slice(0, n));
          expect(verifyConsistency(m, n, rootM, rootN, p)).toBe(true);

          expect(verifyConsistency(m, n, flipBit(rootM, bit), rootN, p)).toBe(false);
          if (m > 0) expect(verifyConsistency(m, n, rootM, flipBit(rootN, bit), p)).toBe(false);
          if (p.length > 0) {
            const q = [...p];
            const at = which % q.length;
            q[at] = flipBit(q[at]!, bit);
            expect(verifyConsistency(m, n, rootM, rootN, q)).toBe(false);
            expect(verifyConsistency(m, n, rootM, rootN, p.slice(0, -1))).toBe(false);
          }
          expect(verifyConsistency(m, n, rootM, rootN, [...p, rootN])).toBe(false);

          // Another old size with its root, or another new size with its root.
          // (An empty proof is the proof of both m = 0 and m = n, so only
          // non-empty proofs are specific to their sizes.)
          const rootOther = merkleRoot(leaves.slice(0, other));
          if (p.length === 0) return;
          if (other !== m && other <= n) expect(verifyConsistency(other, n, rootOther, rootN, p)).toBe(false);
          if (other !== n && other >= m && m > 0)
            expect(verifyConsistency(m, other, rootM, rootOther, p)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
