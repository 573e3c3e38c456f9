/**
 * The mirror's text escape (docs/SYNC.md §Text and U+0000).
 *
 * The ledger accepts any character in its texts (names, order ids,
 * descriptions, metadata keys and values, reasons, references), U+0000 (NUL)
 * included. Postgres cannot store NUL: a `text` value cannot hold it and
 * `jsonb` refuses `\u0000`. So every string the mirror writes, in a text
 * column or inside a JSON value (keys too), is escaped with U+2400 SYMBOL FOR
 * NULL (`␀`) as the escape character, two characters per escape:
 *
 *   U+0000 → U+2400 U+2400 (`␀␀`)
 *   U+2400 → U+2400 U+2401 (`␀␁`)
 *
 * and every other character is itself. Each `␀` the mirror holds starts one of
 * these two pairs, so the mapping is reversible (`fromMirrorText`), and it
 * maps a concatenation to the concatenation of the mapped parts, so a text
 * built from parts (metadata_text) is the same escaped whole or part by part.
 * Both symbols are neither letters nor digits: full-text search and the
 * embedders see a word break where the ledger's text has a NUL, as they would
 * for the NUL itself. Search reverses the mapping in what it returns.
 */

const ESC = '\u2400';
const NEEDS_ESCAPE = /[\0\u2400]/;
const NEEDS_ESCAPE_ALL = /[\0\u2400]/g;
const ESCAPED = { '\0': `${ESC}${ESC}`, [ESC]: `${ESC}\u2401` } as Readonly<Record<string, string>>;

/** A ledger text as the mirror stores it. */
export function toMirrorText(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(NEEDS_ESCAPE_ALL, (c) => ESCAPED[c]!) : s;
}

/**
 * The ledger text a mirror text stands for (the inverse of toMirrorText). A
 * `␀` not followed by `␀` or `␁` (none is written so) is kept as it is.
 */
export function fromMirrorText(s: string): string {
  if (!s.includes(ESC)) return s;
  let out = '';
  let from = 0;
  for (let i = s.indexOf(ESC); i >= 0; i = s.indexOf(ESC, i)) {
    const next = s[i + 1];
    if (next === ESC || next === '\u2401') {
      out += s.slice(from, i) + (next === ESC ? '\0' : ESC);
      i += 2;
      from = i;
    } else {
      i += 1;
    }
  }
  return out + s.slice(from);
}

/** A JSON value with every string in it (object keys too) mapped by `map`. */
function mapStrings(value: unknown, map: (s: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, map));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    // defined, not assigned: a key "__proto__" (a valid metadata key) stays a key
    for (const [k, v] of Object.entries(value))
      Object.defineProperty(out, map(k), {
        value: mapStrings(v, map),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    return out;
  }
  return value;
}

/**
 * JSON text for a `jsonb` column, every string escaped (toMirrorText).
 * JSON.stringify writes U+0000 as `\u0000` and U+2400 as itself, so a text
 * without either needs no second pass (a literal `\u0000` typed by someone
 * appears as `\\u0000` and only costs that pass).
 */
export function toMirrorJson(value: unknown): string {
  const json = JSON.stringify(value);
  if (!json.includes('\\u0000') && !json.includes(ESC)) return json;
  return JSON.stringify(mapStrings(value, toMirrorText));
}

/** A JSON value read from the mirror with its strings as the ledger wrote them. */
export function fromMirrorJson<T>(value: T): T {
  return mapStrings(value, fromMirrorText) as T;
}
