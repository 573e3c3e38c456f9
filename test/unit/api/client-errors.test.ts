import http from 'node:http';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HTTP_STATUS, type ErrorBody } from '../../../src/api/errors.js';
import { createPromMetrics } from '../../../src/api/metrics.js';
import { buildApi, type ApiOptions } from '../../../src/api/server.js';
import { FakeNode } from './fake-node.js';

/**
 * Answers that Node's HTTP parser produces before a request reaches a route
 * (a request that does not arrive in time, headers too large, bytes that are
 * not HTTP) come in the one error shape too (docs/ERRORS.md), and end the
 * connection.
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

/** small limits, looked at often, so that a timeout fires within the test */
const SHORT = { requestTimeoutMs: 500, headersTimeoutMs: 300, checkIntervalMs: 50 };

async function serve(opts: Partial<ApiOptions> = {}): Promise<number> {
  app = buildApi(node, { logger: false, metrics: null, http: SHORT, ...opts });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return address.port;
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** the server closed the connection after it */
  closed: boolean;
}

/** The HTTP answers in `raw`, one after the other (each with a Content-Length). */
function parseAnswers(raw: string, closed: boolean): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let rest = raw;
  while (rest !== '') {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`not an HTTP answer: ${JSON.stringify(rest)}`);
    const [statusLine = '', ...headerLines] = rest.slice(0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? rest.length - end - 4);
    answers.push({ status, headers, body: rest.slice(end + 4, end + 4 + length), closed: false });
    rest = rest.slice(end + 4 + length);
  }
  const last = answers.at(-1);
  if (last !== undefined) last.closed = closed;
  return answers;
}

/** A raw TCP client: what it received, and whether the server closed the connection. */
interface RawClient {
  write: (data: string) => void;
  /** send FIN: the client has nothing more to send (it can still read) */
  end: () => void;
  /** the answers received so far */
  answers: () => RawAnswer[];
  /** resolves true when the server closes the connection, false after `ms` */
  closedWithin: (ms: number) => Promise<boolean>;
}

async function connect(port: number): Promise<RawClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.on('error', () => {});
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  let closed = false;
  const onClose = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    write: (data) => socket.write(data),
    end: () => socket.end(),
    answers: () => parseAnswers(Buffer.concat(received).toString('latin1'), closed),
    closedWithin: async (ms) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
      await Promise.race([onClose, late]);
      clearTimeout(timer);
      return closed;
    },
  };
}

/** Send `data` on a new connection; the last answer once the server closes it (or `waitMs` passes). */
async function exchange(port: number, data: string, waitMs = 5_000): Promise<RawAnswer> {
  const client = await connect(port);
  client.write(data);
  await client.closedWithin(waitMs);
  const last = client.answers().at(-1);
  if (last === undefined) throw new Error('no answer');
  return last;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The answer is `status` in the one error shape with `code`, sent whole, and the connection closed. */
function expectErrorShape(answer: RawAnswer, status: number, code: string): ErrorBody['error'] {
  expect(answer.status).toBe(status);
  expect(answer.body).toMatch(/^\{"error":\{"code":/);
  const body = JSON.parse(answer.body) as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(HTTP_STATUS[body.error.code]).toBe(status);
  expect(typeof body.error.message).toBe('string');
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body, 'latin1'));
  expect(answer.headers.connection).toBe('close');
  expect(answer.closed).toBe(true);
  return body.error;
}

describe('HTTP answers before a route: the one error shape', () => {
  it('a request whose headers do not arrive in time → 408 REQUEST_TIMEOUT naming the limits, and the connection closed', async () => {
    const port = await serve();
    const answer = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const error = expectErrorShape(answer, 408, 'REQUEST_TIMEOUT');
    expect(error.message).toContain('0.5 s');
    expect(error.message).toContain('0.3 s');
  });

  it('a request whose body does not arrive in time → 408 REQUEST_TIMEOUT', async () => {
    const port = await serve();
    const answer = await exchange(
      port,
      'POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"v":',
    );
    expectErrorShape(answer, 408, 'REQUEST_TIMEOUT');
  });

  it('the 408 names the limits in force (the default request timeout: 30 s)', async () => {
    const port = await serve({ http: { headersTimeoutMs: 300, checkIntervalMs: 50 } });
    const answer = await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const error = expectErrorShape(answer, 408, 'REQUEST_TIMEOUT');
    expect(error.message).toContain('30 s');
    expect(error.message).toContain('0.3 s');
  });

  it('a header line above the maximum header size → 431 HEADERS_TOO_LARGE, and the connection closed', async () => {
    const port = await serve();
    const big = 'a'.repeat(http.maxHeaderSize + 1);
    const answer = await exchange(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`);
    const error = expectErrorShape(answer, 431, 'HEADERS_TOO_LARGE');
    expect(error.message).toContain(String(http.maxHeaderSize));
  });

  it('bytes that are not an HTTP request → 400 BAD_HTTP_REQUEST, and the connection closed', async () => {
    const port = await serve();
    const answer = await exchange(port, 'GARBAGE\r\n\r\n');
    expectErrorShape(answer, 400, 'BAD_HTTP_REQUEST');
  });

  it('a malformed chunked body → 400 BAD_HTTP_REQUEST, and the connection closed', async () => {
    const port = await serve();
    const answer = await exchange(
      port,
      'POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n',
    );
    expectErrorShape(answer, 400, 'BAD_HTTP_REQUEST');
  });

  it('a request cut short by the client closing its side → 400 BAD_HTTP_REQUEST saying so, not "not HTTP"', async () => {
    const port = await serve();
    const cutShort = [
      'POST /v1/transactions HTTP/1.1\r\nHost: x\r\n', // in its headers
      'POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a"', // in its body
    ];
    for (const data of cutShort) {
      const client = await connect(port);
      client.write(data);
      client.end(); // FIN: a half-closed connection can still be answered
      expect(await client.closedWithin(5_000)).toBe(true);
      const answer = client.answers().at(-1);
      expect(answer).toBeDefined();
      const error = expectErrorShape(answer!, 400, 'BAD_HTTP_REQUEST');
      expect(error.message).toMatch(
        /ended its side of the connection \(FIN\) while a request was incomplete/,
      );
      expect(error.message).not.toMatch(/not a valid HTTP|libp2p/);
    }
  });

  it('a bad request after a good one on a keep-alive connection: the good answer, then the 400', async () => {
    const port = await serve();
    const client = await connect(port);
    client.write('GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n');
    for (let i = 0; i < 200 && client.answers().length === 0; i++) await sleep(10);
    expect(await client.closedWithin(50)).toBe(false);
    client.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
    expect(await client.closedWithin(5_000)).toBe(true);
    const [first, second] = client.answers();
    expect(first?.status).toBe(404);
    expectErrorShape(second!, 400, 'BAD_HTTP_REQUEST');
  });
});

/** bitnexus_http_refused_total by code, as GET /metrics shows it */
async function refusedCounts(): Promise<Record<string, number>> {
  const text = (await app!.inject('/metrics')).body;
  const counts: Record<string, number> = {};
  for (const [, code = '', n] of text.matchAll(/^bitnexus_http_refused_total\{code="(\w+)"\} (\d+)$/gm))
    counts[code] = Number(n);
  return counts;
}
/** every value of its `code` label, there from the start (docs/API.md §GET /metrics) */
const NOT_REFUSED = { REQUEST_TIMEOUT: 0, HEADERS_TOO_LARGE: 0, BAD_HTTP_REQUEST: 0, UNANSWERED: 0 };

describe('refusals before a route are counted in /metrics', () => {
  it.each([
    ['REQUEST_TIMEOUT', 408, 'GET /healthz HTTP/1.1\r\nHost: x\r\n'],
    [
      'HEADERS_TOO_LARGE',
      431,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(http.maxHeaderSize + 1)}\r\n\r\n`,
    ],
    ['BAD_HTTP_REQUEST', 400, 'GARBAGE\r\n\r\n'],
  ])('%s: +1 under its code, and nothing else', async (code, status, request) => {
    const port = await serve({ metrics: createPromMetrics({ processMetrics: false }).metrics });
    expect(await refusedCounts()).toEqual(NOT_REFUSED);
    expectErrorShape(await exchange(port, request), status, code);
    expect(await refusedCounts()).toEqual({ ...NOT_REFUSED, [code]: 1 });
  });

  it('a request served, or answered by a route (404), counts nothing', async () => {
    const port = await serve({ metrics: createPromMetrics({ processMetrics: false }).metrics });
    expect(
      (await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status,
    ).toBe(200);
    expect((await exchange(port, 'GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n', 500)).status).toBe(404);
    expect(await refusedCounts()).toEqual(NOT_REFUSED);
  });
});

describe('the client error handler, as fastify and Node', () => {
  /** A socket as the `clientError` event gives it, that records what is done to it. */
  function fakeSocket(state: { destroyed?: boolean; writable?: boolean; answering?: object }) {
    return {
      destroyed: state.destroyed ?? false,
      writable: state.writable ?? true,
      remoteAddress: '127.0.0.1',
      _httpMessage: state.answering ?? null,
      write: vi.fn(),
      destroy: vi.fn(),
    };
  }
  const parseError = Object.assign(new Error('Parse Error: Invalid method encountered'), {
    code: 'HPE_INVALID_METHOD',
    reason: 'Invalid method encountered',
  });

  it('does nothing on a reset or destroyed connection', () => {
    app = buildApi(node, { logger: false, metrics: null });
    const reset = fakeSocket({});
    app.server.emit('clientError', Object.assign(new Error('reset'), { code: 'ECONNRESET' }), reset);
    const destroyed = fakeSocket({ destroyed: true });
    app.server.emit('clientError', parseError, destroyed);
    for (const s of [reset, destroyed]) {
      expect(s.write).not.toHaveBeenCalled();
      expect(s.destroy).not.toHaveBeenCalled();
    }
  });

  it('writes nothing to a socket that cannot take it, or into an answer under way, and destroys it', () => {
    app = buildApi(node, { logger: false, metrics: null });
    const closing = fakeSocket({ writable: false });
    app.server.emit('clientError', parseError, closing);
    const answering = fakeSocket({ answering: { headersSent: true } });
    app.server.emit('clientError', parseError, answering);
    for (const s of [closing, answering]) {
      expect(s.write).not.toHaveBeenCalled();
      expect(s.destroy).toHaveBeenCalledWith(parseError);
    }
    // an answer not yet begun is no obstacle (Node's own rule)
    const waiting = fakeSocket({ answering: { headersSent: false } });
    app.server.emit('clientError', parseError, waiting);
    expect(waiting.write).toHaveBeenCalledOnce();
    expect(String(waiting.write.mock.calls[0]?.[0])).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(String(waiting.write.mock.calls[0]?.[0])).toContain('(Invalid method encountered)');
    expect(waiting.destroy).toHaveBeenCalledWith(parseError);
  });

  it('counts a refusal it cannot answer as UNANSWERED, and a reset or an error of the transport not at all', async () => {
    app = buildApi(node, { logger: false, metrics: createPromMetrics({ processMetrics: false }).metrics });
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    app.server.emit('clientError', Object.assign(new Error('reset'), { code: 'ECONNRESET' }), fakeSocket({}));
    app.server.emit('clientError', epipe, fakeSocket({ destroyed: true }));
    expect(await refusedCounts()).toEqual(NOT_REFUSED);
    app.server.emit('clientError', parseError, fakeSocket({ destroyed: true }));
    app.server.emit('clientError', parseError, fakeSocket({ writable: false }));
    app.server.emit('clientError', parseError, fakeSocket({ answering: { headersSent: true } }));
    expect(await refusedCounts()).toEqual({ ...NOT_REFUSED, UNANSWERED: 3 });
  });

  it('over a real socket: nothing is written into an event stream under way when bytes after it are not HTTP', async () => {
    // The handler learns whether an answer is under way from Node's own (private) record of it:
    // if Node ever changed that, a 400 would land inside the stream, and this would fail.
    const port = await serve();
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /v1/events HTTP/1.1\r\nHost: node\r\n\r\n');
    const deadline = Date.now() + 5000;
    while (!data.startsWith('HTTP/1.1 200')) {
      if (Date.now() > deadline) throw new Error(`no event stream: ${JSON.stringify(data)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    socket.write('GARBAGE\r\n\r\n');
    await closed;
    expect(data).toMatch(/^HTTP\/1\.1 200 /);
    expect(data).not.toContain('HTTP/1.1 400');
    expect(data).not.toContain('BAD_HTTP_REQUEST');
  });

  it('logs at debug, at most a line per source and interval, saying how many it stands for', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const port = await serve({ logger });
    for (let i = 0; i < 3; i++) expect((await exchange(port, 'GARBAGE\r\n\r\n')).status).toBe(400);
    const refused = lines.filter((l) => l.msg === 'HTTP request refused before any route');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({
      level: 20,
      module: 'api',
      source: '127.0.0.1',
      code: 'BAD_HTTP_REQUEST',
      reason: 'HPE_INVALID_METHOD',
      suppressed: 0,
    });
  });
});

describe('HTTP answers from fastify (already in the shape)', () => {
  it('a body above the body limit → 413 PAYLOAD_TOO_LARGE, declared or chunked', async () => {
    const port = await serve({ bodyLimit: 1024 });
    const body = JSON.stringify({ pad: 'x'.repeat(2000) });
    const head = 'POST /v1/transactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
    const declared = await exchange(port, `${head}Content-Length: ${body.length}\r\n\r\n${body}`, 1_000);
    expect(declared.status).toBe(413);
    expect((JSON.parse(declared.body) as ErrorBody).error.code).toBe('PAYLOAD_TOO_LARGE');
    const chunk = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const chunked = await exchange(port, `${head}Transfer-Encoding: chunked\r\n\r\n${chunk}`, 1_000);
    expect(chunked.status).toBe(413);
    expect((JSON.parse(chunked.body) as ErrorBody).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('an unknown route → 404 NOT_FOUND', async () => {
    const port = await serve();
    const answer = await exchange(port, 'GET /no/such/route HTTP/1.1\r\nHost: x\r\n\r\n', 500);
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toEqual({
      error: { code: 'NOT_FOUND', message: 'no route GET /no/such/route' },
    });
  });
});
