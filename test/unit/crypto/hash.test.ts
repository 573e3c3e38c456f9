import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../src/crypto/hash.js';
import { bytesToHex } from './helpers.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('sha256', () => {
  it('gives the FIPS 180-2 vectors', () => {
    expect(bytesToHex(sha256(utf8('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(bytesToHex(sha256(new Uint8Array(0)))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(bytesToHex(sha256())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(bytesToHex(sha256(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('returns a plain 32-byte Uint8Array that owns its bytes', () => {
    const d = sha256(utf8('abc'));
    expect(d.constructor).toBe(Uint8Array);
    expect(d.length).toBe(32);
    expect(d.byteOffset).toBe(0);
    expect(d.buffer.byteLength).toBe(32);
  });

  it('agrees with @noble/hashes on random inputs, in one part or many (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 5 }), (parts) => {
        const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          whole.set(p, at);
          at += p.length;
        }
        const expected = nobleSha256(whole);
        expect(sha256(...parts)).toEqual(expected);
        expect(sha256(whole)).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
