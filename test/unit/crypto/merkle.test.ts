import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  merkleRoot,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../../src/crypto/merkle.js';
import { bytesToHex, flipBit, hexToBytes, readVectors } from './helpers.js';

interface MerkleVectors {
  leaves: string[];
  roots: string[];
  nodes: string[][];
  inclusionProofs: { index: number; treeSize: number; proof: string[] }[];
  consistencyProofs: { m: number; n: number; proof: string[] }[];
}

const vectors = readVectors<MerkleVectors>('merkle.json');
const leaves = vectors.leaves.map((l) => leafHash(hexToBytes(l)));
const roots = vectors.roots.map(hexToBytes);
const hexes = (hs: Uint8Array[]): string[] => hs.map(bytesToHex);
const EMPTY = hexToBytes('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
const SOME_HASH = hexToBytes('abacaba000000000000000000000000000000000000000000060061e00123456');

describe('RFC 6962 hashing (Certificate Transparency test data)', () => {
  it('hashes leaves as SHA-256(0x00 || leaf)', () => {
    expect(hexes(leaves)).toEqual(vectors.nodes[0]);
  });

  it('hashes nodes as SHA-256(0x01 || left || right)', () => {
    for (let level = 1; level < vectors.nodes.length; level++) {
      const below = vectors.nodes[level - 1]!.map(hexToBytes);
      vectors.nodes[level]!.forEach((h, i) => {
        expect(bytesToHex(nodeHash(below[2 * i]!, below[2 * i + 1]!))).toBe(h);
      });
    }
  });

  it('gives the published roots for sizes 0..8', () => {
    for (let n = 0; n <= 8; n++)
      expect(bytesToHex(merkleRoot(leaves.slice(0, n))), `size ${n}`).toBe(vectors.roots[n]);
  });

  it('roots the empty tree at SHA-256("")', () => {
    expect(emptyRoot()).toEqual(EMPTY);
    expect(merkleRoot([])).toEqual(EMPTY);
  });

  it('hands out hashes that no later hash changes (inputs are built in reused buffers)', () => {
    // 32-byte leaves (the ledger's transaction ids) and nodes take the reused-buffer path
    const a = hexToBytes('11'.repeat(32));
    const b = hexToBytes('22'.repeat(32));
    const leafA = leafHash(a);
    const leafB = leafHash(b);
    const node = nodeHash(leafA, leafB);
    const later = nodeHash(leafB, leafA);
    expect(leafA).toEqual(nobleSha256(Uint8Array.of(0, ...a)));
    expect(leafB).toEqual(nobleSha256(Uint8Array.of(0, ...b)));
    expect(node).toEqual(nobleSha256(Uint8Array.of(1, ...leafA, ...leafB)));
    expect(later).toEqual(nobleSha256(Uint8Array.of(1, ...leafB, ...leafA)));
    expect(node.buffer).not.toBe(later.buffer);
    expect(leafA.buffer).not.toBe(leafB.buffer);
  });

  it('returns a root that does not alias its input', () => {
    const leaf = leaves[0]!;
    const root = merkleRoot([leaf]);
    expect(root).toEqual(leaf);
    root[0] = root[0]! ^ 1;
    expect(leaves[0]).toEqual(leaf);
    expect(root).not.toEqual(leaf);
  });
});

describe('inclusion proofs (RFC 9162 §2.1.3)', () => {
  it.each(vectors.inclusionProofs)('index $index of size $treeSize matches the published proof', (v) => {
    const proof = inclusionProof(v.index, leaves.slice(0, v.treeSize));
    expect(hexes(proof)).toEqual(v.proof);
    expect(verifyInclusion(leaves[v.index]!, v.index, v.treeSize, proof, roots[v.treeSize]!)).toBe(true);
  });

  it('proves every leaf of every tree up to 8', () => {
    for (let n = 1; n <= 8; n++) {
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(i, leaves.slice(0, n));
        expect(verifyInclusion(leaves[i]!, i, n, proof, roots[n]!), `${i} in ${n}`).toBe(true);
      }
    }
  });

  // The corruptions of transparency-dev/merkle proof/verify_test.go.
  it.each(vectors.inclusionProofs.filter((v) => v.treeSize > 1))(
    'rejects corrupted variants of index $index in size $treeSize',
    (v) => {
      const leaf = leaves[v.index]!;
      const root = roots[v.treeSize]!;
      const proof = v.proof.map(hexToBytes);
      const probes: [string, number, number, Uint8Array, Uint8Array[], Uint8Array][] = [
        ['index - 1', v.index - 1, v.treeSize, leaf, proof, root],
        ['index + 1', v.index + 1, v.treeSize, leaf, proof, root],
        ['index ^ 2', v.index ^ 2, v.treeSize, leaf, proof, root],
        ['size * 2', v.index, v.treeSize * 2, leaf, proof, root],
        ['size / 2', v.index, Math.floor(v.treeSize / 2), leaf, proof, root],
        ['wrong leaf', v.index, v.treeSize, leafHash(new TextEncoder().encode('WrongLeaf')), proof, root],
        ['short leaf', v.index, v.treeSize, leaf.subarray(1), proof, root],
        ['empty root', v.index, v.treeSize, leaf, proof, EMPTY],
        ['random root', v.index, v.treeSize, leaf, proof, SOME_HASH],
        ['trailing garbage', v.index, v.treeSize, leaf, [...proof, new Uint8Array(0)], root],
        ['trailing root', v.index, v.treeSize, leaf, [...proof, root], root],
        ['preceding garbage', v.index, v.treeSize, leaf, [new Uint8Array(0), ...proof], root],
        ['preceding root', v.index, v.treeSize, leaf, [root, ...proof], root],
        ['removed component', v.index, v.treeSize, leaf, proof.slice(0, -1), root],
        ['inserted component', v.index, v.treeSize, leaf, [proof[0]!, SOME_HASH, ...proof.slice(1)], root],
      ];
      proof.forEach((_, i) => {
        const wrong = [...proof];
        wrong[i] = flipBit(wrong[i]!, 3);
        probes.push([`modified proof[${i}] bit 3`, v.index, v.treeSize, leaf, wrong, root]);
      });
      for (const [what, index, size, l, p, r] of probes) {
        expect(verifyInclusion(l, index, size, p, r), what).toBe(false);
      }
    },
  );

  it('rejects impossible positions', () => {
    for (const [index, size] of [
      [0, 0],
      [1, 0],
      [1, 1],
      [2, 1],
      [-1, 1],
    ] as const) {
      expect(verifyInclusion(SOME_HASH, index, size, [], SOME_HASH)).toBe(false);
      expect(verifyInclusion(EMPTY, index, size, [], EMPTY)).toBe(false);
    }
  });

  it('never throws on malformed outside input', () => {
    const leaf = leaves[0]!;
    const root = roots[1]!;
    const weird: unknown[][] = [
      [leaf, Number.NaN, 1, [], root],
      [leaf, 0.5, 1, [], root],
      [leaf, 0, Number.POSITIVE_INFINITY, [], root],
      [leaf, 0, 2 ** 60, [], root],
      [leaf, 0, 1, null, root],
      [leaf, 0, 1, [null], root],
      [leaf, 0, 1, 'proof', root],
      [null, 0, 1, [], root],
      [leaf, 0, 1, [], 'root'],
      ['leaf', 0, 1, [], root],
    ];
    for (const args of weird) {
      expect(() => (verifyInclusion as (...a: unknown[]) => boolean)(...args)).not.toThrow();
      expect((verifyInclusion as (...a: unknown[]) => boolean)(...args)).toBe(false);
    }
  });

  it('throws RangeError on bad arguments from our own code', () => {
    const eight = leaves.slice(0, 8);
    expect(() => inclusionProof(8, eight)).toThrow(RangeError);
    expect(() => inclusionProof(-1, eight)).toThrow(RangeError);
    expect(() => inclusionProof(1.5, eight)).toThrow(RangeError);
    expect(() => inclusionProof(0, [])).toThrow(RangeError);
    expect(() => merkleRoot([leaves[0]!, new Uint8Array(31)])).toThrow(RangeError);
    expect(() => nodeHash(new Uint8Array(32), new Uint8Array(33))).toThrow(RangeError);
  });
});

describe('consistency proofs (RFC 9162 §2.1.4)', () => {
  it.each(vectors.consistencyProofs)('size $m to $n matches the published proof', (v) => {
    const proof = consistencyProof(v.m, leaves.slice(0, v.n));
    expect(hexes(proof)).toEqual(v.proof);
    expect(verifyConsistency(v.m, v.n, roots[v.m]!, roots[v.n]!, proof)).toBe(true);
  });

  it('proves every pair of sizes up to 8, including m = 0 and m = n', () => {
    for (let n = 0; n <= 8; n++) {
      for (let m = 0; m <= n; m++) {
        const proof = consistencyProof(m, leaves.slice(0, n));
        if (m === 0 || m === n) expect(proof).toEqual([]);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof), `${m} to ${n}`).toBe(true);
      }
    }
  });

  // transparency-dev/merkle TestVerifyConsistency, with our stricter m = 0 rule
  // (the old root of an empty tree must be SHA-256("")).
  it.each([
    { m: 0, n: 0, rootM: SOME_HASH, rootN: roots[2]!, proof: [], ok: false, why: 'roots differ' },
    { m: 1, n: 1, rootM: roots[1]!, rootN: roots[2]!, proof: [], ok: false, why: 'roots differ' },
    { m: 0, n: 0, rootM: EMPTY, rootN: EMPTY, proof: [], ok: true, why: 'empty to empty' },
    { m: 0, n: 1, rootM: EMPTY, rootN: roots[1]!, proof: [], ok: true, why: 'empty is a prefix of anything' },
    { m: 0, n: 5, rootM: EMPTY, rootN: SOME_HASH, proof: [], ok: true, why: 'empty is a prefix of anything' },
    { m: 0, n: 1, rootM: SOME_HASH, rootN: roots[1]!, proof: [], ok: false, why: 'not the empty root' },
    { m: 1, n: 1, rootM: roots[1]!, rootN: roots[1]!, proof: [], ok: true, why: 'same tree' },
    { m: 1, n: 0, rootM: roots[1]!, rootN: EMPTY, proof: [], ok: false, why: 'time travel' },
    { m: 2, n: 1, rootM: roots[2]!, rootN: roots[1]!, proof: [], ok: false, why: 'time travel' },
    { m: 1, n: 2, rootM: roots[1]!, rootN: roots[2]!, proof: [], ok: false, why: 'empty proof' },
    { m: 0, n: 0, rootM: EMPTY, rootN: EMPTY, proof: [EMPTY], ok: false, why: 'proof not empty' },
    { m: 0, n: 1, rootM: EMPTY, rootN: roots[1]!, proof: [EMPTY], ok: false, why: 'proof not empty' },
    { m: 1, n: 1, rootM: EMPTY, rootN: EMPTY, proof: [EMPTY], ok: false, why: 'proof not empty' },
  ])('$m to $n: $why → $ok', ({ m, n, rootM, rootN, proof, ok }) => {
    expect(verifyConsistency(m, n, rootM, rootN, proof)).toBe(ok);
  });

  it.each(vectors.consistencyProofs.filter((v) => v.proof.length > 0))(
    'rejects corrupted variants of $m to $n',
    (v) => {
      const proof = v.proof.map(hexToBytes);
      const r1 = roots[v.m]!;
      const r2 = roots[v.n]!;
      const probes: [string, number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
        ['m - 1', v.m - 1, v.n, r1, r2, proof],
        ['m + 1', v.m + 1, v.n, r1, r2, proof],
        ['m ^ 2', v.m ^ 2, v.n, r1, r2, proof],
        ['n * 2', v.m, v.n * 2, r1, r2, proof],
        ['n / 2', v.m, Math.floor(v.n / 2), r1, r2, proof],
        ['wrong root m', v.m, v.n, SOME_HASH, r2, proof],
        ['wrong root n', v.m, v.n, r1, SOME_HASH, proof],
        ['swapped roots', v.m, v.n, r2, r1, proof],
        ['empty proof', v.m, v.n, r1, r2, []],
        ['trailing garbage', v.m, v.n, r1, r2, [...proof, new Uint8Array(0)]],
        ['trailing root m', v.m, v.n, r1, r2, [...proof, r1]],
        ['trailing root n', v.m, v.n, r1, r2, [...proof, r2]],
        ['preceding garbage', v.m, v.n, r1, r2, [new Uint8Array(0), ...proof]],
        ['preceding root m', v.m, v.n, r1, r2, [r1, ...proof]],
        ['preceding root n', v.m, v.n, r1, r2, [r2, ...proof]],
        ['preceding proof[0]', v.m, v.n, r1, r2, [proof[0]!, ...proof]],
        ['truncated proof', v.m, v.n, r1, r2, proof.slice(0, -1)],
      ];
      proof.forEach((_, i) => {
        const wrong = [...proof];
        wrong[i] = flipBit(wrong[i]!, 4);
        probes.push([`modified proof[${i}] bit 4`, v.m, v.n, r1, r2, wrong]);
      });
      for (const [what, m, n, a, b, p] of probes) expect(verifyConsistency(m, n, a, b, p), what).toBe(false);
    },
  );

  it('never throws on malformed outside input', () => {
    const weird: unknown[][] = [
      [Number.NaN, 2, roots[1], roots[2], []],
      [1, 2 ** 60, roots[1], roots[2], []],
      [1, 2, roots[1], roots[2], null],
      [1, 2, roots[1], roots[2], [undefined]],
      [1, 2, null, roots[2], [leaves[1]]],
      [1, 2, roots[1], new Uint8Array(3), [leaves[1]]],
    ];
    for (const args of weird) {
      expect(() => (verifyConsistency as (...a: unknown[]) => boolean)(...args)).not.toThrow();
      expect((verifyConsistency as (...a: unknown[]) => boolean)(...args)).toBe(false);
    }
  });

  it('throws RangeError on bad arguments from our own code', () => {
    const eight = leaves.slice(0, 8);
    expect(() => consistencyProof(9, eight)).toThrow(RangeError);
    expect(() => consistencyProof(-1, eight)).toThrow(RangeError);
    expect(() => consistencyProof(Number.NaN, eight)).toThrow(RangeError);
  });
});

describe('the root binds the tree size (docs/CRYPTO.md §3.2)', () => {
  it('a proof passes for another size of the same shape when given the same root', () => {
    // So verifiers must take size and root together from one signed header.
    const incl = inclusionProof(0, leaves.slice(0, 5));
    expect(verifyInclusion(leaves[0]!, 0, 5, incl, roots[5]!)).toBe(true);
    expect(verifyInclusion(leaves[0]!, 0, 8, incl, roots[5]!)).toBe(true);
    expect(verifyInclusion(leaves[0]!, 0, 8, incl, roots[8]!)).toBe(false);
    const cons = consistencyProof(1, leaves.slice(0, 3));
    expect(verifyConsistency(1, 4, roots[1]!, roots[3]!, cons)).toBe(true);
    expect(verifyConsistency(1, 4, roots[1]!, roots[4]!, cons)).toBe(false);
  });
});
