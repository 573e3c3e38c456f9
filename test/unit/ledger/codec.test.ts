import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalize, CodecError, fromHex, toHex } from '../../../src/codec/index.js';

describe('canonical JSON (RFC 8785, integers only)', () => {
  it('sorts keys by UTF-16 code units and writes no white space', () => {
    expect(canonicalize({ b: 1, a: [true, null, 'x'], A: {} })).toBe('{"A":{},"a":[true,null,"x"],"b":1}');
    // RFC 8785 §3.2.3: sorting is on UTF-16 code units, so "\u20ac" (€) sorts before "\ud83d\ude00" (😀) and after "z"
    expect(canonicalize({ '😀': 1, '€': 2, z: 3 })).toBe('{"z":3,"€":2,"😀":1}');
  });

  it('escapes strings as RFC 8785 prescribes', () => {
    expect(canonicalize('a"b\\c\n\u0001\u007f€')).toBe('"a\\"b\\\\c\\n\\u0001\u007f€"');
  });

  it('refuses floats, -0, NaN, lone surrogates and non-JSON values', () => {
    for (const bad of [
      1.5,
      -0,
      NaN,
      Infinity,
      2 ** 53,
      '\ud800',
      undefined,
      () => 1,
      10n,
      new Date(0),
      { a: undefined },
    ]) {
      expect(() => canonicalize(bad)).toThrow(CodecError);
    }
  });

  it('is stable: parse(canonicalize(x)) canonicalises to the same text', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.maxSafeInteger(),
        fc.string({ unit: 'grapheme' }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, (v) => {
        const text = canonicalize(v);
        expect(canonicalize(JSON.parse(text))).toBe(text);
      }),
    );
  });
});

describe('hex', () => {
  it('accepts only lower-case, even-length hex of the expected size', () => {
    expect(toHex(fromHex('00ff10', 3))).toBe('00ff10');
    for (const bad of ['0', 'FF', 'zz', '00 ', '0x00']) expect(() => fromHex(bad)).toThrow(CodecError);
    expect(() => fromHex('00', 2)).toThrow(/2 bytes/);
  });

  it('writes any Uint8Array: on the heap or off it, a view into a larger buffer, empty', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const want = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    expect(toHex(all)).toBe(want(all));
    expect(toHex(new Uint8Array(32).fill(0xab))).toBe('ab'.repeat(32)); // 32 bytes: on V8's heap
    expect(toHex(all.subarray(250, 253))).toBe('fafbfc');
    expect(toHex(Buffer.from(all.buffer, 16, 2))).toBe('1011');
    expect(toHex(new Uint8Array(0))).toBe('');
    expect(toHex(all.subarray(5, 5))).toBe('');
  });
});
