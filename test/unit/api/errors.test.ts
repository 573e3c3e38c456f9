import { describe, expect, it } from 'vitest';
import { API_ERROR_CODES, ApiError, HTTP_STATUS, mapError, rejected } from '../../../src/api/errors.js';
import { VALIDATION_ERROR_CODES, ValidationError } from '../../../src/ledger/index.js';
import { SyncError } from '../../../src/sync/index.js';

describe('the error-code registry', () => {
  it('maps every ledger validation code, TOO_LARGE to 413 and the rest to 400', () => {
    for (const code of VALIDATION_ERROR_CODES) {
      expect(API_ERROR_CODES).toContain(code);
      expect(HTTP_STATUS[code]).toBe(code === 'TOO_LARGE' ? 413 : 400);
    }
  });

  it('has the statuses the API promises', () => {
    expect(HTTP_STATUS).toMatchObject({
      BAD_REQUEST: 400,
      UNAUTHORIZED: 403,
      NOT_FOUND: 404,
      REJECTED: 409,
      PAYLOAD_TOO_LARGE: 413,
      UNSUPPORTED_MEDIA_TYPE: 415,
      INTERNAL: 500,
      NOT_READY: 503,
      NO_LEADER: 503,
      TIMEOUT: 504,
    });
  });
});

describe('mapError', () => {
  it('ApiError keeps its code, field and details', () => {
    const err = new ApiError('BAD_REQUEST', 'no', { field: 'querystring.x', details: { a: 1 } });
    expect(mapError(err)).toEqual({
      status: 400,
      body: { error: { code: 'BAD_REQUEST', message: 'no', field: 'querystring.x', details: { a: 1 } } },
      internal: false,
    });
    expect(mapError(rejected('TX_EXPIRED', 'too old')).body.error.details).toEqual({
      receiptCode: 'TX_EXPIRED',
    });
  });

  it('expected unavailability is not an internal fault; INTERNAL is', () => {
    expect(mapError(new ApiError('TIMEOUT', 't')).internal).toBe(false);
    expect(mapError(new ApiError('NOT_READY', 't')).internal).toBe(false);
    expect(mapError(new ApiError('INTERNAL', 't')).internal).toBe(true);
  });

  it('ValidationError, also from another copy of the module', () => {
    const err = new ValidationError('BAD_HEX', 'must be hex', '$.signer');
    expect(mapError(err).body.error).toEqual({
      code: 'BAD_HEX',
      message: '$.signer: must be hex',
      field: '$.signer',
    });
    const foreign = { name: 'ValidationError', code: 'UNKNOWN_FIELD', message: 'm', field: '$.x' };
    expect(mapError(foreign).body.error).toEqual({ code: 'UNKNOWN_FIELD', message: 'm', field: '$.x' });
    // a name alone is not enough
    expect(mapError({ name: 'ValidationError', code: 'DROP_TABLES', message: 'm' }).status).toBe(500);
  });

  it('a search the sync layer refuses (INVALID_QUERY) is BAD_REQUEST; other sync errors are INTERNAL', () => {
    expect(mapError(new SyncError('INVALID_QUERY', 'unknown status "open"'))).toEqual({
      status: 400,
      body: { error: { code: 'BAD_REQUEST', message: 'unknown status "open"' } },
      internal: false,
    });
    // also from another copy of the module
    const foreign = { name: 'SyncError', code: 'INVALID_QUERY', message: 'INVALID_QUERY: k must be 1..100' };
    expect(mapError(foreign).body.error).toEqual({ code: 'BAD_REQUEST', message: 'k must be 1..100' });
    expect(mapError(new SyncError('CURSOR_MISMATCH', 'cursor at 3')).status).toBe(500);
    expect(mapError({ name: 'Error', code: 'INVALID_QUERY', message: 'm' }).status).toBe(500);
  });

  it('fastify schema errors name the request part', () => {
    const err = Object.assign(new Error('querystring/limit must be <= 100'), {
      validation: [{ instancePath: '/limit', keyword: 'maximum', params: { limit: 100 } }],
      validationContext: 'querystring',
    });
    expect(mapError(err).body.error).toEqual({
      code: 'BAD_REQUEST',
      message: 'querystring/limit must be <= 100',
      field: 'querystring.limit',
    });
    const missing = Object.assign(new Error('body must have required property x'), {
      validation: [{ instancePath: '/payload', keyword: 'required', params: { missingProperty: 'x' } }],
      validationContext: 'body',
    });
    expect(mapError(missing).body.error.field).toBe('$.payload.x');
  });

  it('fastify parser errors by code, other 4xx by status', () => {
    const e = (code: string, statusCode: number) => Object.assign(new Error(code), { code, statusCode });
    expect(mapError(e('FST_ERR_CTP_INVALID_JSON_BODY', 400)).body.error.code).toBe('MALFORMED_JSON');
    expect(mapError(e('FST_ERR_CTP_EMPTY_JSON_BODY', 400)).body.error.code).toBe('MALFORMED_JSON');
    expect(mapError(e('FST_ERR_CTP_BODY_TOO_LARGE', 413)).status).toBe(413);
    expect(mapError(e('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415)).status).toBe(415);
    expect(mapError(e('FST_ERR_SOMETHING_NEW', 431)).body.error.code).toBe('BAD_REQUEST');
  });

  it('anything else is INTERNAL with a fixed message', () => {
    for (const thrown of [
      new TypeError('x is undefined at /srv/a.ts:3'),
      'a string',
      null,
      42,
      { statusCode: 502 },
    ]) {
      expect(mapError(thrown)).toEqual({
        status: 500,
        body: { error: { code: 'INTERNAL', message: 'internal error' } },
        internal: true,
      });
    }
  });
});
