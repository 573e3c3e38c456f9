import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPromMetrics } from '../../../src/api/metrics.js';
import { buildApi } from '../../../src/api/server.js';
import { blockHash, type Block } from '../../../src/ledger/index.js';
import { FakeNode } from './fake-node.js';

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: string;
}

/** A minimal SSE client over node:http (no connection pool): collects events as they arrive. */
class EventReader {
  readonly events: SseEvent[] = [];
  private buffer = '';
  private waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  constructor(
    readonly request: http.ClientRequest,
    readonly response: http.IncomingMessage,
  ) {
    response.setEncoding('utf8');
    this.done = new Promise((resolve) => {
      response.on('data', (chunk: string) => {
        this.buffer += chunk;
        let end: number;
        while ((end = this.buffer.indexOf('\n\n')) !== -1) {
          this.events.push(parseEvent(this.buffer.slice(0, end)));
          this.buffer = this.buffer.slice(end + 2);
        }
        for (const w of this.waiters.splice(0)) w();
      });
      response.on('close', () => {
        for (const w of this.waiters.splice(0)) w();
        resolve();
      });
    });
  }

  /** the client goes away */
  disconnect(): void {
    this.request.destroy();
  }

  blocks(): { id: string; height: number; hash: string; block: Block }[] {
    return this.events
      .filter((e) => e.event === 'block')
      .map((e) => ({
        id: e.id!,
        ...(JSON.parse(e.data!) as { height: number; hash: string; block: Block }),
      }));
  }

  async until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out; events so far: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

function parseEvent(text: string): SseEvent {
  const event: SseEvent = {};
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) event.comment = line.slice(1).trim();
    else {
      const i = line.indexOf(':');
      const field = line.slice(0, i) as keyof SseEvent;
      event[field] = line.slice(i + 1).replace(/^ /, '');
    }
  }
  return event;
}

async function eventually(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function urlOf(server: FastifyInstance): string {
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return `http://127.0.0.1:${address.port}`;
}

function connections(): Promise<number> {
  return new Promise((resolve, reject) =>
    app.server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
  );
}

let node: FakeNode;
let app: FastifyInstance;
let base: string;
let prom: ReturnType<typeof createPromMetrics>;
const readers: EventReader[] = [];

/** a base URL, or a Unix socket (whose small buffers fill after a few hundred KB) */
type Target = string | { socketPath: string };

function get(
  path: string,
  headers: Record<string, string>,
  target: Target,
): Promise<{ request: http.ClientRequest; response: http.IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const options = { headers, agent: false };
    const onResponse = (response: http.IncomingMessage) => resolve({ request, response });
    const request =
      typeof target === 'string'
        ? http.get(target + path, options, onResponse)
        : http.get({ ...options, socketPath: target.socketPath, path }, onResponse);
    request.on('error', reject);
  });
}

async function open(
  path: string,
  headers: Record<string, string> = {},
  url: Target = base,
): Promise<EventReader> {
  const { request, response } = await get(path, headers, url);
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
  const reader = new EventReader(request, response);
  readers.push(reader);
  return reader;
}

/** GET /v1/events from one local address; the status, and the body of a refusal (a stream stays open). */
function getFrom(localAddress: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${url}/v1/events`, { agent: false, localAddress }, (response) => {
      if (response.statusCode === 200) {
        readers.push(new EventReader(request, response));
        return resolve({ status: 200, body: '' });
      }
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
}

async function sseClients(): Promise<number> {
  const metric = await prom.registry.getSingleMetric('bitnexus_sse_clients')!.get();
  return metric.values[0]?.value ?? 0;
}

beforeEach(async () => {
  node = await FakeNode.create();
  // two more blocks: heights 0..3
  await node.commit([node.commissionTx('e-1')]);
  await node.commit([node.commissionTx('e-2')]);
  prom = createPromMetrics({ processMetrics: false });
  app = buildApi(node, { logger: false, metrics: prom.metrics, events: { heartbeatMs: 100 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = urlOf(app);
});

afterEach(async () => {
  for (const r of readers.splice(0)) r.disconnect();
  await app.close();
});

describe('GET /v1/events', () => {
  it('resumes after Last-Event-ID: exactly the later blocks, then a live one', async () => {
    const reader = await open('/v1/events', { 'last-event-id': '1' });
    await reader.until(() => reader.blocks().length === 2);
    await node.commit([node.commissionTx('live-1')]);
    await reader.until(() => reader.blocks().length === 3);

    const got = reader.blocks();
    expect(got.map((b) => b.id)).toEqual(['2', '3', '4']);
    expect(got.map((b) => b.height)).toEqual([2, 3, 4]);
    for (const b of got) {
      expect(b.hash).toBe(node.blocks[b.height]!.hash);
      expect(blockHash(b.block.header)).toBe(b.hash);
      expect(b.block).toEqual(node.blocks[b.height]!.block);
    }
    expect(reader.events[0]).toEqual({ retry: '2000' });
  });

  it('?after= works the same; -1 starts at genesis; Last-Event-ID wins over ?after', async () => {
    const fromGenesis = await open('/v1/events?after=-1');
    await fromGenesis.until(() => fromGenesis.blocks().length === 4);
    expect(fromGenesis.blocks().map((b) => b.height)).toEqual([0, 1, 2, 3]);

    const both = await open('/v1/events?after=0', { 'last-event-id': '2' });
    await both.until(() => both.blocks().length === 1);
    expect(both.blocks()[0]!.height).toBe(3);
  });

  it('without a position, only live blocks', async () => {
    const reader = await open('/v1/events');
    await eventually(() => node.subscribers.size === 1);
    await node.commit([node.commissionTx('live-2')]);
    await reader.until(() => reader.blocks().length === 1);
    expect(reader.blocks()[0]!.height).toBe(4);
  });

  it('sends heartbeat comments', async () => {
    const reader = await open('/v1/events');
    await reader.until(() => reader.events.some((e) => e.comment === 'heartbeat'));
  });

  it('unsubscribes when the client disconnects, leaking no listener or connection', async () => {
    const a = await open('/v1/events?after=-1');
    const b = await open('/v1/events');
    await a.until(() => a.blocks().length === 4);
    await eventually(() => node.subscribers.size === 2);
    expect(await sseClients()).toBe(2);

    a.disconnect();
    await eventually(() => node.subscribers.size === 1);
    b.disconnect();
    await eventually(() => node.subscribers.size === 0);
    expect(await sseClients()).toBe(0);
    await Promise.all([a.done, b.done]);
    for (let i = 0; (await connections()) > 0; i++) {
      if (i > 100) throw new Error('a connection stayed open');
      await new Promise((r) => setTimeout(r, 20));
    }

    // the node goes on committing with nobody listening
    await node.commit([node.commissionTx('after-close')]);
    expect(node.subscribers.size).toBe(0);
  });

  it('app.close() ends open streams instead of hanging', async () => {
    const reader = await open('/v1/events');
    await eventually(() => node.subscribers.size === 1);
    await app.close();
    await reader.done;
    expect(node.subscribers.size).toBe(0);
  });

  it('a failing subscription ends the stream with an error event', async () => {
    node.subscribeBlocks = () => {
      throw new Error('store closed');
    };
    const reader = await open('/v1/events');
    await reader.done;
    const last = reader.events.at(-1)!;
    expect(last.event).toBe('error');
    expect(JSON.parse(last.data!)).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    expect(await sseClients()).toBe(0);
  });

  it('a client that does not read is dropped once its buffer is full', async () => {
    await app.close();
    app = buildApi(node, { logger: false, metrics: prom.metrics, events: { maxBufferedBytes: 64 * 1024 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const reader = await open('/v1/events', {}, urlOf(app));
    reader.response.pause(); // never reads
    await eventually(() => node.subscribers.size === 1);
    for (let i = 0; i < 400 && node.subscribers.size > 0; i++) {
      const txs = Array.from({ length: 20 }, (_, j) => node.commissionTx(`flood-${i}-${j}`));
      await node.commit(txs);
    }
    expect(node.subscribers.size).toBe(0);
    expect(await sseClients()).toBe(0);
  });

  it('serialises a live block once for all its streams, after the node has gone on', async () => {
    const streams = await Promise.all([open('/v1/events'), open('/v1/events'), open('/v1/events')]);
    await eventually(() => node.subscribers.size === 3);
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      await node.commit([node.commissionTx('shared')]);
      const block = node.blocks.at(-1)!.block;
      const ofBlock = () =>
        stringify.mock.calls.filter(([v]) => (v as { block?: unknown } | null)?.block === block).length;
      // the node's commit (which calls the subscribers) returned before any stream did its work
      expect(ofBlock()).toBe(0);
      for (const s of streams) await s.until(() => s.blocks().length === 1);
      expect(ofBlock()).toBe(1);
    } finally {
      stringify.mockRestore();
    }
  });

  it('refuses streams beyond its limit with 503 NOT_READY, and takes one again once a stream ends', async () => {
    await app.close();
    app = buildApi(node, { logger: false, metrics: prom.metrics, events: { maxStreams: 2 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = urlOf(app);
    const first = await open('/v1/events', {}, url);
    await open('/v1/events', {}, url);

    const { response } = await get('/v1/events', {}, url);
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => (body += chunk));
    await new Promise((resolve) => response.on('end', resolve));
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'NOT_READY' } });
    expect(await sseClients()).toBe(2);

    first.disconnect();
    await eventually(() => node.subscribers.size === 1);
    const again = await open('/v1/events', {}, url);
    await node.commit([node.commissionTx('after-limit')]);
    await again.until(() => again.blocks().length === 1);
  });

  it('refuses more streams than its cap from one source address with 503 NOT_READY, not from another', async () => {
    await app.close();
    app = buildApi(node, { logger: false, metrics: prom.metrics, events: { maxStreamsPerSource: 2 } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = urlOf(app);
    const first = await open('/v1/events', {}, url);
    await open('/v1/events', {}, url);

    const refused = await getFrom('127.0.0.1', url);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'NOT_READY' } });
    expect(await sseClients()).toBe(2);

    // another address (all of 127/8 is loopback) is another source
    const other = await getFrom('127.0.0.2', url);
    expect(other.status).toBe(200);
    expect(await sseClients()).toBe(3);

    // a stream that ends gives its place back
    first.disconnect();
    await eventually(() => node.subscribers.size === 2);
    const again = await open('/v1/events', {}, url);
    await node.commit([node.commissionTx('after-source-limit')]);
    await again.until(() => again.blocks().length === 1);
  });

  it('writes a live block to all its streams as one shared buffer (memory is not per stream)', async () => {
    const streams = await Promise.all([open('/v1/events'), open('/v1/events'), open('/v1/events')]);
    await eventually(() => node.subscribers.size === 3);
    const write = vi.spyOn(http.ServerResponse.prototype, 'write');
    try {
      await node.commit([node.commissionTx('one-buffer')]);
      for (const s of streams) await s.until(() => s.blocks().length === 1);
      const chunks = write.mock.calls
        .map(([chunk]) => chunk as unknown)
        .filter((c) => Buffer.isBuffer(c) || (typeof c === 'string' && c.includes('event: block')));
      expect(chunks).toHaveLength(3);
      expect(Buffer.isBuffer(chunks[0])).toBe(true);
      expect(chunks[1]).toBe(chunks[0]);
      expect(chunks[2]).toBe(chunks[0]);
    } finally {
      write.mockRestore();
    }
  });

  it('over its budget of bytes buffered for all streams, drops the streams furthest behind, never one at most a block behind', async () => {
    await app.close();
    app = buildApi(node, {
      logger: false,
      metrics: prom.metrics,
      // each stream alone may fall far behind; all together only 256 KiB beyond one block each
      events: {
        maxBufferedBytes: 64 * 1024 * 1024,
        maxTotalBufferedBytes: 256 * 1024,
        blockEventBytes: 32 * 1024,
        budgetCheckMs: 20,
      },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = urlOf(app);
    const reading = await open('/v1/events', {}, url);
    const stuck = [await open('/v1/events', {}, url), await open('/v1/events', {}, url)];
    for (const r of stuck) r.response.pause(); // never read
    await eventually(() => node.subscribers.size === 3);
    let committed = 0;
    // bursts of blocks (each above the grace of one block), the reading client taking each before the next
    const deadline = Date.now() + 10_000;
    for (let i = 0; node.subscribers.size > 1 && Date.now() < deadline; i++) {
      for (let b = 0; b < 4; b++) {
        const txs = Array.from({ length: 20 }, (_, j) => node.commissionTx(`budget-${i}-${b}-${j}`));
        await node.commit(txs);
        committed++;
      }
      await reading.until(() => reading.blocks().length === committed);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(node.subscribers.size).toBe(1);
    expect(await sseClients()).toBe(1);
    // the client that reads lost nothing
    await reading.until(() => reading.blocks().length === committed, 10_000);
  });

  /**
   * The API on a Unix socket (small buffers that fill quickly) with `events`
   * options, 40 stored blocks of ~100 KB above the head (4 MB, far more than
   * the socket and a 1 MiB buffer bound hold), and `fn` given the socket and
   * the first of those heights.
   */
  async function withBigBacklog(
    events: NonNullable<Parameters<typeof buildApi>[1]['events']>,
    fn: (socketPath: string, first: number) => Promise<void>,
  ): Promise<void> {
    await app.close();
    app = buildApi(node, { logger: false, metrics: prom.metrics, events });
    const dir = mkdtempSync(join(tmpdir(), 'bitnexus-sse-'));
    try {
      const socketPath = join(dir, 'api.sock');
      await app.listen({ path: socketPath });
      const { block: base, hash } = node.blocks.at(-1)!;
      const first = node.height + 1;
      for (let h = first; h < first + 40; h++) {
        const txs = Array.from({ length: 150 }, () => base.txs[0]!);
        node.blocks.push({ block: { ...base, header: { ...base.header, height: h }, txs }, hash });
      }
      await fn(socketPath, first);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('replays to a client that reads slowly at its pace instead of dropping it', async () => {
    await withBigBacklog({ maxBufferedBytes: 1024 * 1024 }, async (socketPath, first) => {
      const blockIds = (r: EventReader) =>
        r.events.filter((e) => e.event === 'block').map((e) => Number(e.id));

      const reader = await open(`/v1/events?after=${first - 1}`, {}, { socketPath });
      reader.response.pause(); // reads nothing for now
      expect(node.subscribers.size).toBe(1);
      const sub = [...node.subscribers][0]!;
      // the replay stops where the socket is full (its position holds still)...
      let at = -1;
      for (let still = 0; still < 5; at = sub.next) {
        await new Promise((r) => setTimeout(r, 20));
        still = sub.next === at ? still + 1 : 0;
      }
      expect(node.subscribers.size).toBe(1);
      expect(sub.next).toBeLessThan(node.height);
      // ...and goes on as the client reads: every block once, in order, then live
      reader.response.resume();
      await reader.until(() => blockIds(reader).length === 40, 20_000);
      expect(blockIds(reader)).toEqual(Array.from({ length: 40 }, (_, i) => first + i));
      await eventually(() => sub.live);
      expect(node.subscribers.size).toBe(1);
    });
  });

  it('drops a client that stops reading during the replay, after a few heartbeats, freeing its stream', async () => {
    await withBigBacklog({ maxBufferedBytes: 1024 * 1024, heartbeatMs: 50 }, async (socketPath, first) => {
      const reader = await open(`/v1/events?after=${first - 1}`, {}, { socketPath });
      reader.response.pause(); // and never reads again
      expect(node.subscribers.size).toBe(1);
      await eventually(() => node.subscribers.size === 0, 10_000);
    });
  });
});

describe('over a real socket', () => {
  it('a client that goes away while waiting for its receipt aborts the wait', async () => {
    let seen: AbortSignal | undefined;
    node.submitImpl = () =>
      new Promise((_resolve, reject) => {
        seen = node.submitCalls.at(-1)!.signal;
        seen!.addEventListener('abort', () => reject(new Error('aborted')));
      });
    const request = http.request(`${base}/v1/transactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      agent: false,
    });
    request.on('error', () => {});
    request.end(JSON.stringify(node.commissionTx('gone').tx));
    await eventually(() => seen !== undefined);
    expect(seen!.aborted).toBe(false);
    request.destroy();
    await eventually(() => seen!.aborted);
  });

  it('logs internal errors with their stack through the given pino logger, never to the client', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const logged = buildApi(node, { logger, metrics: null });
    node.submitImpl = () => Promise.reject(new Error('disk on fire'));
    const res = await logged.inject({ method: 'POST', url: '/v1/transactions', payload: {} });
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    const entry = lines.find((l) => l.msg === 'request failed')!;
    expect(entry).toMatchObject({ level: 50, module: 'api', err: { message: 'disk on fire' } });
    expect((entry.err as { stack: string }).stack).toContain('disk on fire');
    expect(lines.some((l) => l.msg === 'request' && l.route === '/v1/transactions')).toBe(true);
    await logged.close();
  });
});
