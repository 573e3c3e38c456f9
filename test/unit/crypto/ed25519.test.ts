import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SMALL_ORDER_ENCODINGS,
  generateKeyPair,
  publicKeyFromSecret,
  sign,
  verify,
  verifyReference,
} from '../../../src/crypto/ed25519.js';
import { bytesToHex, flipBit, hexToBytes, readVectors } from './helpers.js';

interface Rfc8032Vector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}

const { vectors } = readVectors<{ vectors: Rfc8032Vector[] }>('rfc8032.json');

describe('RFC 8032 §7.1 test vectors', () => {
  it('holds the five Ed25519 vectors', () => {
    expect(vectors.map((v) => v.name)).toEqual(['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024', 'TEST SHA(abc)']);
    expect(vectors[3]!.message.length / 2).toBe(1023);
  });

  it.each(vectors)('$name: key, exact signature, and both verifiers accept', (v) => {
    const secretKey = hexToBytes(v.secretKey);
    const message = hexToBytes(v.message);
    const publicKey = hexToBytes(v.publicKey);
    const signature = hexToBytes(v.signature);
    expect(bytesToHex(publicKeyFromSecret(secretKey))).toBe(v.publicKey);
    expect(bytesToHex(sign(message, secretKey))).toBe(v.signature);
    expect(verify(signature, message, publicKey)).toBe(true);
    expect(verifyReference(signature, message, publicKey)).toBe(true);
    const other = Uint8Array.of(...message, 0);
    expect(verify(signature, other, publicKey)).toBe(false);
    expect(verifyReference(signature, other, publicKey)).toBe(false);
  });
});

describe('SMALL_ORDER_ENCODINGS', () => {
  // An order-8 point; its multiples are the whole torsion subgroup E[8].
  const T8 = ed.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
  const torsion = Array.from({ length: 8 }, (_, i) => (i === 0 ? ed.Point.ZERO : T8.multiply(BigInt(i))));
  const canonical = torsion.map((p) => bytesToHex(p.toBytes()));

  it('T8 has order exactly 8', () => {
    expect(T8.isSmallOrder()).toBe(true);
    expect(T8.multiply(4n).is0()).toBe(false);
    expect(new Set(canonical).size).toBe(8);
  });

  it('every listed encoding decodes (ZIP-215 decoding) to a small-order point', () => {
    expect(SMALL_ORDER_ENCODINGS.size).toBe(10);
    for (const enc of SMALL_ORDER_ENCODINGS) {
      expect(ed.Point.fromHex(enc, true).isSmallOrder(), enc).toBe(true);
    }
  });

  it('lists the 8 canonical encodings of E[8] and the 2 x = 0 spellings with the sign bit', () => {
    const withSignBit = torsion
      .filter((p) => p.x === 0n)
      .map((p) => {
        const b = p.toBytes();
        b[31] = b[31]! | 0x80;
        return bytesToHex(b);
      });
    expect(withSignBit).toHaveLength(2);
    expect([...SMALL_ORDER_ENCODINGS].sort()).toEqual([...canonical, ...withSignBit].sort());
  });

  it('the only other small-order spellings (y >= p) are refused as non-canonical', () => {
    // y < 2^255 and y >= p leaves y = p + t for t < 19; of those only y = p
    // (t = 0, order 4) and y = p + 1 (t = 1, the identity) are small order.
    const P = 2n ** 255n - 19n;
    const smallNonCanonical: string[] = [];
    for (let t = 0n; t < 19n; t++) {
      for (const sign of [0, 0x80]) {
        const b = hexToBytes((P + t).toString(16).padStart(64, '0')).reverse();
        b[31] = b[31]! | sign;
        try {
          if (ed.Point.fromBytes(b, true).isSmallOrder()) smallNonCanonical.push(bytesToHex(b));
        } catch {
          // not a point
        }
      }
    }
    expect(smallNonCanonical).toHaveLength(4);
    // Each one, as a public key, signs every message under ZIP-215; we refuse.
    const s = 12345n;
    const sig = new Uint8Array([
      ...ed.Point.BASE.multiply(s).toBytes(),
      ...hexToBytes(s.toString(16).padStart(64, '0')).reverse(),
    ]);
    const msg = new TextEncoder().encode('anything');
    for (const enc of [...SMALL_ORDER_ENCODINGS, ...smallNonCanonical]) {
      const pub = hexToBytes(enc);
      expect(ed.verify(sig, msg, pub, { zip215: true }), enc).toBe(true);
      expect(verify(sig, msg, pub), enc).toBe(false);
      expect(verifyReference(sig, msg, pub), enc).toBe(false);
    }
  });
});

describe('sign and verify', () => {
  it('generates working key pairs', () => {
    const { secretKey, publicKey } = generateKeyPair();
    expect(secretKey).toHaveLength(32);
    expect(publicKeyFromSecret(secretKey)).toEqual(publicKey);
    const msg = new TextEncoder().encode('hello');
    expect(verify(sign(msg, secretKey), msg, publicKey)).toBe(true);
  });

  it('derives the same public key as noble, and hands out a copy each time', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const first = publicKeyFromSecret(seed);
        expect(bytesToHex(first)).toBe(bytesToHex(ed.getPublicKey(seed)));
        first.fill(0); // a caller scribbling on its copy must not change the next answer
        expect(bytesToHex(publicKeyFromSecret(seed))).toBe(bytesToHex(ed.getPublicKey(seed)));
      }),
      { numRuns: 50 },
    );
    expect(() => publicKeyFromSecret(new Uint8Array(31))).toThrow(RangeError);
  });

  it('answers false, never throws, on wrong lengths', () => {
    const { secretKey, publicKey } = generateKeyPair();
    const msg = new Uint8Array(3);
    const sig = sign(msg, secretKey);
    for (const [s, p] of [
      [sig.subarray(0, 63), publicKey],
      [new Uint8Array(65), publicKey],
      [sig, publicKey.subarray(0, 31)],
      [sig, new Uint8Array(33)],
      [new Uint8Array(0), new Uint8Array(0)],
    ] as const) {
      expect(verify(s, msg, p)).toBe(false);
      expect(verifyReference(s, msg, p)).toBe(false);
    }
    expect(() => sign(msg, secretKey.subarray(1))).toThrow(RangeError);
  });

  const seed = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const message = fc.uint8Array({ minLength: 0, maxLength: 200 });

  it('round-trips, and matches noble byte for byte (property)', () => {
    fc.assert(
      fc.property(seed, message, (sk, msg) => {
        const pub = publicKeyFromSecret(sk);
        const sig = sign(msg, sk);
        expect(sig).toEqual(ed.sign(msg, sk));
        expect(verify(sig, msg, pub)).toBe(true);
        expect(verifyReference(sig, msg, pub)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('any flipped bit of message, signature or key is rejected by both verifiers alike (property)', () => {
    fc.assert(
      fc.property(
        seed,
        message,
        fc.constantFrom('message', 'signature', 'key'),
        fc.nat(),
        (sk, msg, what, bit) => {
          const pub = publicKeyFromSecret(sk);
          const sig = sign(msg, sk);
          let s: Uint8Array = sig;
          let m: Uint8Array = msg;
          let p: Uint8Array = pub;
          if (what === 'message') {
            if (msg.length === 0) return;
            m = flipBit(msg, bit % (msg.length * 8));
          } else if (what === 'signature') {
            s = flipBit(sig, bit % 512);
          } else {
            p = flipBit(pub, bit % 256);
          }
          const fast = verify(s, m, p);
          expect(fast).toBe(false);
          expect(verifyReference(s, m, p)).toBe(fast);
        },
      ),
      { numRuns: 300 },
    );
  });
});
