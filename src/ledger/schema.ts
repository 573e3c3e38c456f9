import { ValidationError } from './errors.js';

/**
 * Small strict readers for untrusted JSON. Each names the JSON path of what it
 * rejects, so an error says exactly which field is wrong.
 */

export function obj(
  value: unknown,
  path: string,
  required: readonly string[],
  optional: readonly string[] = [],
) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError('INVALID_FIELD', 'must be an object', path);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!required.includes(key) && !optional.includes(key)) {
      throw new ValidationError('UNKNOWN_FIELD', 'is not a known field', `${path}.${key}`);
    }
  }
  for (const key of required) {
    if (record[key] === undefined)
      throw new ValidationError('MISSING_FIELD', 'is required', `${path}.${key}`);
  }
  return record;
}

export interface StrOptions {
  min?: number;
  max: number;
  pattern?: RegExp;
  patternText?: string;
}

export function str(value: unknown, path: string, opts: StrOptions): string {
  if (typeof value !== 'string') throw new ValidationError('INVALID_FIELD', 'must be a string', path);
  const min = opts.min ?? 1;
  if (value.length < min)
    throw new ValidationError('INVALID_FIELD', `must have at least ${min} characters`, path);
  if (value.length > opts.max)
    throw new ValidationError('INVALID_FIELD', `must have at most ${opts.max} characters`, path);
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new ValidationError('INVALID_FIELD', 'holds a lone surrogate', path);
  }
  if (opts.pattern && !opts.pattern.test(value)) {
    throw new ValidationError('INVALID_FIELD', `must be ${opts.patternText ?? opts.pattern.source}`, path);
  }
  return value;
}

export function int(
  value: unknown,
  path: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  // -0 passes isSafeInteger, but canonical JSON has no encoding for it (docs/FORMAT.md §1)
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || Object.is(value, -0)) {
    throw new ValidationError('INVALID_FIELD', 'must be an integer', path);
  }
  if (value < min || value > max)
    throw new ValidationError('INVALID_FIELD', `must be in [${min}, ${max}]`, path);
  return value;
}

const HEX_RE = /^[0-9a-f]*$/;

export function hex(value: unknown, path: string, bytes: number): string {
  if (typeof value !== 'string') throw new ValidationError('INVALID_FIELD', 'must be a hex string', path);
  if (!HEX_RE.test(value)) throw new ValidationError('BAD_HEX', 'must be lower-case hex', path);
  if (value.length !== bytes * 2) {
    throw new ValidationError('BAD_HEX', `must be ${bytes} bytes (${bytes * 2} hex digits)`, path);
  }
  return value;
}

export function oneOf<T extends string>(value: unknown, path: string, options: readonly T[]): T {
  if (typeof value !== 'string' || !options.includes(value as T)) {
    throw new ValidationError('INVALID_FIELD', `must be one of ${options.join(', ')}`, path);
  }
  return value as T;
}

/** Amounts: integers in minor units, as decimal strings (no float ever), 1 ≤ amount < 10^18. */
export const AMOUNT_RE = /^[1-9][0-9]{0,17}$/;

export function amount(value: unknown, path: string): string {
  // The pattern alone: a 19-digit amount is out of range, not "too long"
  if (typeof value !== 'string' || !AMOUNT_RE.test(value)) {
    throw new ValidationError(
      'INVALID_FIELD',
      'must be a positive integer in minor units written as a decimal string without leading zeros (< 10^18)',
      path,
    );
  }
  return value;
}
