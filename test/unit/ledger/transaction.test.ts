import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalize, signingMessage, toHex } from '../../../src/codec/index.js';
import { sign, verify } from '../../../src/crypto/index.js';
import {
  acceptTransaction,
  decodeCanonicalTx,
  decodeTx,
  LIMITS,
  blockSigningMessage,
  parseTransaction,
  signatureOfCanonicalTx,
  signedTxBytes,
  SIGNATURE_FIELD_BYTES,
  txSigningMessage,
  unsignedPart,
  ValidationError,
  verifyTxSignature,
  type SignedTx,
} from '../../../src/ledger/index.js';
import { CHAIN_ID, keyFor, makeFixture, pub, tx } from '../../support/ledger-fixture.js';

const merchant = keyFor('shop-a');
const affiliate = keyFor('aff-x');

function sample(): SignedTx {
  return tx('commission.record', merchant, {
    merchant: pub(merchant),
    affiliate: pub(affiliate),
    amount: '12345',
    currency: 'EUR',
    orderId: 'order-1',
    description: 'Spring campaign',
    metadata: { campaign: 'spring', channel: 'email' },
  }).tx;
}

function codeOf(f: () => unknown): [string, string | undefined] {
  try {
    f();
  } catch (err) {
    if (err instanceof ValidationError) return [err.code, err.field];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('transaction validation', () => {
  it('accepts a well-formed signed transaction and computes its id from the unsigned form', () => {
    const t = sample();
    const d = acceptTransaction(JSON.parse(JSON.stringify(t)), CHAIN_ID);
    expect(d.id).toMatch(/^[0-9a-f]{64}$/);
    // the signature is not part of the id
    const other = { ...t, signature: '00'.repeat(64) };
    expect(acceptTransaction.bind(null, other, CHAIN_ID)).toThrow(ValidationError);
    expect(canonicalize(unsignedPart(t))).not.toContain('signature');
  });

  it.each([
    [
      'unknown kind',
      (t: Record<string, unknown>) => ({ ...t, kind: 'commission.steal' }),
      'UNKNOWN_KIND',
      '$.kind',
    ],
    ['wrong version', (t: Record<string, unknown>) => ({ ...t, v: 2 }), 'UNSUPPORTED_VERSION', '$.v'],
    [
      'wrong chain',
      (t: Record<string, unknown>) => ({ ...t, chainId: 'other-net' }),
      'WRONG_CHAIN',
      '$.chainId',
    ],
    ['bad hex', (t: Record<string, unknown>) => ({ ...t, signer: 'XY'.repeat(32) }), 'BAD_HEX', '$.signer'],
    ['short key', (t: Record<string, unknown>) => ({ ...t, signer: 'ab' }), 'BAD_HEX', '$.signer'],
    [
      'float amount',
      (t: SignedTx) => ({ ...t, payload: { ...t.payload, amount: 12.5 } }),
      'INVALID_FIELD',
      '$.payload.amount',
    ],
    [
      'amount with leading zero',
      (t: SignedTx) => ({ ...t, payload: { ...t.payload, amount: '0012' } }),
      'INVALID_FIELD',
      '$.payload.amount',
    ],
    [
      'negative amount',
      (t: SignedTx) => ({ ...t, payload: { ...t.payload, amount: '-5' } }),
      'INVALID_FIELD',
      '$.payload.amount',
    ],
    [
      'lower-case currency',
      (t: SignedTx) => ({ ...t, payload: { ...t.payload, currency: 'eur' } }),
      'INVALID_FIELD',
      '$.payload.currency',
    ],
    [
      // a field's own limit is INVALID_FIELD (400); TOO_LARGE (413) is the 8 KiB transaction
      'oversized description',
      (t: SignedTx) => ({ ...t, payload: { ...t.payload, description: 'x'.repeat(1001) } }),
      'INVALID_FIELD',
      '$.payload.description',
    ],
    [
      'a 19-digit amount (out of range, not "too long")',
      (t: SignedTx) => ({ ...t, payload: { ...t.payload, amount: '1000000000000000000' } }),
      'INVALID_FIELD',
      '$.payload.amount',
    ],
    [
      'too many metadata entries',
      (t: SignedTx) => ({
        ...t,
        payload: {
          ...t.payload,
          metadata: Object.fromEntries(
            Array.from({ length: LIMITS.metadataEntries + 1 }, (_, i) => [`k${i}`, 'v']),
          ),
        },
      }),
      'INVALID_FIELD',
      '$.payload.metadata',
    ],
    [
      // JSON.parse gives -0, which isSafeInteger accepts and canonical JSON cannot encode
      'a timestamp of -0',
      (t: Record<string, unknown>) =>
        JSON.parse(JSON.stringify(t).replace(/"timestamp":\d+/, '"timestamp":-0')) as unknown,
      'INVALID_FIELD',
      '$.timestamp',
    ],
    ['unknown field', (t: Record<string, unknown>) => ({ ...t, extra: 1 }), 'UNKNOWN_FIELD', '$.extra'],
    [
      'missing field',
      (t: Record<string, unknown>) => ({ ...t, nonce: undefined }),
      'MISSING_FIELD',
      '$.nonce',
    ],
    [
      'timestamp as string',
      (t: Record<string, unknown>) => ({ ...t, timestamp: '1700000000000' }),
      'INVALID_FIELD',
      '$.timestamp',
    ],
    ['not an object', () => [1, 2], 'INVALID_FIELD', '$'],
    [
      // an own key after JSON.parse, a prototype setter on assignment: it used to vanish
      'a "__proto__" metadata key',
      (t: SignedTx) =>
        JSON.parse(JSON.stringify(t).replace('"metadata":{', '"metadata":{"__proto__":"p",')) as unknown,
      'INVALID_FIELD',
      '$.payload.metadata key',
    ],
  ] as const)('rejects %s with a stable code and the field', (_name, mutate, code, field) => {
    const bad = (mutate as (t: SignedTx) => unknown)(sample());
    expect(codeOf(() => acceptTransaction(bad, CHAIN_ID))).toEqual([code, field]);
  });

  it('rejects a transaction whose signature does not verify', () => {
    const t = sample();
    const tampered = { ...t, payload: { ...t.payload, amount: '99999' } };
    expect(codeOf(() => acceptTransaction(tampered, CHAIN_ID))).toEqual(['BAD_SIGNATURE', '$.signature']);
  });
});

describe('domain-separated signatures', () => {
  it('binds the chain id: the same body signed for one chain does not verify for another', () => {
    const t = sample();
    expect(verifyTxSignature(t)).toBe(true);
    const msgOther = signingMessage('tx', 'other-net', unsignedPart(t));
    expect(verify(Buffer.from(t.signature, 'hex'), msgOther, merchant.publicKey)).toBe(false);
  });

  it('binds the object kind: a transaction signature never verifies as a block signature over the same bytes', () => {
    const t = sample();
    const body = unsignedPart(t);
    const asBlock = signingMessage('block', CHAIN_ID, body);
    expect(verify(Buffer.from(t.signature, 'hex'), asBlock, merchant.publicKey)).toBe(false);
    expect(
      Buffer.from(txSigningMessage(body))
        .toString('utf8')
        .startsWith('BITNEXUS-SIG-V1\0tx\0bitnexus-test\0{'),
    ).toBe(true);
  });

  it('signs block headers under the block domain', () => {
    const fx = makeFixture();
    const header = fx.genesis.block.header;
    const sig = Buffer.from(fx.genesis.block.signature, 'hex');
    expect(verify(sig, blockSigningMessage(header), fx.operator.publicKey)).toBe(true);
    expect(verify(sig, signingMessage('tx', header.chainId, header), fx.operator.publicKey)).toBe(false);
    expect(toHex(sign(blockSigningMessage(header), fx.operator.secretKey))).toBe(fx.genesis.block.signature);
  });

  it('parses and rejects without checking state', () => {
    expect(() => parseTransaction(sample())).not.toThrow();
  });
});

describe('signatureOfCanonicalTx', () => {
  it('finds the top-level signature without parsing, even with a metadata key named "signature"', () => {
    const t = tx('commission.record', merchant, {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount: '10',
      currency: 'EUR',
      orderId: 'sig-1',
      description: 'x',
      metadata: { signature: 'ab'.repeat(64) },
    });
    expect(signatureOfCanonicalTx(canonicalBytes(t.tx))).toBe(t.tx.signature);
    expect(signatureOfCanonicalTx(Buffer.from('{"no":"signature"}'))).toBeUndefined();
    expect(signatureOfCanonicalTx(Buffer.from(',"signature":"abc"'))).toBeUndefined();
  });
});

describe('decodeCanonicalTx', () => {
  it('gives what decodeTx gives, from the canonical signed text, with non-ASCII text and a "signature" metadata key', () => {
    for (const description of ['plain', 'Grüße, 東京 🚲', 'quote " and \\ backslash']) {
      const t = tx('commission.record', merchant, {
        merchant: pub(merchant),
        affiliate: pub(affiliate),
        amount: '10',
        currency: 'EUR',
        orderId: `canon-${description.length}`,
        description,
        metadata: { signature: 'cd'.repeat(64) },
      });
      const text = JSON.stringify(JSON.parse(Buffer.from(canonicalBytes(t.tx)).toString('utf8')));
      const fast = decodeCanonicalTx(t.tx, text)!;
      const slow = decodeTx(t.tx);
      expect(fast.id).toBe(slow.id);
      expect(Buffer.from(fast.unsignedBytes).equals(Buffer.from(slow.unsignedBytes))).toBe(true);
      expect(toHex(fast.idBytes)).toBe(slow.id);
    }
  });

  it('hashes texts of any size alike, and each keeps its own unsigned bytes, read later, in any order', () => {
    const make = (description: string, metadata: Record<string, string> = {}) =>
      tx('commission.record', merchant, {
        merchant: pub(merchant),
        affiliate: pub(affiliate),
        amount: '10',
        currency: 'EUR',
        orderId: `size-${description.length}`,
        description,
        metadata,
      });
    const big: Record<string, string> = {};
    // ~6,000 characters, ~7,800 bytes: 3 bytes a character is more than the 16 KiB scratch buffer holds
    for (let i = 0; i < 17; i++) big[`k${i}`] = 'x'.repeat(256);
    const txs = [
      make('small'),
      make('東'.repeat(1000), big),
      make(''),
      make('Grüße'),
      make('x'.repeat(1000)),
    ];
    const fast = txs.map((t) => decodeCanonicalTx(t.tx, canonicalize(t.tx))!);
    for (const i of [4, 1, 0, 3, 2, 1]) {
      const slow = decodeTx(txs[i]!.tx);
      expect(fast[i]!.id).toBe(slow.id);
      expect(toHex(fast[i]!.idBytes)).toBe(slow.id);
      expect(Buffer.from(fast[i]!.unsignedBytes).equals(Buffer.from(slow.unsignedBytes))).toBe(true);
      expect(fast[i]!.unsignedBytes).toBe(fast[i]!.unsignedBytes); // encoded once
      expect(Buffer.from(signedTxBytes(fast[i]!)).equals(Buffer.from(canonicalBytes(txs[i]!.tx)))).toBe(true);
    }
  });

  it('refuses a text without the signature member', () => {
    const t = sample();
    expect(decodeCanonicalTx(t, JSON.stringify(unsignedPart(t)))).toBeUndefined();
    expect(decodeCanonicalTx(t, '{"signature":"ab"}')).toBeUndefined();
  });
});

describe('the size limit', () => {
  it('is on the signed canonical form: exactly the limit passes, one byte more is TOO_LARGE', () => {
    const make = (description: string) =>
      tx('commission.record', merchant, {
        merchant: pub(merchant),
        affiliate: pub(affiliate),
        amount: '10',
        currency: 'EUR',
        orderId: 'big-1',
        description: '',
        metadata: { note: description },
      });
    const base = canonicalBytes(make('').tx).length;
    const fits = make('x'.repeat(LIMITS.maxTxBytes - base));
    expect(canonicalBytes(fits.tx).length).toBe(LIMITS.maxTxBytes);
    expect(() => decodeTx(fits.tx)).not.toThrow();
    // one more character of metadata is one more canonical byte (the fixture decodes, and so refuses)
    expect(() => make('x'.repeat(LIMITS.maxTxBytes - base + 1))).toThrow(
      expect.objectContaining({ code: 'TOO_LARGE' }),
    );
  });
});

describe('signedTxBytes', () => {
  it('is the canonical signed form, built from the unsigned bytes (metadata keys named like members too)', () => {
    const t = tx('commission.record', merchant, {
      merchant: pub(merchant),
      affiliate: pub(affiliate),
      amount: '10',
      currency: 'EUR',
      orderId: 'signed-1',
      description: ',"signer":"',
      metadata: { signer: 'x', signature: 'y' },
    });
    expect(Buffer.from(signedTxBytes(t)).equals(Buffer.from(canonicalBytes(t.tx)))).toBe(true);
    expect(signedTxBytes(t).length).toBe(t.unsignedBytes.length + SIGNATURE_FIELD_BYTES);
  });
});
