import {
  VALIDATION_ERROR_CODES,
  ValidationError,
  type ResultCode,
  type ValidationErrorCode,
} from '../ledger/index.js';
import type { SyncErrorCode } from '../sync/index.js';
import { patternHint } from './patterns.js';

/**
 * Every error the HTTP API answers with, by stable code, and the one place
 * that maps a code to an HTTP status. Clients switch on `code`, never on the
 * status or the message. docs/ERRORS.md explains each code; a test checks
 * that it lists them all.
 */
const VALIDATION_STATUS = {
  MALFORMED_JSON: 400,
  INVALID_FIELD: 400,
  UNKNOWN_FIELD: 400,
  MISSING_FIELD: 400,
  UNKNOWN_KIND: 400,
  UNSUPPORTED_VERSION: 400,
  BAD_HEX: 400,
  WRONG_CHAIN: 400,
  BAD_SIGNATURE: 400,
  TOO_LARGE: 413,
} as const satisfies Record<ValidationErrorCode, number>;

const API_STATUS = {
  /** the request failed a route schema (params, query, headers, body shape) */
  BAD_REQUEST: 400,
  /** an admin request whose signer is not an operator, or whose signature fails */
  UNAUTHORIZED: 403,
  NOT_FOUND: 404,
  /** the transaction is well-formed but the ledger would refuse it; details.receiptCode says why */
  REJECTED: 409,
  /** the bytes received are not an HTTP/1.1 request (Node's parser refused them before any route) */
  BAD_HTTP_REQUEST: 400,
  /** the request did not arrive whole within the request timeout (its headers within the headers timeout) */
  REQUEST_TIMEOUT: 408,
  /** the HTTP body is above the server's body limit */
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** the request line and headers are above the HTTP parser's maximum header size */
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  /** the node cannot serve this now (starting, catching up, shutting down, at its limit of event streams) */
  NOT_READY: 503,
  /** admin leader.transfer: no leader is known, or it could not start the transfer (election in progress) */
  NO_LEADER: 503,
  /** not committed within timeoutMs; it may still commit later */
  TIMEOUT: 504,
} as const;

export const HTTP_STATUS = { ...VALIDATION_STATUS, ...API_STATUS } as const;
export type ApiErrorCode = keyof typeof HTTP_STATUS;
export const API_ERROR_CODES = Object.keys(HTTP_STATUS) as ApiErrorCode[];

export interface ApiErrorOptions {
  /** JSON path of the offending field (`$.payload.amount`) or the request part (`querystring.limit`) */
  field?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** An error with a stable code; thrown by the node (LedgerNodeApi) or the routes. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly field?: string;
  readonly details?: Record<string, unknown>;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    opts: ApiErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (opts.field !== undefined) this.field = opts.field;
    if (opts.details !== undefined) this.details = opts.details;
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

/**
 * REJECTED: the ledger would record this transaction with a failing receipt
 * code (UNKNOWN_SIGNER, NONCE_REUSED, TX_EXPIRED, ...), so it is not accepted.
 */
export function rejected(
  receiptCode: Exclude<ResultCode, 'OK'>,
  message: string,
  existing?: string,
): ApiError {
  const details: Record<string, unknown> = { receiptCode };
  if (existing !== undefined) details.existing = existing;
  return new ApiError('REJECTED', message, { details });
}

/** The one JSON shape of every error response. */
export interface ErrorBody {
  error: {
    code: ApiErrorCode;
    message: string;
    field?: string;
    details?: Record<string, unknown>;
  };
}

export interface MappedError {
  status: number;
  body: ErrorBody;
  /** a server fault (5xx other than the expected 503/504): worth an error log with the stack */
  internal: boolean;
}

const VALIDATION_CODES: ReadonlySet<string> = new Set(VALIDATION_ERROR_CODES);

function errorBody(
  code: ApiErrorCode,
  message: string,
  field?: string,
  details?: Record<string, unknown>,
): ErrorBody {
  const error: ErrorBody['error'] = { code, message };
  if (field !== undefined) error.field = field;
  if (details !== undefined) error.details = details;
  return { error };
}

export function apiErrorBody(code: ApiErrorCode, message: string, field?: string): MappedError {
  return { status: HTTP_STATUS[code], body: errorBody(code, message, field), internal: false };
}

/**
 * The ApiError an error body (ErrorBody) describes, as another node answered
 * it; undefined for anything else. A follower relays its leader's answer
 * with it, so the client sees the leader's code, message and details.
 */
export function apiErrorFromBody(json: unknown): ApiError | undefined {
  const e = (json as Partial<ErrorBody> | null)?.error;
  if (typeof e !== 'object' || e === null || typeof e.message !== 'string') return undefined;
  if (typeof e.code !== 'string' || !Object.hasOwn(HTTP_STATUS, e.code)) return undefined;
  const opts: ApiErrorOptions = {};
  if (typeof e.field === 'string') opts.field = e.field;
  if (typeof e.details === 'object' && e.details !== null) opts.details = e.details;
  return new ApiError(e.code, e.message, opts);
}

/** Fastify's own errors (parsing, body limit, schema validation) that reach the error handler. */
interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  validation?: { instancePath?: string; keyword?: string; params?: Record<string, unknown> }[];
  validationContext?: string;
}

const FASTIFY_CODES: Record<string, ApiErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

/** `querystring.limit`, `params.id`, `headers.last-event-id`; body paths as the ledger writes them (`$.x`). */
function schemaField(err: FastifyLikeError): string | undefined {
  const first = err.validation?.[0];
  if (first === undefined) return undefined;
  const segments = (first.instancePath ?? '').split('/').filter((s) => s !== '');
  const extra = first.params?.missingProperty ?? first.params?.additionalProperty;
  if (typeof extra === 'string') segments.push(extra);
  const part = err.validationContext ?? 'body';
  if (part === 'body') return ['$', ...segments].join('.');
  return [part, ...segments].join('.');
}

/**
 * Map anything thrown while handling a request to a status and the error
 * shape. Unknown errors become INTERNAL with a fixed message: no stack or
 * internal detail ever reaches a client.
 */
export function mapError(err: unknown): MappedError {
  if (err instanceof ApiError) {
    const status = err.status;
    return {
      status,
      body: errorBody(err.code, err.message, err.field, err.details),
      internal:
        status >= 500 && err.code !== 'NOT_READY' && err.code !== 'NO_LEADER' && err.code !== 'TIMEOUT',
    };
  }
  if (isInvalidQuery(err)) {
    // The sync layer refused a search as asked (a filter or k it cannot use): the client's input.
    const prefix = 'INVALID_QUERY: ';
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    return apiErrorBody('BAD_REQUEST', message);
  }
  if (err instanceof ValidationError || isValidationErrorLike(err)) {
    const code = err.code as ApiErrorCode;
    return { status: HTTP_STATUS[code], body: errorBody(code, err.message, err.field), internal: false };
  }
  if (typeof err === 'object' && err !== null) {
    const e = err as FastifyLikeError;
    const message = typeof e.message === 'string' ? e.message : 'bad request';
    if (Array.isArray(e.validation)) {
      const first = e.validation[0];
      const field = schemaField(e);
      const hint = first?.keyword === 'pattern' ? patternHint(first.params?.pattern) : undefined;
      // "querystring/from must match pattern "^(0|[1-9]…" says little; the hint says what to send
      if (hint !== undefined)
        return apiErrorBody('BAD_REQUEST', `${field ?? 'a value'} must be ${hint}`, field);
      return apiErrorBody('BAD_REQUEST', message, field);
    }
    const mapped = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
    if (mapped === 'UNSUPPORTED_MEDIA_TYPE') return unsupportedMediaType(message);
    if (mapped !== undefined) return apiErrorBody(mapped, message);
    // Any other client error fastify raises (it sets statusCode 4xx on its own errors).
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      if (e.statusCode === 404) return apiErrorBody('NOT_FOUND', message);
      if (e.statusCode === 413) return apiErrorBody('PAYLOAD_TOO_LARGE', message);
      if (e.statusCode === 415) return unsupportedMediaType(message);
      return apiErrorBody('BAD_REQUEST', message);
    }
  }
  return { status: 500, body: errorBody('INTERNAL', 'internal error'), internal: true };
}

/** fastify says "Unsupported Media Type: text/plain"; the client needs to know what to send instead */
function unsupportedMediaType(message: string): MappedError {
  return apiErrorBody(
    'UNSUPPORTED_MEDIA_TYPE',
    `${message}: send the body as JSON, with the header content-type: application/json`,
  );
}

/**
 * A SyncError with code INVALID_QUERY (src/sync/errors.ts). Told apart by name
 * and code rather than instanceof, so the API does not load the sync layer's
 * database drivers just to recognise its errors.
 */
function isInvalidQuery(err: unknown): err is { code: 'INVALID_QUERY'; message: string } {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  const code: SyncErrorCode = 'INVALID_QUERY';
  return e.name === 'SyncError' && e.code === code && typeof e.message === 'string';
}

/** A ValidationError from another copy of the ledger module (e.g. a worker bundle) still maps. */
function isValidationErrorLike(err: unknown): err is { code: string; message: string; field?: string } {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  return (
    e.name === 'ValidationError' &&
    typeof e.code === 'string' &&
    VALIDATION_CODES.has(e.code) &&
    typeof e.message === 'string'
  );
}
