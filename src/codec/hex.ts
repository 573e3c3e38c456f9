import { CodecError } from './errors.js';

const HEX = /^(?:[0-9a-f]{2})*$/;

/** Lower-case hex, the only form accepted anywhere in the protocol. */
export function toHex(bytes: Uint8Array): string {
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
