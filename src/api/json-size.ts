/** What JSON.stringify writes as more than itself: quote, backslash, control characters, surrogates (lone ones become \u escapes). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON escapes
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

const omitted = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/**
 * The UTF-8 length of `JSON.stringify(value)`, counted by walking the value
 * instead of building its text: a block of several megabytes is measured
 * without making a string of that size. For plain JSON data, as JSON.parse
 * returns it (no toJSON, no bigint).
 */
export function jsonByteLength(value: unknown): number {
  switch (typeof value) {
    case 'string':
      // the rare string with escapes or non-BMP text: its own (short) JSON
      return ESCAPED.test(value) ? Buffer.byteLength(JSON.stringify(value)) : Buffer.byteLength(value) + 2;
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'object': {
      if (value === null) return 4;
      if (Array.isArray(value)) {
        let n = 1 + Math.max(1, value.length);
        for (const v of value as unknown[]) n += omitted(v) ? 4 : jsonByteLength(v);
        return n;
      }
      let n = 1;
      for (const [k, v] of Object.entries(value))
        if (!omitted(v)) n += jsonByteLength(k) + 2 + jsonByteLength(v);
      return Math.max(n, 2);
    }
    case 'undefined':
    case 'function':
    case 'symbol':
    case 'bigint':
      // not JSON data (JSON.stringify leaves the first three out, throws on the last)
      return 0;
  }
}
