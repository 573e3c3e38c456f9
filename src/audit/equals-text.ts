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
