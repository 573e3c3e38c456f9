import { createHash } from 'node:crypto';

/** SHA-256 (OpenSSL through node:crypto; @noble/hashes agrees on every vector, see tests). */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest().buffer.slice(0) as ArrayBuffer);
}
