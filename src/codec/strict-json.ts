import { CodecError } from './errors.js';

/**
 * JSON text that names a key twice in one object. `JSON.parse` keeps the last
 * value silently, so a proxy, firewall or log that keeps the first would read
 * another amount than the ledger signs and records (docs/FORMAT.md §1: no
 * duplicate keys). Every member of every object has exactly one `:` outside
 * strings, and every duplicate costs the parsed value one key, so counting
 * both finds any duplicate in one pass over the text, without a second parser.
 * `parsed` must be `JSON.parse(text)`.
 */
export function hasDuplicateKeys(text: string, parsed: unknown): boolean {
  let members = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next code unit is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x3a) members++;
  }
  return members !== keyCount(parsed);
}

function keyCount(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const v of value) n += keyCount(v);
    return n;
  }
  for (const k of Object.keys(value)) n += 1 + keyCount((value as Record<string, unknown>)[k]);
  return n;
}

/** `JSON.parse` that refuses duplicate keys with CodecError `DUPLICATE_KEY` (syntax errors throw as JSON.parse does). */
export function parseJsonStrict(text: string): unknown {
  const parsed: unknown = JSON.parse(text);
  if (hasDuplicateKeys(text, parsed))
    throw new CodecError('DUPLICATE_KEY', 'an object names the same key twice');
  return parsed;
}
