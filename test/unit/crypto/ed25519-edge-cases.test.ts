import { writeFileSync } from 'node:fs';
import * as ed from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { verify, verifyReference } from '../../../src/crypto/ed25519.js';
import { EDGE_CASES_ABOUT, classify, generateEdgeCases, type EdgeCase } from './ed25519-edge-cases.js';
import { hexToBytes, readVectors } from './helpers.js';

const FILE = 'ed25519-edge-cases.json';

if (process.env['UPDATE_VECTORS']) {
  const out = { about: EDGE_CASES_ABOUT, cases: generateEdgeCases() };
  writeFileSync(new URL(`../../vectors/${FILE}`, import.meta.url), JSON.stringify(out, null, 2) + '\n');
}

const { cases } = readVectors<{ about: string[]; cases: EdgeCase[] }>(FILE);

// The answers we document (docs/CRYPTO.md), written out by hand so that this
// test states the rule instead of echoing whatever noble computes:
// [strict RFC 8032 = our rule, ZIP-215].
const EXPECTED: Record<string, [boolean, boolean]> = {
  'speccheck-0': [false, true], // small-order A
  'speccheck-1': [false, true], // small-order A
  'speccheck-2': [true, true], // small-order R is fine
  'speccheck-3': [true, true],
  'speccheck-4': [true, true], // cofactored equation
  'speccheck-5': [true, true], // k not pre-reduced
  'speccheck-6': [false, false], // S >= L
  'speccheck-7': [false, false], // S >= L
  'speccheck-8': [false, false], // non-canonical R, re-encoding verifier only
  'speccheck-9': [false, true], // non-canonical R
  'speccheck-10': [false, true], // non-canonical small-order A
  'speccheck-11': [false, true], // non-canonical small-order A
  honest: [true, true],
  's-plus-l': [false, false],
  'a-identity': [false, true],
  'a-order-2': [false, true],
  'a-order-4': [false, true],
  'a-order-8': [false, true],
  'a-identity-negative-zero': [false, true],
  'a-identity-y-plus-p': [false, true],
  'a-order-4-y-equals-p': [false, true],
  'r-identity': [true, true],
  'r-order-8': [true, true],
  'r-identity-negative-zero': [false, true],
  'r-identity-y-plus-p': [false, true],
  'a-mixed-order': [true, true],
  'a-mixed-order-k-multiple-of-8': [true, true],
  'r-mixed-order': [true, true],
  'a-not-a-point': [false, false],
  'r-not-a-point': [false, false],
};

const input = (c: EdgeCase): [Uint8Array, Uint8Array, Uint8Array] => [
  hexToBytes(c.signature),
  hexToBytes(c.message),
  hexToBytes(c.publicKey),
];

describe('Ed25519 edge cases (test/vectors/ed25519-edge-cases.json)', () => {
  it('the file is exactly what the generator derives from noble and OpenSSL today', () => {
    expect(cases).toEqual(generateEdgeCases());
  });

  it('documents every case, and only those', () => {
    expect(cases.map((c) => c.id).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(cases)('$id: verify = verifyReference = strict RFC 8032 ($strict)', (c) => {
    const [strict, zip215] = EXPECTED[c.id]!;
    expect(c.strict).toBe(strict);
    expect(c.zip215).toBe(zip215);
    const [sig, msg, pub] = input(c);
    expect(verifyReference(sig, msg, pub)).toBe(strict);
    expect(verify(sig, msg, pub)).toBe(strict);
    expect(ed.verify(sig, msg, pub, { zip215: true })).toBe(zip215);
  });

  it('strict and ZIP-215 differ exactly on small-order public keys and non-canonical A or R', () => {
    const differing = cases.filter((c) => c.strict !== c.zip215);
    expect(differing.length).toBeGreaterThan(0);
    for (const c of differing) {
      expect(c.zip215).toBe(true);
      const smallOrNonCanonicalA =
        c.publicKeyClass.includes('small-order') || c.publicKeyClass.startsWith('non-canonical');
      const nonCanonicalR = c.rClass.startsWith('non-canonical');
      expect(smallOrNonCanonicalA || nonCanonicalR, c.id).toBe(true);
    }
  });

  it('every accepted case has canonical S, canonical A of large order and canonical R', () => {
    for (const c of cases.filter((x) => x.strict)) {
      expect(c.sCanonical, c.id).toBe(true);
      expect(['prime-order', 'mixed-order'], c.id).toContain(c.publicKeyClass);
      expect(['prime-order', 'mixed-order', 'small-order'], c.id).toContain(c.rClass);
    }
  });

  it('covers each class the rule must separate', () => {
    const has = (f: (c: EdgeCase) => boolean): boolean => cases.some(f);
    expect(has((c) => !c.sCanonical)).toBe(true);
    expect(has((c) => c.publicKeyClass === 'small-order')).toBe(true);
    expect(has((c) => c.publicKeyClass === 'non-canonical-small-order')).toBe(true);
    expect(has((c) => c.publicKeyClass === 'mixed-order' && c.strict && !c.openssl)).toBe(true);
    expect(has((c) => c.rClass === 'small-order' && c.strict)).toBe(true);
    expect(has((c) => c.rClass === 'mixed-order' && c.strict && !c.openssl)).toBe(true);
    expect(has((c) => c.rClass === 'non-canonical-small-order')).toBe(true);
    expect(has((c) => c.publicKey.startsWith('ee') && c.publicKey.endsWith('7f'))).toBe(true); // A with y >= p
    expect(has((c) => c.signature.startsWith('ee'))).toBe(true); // R with y >= p
  });

  it('classifies points the way the descriptions say', () => {
    expect(classify(hexToBytes('0100000000000000000000000000000000000000000000000000000000000000'))).toBe(
      'small-order',
    );
    expect(classify(hexToBytes('0100000000000000000000000000000000000000000000000000000000000080'))).toBe(
      'non-canonical-small-order',
    );
    expect(classify(ed.Point.BASE.toBytes())).toBe('prime-order');
  });
});
