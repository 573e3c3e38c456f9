import http from 'node:http';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApi, sourceKey, type ApiOptions } from '../../../src/api/server.js';
import type { SearchResult } from '../../../src/sync/index.js';
import { FakeNode } from './fake-node.js';

/**
 * What one client can hold of a node's HTTP server: connections, time to send
 * a request, and searches waiting for the mirror (docs/API.md §Limits).
 */

let node: FakeNode;
let app: FastifyInstance | undefined;
const sockets: net.Socket[] = [];

beforeEach(async () => {
  node = await FakeNode.create();
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await app?.close();
  app = undefined;
});

async function serve(opts: Partial<ApiOptions> = {}): Promise<number> {
  app = buildApi(node, { logger: false, metrics: null, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return address.port;
}

/** A raw TCP client that records what the server sends and when it closes the connection. */
interface RawClient {
  socket: net.Socket;
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    sockets.push(socket);
    let data = '';
    let closed = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => {});
    const done = new Promise<void>((r) =>
      socket.on('close', () => {
        closed = true;
        r();
      }),
    );
    socket.once('connect', () =>
      resolve({ socket, received: () => data, closed: done, isClosed: () => closed }),
    );
    socket.once('error', reject);
  });
}

/** `p`, or a rejection after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(10);
  }
}

/** One GET over its own connection; resolves with the status and body. */
function get(
  port: number,
  path: string,
  localAddress = '127.0.0.1',
): { request: http.ClientRequest; response: Promise<{ status: number; body: string }> } {
  let request!: http.ClientRequest;
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    request = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
  return { request, response };
}

describe('HTTP connections', () => {
  it('by default: a request must arrive within 30 s, an idle keep-alive connection ends after 5 s, at most 4096 connections', async () => {
    await serve();
    const server = app!.server;
    expect(server.requestTimeout).toBe(30_000);
    expect(server.headersTimeout).toBe(10_000);
    expect(server.keepAliveTimeout).toBe(5_000);
    // no byte either way for this long: longer than any honest silence (a submit waits ≤ 60 s, heartbeats every 15 s)
    expect(server.timeout).toBe(120_000);
    expect(server.maxConnections).toBe(4096);
  });

  it('closes a connection whose request body stops arriving (slow body), answering 408', async () => {
    const port = await serve({ http: { requestTimeoutMs: 300, checkIntervalMs: 50 } });
    const client = await connect(port);
    client.socket.write(
      'POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n',
    );
    client.socket.write(' '.repeat(60_000));
    await within(client.closed, 3_000, 'the server closing the connection');
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection that never sends its headers', async () => {
    const port = await serve({ http: { requestTimeoutMs: 300, checkIntervalMs: 50 } });
    const client = await connect(port);
    client.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    await within(client.closed, 3_000, 'the server closing the connection');
  });

  it('does not cut a request that was received and waits for its answer longer than the request timeout', async () => {
    const port = await serve({ http: { requestTimeoutMs: 200, checkIntervalMs: 50 } });
    node.submitImpl = async () => {
      await sleep(800); // waiting for the commit
      return { id: 'ab'.repeat(32), status: 'accepted' as const };
    };
    const body = JSON.stringify(node.commissionTx('slow-commit').tx);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/transactions?wait=none',
          method: 'POST',
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(202);
  });

  it('closes a connection on which nothing moves either way for idleTimeoutMs', async () => {
    const port = await serve({ http: { idleTimeoutMs: 200 } });
    node.searchImpl = () => new Promise(() => {}); // never answers
    const client = await connect(port);
    client.socket.write('GET /v1/search?q=x HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(client.closed, 3_000, 'the server closing the connection');
  });

  it('a mirror check, which may read for minutes, is not cut by the idle timeout', async () => {
    const port = await serve({ http: { idleTimeoutMs: 200 } });
    const quick = node.syncCheckImpl;
    const report = await quick();
    node.syncCheckImpl = async () => {
      await sleep(700);
      return report;
    };
    const { response } = get(port, '/v1/sync/check');
    const res = await within(response, 5_000, 'the check');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual(report);
  });

  it('closes connections beyond maxConnections at once, and serves the others', async () => {
    const port = await serve({ http: { maxConnections: 3, maxConnectionsPerSource: 100 } });
    const held = [await connect(port), await connect(port), await connect(port)];
    const extra = await connect(port);
    await within(extra.closed, 2_000, 'the server closing the 4th connection');
    for (const c of held) expect(c.isClosed()).toBe(false);
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => held[0]!.received().includes('"ok":true'));
  });

  it('closes connections beyond the cap of one source address, and takes others from another address', async () => {
    const port = await serve({ http: { maxConnectionsPerSource: 2 } });
    const held = [await connect(port), await connect(port)];
    const extra = await connect(port);
    await within(extra.closed, 2_000, 'the server closing the 3rd connection from 127.0.0.1');
    // another loopback address is another source
    const other = await connect(port, '127.0.0.2');
    other.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => other.received().includes('"ok":true'));
    for (const c of held) expect(c.isClosed()).toBe(false);
    // a closed connection gives its place back
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await sleep(50);
    const again = await connect(port);
    again.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => again.received().includes('"ok":true'));
  });

  it('counts an IPv6 client by its /64, and an IPv4-mapped address as IPv4', () => {
    expect(sourceKey('127.0.0.1')).toBe('127.0.0.1');
    expect(sourceKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('2001:db8:1:2:3:4:5:6')).toBe(sourceKey('2001:0db8:0001:0002::9'));
    expect(sourceKey('2001:db8:1:2:3:4:5:6')).not.toBe(sourceKey('2001:db8:1:3::1'));
    expect(sourceKey('::1')).toBe(sourceKey('0:0:0:0:0:0:0:1'));
    expect(sourceKey('fe80::1%eth0')).toBe(sourceKey('fe80::2'));
    expect(sourceKey(undefined)).toBeUndefined();
  });
});

describe('GET /v1/search waits in a bounded queue', () => {
  /** node.search answers only when the test says so */
  function holdSearches(): { release: () => void; pending: () => number } {
    const waiting: (() => void)[] = [];
    node.searchImpl = () =>
      new Promise<SearchResult>((resolve) => waiting.push(() => resolve({ hits: [], vectorUsed: true })));
    return {
      release: () => {
        for (const w of waiting.splice(0)) w();
      },
      pending: () => waiting.length,
    };
  }

  it('runs a few at a time, queues some, and refuses the rest at once with 503 NOT_READY', async () => {
    const held = holdSearches();
    app = buildApi(node, { logger: false, metrics: null, search: { concurrency: 2, maxWaiting: 3 } });
    const answers = Array.from({ length: 5 }, (_, i) => app!.inject(`/v1/search?q=s${i}`));
    await eventually(() => node.searchCalls.length === 2);
    const refused = await within(app.inject('/v1/search?q=one-too-many'), 2_000, 'the 6th search');
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ error: { code: 'NOT_READY' } });
    expect(refused.json<{ error: { message: string } }>().error.message).toMatch(/search/);
    expect(node.searchCalls.length).toBe(2);
    // the queued ones run as the running ones answer
    for (let i = 0; i < 5 && node.searchCalls.length < 5; i++) {
      held.release();
      await sleep(20);
    }
    held.release();
    for (const res of await Promise.all(answers)) expect(res.statusCode).toBe(200);
    expect(node.searchCalls.map((r) => r.q)).toEqual(['s0', 's1', 's2', 's3', 's4']);
  });

  it('a queued search whose client has gone never reaches the node', async () => {
    const held = holdSearches();
    const port = await serve({ search: { concurrency: 1, maxWaiting: 10 } });
    const first = get(port, '/v1/search?q=first');
    await eventually(() => node.searchCalls.length === 1);
    const gone = get(port, '/v1/search?q=gone');
    gone.response.catch(() => {});
    const kept = get(port, '/v1/search?q=kept');
    await sleep(50);
    gone.request.destroy();
    await sleep(50);
    held.release();
    expect((await first.response).status).toBe(200);
    await eventually(() => node.searchCalls.length === 2);
    held.release();
    expect((await kept.response).status).toBe(200);
    expect(node.searchCalls.map((r) => r.q)).toEqual(['first', 'kept']);
  });

  it('a search that waits too long for its turn is answered 503 NOT_READY', async () => {
    const held = holdSearches();
    app = buildApi(node, {
      logger: false,
      metrics: null,
      search: { concurrency: 1, maxWaiting: 10, maxWaitMs: 100 },
    });
    const first = app.inject('/v1/search?q=first');
    await eventually(() => node.searchCalls.length === 1);
    const late = await within(app.inject('/v1/search?q=late'), 2_000, 'the queued search');
    expect(late.statusCode).toBe(503);
    expect(late.json()).toMatchObject({ error: { code: 'NOT_READY' } });
    held.release();
    expect((await first).statusCode).toBe(200);
    expect(node.searchCalls.length).toBe(1);
  });
});
