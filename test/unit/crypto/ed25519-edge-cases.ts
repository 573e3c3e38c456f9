// The Ed25519 edge cases of test/vectors/ed25519-edge-cases.json and how they
// are built. Nothing here is the code under test: `strict` and `zip215` come
// from @noble/ed25519 in its two modes, `openssl` from node:crypto alone.
// ed25519-edge-cases.test.ts checks that the file equals generateEdgeCases()
// and that our verify()/verifyReference() give `strict` on every case. Every
// scalar comes from a fixed label, so the output is deterministic. To rewrite
// the file: UPDATE_VECTORS=1 npx vitest run test/unit/crypto/ed25519-edge-cases
import { createPublicKey, verify as opensslVerify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

ed.hashes.sha512 = sha512;

const { Point } = ed;
type EdPoint = InstanceType<typeof Point>;

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const le = (b: Uint8Array): bigint => BigInt('0x' + (hex(Uint8Array.from(b).reverse()) || '0'));
const toLE32 = (n: bigint): Uint8Array => Uint8Array.from(unhex(n.toString(16).padStart(64, '0')).reverse());
const modL = (n: bigint): bigint => ((n % L) + L) % L;
const scalarFrom = (label: string): bigint => modL(le(sha512(new TextEncoder().encode(label))));
const challenge = (r: Uint8Array, a: Uint8Array, m: Uint8Array): bigint =>
  modL(le(sha512(new Uint8Array([...r, ...a, ...m]))));
const msg = (text: string): Uint8Array => new TextEncoder().encode(text);

// An order-8 point (the canonical encoding used by the speccheck vectors).
const T8 = Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
const B = Point.BASE;

export interface EdgeCase {
  id: string;
  description: string;
  source: string;
  message: string;
  publicKey: string;
  signature: string;
  publicKeyClass: PointClass;
  rClass: PointClass;
  sCanonical: boolean;
  strict: boolean;
  zip215: boolean;
  openssl: boolean;
}

export type PointClass =
  | 'prime-order'
  | 'mixed-order'
  | 'small-order'
  | 'non-canonical-prime-order'
  | 'non-canonical-mixed-order'
  | 'non-canonical-small-order'
  | 'not-a-point';

export function classify(enc: Uint8Array): PointClass {
  let p: EdPoint;
  try {
    p = Point.fromBytes(enc, true);
  } catch {
    return 'not-a-point';
  }
  let canonical = true;
  try {
    Point.fromBytes(enc, false);
  } catch {
    canonical = false;
  }
  const kind = p.isSmallOrder() ? 'small-order' : p.isTorsionFree() ? 'prime-order' : 'mixed-order';
  return canonical ? kind : `non-canonical-${kind}`;
}

function answers(
  sig: Uint8Array,
  m: Uint8Array,
  a: Uint8Array,
): Pick<EdgeCase, 'strict' | 'zip215' | 'openssl'> {
  const run = (f: () => boolean): boolean => {
    try {
      return f();
    } catch {
      return false;
    }
  };
  return {
    strict: run(() => ed.verify(sig, m, a, { zip215: false })),
    zip215: run(() => ed.verify(sig, m, a, { zip215: true })),
    openssl: run(() =>
      opensslVerify(
        null,
        m,
        createPublicKey({ key: Buffer.concat([SPKI_PREFIX, a]), format: 'der', type: 'spki' }),
        sig,
      ),
    ),
  };
}

function makeCase(
  id: string,
  description: string,
  source: string,
  m: Uint8Array,
  a: Uint8Array,
  sig: Uint8Array,
): EdgeCase {
  return {
    id,
    description,
    source,
    message: hex(m),
    publicKey: hex(a),
    signature: hex(sig),
    publicKeyClass: classify(a),
    rClass: classify(sig.subarray(0, 32)),
    sCanonical: le(sig.subarray(32)) < L,
    ...answers(sig, m, a),
  };
}

/** S = r + k·a for arbitrary R and A bytes, with k hashed over the bytes as given. */
function signWith(rBytes: Uint8Array, r: bigint, aBytes: Uint8Array, a: bigint, m: Uint8Array): Uint8Array {
  const k = challenge(rBytes, aBytes, m);
  return new Uint8Array([...rBytes, ...toLE32(modL(r + k * a))]);
}

/** First message "prefix-i" whose challenge k satisfies want(k mod 8). */
function findMessage(
  prefix: string,
  rBytes: Uint8Array,
  aBytes: Uint8Array,
  want: (k8: bigint) => boolean,
): Uint8Array {
  for (let i = 0; ; i++) {
    const m = msg(`${prefix}-${i}`);
    if (want(challenge(rBytes, aBytes, m) % 8n)) return m;
  }
}

// The 12 vectors of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko,
// SSR 2020), github.com/novifinancial/ed25519-speccheck cases.txt.
const SPECCHECK: [string, string, string, string][] = [
  [
    'S = 0, small-order A, small-order R: passes cofactored and cofactorless (R = -kA)',
    '8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000',
  ],
  [
    '0 < S < L, small-order A, mixed-order R: passes both equations; strict rejects the small-order A',
    '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
  ],
  [
    '0 < S < L, mixed-order A, small-order R: passes both equations',
    'aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab',
    'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e',
  ],
  [
    '0 < S < L, mixed-order A and R: passes both equations',
    '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79',
    'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d',
    '9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009',
  ],
  [
    '0 < S < L, mixed-order A and R: passes cofactored only (the torsion parts do not cancel)',
    'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c',
    'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d',
    '160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09',
  ],
  [
    'mixed-order A: passes cofactored [8](SB - R - kA) = 0 only when k is NOT reduced mod L before the multiplication by 8',
    'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c',
    'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d',
    '21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405',
  ],
  [
    'S >= L (not canonical) that would pass the equation if S were reduced',
    '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40',
    '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623',
    'e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514',
  ],
  [
    'S >= L with the top bits set (S >> L)',
    '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40',
    '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623',
    '8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22',
  ],
  [
    'non-canonical R (x = 0 with the sign bit set): passes only if R is re-encoded before hashing',
    '9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41',
    'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f',
  ],
  [
    'non-canonical R (x = 0 with the sign bit set): passes if R is hashed as given',
    '9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41',
    'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908',
  ],
  [
    'non-canonical small-order A (x = 0 with the sign bit set): passes cofactored if A is hashed as given',
    'e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    'a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
  ],
  [
    'non-canonical small-order A (x = 0 with the sign bit set): passes both equations if A is hashed as given',
    '39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    'a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
  ],
];

export function generateEdgeCases(): EdgeCase[] {
  const cases: EdgeCase[] = SPECCHECK.map(([description, m, a, sig], i) =>
    makeCase(
      `speccheck-${i}`,
      description,
      'ed25519-speccheck cases.txt #' + i,
      unhex(m),
      unhex(a),
      unhex(sig),
    ),
  );
  const gen = 'generated by test/unit/crypto/ed25519-edge-cases.ts';

  // An honest key pair (scalar a, A = aB) and nonce r.
  const a = scalarFrom('bitnexus edge-case key');
  const A = B.multiply(a).toBytes();
  const r = scalarFrom('bitnexus edge-case nonce');
  const R = B.multiply(r).toBytes();

  const m0 = msg('honest');
  const honest = signWith(R, r, A, a, m0);
  cases.push(makeCase('honest', 'control: an ordinary signature (prime-order A and R)', gen, m0, A, honest));

  const sPlusL = Uint8Array.from(honest);
  sPlusL.set(toLE32(le(honest.subarray(32)) + L), 32);
  cases.push(
    makeCase(
      's-plus-l',
      'the honest signature with S replaced by S + L (malleability): every rule rejects S >= L',
      gen,
      m0,
      A,
      sPlusL,
    ),
  );

  // Small-order and non-canonical public keys: with A small, SB = R holds for
  // R = sB and ANY message, so these "signatures" sign everything.
  const s = scalarFrom('bitnexus edge-case forged s');
  const sB = B.multiply(s).toBytes();
  const forged = new Uint8Array([...sB, ...toLE32(s)]);
  const smallKeys: [string, string, string][] = [
    [
      'a-identity',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'A = identity (canonical)',
    ],
    [
      'a-order-2',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'A = (0, -1), order 2 (canonical)',
    ],
    [
      'a-order-4',
      '0000000000000000000000000000000000000000000000000000000000000000',
      'A = (sqrt(-1), 0), order 4 (canonical)',
    ],
    [
      'a-order-8',
      '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'A of order 8 (canonical)',
    ],
    [
      'a-identity-negative-zero',
      '0100000000000000000000000000000000000000000000000000000000000080',
      'A = identity spelled with x = 0 and the sign bit set',
    ],
    [
      'a-identity-y-plus-p',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'A = identity spelled with y = p + 1 (y >= p)',
    ],
    [
      'a-order-4-y-equals-p',
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'A of order 4 spelled with y = p (y >= p)',
    ],
  ];
  for (const [id, aHex, what] of smallKeys) {
    const m = msg(`any message at all (${id})`);
    cases.push(
      makeCase(
        id,
        `${what}; R = sB, S = s verifies for every message under the cofactored equation`,
        gen,
        m,
        unhex(aHex),
        forged,
      ),
    );
  }

  // Small-order and non-canonical R with the honest key: S = k·a, so SB = kA
  // and the equation reduces to [8]R = 0.
  const smallR: [string, string, string][] = [
    [
      'r-identity',
      '0100000000000000000000000000000000000000000000000000000000000000',
      'R = identity (canonical, small order): accepted by strict RFC 8032 too',
    ],
    ['r-order-8', hex(T8.toBytes()), 'R of order 8 (canonical): only the cofactored equation holds'],
    [
      'r-identity-negative-zero',
      '0100000000000000000000000000000000000000000000000000000000000080',
      'R = identity spelled with x = 0 and the sign bit set',
    ],
    [
      'r-identity-y-plus-p',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'R = identity spelled with y = p + 1 (y >= p)',
    ],
  ];
  for (const [id, rHex, what] of smallR) {
    const m = msg(`small R (${id})`);
    cases.push(makeCase(id, what, gen, m, A, signWith(unhex(rHex), 0n, A, a, m)));
  }

  // Mixed-order A = aB + T8: the cofactorless equation is off by -k·T8, which
  // vanishes exactly when k ≡ 0 (mod 8).
  const Amixed = B.multiply(a).add(T8).toBytes();
  const mNot8 = findMessage('mixed A', R, Amixed, (k8) => k8 !== 0n);
  cases.push(
    makeCase(
      'a-mixed-order',
      'A = aB + T (T of order 8), k mod 8 != 0: cofactored accepts, cofactorless rejects',
      gen,
      mNot8,
      Amixed,
      signWith(R, r, Amixed, a, mNot8),
    ),
  );
  const m8 = findMessage('mixed A', R, Amixed, (k8) => k8 === 0n);
  cases.push(
    makeCase(
      'a-mixed-order-k-multiple-of-8',
      'A = aB + T (T of order 8), k mod 8 = 0: both equations hold',
      gen,
      m8,
      Amixed,
      signWith(R, r, Amixed, a, m8),
    ),
  );

  // Mixed-order R = rB + T8 with the honest key: off by T8 in the cofactorless equation.
  const Rmixed = B.multiply(r).add(T8).toBytes();
  const mR = msg('mixed R');
  cases.push(
    makeCase(
      'r-mixed-order',
      'R = rB + T (T of order 8): cofactored accepts, cofactorless rejects',
      gen,
      mR,
      A,
      signWith(Rmixed, r, A, a, mR),
    ),
  );

  // Encodings that are not points at all.
  const notPoint = firstNonPoint();
  cases.push(makeCase('a-not-a-point', 'A is not the encoding of a curve point', gen, m0, notPoint, honest));
  const notPointR = Uint8Array.from(honest);
  notPointR.set(notPoint, 0);
  cases.push(makeCase('r-not-a-point', 'R is not the encoding of a curve point', gen, m0, A, notPointR));
  return cases;
}

function firstNonPoint(): Uint8Array {
  for (let y = 2n; ; y++) {
    const enc = toLE32(y);
    try {
      Point.fromBytes(enc, true);
    } catch {
      return enc;
    }
  }
}

export const EDGE_CASES_ABOUT = [
  'Ed25519 verification edge cases that separate strict RFC 8032 (our rule) from ZIP-215.',
  'strict: @noble/ed25519 verify {zip215: false}; crypto/ed25519 verify() and verifyReference() must give exactly this.',
  'zip215: @noble/ed25519 verify {zip215: true} (cofactored; accepts y >= p, x = 0 with the sign bit, small-order A).',
  'openssl: node:crypto (OpenSSL 3) alone, cofactorless; informative: it shows which cases need our own checks.',
  'publicKeyClass / rClass: the point the 32 bytes decode to (ZIP-215 decoding), and whether the bytes are its canonical encoding.',
  'All byte strings are hex; signature = R (32 bytes) || S (32 bytes, little-endian).',
];
