import { CodecError } from './errors.js';

const HEX = /^(?:[0-9a-f]{2})*$/;

/**
 * Buffer's native hex writer, which takes any Uint8Array. Called on the array
 * itself, not on `Buffer.from(bytes.buffer, …)`: reading `.buffer` of a small
 * array that lives on V8's heap (a SHA-256 digest, crypto/hash.ts) moves its
 * bytes to a fresh off-heap backing store (~0.5–1 µs, and one more for the GC
 * to free); the native writer copies up to 64 such bytes to its stack instead.
 */
const hexSlice = (Buffer.prototype as unknown as { hexSlice?: (start: number, end: number) => string })
  .hexSlice;

/** Lower-case hex, the only form accepted anywhere in the protocol. */
export function toHex(bytes: Uint8Array): string {
  if (hexSlice !== undefined) return hexSlice.call(bytes, 0, bytes.length);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Strict decoding: lower-case, even length, and (when given) an exact byte
 * length. Upper case is refused so that one value has one spelling.
 */
export function fromHex(hex: string, expectedBytes?: number, what = 'value'): Uint8Array {
  if (typeof hex !== 'string' || !HEX.test(hex)) {
    throw new CodecError('BAD_HEX', `${what} must be lower-case hex`);
  }
  if (expectedBytes !== undefined && hex.length !== expectedBytes * 2) {
    throw new CodecError(
      'BAD_HEX',
      `${what} must be ${expectedBytes} bytes (${expectedBytes * 2} hex digits)`,
    );
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function isHex(value: unknown, bytes: number): value is string {
  return typeof value === 'string' && value.length === bytes * 2 && HEX.test(value);
}
