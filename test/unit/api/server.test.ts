import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError, rejected } from '../../../src/api/errors.js';
import { createPromMetrics, type NodeMetrics } from '../../../src/api/metrics.js';
import { buildApi } from '../../../src/api/server.js';
import { blockHash, ValidationError } from '../../../src/ledger/index.js';
import { FakeNode } from './fake-node.js';

let node: FakeNode;
let app: FastifyInstance;
let metrics: NodeMetrics;

beforeEach(async () => {
  node = await FakeNode.create();
  metrics = createPromMetrics({ processMetrics: false }).metrics;
  app = buildApi(node, { logger: false, metrics });
  await app.ready();
});

afterEach(async () => {
  await app.close();
});

interface ErrorJson {
  error: { code: string; message: string; field?: string; details?: Record<string, unknown> };
}

/** POST /v1/transactions with a JSON body given as text. */
function postTransaction(payload: string) {
  return app.inject({
    method: 'POST',
    url: '/v1/transactions',
    headers: { 'content-type': 'application/json' },
    payload,
  });
}

function errorOf(res: { json: () => unknown }): ErrorJson['error'] {
  return (res.json() as ErrorJson).error;
}

const post = (url: string, payload: unknown) =>
  app.inject({ method: 'POST', url, payload: payload as object });

describe('POST /v1/transactions', () => {
  it('waits for the commit by default and answers with the receipt', async () => {
    const dtx = node.commissionTx('o-1');
    const res = await post('/v1/transactions', dtx.tx);
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      id: string;
      status: string;
      receipt: { code: string; tx: string };
      blockHash: string;
    }>();
    expect(body).toMatchObject({ id: dtx.id, status: 'committed', receipt: { code: 'OK', tx: dtx.id } });
    expect(body.blockHash).toBe(node.blocks.at(-1)!.hash);
    expect(node.submitCalls[0]).toMatchObject({ wait: true, timeoutMs: 10_000 });
    expect(node.submitCalls[0]!.signal).toBeInstanceOf(AbortSignal);
  });

  it('passes a resubmission through: the same receipt again', async () => {
    const dtx = node.commissionTx('o-2');
    const first = await post('/v1/transactions', dtx.tx);
    const again = await post('/v1/transactions?wait=none', dtx.tx);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    expect(node.blocks).toHaveLength(3);
  });

  it('wait=none answers 202 accepted', async () => {
    const dtx = node.commissionTx('o-3');
    const res = await post('/v1/transactions?wait=none&timeoutMs=500', dtx.tx);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ id: dtx.id, status: 'accepted' });
    expect(node.submitCalls[0]).toMatchObject({ wait: false, timeoutMs: 500 });
  });

  it.each(['timeoutMs=0', 'timeoutMs=60001', 'timeoutMs=soon', 'wait=maybe'])(
    'refuses ?%s (400)',
    async (q) => {
      const res = await post(`/v1/transactions?${q}`, node.commissionTx('o-q').tx);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: `querystring.${q.split('=')[0]}` });
      expect(node.submitCalls).toHaveLength(0);
    },
  );

  it('gives the ledger parser’s field-precise codes (400)', async () => {
    const { signature: _, ...unsigned } = node.commissionTx('o-4').tx;
    const res = await post('/v1/transactions', unsigned);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'MISSING_FIELD', field: '$.signature' });

    const bad = { ...node.commissionTx('o-5').tx, signer: 'XYZ' };
    expect(errorOf(await post('/v1/transactions', bad))).toMatchObject({
      code: 'BAD_HEX',
      field: '$.signer',
    });

    const forged = { ...node.commissionTx('o-6').tx, nonce: 'other' };
    expect(errorOf(await post('/v1/transactions', forged))).toMatchObject({ code: 'BAD_SIGNATURE' });
  });

  it('maps a ValidationError thrown by the node to 400 with code and field, TOO_LARGE to 413', async () => {
    node.submitImpl = () =>
      Promise.reject(new ValidationError('WRONG_CHAIN', 'expected bitnexus-test', '$.chainId'));
    let res = await post('/v1/transactions', {});
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toEqual({
      code: 'WRONG_CHAIN',
      message: '$.chainId: expected bitnexus-test',
      field: '$.chainId',
    });
    node.submitImpl = () => Promise.reject(new ValidationError('TOO_LARGE', 'above 8192 bytes'));
    res = await post('/v1/transactions', {});
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('TOO_LARGE');
  });

  it('REJECTED → 409 with the receipt code in details', async () => {
    node.submitImpl = () => Promise.reject(rejected('NONCE_REUSED', 'nonce already used', 'a'.repeat(64)));
    const res = await post('/v1/transactions', {});
    expect(res.statusCode).toBe(409);
    expect(errorOf(res)).toEqual({
      code: 'REJECTED',
      message: 'nonce already used',
      details: { receiptCode: 'NONCE_REUSED', existing: 'a'.repeat(64) },
    });
  });

  it.each([
    ['TIMEOUT', 504],
    ['NOT_READY', 503],
    ['NO_LEADER', 503],
  ] as const)('%s → %i', async (code, status) => {
    node.submitImpl = () => Promise.reject(new ApiError(code, 'not now'));
    const res = await post('/v1/transactions', {});
    expect(res.statusCode).toBe(status);
    expect(errorOf(res)).toEqual({ code, message: 'not now' });
  });

  it('an unexpected error is 500 INTERNAL and leaks nothing', async () => {
    node.submitImpl = () => Promise.reject(new Error('secret database password in /srv/x.ts:12'));
    const res = await post('/v1/transactions', {});
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    expect(res.body).not.toMatch(/secret|\.ts|at /);
  });

  it('malformed JSON → 400 MALFORMED_JSON, never a stack', async () => {
    for (const payload of ['{"v":1,', '{"a":1}}', 'nul', '\u0000']) {
      const res = await postTransaction(payload);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('MALFORMED_JSON');
      expect(res.body).not.toMatch(/\n\s+at /);
    }
  });

  it('an empty JSON body → 400 MALFORMED_JSON; no body at all → 400 BAD_REQUEST', async () => {
    let res = await postTransaction('');
    expect(errorOf(res).code).toBe('MALFORMED_JSON');
    res = await app.inject({ method: 'POST', url: '/v1/transactions' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('BAD_REQUEST');
  });

  it('__proto__ keys are refused as malformed, and the answer says why (the body is valid JSON)', async () => {
    for (const payload of ['{"__proto__":{"polluted":true}}', '{"a":{"constructor":{"prototype":{}}}}']) {
      const res = await postTransaction(payload);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toMatchObject({
        code: 'MALFORMED_JSON',
        message: expect.stringMatching(/__proto__.*constructor/) as unknown,
      });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // JSON that does not parse is still told so
    expect(errorOf(await postTransaction('{"v":')).message).toMatch(/not valid JSON/);
  });

  it('a key named twice in one object → 400 MALFORMED_JSON (JSON.parse would keep the last silently)', async () => {
    for (const payload of [
      '{"v":1,"v":1}',
      '{"payload":{"amount":"999","amount":"100"}}',
      '[{"a":1},{"b":{"c":1,"c":2}}]',
    ]) {
      const res = await postTransaction(payload);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toMatchObject({
        code: 'MALFORMED_JSON',
        message: expect.stringContaining('twice') as unknown,
      });
    }
    // a colon or an escaped quote inside a string is no key
    const res = await postTransaction('{"a":"x:\\":y","b":{"a":"::"}}');
    expect(errorOf(res).code).not.toBe('MALFORMED_JSON');
  });

  it('a body that is not an object → 400 BAD_REQUEST (schema)', async () => {
    for (const payload of ['[1,2]', '"tx"', '42', 'null']) {
      const res = await postTransaction(payload);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: '$' });
    }
    expect(node.submitCalls).toHaveLength(0);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'content type %s → 415 UNSUPPORTED_MEDIA_TYPE',
    async (type) => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/transactions',
        headers: { 'content-type': type },
        payload: 'v=1',
      });
      expect(res.statusCode).toBe(415);
      expect(errorOf(res)).toMatchObject({
        code: 'UNSUPPORTED_MEDIA_TYPE',
        message: expect.stringContaining('content-type: application/json') as unknown,
      });
    },
  );

  it('a body above the limit → 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await post('/v1/transactions', { pad: 'x'.repeat(70 * 1024) });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('PAYLOAD_TOO_LARGE');
    expect(node.submitCalls).toHaveLength(0);

    const small = buildApi(node, { logger: false, metrics: null, bodyLimit: 100 });
    const res2 = await small.inject({
      method: 'POST',
      url: '/v1/transactions',
      payload: { pad: 'x'.repeat(200) },
    });
    expect(res2.statusCode).toBe(413);
    await small.close();
  });

  it('a committed answer without a receipt is an internal error, not a half reply', async () => {
    node.submitImpl = () => Promise.resolve({ id: 'a'.repeat(64), status: 'committed' });
    const res = await post('/v1/transactions', {});
    expect(res.statusCode).toBe(500);
  });
});

describe('GET /v1/transactions/:id', () => {
  it('returns a committed transaction with its receipt, whole', async () => {
    await node.commit([node.commissionTx('t-1')]);
    expect(node.transactions.size).toBe(3);
    for (const [id, view] of node.transactions) {
      const res = await app.inject(`/v1/transactions/${id}`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual(view);
    }
  });

  it('404 NOT_FOUND for an unknown id', async () => {
    const res = await app.inject(`/v1/transactions/${'0'.repeat(64)}`);
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('NOT_FOUND');
  });

  it.each(['A'.repeat(64), 'a'.repeat(63), 'xyz'])('400 for id %s', async (id) => {
    const res = await app.inject(`/v1/transactions/${id}`);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: 'params.id' });
  });
});

describe('blocks', () => {
  it('GET /v1/blocks/:height returns the block whole: its hash recomputes', async () => {
    for (const { block, hash } of node.blocks) {
      const res = await app.inject(`/v1/blocks/${block.header.height}`);
      expect(res.statusCode).toBe(200);
      const body = res.json<{ height: number; hash: string; block: typeof block }>();
      expect(body).toEqual({ height: block.header.height, hash, block });
      expect(blockHash(body.block.header)).toBe(hash);
    }
  });

  it('404 past the head, 400 for a bad height', async () => {
    expect((await app.inject('/v1/blocks/99')).statusCode).toBe(404);
    for (const h of ['-1', 'one', '1.5', '99999999999999999999']) {
      const res = await app.inject(`/v1/blocks/${h}`);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: 'params.height' });
    }
  });

  it('GET /v1/blocks pages with from, limit and next', async () => {
    await node.commit([node.commissionTx('b-1')]);
    await node.commit([node.commissionTx('b-2')]);
    let res = await app.inject('/v1/blocks');
    let body = res.json<{ blocks: { height: number; hash: string }[]; next: number; head: number }>();
    expect(body.blocks.map((b) => b.height)).toEqual([0, 1, 2, 3]);
    expect(body).toMatchObject({ next: 4, head: 3 });
    expect(body.blocks[2]!.hash).toBe(node.blocks[2]!.hash);

    res = await app.inject('/v1/blocks?from=1&limit=2');
    body = res.json();
    expect(body.blocks.map((b) => b.height)).toEqual([1, 2]);
    expect(body.next).toBe(3);

    res = await app.inject('/v1/blocks?from=10');
    expect(res.json()).toEqual({ blocks: [], next: 10, head: 3 });
  });

  it('GET /v1/blocks stops a page at its byte budget (reading no further) and goes on from next', async () => {
    for (let i = 1; i <= 6; i++)
      await node.commit(Array.from({ length: i }, (_, j) => node.commissionTx(`page-${i}-${j}`)));
    const size = (h: number) => Buffer.byteLength(JSON.stringify(node.blocks[h]!.block));
    const budget = size(node.height) + size(node.height - 1);
    await app.close();
    app = buildApi(node, { logger: false, metrics, blockPageBytes: budget });
    const reads: number[] = [];
    const getBlock = node.getBlock.bind(node);
    node.getBlock = (height) => {
      reads.push(height);
      return getBlock(height);
    };

    const seen: number[] = [];
    let pages = 0;
    for (let from = 0; from <= node.height; pages++) {
      reads.length = 0;
      const res = await app.inject(`/v1/blocks?from=${from}&limit=100`);
      const body = res.json<{ blocks: { height: number }[]; next: number; head: number }>();
      const heights = body.blocks.map((b) => b.height);
      expect(heights[0]).toBe(from);
      expect(body).toMatchObject({ next: from + heights.length, head: node.height });
      // within the budget unless a single block is bigger; nothing read beyond the block that did not fit
      if (heights.length > 1) expect(heights.reduce((n, h) => n + size(h), 0)).toBeLessThanOrEqual(budget);
      expect(reads.length).toBeLessThanOrEqual(heights.length + 1);
      seen.push(...heights);
      from = body.next;
    }
    expect(seen).toEqual(node.blocks.map((_, h) => h));
    // limit=100 alone would have sent them all at once
    expect(pages).toBeGreaterThan(1);
  });

  it('GET /v1/blocks: a block bigger than the budget comes alone', async () => {
    await app.close();
    app = buildApi(node, { logger: false, metrics, blockPageBytes: 1 });
    const body = (await app.inject('/v1/blocks?from=0&limit=100')).json<{
      blocks: { height: number }[];
      next: number;
    }>();
    expect(body.blocks.map((b) => b.height)).toEqual([0]);
    expect(body.next).toBe(1);
  });

  it.each(['limit=101', 'limit=0', 'from=-1', 'limit=x'])('GET /v1/blocks?%s → 400', async (q) => {
    const res = await app.inject(`/v1/blocks?${q}`);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).field).toBe(`querystring.${q.split('=')[0]}`);
  });
});

describe('state', () => {
  it('GET /v1/participants/:key', async () => {
    const key = [...node.participants.keys()][1]!;
    const res = await app.inject(`/v1/participants/${key}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(node.participants.get(key));
    expect((await app.inject(`/v1/participants/${'1'.repeat(64)}`)).statusCode).toBe(404);
    expect((await app.inject('/v1/participants/nope')).statusCode).toBe(400);
  });

  it('GET /v1/affiliates/:key/balances', async () => {
    const key = [...node.balances.keys()][0]!;
    const res = await app.inject(`/v1/affiliates/${key}/balances`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ affiliate: key, balances: node.balances.get(key) });
    const missing = await app.inject(`/v1/affiliates/${'2'.repeat(64)}/balances`);
    expect(missing.statusCode).toBe(404);
    expect(errorOf(missing).code).toBe('NOT_FOUND');
  });

  it('GET /v1/status', async () => {
    const res = await app.inject('/v1/status');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(node.status());

    const follower = {
      ...node.status(),
      role: 'follower' as const,
      leader: null,
      members: [{ nodeId: node.nodeId, role: 'learner' as const, connected: false }],
    };
    node.status = () => follower;
    expect((await app.inject('/v1/status')).json()).toEqual(follower);

    // the leader's reasons for a membership change that waits are passed on, not stripped
    const waiting = { ...node.status(), membershipWaiting: ['remove 42b784d5845a: the other voters …'] };
    node.status = () => waiting;
    expect((await app.inject('/v1/status')).json()).toEqual(waiting);
  });

  it('a NOT_READY from a synchronous node method is 503', async () => {
    node.getParticipant = () => {
      throw new ApiError('NOT_READY', 'state is loading');
    };
    const res = await app.inject(`/v1/participants/${'1'.repeat(64)}`);
    expect(res.statusCode).toBe(503);
    expect(errorOf(res)).toEqual({ code: 'NOT_READY', message: 'state is loading' });
  });
});

describe('health, readiness, metrics', () => {
  it('/healthz', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ ok: true });
    node.healthy = false;
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ ok: false });
  });

  it('/readyz is 503 with per-check detail when a check fails', async () => {
    let res = await app.inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ready: true, checks: { leader: { ok: true }, caughtUp: { ok: true } } });
    node.checks.leader = { ok: false, detail: 'no leader for 3 s' };
    res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      ready: false,
      checks: { leader: { ok: false, detail: 'no leader for 3 s' }, caughtUp: { ok: true } },
    });
  });

  it('/metrics is Prometheus text with the node and HTTP metrics', async () => {
    metrics.setTerm(7);
    metrics.setHeight(42);
    metrics.incProposals(3);
    metrics.observeCommitLatency(0.02);
    metrics.observeBlockTxs(5);
    metrics.observeFsync(0.001);
    metrics.setPeers(2);
    metrics.setMempool(9);
    metrics.setCommitIndex(50);
    metrics.setAppliedIndex(49);
    await app.inject('/v1/status');
    await app.inject(`/v1/blocks/12345`);
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body;
    for (const line of [
      'bitnexus_raft_term 7',
      'bitnexus_chain_height 42',
      'bitnexus_blocks_proposed_total 3',
      'bitnexus_commit_latency_seconds_count 1',
      'bitnexus_block_transactions_sum 5',
      'bitnexus_storage_fsync_seconds_count 1',
      'bitnexus_peers_connected 2',
      'bitnexus_mempool_transactions 9',
      'bitnexus_raft_commit_index 50',
      'bitnexus_raft_applied_index 49',
      'bitnexus_http_requests_total{method="GET",route="/v1/status",status="200"} 1',
      'bitnexus_http_requests_total{method="GET",route="/v1/blocks/:height",status="404"} 1',
    ])
      expect(text).toContain(line);
  });

  it('/metrics includes process metrics and is 404 when metrics are off', async () => {
    const prom = createPromMetrics({ labels: { node: 'n1' } });
    const withProcess = buildApi(node, { logger: false, metrics: prom.metrics });
    const text = (await withProcess.inject('/metrics')).body;
    expect(text).toMatch(/^process_cpu_user_seconds_total\{node="n1"\} /m);
    await withProcess.close();

    const off = buildApi(node, { logger: false, metrics: null });
    const res = await off.inject('/metrics');
    expect(res.statusCode).toBe(404);
    expect(errorOf(res).code).toBe('NOT_FOUND');
    await off.close();
  });

  it('two apps in one process keep separate registries', () => {
    const a = createPromMetrics({ processMetrics: false });
    const b = createPromMetrics({ processMetrics: false });
    a.metrics.setTerm(1);
    b.metrics.setTerm(2);
    expect(a.registry).not.toBe(b.registry);
  });
});

describe('POST /v1/admin', () => {
  it('passes the body to node.admin', async () => {
    const request = { action: 'transfer-leadership', to: 'x', signature: 'y' };
    const res = await post('/v1/admin', request);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true, action: 'transfer-leadership', detail: 'to node-2' });
    expect(node.adminCalls).toEqual([request]);
  });

  it('UNAUTHORIZED → 403', async () => {
    node.adminImpl = () => Promise.reject(new ApiError('UNAUTHORIZED', 'signer is not an operator'));
    const res = await post('/v1/admin', { action: 'x' });
    expect(res.statusCode).toBe(403);
    expect(errorOf(res)).toEqual({ code: 'UNAUTHORIZED', message: 'signer is not an operator' });
  });

  it('malformed and non-object bodies never reach the node', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/admin',
      headers: { 'content-type': 'application/json' },
      payload: '{',
    });
    expect(errorOf(bad).code).toBe('MALFORMED_JSON');
    const arr = await app.inject({
      method: 'POST',
      url: '/v1/admin',
      headers: { 'content-type': 'application/json' },
      payload: '[]',
    });
    expect(errorOf(arr).code).toBe('BAD_REQUEST');
    expect(node.adminCalls).toHaveLength(0);
  });
});

describe('anything else', () => {
  it('unknown routes and methods are 404 JSON', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['GET', '/v1/transactions'],
      ['DELETE', '/v1/status'],
      ['HEAD', '/v1/events'],
    ] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode).toBe(404);
      if (method !== 'HEAD') expect(errorOf(res).code).toBe('NOT_FOUND');
    }
  });

  it('while closing, requests get 503 NOT_READY in the error shape', async () => {
    const closing = buildApi(node, { logger: false, metrics: null });
    await closing.ready();
    const done = closing.close();
    const res = await closing.inject('/v1/status');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: { code: 'NOT_READY', message: 'the node is shutting down' } });
    expect(res.headers.connection).toBe('close');
    await done;
  });

  it('every reply carries an x-request-id', async () => {
    const res = await app.inject('/v1/status');
    expect(res.headers['x-request-id']).toEqual(expect.any(String));
  });

  it('a bad Last-Event-ID is 400 before any stream opens', async () => {
    const res = await app.inject({ url: '/v1/events', headers: { 'last-event-id': 'abc' } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res)).toMatchObject({ code: 'BAD_REQUEST', field: 'headers.last-event-id' });
    expect(node.subscribers.size).toBe(0);
  });
});
