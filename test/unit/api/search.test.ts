import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/api/errors.js';
import { parseTime } from '../../../src/api/search-query.js';
import { buildApi } from '../../../src/api/server.js';
import { SyncError } from '../../../src/sync/index.js';
import { FakeNode } from './fake-node.js';

let node: FakeNode;
let app: FastifyInstance;

beforeEach(async () => {
  node = await FakeNode.create();
  app = buildApi(node, { logger: false, metrics: null });
  await app.ready();
});

afterEach(async () => {
  await app.close();
});

function errorOf(res: { json: () => unknown }): { code: string; message: string; field?: string } {
  return (res.json() as { error: { code: string; message: string; field?: string } }).error;
}

const KEY = 'ab'.repeat(32);

describe('GET /v1/search', () => {
  it('passes q, k and no filters by default, and answers with the result whole', async () => {
    const res = await app.inject('/v1/search?q=autumn%20newsletter');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ hits: [node.hit()], vectorUsed: true });
    expect(node.searchCalls).toEqual([{ q: 'autumn newsletter', k: 10, filters: {} }]);
  });

  it('without q: an empty query (the filtered commissions, newest first)', async () => {
    node.searchImpl = () =>
      Promise.resolve({ hits: [node.hit({ score: 0, matchedBy: [] })], vectorUsed: false });
    const res = await app.inject('/v1/search?status=approved');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ hits: [node.hit({ score: 0, matchedBy: [] })], vectorUsed: false });
    expect(node.searchCalls[0]).toEqual({ q: '', k: 10, filters: { status: ['approved'] } });
  });

  it('parses every filter', async () => {
    const query = new URLSearchParams({
      q: 'shoes',
      k: '25',
      merchant: KEY,
      affiliate: 'Aff Partners',
      currency: 'EUR',
      from: '1700000000000',
      to: '2024-05-01T12:00:00+02:00',
      minAmount: '0',
      maxAmount: '99999999999999999999',
    });
    query.append('status', 'pending,approved');
    query.append('status', 'voided');
    query.append('status', 'pending');
    const res = await app.inject(`/v1/search?${query.toString()}`);
    expect(res.statusCode).toBe(200);
    expect(node.searchCalls[0]).toEqual({
      q: 'shoes',
      k: 25,
      filters: {
        merchant: KEY,
        affiliate: 'Aff Partners',
        status: ['pending', 'approved', 'voided'],
        currency: 'EUR',
        from: 1_700_000_000_000,
        to: Date.UTC(2024, 4, 1, 10),
        minAmount: '0',
        maxAmount: '99999999999999999999',
      },
    });
  });

  it('accepts ISO 8601 dates (UTC midnight) and date-times with a zone', async () => {
    await app.inject('/v1/search?from=2024-02-29&to=2024-03-01T00:00:00.5Z');
    expect(node.searchCalls[0]!.filters).toEqual({
      from: Date.UTC(2024, 1, 29),
      to: Date.UTC(2024, 2, 1) + 500,
    });
  });

  it('accepts the first and last instants Postgres stores (years 1 and 9999)', async () => {
    await app.inject('/v1/search?from=0001-01-01&to=9999-12-31T23:59:59.999Z');
    await app.inject('/v1/search?to=253402300799999');
    expect(node.searchCalls.map((c) => c.filters)).toEqual([
      { from: -62_135_596_800_000, to: 253_402_300_799_999 },
      { to: 253_402_300_799_999 },
    ]);
    expect(new Date(-62_135_596_800_000).toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(() => parseTime('0000-12-31T23:59:59.999Z', 'from')).toThrow(ApiError);
  });

  it.each([
    ['k=0', 'k'],
    ['k=101', 'k'],
    ['k=ten', 'k'],
    ['q=' + 'x'.repeat(1001), 'q'],
    ['status=open', 'status.0'],
    ['status=pending,', 'status.0'],
    ['status=pending&status=Approved', 'status.1'],
    ['currency=eur', 'currency'],
    ['merchant=', 'merchant'],
    ['affiliate=' + 'a'.repeat(201), 'affiliate'],
    ['minAmount=-1', 'minAmount'],
    ['minAmount=1.5', 'minAmount'],
    ['maxAmount=007', 'maxAmount'],
    ['maxAmount=' + '9'.repeat(21), 'maxAmount'],
    ['from=yesterday', 'from'],
    ['from=-5', 'from'],
    ['to=2024-05-01T12:00:00', 'to'],
    ['to=2024-5-1', 'to'],
  ])('refuses ?%s before the node sees it (400 at querystring.%s)', async (q, field) => {
    const res = await app.inject(`/v1/search?${q}`);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: `querystring.${field}` });
    expect(node.searchCalls).toHaveLength(0);
  });

  it.each([
    ['to=2024-05-01T12:00:00', 'querystring.to', /a time of day without a zone is refused/],
    ['currency=eur', 'querystring.currency', /three upper-case letters/],
    ['minAmount=1.5', 'querystring.minAmount', /a whole number in decimal digits/],
    ['status=open', 'querystring.status.0', /pending, approved, voided, reversed/],
  ])('says what ?%s should look like, not the pattern it failed', async (q, field, says) => {
    const { message } = errorOf(await app.inject(`/v1/search?${q}`));
    expect(message).toMatch(says);
    expect(message.startsWith(`${field} must be `)).toBe(true);
    expect(message).not.toMatch(/must match pattern/);
  });

  it('refuses an unknown parameter: a misspelt filter must not widen the search', async () => {
    const res = await app.inject('/v1/search?q=x&min_amount=5');
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: 'querystring.min_amount' });
    expect(node.searchCalls).toHaveLength(0);
  });

  it.each([
    ['from=2023-02-29', 'from', 'no such date'],
    ['to=2024-04-31', 'to', 'no such date'],
    ['from=2024-01-01T24:00:00Z', 'from', 'no such time of day'],
    ['from=2024-01-01T10:00:00%2B24:00', 'from', 'no such zone offset'],
    ['to=9999999999999999', 'to', 'outside the dates the mirror can hold'],
    // Postgres stores years 1 to 9999; these failed there (22008, 22009) or threw a RangeError
    ['to=253402300800000', 'to', 'outside the dates the mirror can hold'], // 10000-01-01
    ['from=8640000000000000', 'from', 'outside the dates the mirror can hold'],
    ['from=0000-01-01', 'from', 'outside the dates the mirror can hold'],
    ['from=0001-01-01T00:30:00%2B01:00', 'from', 'outside the dates the mirror can hold'],
    ['to=9999-12-31T23:30:00-01:00', 'to', 'outside the dates the mirror can hold'],
  ])('refuses ?%s: dates a pattern cannot check (400)', async (q, field, why) => {
    const res = await app.inject(`/v1/search?${q}`);
    expect(res.statusCode).toBe(400);
    const error = errorOf(res);
    expect(error).toMatchObject({ code: 'BAD_REQUEST', field: `querystring.${field}` });
    expect(error.message).toContain(why);
    expect(node.searchCalls).toHaveLength(0);
  });

  it('a SyncError INVALID_QUERY from the sync layer is 400 BAD_REQUEST with its message', async () => {
    node.searchImpl = () => Promise.reject(new SyncError('INVALID_QUERY', 'k must be an integer in 1..100'));
    const res = await app.inject('/v1/search?q=x');
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toEqual({ code: 'BAD_REQUEST', message: 'k must be an integer in 1..100' });
  });

  it('other sync errors are 500 INTERNAL and leak nothing', async () => {
    node.searchImpl = () => Promise.reject(new SyncError('BAD_EMBEDDING', 'vector of 3 at /srv/x.ts'));
    const res = await app.inject('/v1/search?q=x');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
  });

  it('NOT_READY from the node (no mirror, database away) is 503', async () => {
    node.searchImpl = () => Promise.reject(new ApiError('NOT_READY', 'this node runs without a mirror'));
    const res = await app.inject('/v1/search?q=x');
    expect(res.statusCode).toBe(503);
    expect(errorOf(res)).toEqual({ code: 'NOT_READY', message: 'this node runs without a mirror' });
  });

  it('reports a vector list that did not answer', async () => {
    const { distance: _, ...hit } = node.hit({ matchedBy: ['exact', 'text'], score: 1 + 1 / 61 + 1 / 61 });
    node.searchImpl = () =>
      Promise.resolve({
        hits: [hit],
        vectorUsed: false,
        vectorError: 'EMBEDDER_FAILED: connect ECONNREFUSED',
      });
    const res = await app.inject('/v1/search?q=o-1');
    const body = res.json<{ hits: Record<string, unknown>[]; vectorUsed: boolean; vectorError: string }>();
    expect(body.vectorUsed).toBe(false);
    expect(body.vectorError).toBe('EMBEDDER_FAILED: connect ECONNREFUSED');
    expect(body.hits[0]).not.toHaveProperty('distance');
    expect(body.hits[0]!.matchedBy).toEqual(['exact', 'text']);
  });
});

describe('GET /v1/sync/status', () => {
  it('answers with the sink and index status', async () => {
    const res = await app.inject('/v1/sync/status');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(node.syncStatus());
  });

  it('is 200 also when the mirror is degraded or stopped (the client decides)', async () => {
    const status = node.syncStatus()!;
    const stopped = {
      ...status,
      state: 'stopped' as const,
      lagBlocks: 7,
      lagSeconds: 12.5,
      lastError: 'CURSOR_MISMATCH: cursor at 3, expected 2',
      errors: 1,
      index: { ...status.index, state: 'degraded' as const, lastError: 'EMBEDDER_FAILED: 502' },
    };
    node.syncStatusImpl = () => stopped;
    const res = await app.inject('/v1/sync/status');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(stopped);
  });

  it("carries a PGlite mirror's maintenance (VACUUM / ANALYZE) when there is one", async () => {
    const status = node.syncStatus()!;
    const pglite = {
      ...status,
      maintenance: {
        rounds: 12,
        analyzed: 9,
        vacuumed: 2,
        checkpoints: 1,
        failed: 1,
        lastError: 'PGlite is closed',
      },
    };
    node.syncStatusImpl = () => pglite;
    expect((await app.inject('/v1/sync/status')).json()).toEqual(pglite);
  });

  it('before genesis: height -1 and a hash of zeros', async () => {
    const status = node.syncStatus()!;
    const empty = { ...status, height: -1, hash: '0'.repeat(64), lagBlocks: 3 };
    node.syncStatusImpl = () => empty;
    expect((await app.inject('/v1/sync/status')).json()).toEqual(empty);
  });

  it('is 503 NOT_READY on a node without a mirror', async () => {
    node.syncStatusImpl = () => undefined;
    const res = await app.inject('/v1/sync/status');
    expect(res.statusCode).toBe(503);
    expect(errorOf(res)).toEqual({ code: 'NOT_READY', message: 'this node runs without a mirror' });
  });
});

describe('GET /v1/sync/check', () => {
  it('answers with the report', async () => {
    const res = await app.inject('/v1/sync/check');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(await node.syncCheck());
  });

  it('is 200 with the first difference when the mirror differs', async () => {
    const report = {
      ok: false,
      chainHeight: 9,
      mirrorHeight: 9,
      blocksChecked: 4,
      transactionsChecked: 11,
      stateChecked: false,
      difference: { height: 4, what: 'block hash', expected: 'a'.repeat(64), actual: 'b'.repeat(64) },
    };
    node.syncCheckImpl = () => Promise.resolve(report);
    const res = await app.inject('/v1/sync/check');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(report);
  });

  it('is 503 NOT_READY on a node without a mirror', async () => {
    node.syncCheckImpl = () => Promise.reject(new ApiError('NOT_READY', 'this node runs without a mirror'));
    const res = await app.inject('/v1/sync/check');
    expect(res.statusCode).toBe(503);
    expect(errorOf(res).code).toBe('NOT_READY');
  });

  it('an unexpected failure (database gone mid-check) is 500 INTERNAL', async () => {
    node.syncCheckImpl = () => Promise.reject(new Error('Connection terminated unexpectedly'));
    const res = await app.inject('/v1/sync/check');
    expect(res.statusCode).toBe(500);
    expect(errorOf(res).code).toBe('INTERNAL');
  });
});

describe('parseTime', () => {
  it('reads Unix ms and ISO 8601 strictly', () => {
    expect(parseTime('0', 'from')).toBe(0);
    expect(parseTime('1700000000000', 'from')).toBe(1_700_000_000_000);
    expect(parseTime('2024-01-01', 'from')).toBe(Date.UTC(2024, 0, 1));
    expect(parseTime('2024-01-01T10:00Z', 'from')).toBe(Date.UTC(2024, 0, 1, 10));
    expect(parseTime('2024-01-01 10:00:00-0130', 'from')).toBe(Date.UTC(2024, 0, 1, 11, 30));
    expect(parseTime('2024-01-01t10:00:00.123456789z', 'from')).toBe(Date.UTC(2024, 0, 1, 10, 0, 0, 123));
    expect(parseTime('1969-12-31T23:59:59Z', 'from')).toBe(-1000);
    // years below 100 are not read as 19xx
    expect(new Date(parseTime('0099-01-01', 'from')).toISOString()).toBe('0099-01-01T00:00:00.000Z');
  });

  it('refuses what Date.parse would bend', () => {
    for (const value of ['2023-02-29', '2024-00-10', '2024-13-01', '2024-01-01T10:60Z', '2024-01-01T10:00']) {
      expect(() => parseTime(value, 'from')).toThrow(ApiError);
    }
  });
});
