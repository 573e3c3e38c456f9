import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError, hasDuplicateKeys, parseJsonStrict } from '../../../src/codec/index.js';

describe('parseJsonStrict', () => {
  it('refuses a key named twice in one object, at any depth', () => {
    for (const text of [
      '{"a":1,"a":2}',
      '{"x":[{"k":1,"k":1}]}',
      '{"o":{"p":{"q":1,"q":null}}}',
      '{"a":1 , "a" : 1}',
    ]) {
      expect(() => parseJsonStrict(text)).toThrow(CodecError);
    }
  });

  it('accepts the same key in different objects, and colons, quotes and backslashes inside strings', () => {
    const text = '{"a":{"a":1},"b":[{"a":2},{"a":3}],"c":"x:\\":\\\\","d:e":"\\u003a"}';
    expect(parseJsonStrict(text)).toEqual(JSON.parse(text));
  });

  it('agrees with a count of keys for any JSON value JSON.stringify writes (no duplicates possible)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v, null, 1);
        expect(hasDuplicateKeys(text, JSON.parse(text))).toBe(false);
      }),
    );
  });

  it('finds a duplicate added to any object JSON.stringify writes', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }), (o) => {
        const [k, v] = Object.entries(o)[0]!;
        const text = `{${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'},${JSON.stringify(o).slice(1)}`;
        expect(hasDuplicateKeys(text, JSON.parse(text))).toBe(true);
      }),
    );
  });

  it('throws SyntaxError for text that is not JSON, as JSON.parse does', () => {
    expect(() => parseJsonStrict('{nope')).toThrow(SyntaxError);
  });
});
