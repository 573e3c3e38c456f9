/**
 * Errors raised while decoding or canonicalising untrusted input. The `code` is
 * stable and part of the public contract (see docs/ERRORS.md).
 */
export class CodecError extends Error {
  override readonly name = 'CodecError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
