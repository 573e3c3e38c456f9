/**
 * Why a transaction or block was refused before it reached a block
 * (stateless validation). Codes are stable: clients switch on them, docs/ERRORS.md
 * lists them. Outcomes of applying a transaction inside a block are receipt
 * codes instead (result-codes.ts): those never throw.
 */
export const VALIDATION_ERROR_CODES = [
  'MALFORMED_JSON',
  'INVALID_FIELD',
  'UNKNOWN_FIELD',
  'MISSING_FIELD',
  'UNKNOWN_KIND',
  'UNSUPPORTED_VERSION',
  'BAD_HEX',
  'WRONG_CHAIN',
  'BAD_SIGNATURE',
  'TOO_LARGE',
] as const;
export type ValidationErrorCode = (typeof VALIDATION_ERROR_CODES)[number];

export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    readonly code: ValidationErrorCode,
    message: string,
    /** JSON path of the offending field, e.g. `$.payload.amount`. */
    readonly field?: string,
  ) {
    super(field === undefined ? message : `${field}: ${message}`);
  }
}

/**
 * A broken ledger invariant: a bug, never a user error. The node stops loudly
 * rather than commit a state that breaks accounting.
 */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  readonly code = 'INVARIANT_VIOLATION';
  constructor(
    readonly height: number,
    message: string,
  ) {
    super(`invariant violated at height ${height}: ${message}`);
  }
}
