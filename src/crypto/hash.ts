import { createHash, hash } from 'node:crypto';

/**
 * SHA-256 (OpenSSL through node:crypto; @noble/hashes agrees on every vector,
 * see tests).
 *
 * The digest is asked for as a 'binary' (latin1) string and copied into a fresh 32-byte
 * Uint8Array. That is ~2× faster than asking for a Buffer: every Buffer that
 * node:crypto returns has its own off-heap backing store (~1.2 µs to allocate
 * and free, and it counts towards V8's external memory, which brings the next
 * GC closer), while a 32-byte Uint8Array lives on V8's heap. Merkle trees hash
 * millions of 65-byte nodes, so this is most of their cost (PERFORMANCE.md,
 * round 15).
 */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return sha256One(parts[0]!);
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return copyDigest(h.digest('binary'));
}

/** SHA-256 of one byte string: the one-shot path without the rest-argument array. */
export function sha256One(data: Uint8Array): Uint8Array {
  return copyDigest(hash('sha256', data, 'binary'));
}

function copyDigest(latin1: string): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = latin1.charCodeAt(i);
  return out;
}
