import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromMirrorJson, fromMirrorText, toMirrorJson, toMirrorText } from '../../../src/sync/text.js';

const NUL = '\u0000';
const SYM = '\u2400'; // ␀
const SOH = '\u2401'; // ␁

/** Strings rich in the characters the escape is about. */
const tricky = fc
  .array(fc.constantFrom(NUL, SYM, SOH, 'a', ' ', '\\', 'u0000', 'é'), { maxLength: 12 })
  .map((parts) => parts.join(''));

describe("the mirror's text escape", () => {
  it('maps U+0000 and U+2400 to two-character escapes and leaves every other text as it is', () => {
    expect(toMirrorText(`a${NUL}b`)).toBe(`a${SYM}${SYM}b`);
    expect(toMirrorText(`a${SYM}b`)).toBe(`a${SYM}${SOH}b`);
    expect(toMirrorText(`${NUL}${SYM}`)).toBe(`${SYM}${SYM}${SYM}${SOH}`);
    expect(toMirrorText('plain text, \\u0000 typed')).toBe('plain text, \\u0000 typed');
    expect(toMirrorText(`${SOH}`)).toBe(SOH);
  });

  it('is reversible, holds no NUL, and maps a concatenation part by part', () => {
    fc.assert(
      fc.property(tricky, tricky, (a, b) => {
        expect(fromMirrorText(toMirrorText(a))).toBe(a);
        expect(toMirrorText(a)).not.toContain(NUL);
        expect(toMirrorText(a + b)).toBe(toMirrorText(a) + toMirrorText(b));
      }),
    );
  });

  it('escapes every string of a JSON value, keys included, into JSON jsonb accepts', () => {
    const value = {
      [`k${NUL}ey`]: `v${NUL}al`,
      sym: `${SYM}${SOH}`,
      list: [`x${NUL}`, 1, true, null],
      // a valid metadata key: must stay a key, not become the object's prototype
      ['__proto__']: 'p',
      typed: '\\u0000',
    };
    const json = toMirrorJson(value);
    // no escaped NUL left (the typed one is written \\u0000, an escaped backslash)
    expect(json).not.toMatch(/(^|[^\\])\\u0000/);
    const parsed = JSON.parse(json) as Record<string, unknown>;
    expect(parsed).toEqual({
      [`k${SYM}${SYM}ey`]: `v${SYM}${SYM}al`,
      sym: `${SYM}${SOH}${SOH}`,
      list: [`x${SYM}${SYM}`, 1, true, null],
      ['__proto__']: 'p',
      typed: '\\u0000',
    });
    expect(Object.keys(fromMirrorJson(parsed))).toContain('__proto__');
    expect(fromMirrorJson(parsed)).toEqual(JSON.parse(JSON.stringify(value)));
    // nothing to escape: exactly JSON.stringify
    expect(toMirrorJson({ a: 'b', n: [1] })).toBe('{"a":"b","n":[1]}');
  });
});
