import type { StoredValue } from '../storage/kv.js';

/**
 * Stored bytes equal the UTF-8 encoding of `text`? Compares ASCII text
 * character by character; anything else is encoded first.
 */
export function equalsText(stored: Uint8Array, text: string): boolean {
  const n = text.length;
  if (stored.length < n) return false;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return Buffer.from(text, 'utf8').equals(stored);
    if (stored[i] !== c) return false;
  }
  return stored.length === n;
}

/**
 * A stored value (bytes, or their exact UTF-8 decoding: storage/kv.ts
 * StoredValue) equals the UTF-8 encoding of `text`?
 */
export function storedEquals(stored: StoredValue, text: string): boolean {
  return typeof stored === 'string' ? stored === text : equalsText(stored, text);
}
