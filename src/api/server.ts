import http, { type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  LogController,
  type ConnectionError,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { hasDuplicateKeys } from '../codec/index.js';
import { blockHash, type Block } from '../ledger/index.js';
import { ApiError, apiErrorBody, mapError } from './errors.js';
import { jsonByteLength } from './json-size.js';
import type { HttpRefusalCode, NodeMetrics } from './metrics.js';
import type { LedgerNodeApi } from './node-api.js';
import { fastifySchema, ROUTES, type RouteSpec } from './routes.js';
import { MAX_HEIGHT } from './schemas.js';
import { checkSearchParameters, searchRequest, type SearchQuery } from './search-query.js';
import { BlockStream, StreamBudget } from './sse.js';
import { ipSource } from '../util/ip-source.js';
import { LogRateLimiter } from '../util/rate-limited-log.js';

export interface ApiOptions {
  /** the node's root logger (the API logs through a child `{ module: 'api' }`); false: silent */
  logger: Logger | false;
  metrics: NodeMetrics | null;
  /** largest accepted HTTP body in bytes; default 64 KiB (a signed transaction is at most 8 KiB canonical) */
  bodyLimit?: number;
  /** largest GET /v1/blocks page, in bytes of block JSON (a bigger block still comes, alone); default 8 MiB */
  blockPageBytes?: number;
  /**
   * what all GET /v1/blocks pages (and /v1/blocks/:height blocks) built and not yet written to
   * their sockets may hold together,
   * in bytes of JSON (a page past it ends early, or is 503 NOT_READY if not even its first block
   * fits; a block bigger than it all still comes, alone, when nothing else is held); default 64 MiB
   */
  maxUnsentBlockPageBytes?: number;
  /** connections and the time a request may take to arrive (HttpLimits) */
  http?: HttpLimits;
  /**
   * /v1/events tuning (tests shorten the heartbeat). maxStreams: open streams at once, default 256;
   * maxStreamsPerSource: of them from one source address (sourceKey), default 32;
   * maxBufferedBytes: one stream's queue before it is dropped, default 8 MiB;
   * maxTotalBufferedBytes, blockEventBytes, budgetCheckMs: the budget of all streams together
   * (StreamBudget), default 64 MiB beyond one block event of 4 MiB + 64 KiB each, looked at every second
   */
  events?: {
    heartbeatMs?: number;
    maxBufferedBytes?: number;
    retryMs?: number;
    maxStreams?: number;
    maxStreamsPerSource?: number;
    maxTotalBufferedBytes?: number;
    blockEventBytes?: number;
    budgetCheckMs?: number;
  };
  /**
   * GET /v1/search: searches handed to the node at once (concurrency, default 8), searches
   * waiting for their turn (maxWaiting, default 64; beyond it 503 NOT_READY), and how long one
   * may wait (maxWaitMs, default 10 s; then 503 NOT_READY)
   */
  search?: { concurrency?: number; maxWaiting?: number; maxWaitMs?: number };
}

/**
 * What the HTTP server grants one connection. fastify 5 sets no request
 * timeout and no connection limit of its own: a client that sends half a
 * body and then nothing held its socket, parser and buffered body for ever.
 */
export interface HttpLimits {
  /** time to receive a whole request, headers and body; default 30 s (a 408 and the connection closed) */
  requestTimeoutMs?: number;
  /** time to receive a request's headers; default 10 s */
  headersTimeoutMs?: number;
  /** how often the server looks for requests past those times; default 5 s */
  checkIntervalMs?: number;
  /** an idle keep-alive connection is closed after this; default 5 s */
  keepAliveTimeoutMs?: number;
  /**
   * a connection on which no byte moves either way for this long is closed; default 120 s.
   * Longer than any honest silence: a submit waits at most 60 s for its commit, a search at
   * most 10 s for its turn and 45 s for the mirror, an event stream sends a heartbeat every
   * 15 s. A mirror check (which may read for many minutes) is exempt.
   */
  idleTimeoutMs?: number;
  /** open connections at most; beyond it a new one is closed at once; default 4096 */
  maxConnections?: number;
  /**
   * open connections from one source (an IPv4 address, an IPv6 /64) at most; default 1024.
   * Behind a reverse proxy every client has the proxy's address: raise it there.
   */
  maxConnectionsPerSource?: number;
}

export const DEFAULT_BODY_LIMIT = 64 * 1024;
export const DEFAULT_BLOCK_PAGE_BYTES = 8 * 1024 * 1024;
/** eight pages of the largest size, as much as the event streams may hold beyond their one block each */
export const DEFAULT_MAX_UNSENT_BLOCK_PAGE_BYTES = 64 * 1024 * 1024;
/**
 * What a block's envelope in a page adds to its JSON, at most:
 * `{"height":<16 digits>,"hash":"<64 hex>","block":…},`.
 */
const BLOCK_ENVELOPE_BYTES = 128;
export const DEFAULT_MAX_EVENT_STREAMS = 256;
export const DEFAULT_MAX_EVENT_STREAMS_PER_SOURCE = 32;
export const DEFAULT_HTTP_LIMITS: Readonly<Required<HttpLimits>> = Object.freeze({
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  checkIntervalMs: 5_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  maxConnections: 4096,
  maxConnectionsPerSource: 1024,
});
export const DEFAULT_SEARCH_LIMITS: Readonly<Required<NonNullable<ApiOptions['search']>>> = Object.freeze({
  concurrency: 8,
  maxWaiting: 64,
  maxWaitMs: 10_000,
});
const HEARTBEAT_MS = 15_000;
const MAX_SSE_BUFFERED_BYTES = 8 * 1024 * 1024;
const MAX_SSE_TOTAL_BUFFERED_BYTES = 64 * 1024 * 1024;
/**
 * The largest block event a node sends. A leader cuts a block at 4 MiB of
 * transactions, each counted as its canonical unsigned bytes + 140
 * (BLOCK_BYTES_BUDGET in src/node/ledger-node.ts); the block's JSON adds at
 * most 4 more bytes and a comma per transaction (the signature member is 144
 * bytes, docs/FORMAT.md), at most 4096 of them (maxBlockTxs), and its header
 * and signature: well under 64 KiB over the 4 MiB.
 */
const BLOCK_EVENT_BYTES = 4 * 1024 * 1024 + 64 * 1024;
const SSE_RETRY_MS = 2_000;
/** refused connections (and requests Node's parser refused) are logged at most once per this interval */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

interface BlockEnvelope {
  height: number;
  hash: string;
  block: Block;
}

function envelope(block: Block): BlockEnvelope {
  return { height: block.header.height, hash: blockHash(block.header), block };
}

function routeOptions(spec: RouteSpec) {
  return { method: spec.method, url: spec.url, schema: fastifySchema(spec) };
}

/** Aborts when the client goes away before the reply is written (a waiting submit stops waiting). */
function disconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return controller.signal;
}

/**
 * Whom a connection counts against for the per-source limits: an IPv4
 * address (also when it comes IPv4-mapped, `::ffff:a.b.c.d`), or an IPv6
 * address's /64, which one host or site usually holds whole. undefined for
 * a connection without an IP address (a Unix socket): no per-source limit.
 */
export function sourceKey(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  return ipSource(address);
}

/** Counts of open things (connections, streams) per source, with a cap. */
class PerSource {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Take one for `key`; false when it holds `max` already. undefined keys are not limited. */
  take(key: string | undefined): boolean {
    if (key === undefined) return true;
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  give(key: string | undefined): void {
    if (key === undefined) return;
    const n = (this.counts.get(key) ?? 1) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }
}

/**
 * Bytes that answers hold together until they are written out: each
 * reserves what it holds, piece by piece, and gives it all back once its
 * response has been handed to the socket ('finish') or its connection has
 * closed ('close'), whichever comes first. A reservation past `max` is
 * refused, except while nothing at all is reserved: one piece bigger than
 * the whole budget (a block above it) can still be served, alone.
 *
 * (The event streams' StreamBudget is another kind of bound: it lets
 * streams queue freely, looks every second and drops the ones furthest
 * behind; this one refuses a block before it joins a page, and never drops
 * a connection.)
 */
class ByteBudget {
  private used = 0;

  constructor(readonly max: number) {}

  /**
   * The budget as one response sees it. Its bytes go back once the response
   * has been written out ('finish'), or it or its connection has closed: a
   * response parked behind another on a pipelined connection gets neither
   * event of its own when the connection closes, only its socket does.
   * `reserve` refuses (false) once they have gone back, and `gone` says so:
   * a client that has gone needs no more.
   */
  forResponse(res: ServerResponse): { reserve: (bytes: number) => boolean; gone: () => boolean } {
    let held = 0;
    const socket = res.req.socket as Socket | null | undefined;
    let open = !res.destroyed && !res.writableFinished && socket?.destroyed !== true;
    const release = () => {
      if (!open) return;
      open = false;
      this.used -= held;
      held = 0;
      res.off('finish', release);
      res.off('close', release);
      socket?.off('close', release);
    };
    if (open) {
      res.once('finish', release);
      res.once('close', release);
      socket?.once('close', release);
    }
    return {
      reserve: (bytes) => {
        if (!open || (this.used > 0 && this.used + bytes > this.max)) return false;
        this.used += bytes;
        held += bytes;
        return true;
      },
      gone: () => !open,
    };
  }
}

/** `64 MiB`, or `1000 bytes` for a size that is not whole mebibytes */
function byteSize(n: number): string {
  const mib = n / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${n} bytes`;
}

/**
 * The searches a node's API hands to its mirror: a few at once, then a
 * bounded queue. The mirror thread cannot drop a search it was handed, so a
 * flood of requests (closed by their clients at once) would otherwise all
 * run, one after another, ahead of every honest search; here a waiting
 * search whose client has gone leaves the queue unrun, a full queue answers
 * 503 NOT_READY at once, and so does a search that waited too long.
 */
class SearchGate {
  private running = 0;
  private readonly waiting = new Set<{ start: () => void }>();

  constructor(private readonly limits: Required<NonNullable<ApiOptions['search']>>) {}

  async run<T>(signal: AbortSignal, search: () => Promise<T>): Promise<T> {
    if (this.running < this.limits.concurrency) this.running++;
    else await this.turn(signal);
    try {
      return await search();
    } finally {
      this.release();
    }
  }

  /** Wait until a running search hands over its slot. */
  private turn(signal: AbortSignal): Promise<void> {
    const { maxWaiting, maxWaitMs } = this.limits;
    if (this.waiting.size >= maxWaiting)
      return Promise.reject(
        new ApiError('NOT_READY', `this node has ${maxWaiting} searches waiting already; retry later`),
      );
    return new Promise((resolve, reject) => {
      const leave = () => {
        this.waiting.delete(waiter);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter = {
        start: () => {
          leave();
          resolve();
        },
      };
      const onAbort = () => {
        leave();
        reject(new ApiError('NOT_READY', 'the client went away before its search ran'));
      };
      const timer = setTimeout(() => {
        leave();
        reject(new ApiError('NOT_READY', `no search could start within ${maxWaitMs / 1000} s; retry later`));
      }, maxWaitMs);
      this.waiting.add(waiter);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A search ended: its slot goes to the longest waiting, if any. */
  private release(): void {
    const next = this.waiting.values().next();
    if (next.done === true) this.running--;
    else next.value.start();
  }
}

const registeredRoutes = new WeakMap<FastifyInstance, { method: string; url: string }[]>();

/** Every route an app built by buildApi serves (method, fastify url), including ones added later by plugins. */
export function routesOf(app: FastifyInstance): readonly { method: string; url: string }[] {
  return registeredRoutes.get(app) ?? [];
}

/**
 * Build the HTTP API of one node. Does not listen: the caller (src/node)
 * calls `listen()`, tests call `inject()`.
 */
export function buildApi(node: LedgerNodeApi, opts: ApiOptions): FastifyInstance {
  const { metrics } = opts;
  const blockPageBytes = opts.blockPageBytes ?? DEFAULT_BLOCK_PAGE_BYTES;
  const limits = { ...DEFAULT_HTTP_LIMITS, ...opts.http };
  // a flood of refusals is a line per source and interval, each saying how many it stands for
  const refusals = new LogRateLimiter(REFUSAL_LOG_INTERVAL_MS);
  const base = {
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // A request must arrive whole within requestTimeoutMs (408 REQUEST_TIMEOUT and closed); the
    // wait for its answer (a submit waiting for its commit) is not counted.
    requestTimeout: limits.requestTimeoutMs,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // socket inactivity (no byte either way): ends a connection whose client stopped reading
    connectionTimeout: limits.idleTimeoutMs,
    // Per-request lines are logged at debug in onResponse; info stays quiet under load.
    logController: new LogController({ disableRequestLogging: true }),
    // A HEAD twin of GET /v1/events would open a stream.
    exposeHeadRoutes: false,
    // Our own 503 in onRequest below, in the one error shape.
    return503OnClosing: false,
    // What Node's HTTP parser refuses before any route (408, 431, 400), in the one error shape too.
    clientErrorHandler: clientErrorHandler(limits, refusals, metrics),
  };
  const loggerInstance: FastifyBaseLogger | undefined =
    opts.logger === false ? undefined : opts.logger.child({ module: 'api' });
  const app: FastifyInstance =
    loggerInstance === undefined ? Fastify({ ...base, logger: false }) : Fastify({ ...base, loggerInstance });

  limitConnections(app, limits, refusals);

  const routes: { method: string; url: string }[] = [];
  registeredRoutes.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });

  // A JSON API: any other media type is 415 UNSUPPORTED_MEDIA_TYPE.
  app.removeContentTypeParser('text/plain');
  // Fastify's own JSON parser (`__proto__` and `constructor` keys refused), and no key twice in
  // one object: JSON.parse would keep the last value, where a proxy or log may keep the first.
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string; // parseAs: 'string'
    void jsonParser(request, text, (err, parsed) => {
      if (err) {
        // fastify calls every refusal "not valid JSON"; a body refused for a key it forbids is valid
        if (text.trim() !== '' && isJson(text))
          return done(
            new ApiError(
              'MALFORMED_JSON',
              'the body uses a key this API refuses: "__proto__", or "constructor" holding "prototype"',
            ),
            undefined,
          );
        return done(err, undefined);
      }
      if (hasDuplicateKeys(text, parsed)) {
        return done(
          new ApiError('MALFORMED_JSON', 'the body names the same key twice in one object'),
          undefined,
        );
      }
      done(null, parsed);
    });
  });

  app.setErrorHandler((err, request, reply) => {
    const mapped = mapError(err);
    if (mapped.internal) request.log.error({ err }, 'request failed');
    else
      request.log.debug(
        { code: mapped.body.error.code, reason: mapped.body.error.message },
        'request refused',
      );
    return reply.code(mapped.status).send(mapped.body);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const mapped = apiErrorBody('NOT_FOUND', `no route ${request.method} ${path}`);
    return reply.code(mapped.status).send(mapped.body);
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', request.id);
    done(null, payload);
  });

  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    request.log.debug({ method: request.method, route, status: reply.statusCode, seconds }, 'request');
    // An event stream's duration is the connection's life, not a latency.
    if (metrics !== null && route !== ROUTES.streamEvents.url)
      metrics.observeHttpRequest(request.method, route, reply.statusCode, seconds);
    done();
  });

  // --- transactions -------------------------------------------------------

  app.route<{ Querystring: { wait: 'commit' | 'none'; timeoutMs: number }; Body: unknown }>({
    ...routeOptions(ROUTES.submitTransaction),
    handler: async (request, reply) => {
      const { wait, timeoutMs } = request.query;
      const result = await node.submit(request.body, {
        wait: wait === 'commit',
        timeoutMs,
        signal: disconnectSignal(reply),
      });
      if (result.status === 'committed') {
        // Also for wait=none: a resubmitted committed transaction answers with its receipt at once.
        if (result.receipt === undefined || result.blockHash === undefined)
          throw new Error(`node answered committed without a receipt for ${result.id}`);
        return reply
          .code(200)
          .send({ id: result.id, status: 'committed', receipt: result.receipt, blockHash: result.blockHash });
      }
      return reply.code(202).send({ id: result.id, status: 'accepted' });
    },
  });

  app.route<{ Params: { id: string } }>({
    ...routeOptions(ROUTES.getTransaction),
    handler: async (request) => {
      const view = await node.getTransaction(request.params.id);
      if (view === undefined)
        throw new ApiError('NOT_FOUND', `no committed transaction ${request.params.id}`);
      return view;
    },
  });

  // --- chain ---------------------------------------------------------------

  // A block or page stays in the node until its client reads it: a client that asks for blocks on
  // many connections and reads none would hold a page (or a block of up to 4 MiB) on each. All
  // the answers of GET /v1/blocks and /v1/blocks/:height not yet written out hold at most this
  // together; each block is counted before it joins its answer.
  const unsentPages = new ByteBudget(opts.maxUnsentBlockPageBytes ?? DEFAULT_MAX_UNSENT_BLOCK_PAGE_BYTES);
  /** The refusal of a block answer that the budget has no room for (logged, rate-limited). */
  const pagesFull = (request: FastifyRequest): ApiError => {
    const admitted = refusals.admit('block-pages:');
    if (admitted !== undefined)
      request.log.warn(
        { maxUnsentBlockPageBytes: unsentPages.max, suppressed: admitted.suppressed },
        'a block request refused: the blocks not yet sent to their clients hold the budget',
      );
    return new ApiError(
      'NOT_READY',
      `this node holds ${byteSize(unsentPages.max)} of blocks not yet sent to their clients, ` +
        'the most it holds; retry later',
    );
  };

  app.route<{ Params: { height: number } }>({
    ...routeOptions(ROUTES.getBlock),
    handler: async (request, reply) => {
      const budget = unsentPages.forResponse(reply.raw);
      const block = await node.getBlock(request.params.height);
      if (block === undefined) throw new ApiError('NOT_FOUND', `no block at height ${request.params.height}`);
      if (!budget.reserve(jsonByteLength(block) + BLOCK_ENVELOPE_BYTES)) {
        // a client that has gone is not told (nor logged as a refusal)
        if (budget.gone()) throw new ApiError('NOT_READY', 'the client has gone');
        throw pagesFull(request);
      }
      return envelope(block);
    },
  });

  app.route<{ Querystring: { from: number; limit: number } }>({
    ...routeOptions(ROUTES.listBlocks),
    handler: async (request, reply) => {
      const { from, limit } = request.query;
      const head = node.status().height;
      const budget = unsentPages.forResponse(reply.raw);
      // Blocks run to megabytes: a page also ends at a byte budget, and blocks are
      // read one at a time so that nothing past it is loaded. `next` says where to go on.
      const blocks: BlockEnvelope[] = [];
      let bytes = 0;
      let next = from;
      for (; next <= head && blocks.length < limit; next++) {
        const block = await node.getBlock(next);
        if (block === undefined) continue;
        const size = jsonByteLength(block);
        if (blocks.length > 0 && bytes + size > blockPageBytes) break;
        if (!budget.reserve(size + BLOCK_ENVELOPE_BYTES)) {
          // Past the budget of all pages a page ends early (`next` goes on from there); nothing
          // more for a client that has gone.
          if (blocks.length > 0 || budget.gone()) break;
          throw pagesFull(request);
        }
        bytes += size;
        blocks.push(envelope(block));
      }
      return { blocks, next, head };
    },
  });

  // --- state ---------------------------------------------------------------

  app.route<{ Params: { key: string } }>({
    ...routeOptions(ROUTES.getParticipant),
    handler: (request) => {
      const participant = node.getParticipant(request.params.key);
      if (participant === undefined) throw new ApiError('NOT_FOUND', `no participant ${request.params.key}`);
      return participant;
    },
  });

  app.route<{ Params: { key: string } }>({
    ...routeOptions(ROUTES.getAffiliateBalances),
    handler: (request) => {
      const balances = node.getAffiliateBalances(request.params.key);
      if (balances === undefined) throw new ApiError('NOT_FOUND', `no affiliate ${request.params.key}`);
      return { affiliate: request.params.key, balances };
    },
  });

  // --- search and the mirror -------------------------------------------------

  const searches = new SearchGate({ ...DEFAULT_SEARCH_LIMITS, ...opts.search });
  app.route<{ Querystring: SearchQuery }>({
    ...routeOptions(ROUTES.search),
    handler: (request, reply) => {
      checkSearchParameters(request.url);
      const query = searchRequest(request.query);
      return searches.run(disconnectSignal(reply), () => node.search(query));
    },
  });

  app.route({
    ...routeOptions(ROUTES.getSyncStatus),
    handler: () => {
      const status = node.syncStatus();
      // 503 like search and check, which the node refuses with NOT_READY without a mirror
      if (status === undefined) throw new ApiError('NOT_READY', 'this node runs without a mirror');
      return status;
    },
  });

  app.route({
    ...routeOptions(ROUTES.checkSync),
    handler: (request) => {
      // A check reads the whole mirror, silently, for minutes on a long chain (the CLI waits
      // 10 min): no idle timeout while it runs. There is one at a time; the next request on
      // this connection has the timeout again.
      const socket = request.raw.socket as Socket | undefined; // none under inject()
      if (typeof socket?.setTimeout === 'function') socket.setTimeout(0);
      return node.syncCheck();
    },
  });

  // --- operations ------------------------------------------------------------

  app.route({ ...routeOptions(ROUTES.getStatus), handler: () => node.status() });

  app.route({
    ...routeOptions(ROUTES.health),
    handler: (_request, reply) => {
      const { ok } = node.health();
      reply.code(ok ? 200 : 503);
      return { ok };
    },
  });

  app.route({
    ...routeOptions(ROUTES.ready),
    handler: (_request, reply) => {
      const { ready, checks } = node.readiness();
      reply.code(ready ? 200 : 503);
      return { ready, checks };
    },
  });

  app.route({
    ...routeOptions(ROUTES.metrics),
    handler: async (_request, reply) => {
      if (metrics === null) throw new ApiError('NOT_FOUND', 'metrics are disabled on this node');
      const { contentType, text } = await metrics.scrape();
      return reply.type(contentType).send(text);
    },
  });

  // --- admin ---------------------------------------------------------------

  app.route<{ Body: unknown }>({
    ...routeOptions(ROUTES.admin),
    handler: (request) => node.admin(request.body),
  });

  // --- events (SSE) ------------------------------------------------------------

  const streams = new Set<BlockStream>();
  const maxStreams = opts.events?.maxStreams ?? DEFAULT_MAX_EVENT_STREAMS;
  const streamsBySource = new PerSource(
    opts.events?.maxStreamsPerSource ?? DEFAULT_MAX_EVENT_STREAMS_PER_SOURCE,
  );
  const budget = new StreamBudget(
    opts.events?.maxTotalBufferedBytes ?? MAX_SSE_TOTAL_BUFFERED_BYTES,
    opts.events?.blockEventBytes ?? BLOCK_EVENT_BYTES,
    opts.events?.budgetCheckMs,
  );
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    // Open streams would keep close() waiting forever: end them first.
    for (const stream of streams) stream.end();
    done();
  });
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    void reply.header('connection', 'close');
    done(new ApiError('NOT_READY', 'the node is shutting down'));
  });

  app.route<{ Querystring: { after?: number }; Headers: { 'last-event-id'?: string } }>({
    ...routeOptions(ROUTES.streamEvents),
    handler: (request, reply) => {
      // Everything that can fail with a normal JSON error happens before the hijack.
      const lastEventId = request.headers['last-event-id'];
      let after: number;
      if (lastEventId !== undefined) {
        after = Number(lastEventId);
        if (!Number.isSafeInteger(after) || after > MAX_HEIGHT)
          throw new ApiError('BAD_REQUEST', 'Last-Event-ID must be a block height', {
            field: 'headers.last-event-id',
          });
      } else {
        after = request.query.after ?? node.status().height;
      }
      // Each stream holds a socket, a buffer and a subscription the node feeds on every block.
      if (streams.size >= maxStreams)
        throw new ApiError('NOT_READY', `this node serves ${maxStreams} event streams already; retry later`);
      // One client must not hold them all: a stream costs it nothing once open (a client that
      // never reads is only noticed once its socket is full, which heartbeats never fill).
      const source = sourceKey(request.raw.socket.remoteAddress);
      if (!streamsBySource.take(source))
        throw new ApiError(
          'NOT_READY',
          `this node serves ${streamsBySource.max} event streams to this address already, the most it serves one source; retry later`,
        );

      reply.hijack();
      let stream: BlockStream;
      try {
        stream = new BlockStream(
          reply.raw,
          {
            heartbeatMs: opts.events?.heartbeatMs ?? HEARTBEAT_MS,
            maxBufferedBytes: opts.events?.maxBufferedBytes ?? MAX_SSE_BUFFERED_BYTES,
            retryMs: opts.events?.retryMs ?? SSE_RETRY_MS,
            budget,
            log: request.log,
          },
          { 'x-request-id': request.id },
        );
      } catch (err) {
        streamsBySource.give(source);
        throw err;
      }
      streams.add(stream);
      metrics?.addSseClients(1);
      stream.onClose(() => {
        streamsBySource.give(source);
        streams.delete(stream);
        metrics?.addSseClients(-1);
      });
      try {
        stream.attach((onBlock) => node.subscribeBlocks(after, onBlock));
      } catch (err) {
        const mapped = mapError(err);
        if (mapped.internal) request.log.error({ err }, 'event subscription failed');
        stream.fail(mapped.body.error.code, mapped.body.error.message);
      }
    },
  });

  return app;
}

/**
 * At most `maxConnections` open connections (Node closes any beyond at
 * once), and at most `maxConnectionsPerSource` from one source (sourceKey):
 * a client that opens thousands of connections and sends nothing, or half a
 * request, on each used to hold memory and file descriptors until the
 * process ran out of them (then LevelDB and libp2p failed too).
 */
function limitConnections(
  app: FastifyInstance,
  limits: Required<HttpLimits>,
  refusals: LogRateLimiter,
): void {
  const server = app.server;
  server.maxConnections = limits.maxConnections;
  const bySource = new PerSource(limits.maxConnectionsPerSource);
  const warn = (key: string, detail: Record<string, unknown>, msg: string) => {
    const admitted = refusals.admit(key);
    if (admitted !== undefined) app.log.warn({ ...detail, suppressed: admitted.suppressed }, msg);
  };
  server.on('drop', () =>
    warn(
      'full:',
      { maxConnections: limits.maxConnections },
      'HTTP connection refused: the server holds its limit of connections',
    ),
  );
  server.on('connection', (socket: Socket) => {
    const source = sourceKey(socket.remoteAddress);
    if (!bySource.take(source)) {
      warn(
        `source:${source ?? ''}`,
        { source, maxConnectionsPerSource: limits.maxConnectionsPerSource },
        'HTTP connection refused: its source address holds its limit of connections',
      );
      socket.destroy();
      return;
    }
    socket.once('close', () => bySource.give(source));
  });
}

/**
 * The answer to a request Node's HTTP parser refused before it reached a
 * route (the `clientError` event): a request not received whole in time, a
 * head above the maximum header size, a connection the client ended inside
 * a request, or bytes that are not HTTP/1.1.
 */
function clientErrorAnswer(
  err: { code?: unknown; reason?: unknown },
  limits: Pick<Required<HttpLimits>, 'requestTimeoutMs' | 'headersTimeoutMs'>,
): { code: Exclude<HttpRefusalCode, 'UNANSWERED'>; message: string } {
  const refusal = (code: Exclude<HttpRefusalCode, 'UNANSWERED'>, message: string) => ({ code, message });
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Node checks both limits and says which with the same error; headersTimeout is never above requestTimeout
    const whole = limits.requestTimeoutMs / 1000;
    const head = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 1000;
    return refusal(
      'REQUEST_TIMEOUT',
      `the request did not arrive whole within ${whole} s (its headers within ${head} s), so the connection ` +
        'is closed: send each request at once, without pauses, on a new connection',
    );
  }
  if (err.code === 'HPE_HEADER_OVERFLOW')
    return refusal(
      'HEADERS_TOO_LARGE',
      `the request line and headers are above ${http.maxHeaderSize} bytes together, so the connection ` +
        'is closed: send fewer or shorter headers (cookies, tokens) and a shorter URL',
    );
  // The client ended its side (FIN) while the parser was inside a message: its head, or before the
  // end of the body it announced. That is also how a client leaves after an early answer to a
  // request whose body was not read (413, 415): the parser is still in that body. A half-closed
  // connection can still be answered, and is, as Node does; the text says both.
  if (err.code === 'HPE_INVALID_EOF_STATE')
    return refusal(
      'BAD_HTTP_REQUEST',
      'the client ended its side of the connection (FIN) while a request was incomplete (inside its ' +
        'headers, or before the end of the body it announced), so the connection is closed. If that ' +
        'request already had an answer on this connection (413, 415), this one adds nothing; otherwise ' +
        'send each request whole, with the body its Content-Length or chunked encoding announces, ' +
        'before ending the connection',
    );
  // HPE_INVALID_METHOD, HPE_INVALID_CHUNK_SIZE, HPE_UNEXPECTED_CONTENT_LENGTH, …: llhttp's reason is a fixed text
  const reason = typeof err.reason === 'string' && err.reason !== '' ? ` (${err.reason})` : '';
  return refusal(
    'BAD_HTTP_REQUEST',
    `not a valid HTTP/1.1 request${reason}, so the connection is closed: check the client's HTTP ` +
      "library, and that this is the node's HTTP port (not its libp2p port)",
  );
}

/**
 * fastify's clientErrorHandler: what Node's HTTP parser refuses before any
 * route gets the one error shape (clientErrorAnswer), where fastify's own
 * default answers `{"error":"Request Timeout","message":"Client Timeout",…}`.
 * Otherwise as that default (and Node): nothing for a reset or destroyed
 * socket, no write to one that cannot take it, and the socket destroyed;
 * and, as Node but not that default, no write into an answer under way.
 * Each refusal counts in `bitnexus_http_refused_total` by the code answered,
 * or as `UNANSWERED` when it cannot be answered; a reset, or an error of the
 * transport on a destroyed socket (EPIPE, ETIMEDOUT, …), is no refusal.
 */
function clientErrorHandler(
  limits: Required<HttpLimits>,
  refusals: LogRateLimiter,
  metrics: NodeMetrics | null,
): (this: FastifyInstance, err: ConnectionError, socket: Socket) => void {
  return function onClientError(this: FastifyInstance, err: ConnectionError, socket: Socket): void {
    if (err.code === 'ECONNRESET') return;
    if (socket.destroyed) {
      if (isParserRefusal(err)) metrics?.incHttpRefused('UNANSWERED');
      return;
    }
    const { code, message } = clientErrorAnswer(err, limits);
    const mapped = apiErrorBody(code, message);
    const source = sourceKey(socket.remoteAddress);
    const admitted = refusals.admit(`client-error:${source ?? ''}`);
    if (admitted !== undefined)
      this.log.debug(
        { source, code, reason: err.code, suppressed: admitted.suppressed },
        'HTTP request refused before any route',
      );
    // As Node: never into an answer already under way on this connection (its status line has gone out).
    const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (socket.writable && answering?.headersSent !== true) {
      const body = JSON.stringify(mapped.body);
      socket.write(
        `HTTP/1.1 ${mapped.status} ${http.STATUS_CODES[mapped.status] ?? ''}\r\n` +
          'Content-Type: application/json; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'Connection: close\r\n\r\n' +
          body,
      );
      metrics?.incHttpRefused(code);
    } else metrics?.incHttpRefused('UNANSWERED');
    socket.destroy(err);
  };
}

/** A request Node's HTTP parser refused (llhttp's `HPE_*`, or the request timeout), not an error of the transport. */
function isParserRefusal(err: { code?: unknown }): boolean {
  return (
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || (typeof err.code === 'string' && err.code.startsWith('HPE_'))
  );
}

/** Whether a text parses as JSON at all (JSON.parse keeps "__proto__" as an own key: no pollution). */
function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
