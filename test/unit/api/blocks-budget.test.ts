import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApi, type ApiOptions } from '../../../src/api/server.js';
import { FakeNode } from './fake-node.js';

/**
 * GET /v1/blocks under clients that ask for pages and do not read them: the
 * pages a node has built and not yet written out hold together at most its
 * budget (docs/API.md §Limits). Over a Unix socket, whose small buffers (a
 * few hundred KB) leave a page of megabytes in the node until the client
 * reads it; loopback TCP would take 2-4 MB per connection into the kernel.
 */

const BLOCKS = 24;
/** transactions per stored block: about 640 KB of JSON each, more than the socket's buffers take */
const TXS_PER_BLOCK = 1000;
const PAGE_BLOCKS = 4;

let node: FakeNode;
let app: FastifyInstance | undefined;
let dir: string;
let socketPath: string;
const sockets: net.Socket[] = [];
/** the first of the big blocks, and the JSON size of each */
let first: number;
let blockBytes: number;

beforeEach(async () => {
  node = await FakeNode.create();
  // Big blocks above the head, alike but for their height: a page of PAGE_BLOCKS is about 2.5 MB.
  const { block: base, hash } = node.blocks.at(-1)!;
  first = node.height + 1;
  for (let h = first; h < first + BLOCKS; h++) {
    const txs = Array.from({ length: TXS_PER_BLOCK }, () => base.txs[0]!);
    node.blocks.push({ block: { ...base, header: { ...base.header, height: h }, txs }, hash });
  }
  blockBytes = Buffer.byteLength(JSON.stringify(node.blocks[first]!.block));
  dir = mkdtempSync(join(tmpdir(), 'bitnexus-blocks-'));
  socketPath = join(dir, 'api.sock');
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await app?.close();
  app = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function serve(opts: Partial<ApiOptions>): Promise<void> {
  app = buildApi(node, { logger: false, metrics: null, ...opts });
  await app.listen({ path: socketPath });
}

/** A page request whose client reads the first bytes of the answer (its status) and then nothing. */
interface SlowClient {
  socket: net.Socket;
  status: number;
  /** read the rest of the answer; resolves with its body once it is all in */
  readAll: () => Promise<string>;
}

function slowGet(path: string): Promise<SlowClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    sockets.push(socket);
    const chunks: Buffer[] = [];
    let whole: (() => void) | undefined;
    const received = () => Buffer.concat(chunks);
    /** the body once Content-Length bytes of it are in, else undefined */
    const body = (): string | undefined => {
      const all = received();
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return undefined;
      const length = /content-length: (\d+)/i.exec(all.subarray(0, end).toString('latin1'));
      if (length === null) throw new Error('no content-length');
      const bytes = all.subarray(end + 4);
      return bytes.length >= Number(length[1]) ? bytes.toString('utf8') : undefined;
    };
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (chunks.length === 1) {
        socket.pause(); // and read no further
        const status = /^HTTP\/1\.1 (\d{3})/.exec(received().toString('latin1'));
        resolve({
          socket,
          status: Number(status?.[1]),
          readAll: () =>
            new Promise<string>((done) => {
              whole = () => {
                const text = body();
                if (text !== undefined) done(text);
              };
              whole();
              socket.resume();
            }),
        });
      }
      whole?.();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: node\r\n\r\n`);
  });
}

/** One GET read at once, on its own connection. */
function get(path: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ socketPath, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(body) }));
    });
    request.on('error', reject);
  });
}

interface Page {
  blocks: { height: number }[];
  next: number;
  head: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET `path` until it answers 200 (the node frees its budget once a slow client goes); its page. */
async function eventuallyServed(path: string, timeoutMs = 5000): Promise<Page> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await get(path);
    if (res.status === 200) return res.json as Page;
    expect(res.status).toBe(503);
    if (Date.now() > deadline) throw new Error(`${path}: still 503 after ${timeoutMs} ms`);
    await sleep(20);
  }
}

function expectBudgetRefusal(res: { status: number; json: unknown }): void {
  expect(res.status).toBe(503);
  const { error } = res.json as { error: { code: string; message: string } };
  expect(error.code).toBe('NOT_READY');
  expect(error.message).toMatch(/retry later/);
}

/** a page of PAGE_BLOCKS (and room for a longer height) */
const pageBytes = () => (PAGE_BLOCKS + 0.5) * blockBytes;
/** a budget of two full pages, and not a third block */
const twoPages = () => 2 * PAGE_BLOCKS * blockBytes + blockBytes / 2;
const page = (from: number) => `/v1/blocks?from=${from}&limit=${PAGE_BLOCKS}`;

describe('GET /v1/blocks (and /v1/blocks/:height): the budget of blocks not yet sent', () => {
  it('refuses a page with 503 NOT_READY while slow clients hold the budget, and serves again once they read or go', async () => {
    await serve({ blockPageBytes: pageBytes(), maxUnsentBlockPageBytes: twoPages() });
    const a = await slowGet(page(first));
    const b = await slowGet(page(first + PAGE_BLOCKS));
    expect([a.status, b.status]).toEqual([200, 200]);

    // both pages sit in the node, unsent: a third does not fit
    expectBudgetRefusal(await get(page(first + 2 * PAGE_BLOCKS)));
    expectBudgetRefusal(await get(`/v1/blocks?from=${first}&limit=1`));
    // one block by its height shares the budget
    expectBudgetRefusal(await get(`/v1/blocks/${first}`));

    // a client that goes away gives its page back (close)...
    a.socket.destroy();
    const served = await eventuallyServed(page(first + 2 * PAGE_BLOCKS));
    expect(served.blocks.map((x) => x.height)).toEqual(
      Array.from({ length: PAGE_BLOCKS }, (_, i) => first + 2 * PAGE_BLOCKS + i),
    );

    // ...and so does one that reads its page whole (finish), its connection still open
    const body = JSON.parse(await b.readAll()) as Page;
    expect(body.blocks).toHaveLength(PAGE_BLOCKS);
    expect(b.socket.destroyed).toBe(false);
    // the whole budget is free again: two slow pages fit, and not a third
    const c = await slowGet(page(first));
    const d = await slowGet(page(first + PAGE_BLOCKS));
    expect([c.status, d.status]).toEqual([200, 200]);
    expectBudgetRefusal(await get(page(first + 2 * PAGE_BLOCKS)));
  });

  it('gives back the budget of a pipelined request whose connection closes before its turn', async () => {
    await serve({ blockPageBytes: pageBytes(), maxUnsentBlockPageBytes: twoPages() });
    // an event stream, then two page requests, in one write: the pages are built at once, then
    // parked behind the stream, and get no 'finish' or 'close' of their own when the connection goes
    const socket = net.connect(socketPath);
    sockets.push(socket);
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.pause();
    socket.write(
      `GET /v1/events HTTP/1.1\r\nHost: node\r\n\r\n` +
        `GET ${page(first)} HTTP/1.1\r\nHost: node\r\n\r\nGET ${page(first + PAGE_BLOCKS)} HTTP/1.1\r\nHost: node\r\n\r\n`,
    );
    // both pages built: the budget is full
    const deadline = Date.now() + 5000;
    while ((await get(`/v1/blocks?from=${first}&limit=1`)).status !== 503) {
      if (Date.now() > deadline) throw new Error('the pipelined pages never filled the budget');
      await sleep(20);
    }
    socket.destroy();
    // all of it comes back: two slow pages fit again, and not a third
    await eventuallyServed(page(first + 2 * PAGE_BLOCKS));
    const c = await slowGet(page(first));
    const d = await slowGet(page(first + PAGE_BLOCKS));
    expect([c.status, d.status]).toEqual([200, 200]);
    expectBudgetRefusal(await get(page(first + 2 * PAGE_BLOCKS)));
  });

  it('ends a page early, at the block that would not fit the budget, rather than refusing it', async () => {
    // one slow page, and room for two and a half blocks more
    const budget = (PAGE_BLOCKS + 2.5) * blockBytes;
    await serve({ blockPageBytes: pageBytes(), maxUnsentBlockPageBytes: budget });
    const a = await slowGet(page(first));
    expect(a.status).toBe(200);
    const res = await get(page(first + PAGE_BLOCKS));
    expect(res.status).toBe(200);
    const body = res.json as Page;
    expect(body.blocks.map((x) => x.height)).toEqual([first + PAGE_BLOCKS, first + PAGE_BLOCKS + 1]);
    expect(body.next).toBe(first + PAGE_BLOCKS + 2);
  });

  it('serves a block bigger than the whole budget alone while nothing else is held, and nothing beside it', async () => {
    await serve({ maxUnsentBlockPageBytes: blockBytes / 2 });
    const a = await slowGet(`/v1/blocks?from=${first}&limit=10`);
    expect(a.status).toBe(200);
    expectBudgetRefusal(await get(`/v1/blocks?from=${first + 1}&limit=1`));
    a.socket.destroy();
    const served = await eventuallyServed(`/v1/blocks?from=${first + 1}&limit=10`);
    // alone: the budget holds no second block beside it
    expect(served.blocks.map((x) => x.height)).toEqual([first + 1]);
    const body = JSON.parse(await (await slowGet(`/v1/blocks?from=${first}&limit=1`)).readAll()) as Page;
    expect(body.blocks.map((x) => x.height)).toEqual([first]);
  });

  it('a client that reads its pages one after another gets every block, many budgets in all', async () => {
    await serve({ blockPageBytes: pageBytes(), maxUnsentBlockPageBytes: twoPages() });
    const seen: number[] = [];
    for (let from = 0; from <= node.height;) {
      const res = await get(`/v1/blocks?from=${from}&limit=100`);
      expect(res.status).toBe(200);
      const body = res.json as Page;
      seen.push(...body.blocks.map((x) => x.height));
      from = body.next;
    }
    expect(seen).toEqual(node.blocks.map((_, h) => h));
    expect(BLOCKS * blockBytes).toBeGreaterThan(2 * twoPages());
  });
});
