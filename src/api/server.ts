import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
} from 'fastify';
import type { Logger } from 'pino';
import { hasDuplicateKeys } from '../codec/index.js';
import { blockHash, type Block } from '../ledger/index.js';
import { ApiError, apiErrorBody, mapError } from './errors.js';
import { jsonByteLength } from './json-size.js';
import type { NodeMetrics } from './metrics.js';
import type { LedgerNodeApi } from './node-api.js';
import { fastifySchema, ROUTES, type RouteSpec } from './routes.js';
import { MAX_HEIGHT } from './schemas.js';
import { checkSearchParameters, searchRequest, type SearchQuery } from './search-query.js';
import { BlockStream } from './sse.js';

export interface ApiOptions {
  /** the node's root logger (the API logs through a child `{ module: 'api' }`); false: silent */
  logger: Logger | false;
  metrics: NodeMetrics | null;
  /** largest accepted HTTP body in bytes; default 64 KiB (a signed transaction is at most 8 KiB canonical) */
  bodyLimit?: number;
  /** largest GET /v1/blocks page, in bytes of block JSON (a bigger block still comes, alone); default 8 MiB */
  blockPageBytes?: number;
  /** /v1/events tuning (tests shorten the heartbeat); maxStreams: open streams at once, default 256 */
  events?: { heartbeatMs?: number; maxBufferedBytes?: number; retryMs?: number; maxStreams?: number };
}

export const DEFAULT_BODY_LIMIT = 64 * 1024;
export const DEFAULT_BLOCK_PAGE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_EVENT_STREAMS = 256;
const HEARTBEAT_MS = 15_000;
const MAX_SSE_BUFFERED_BYTES = 8 * 1024 * 1024;
const SSE_RETRY_MS = 2_000;

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
  const base = {
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Per-request lines are logged at debug in onResponse; info stays quiet under load.
    logController: new LogController({ disableRequestLogging: true }),
    // A HEAD twin of GET /v1/events would open a stream.
    exposeHeadRoutes: false,
    // Our own 503 in onRequest below, in the one error shape.
    return503OnClosing: false,
  };
  const loggerInstance: FastifyBaseLogger | undefined =
    opts.logger === false ? undefined : opts.logger.child({ module: 'api' });
  const app: FastifyInstance =
    loggerInstance === undefined ? Fastify({ ...base, logger: false }) : Fastify({ ...base, loggerInstance });

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

  app.route<{ Params: { height: number } }>({
    ...routeOptions(ROUTES.getBlock),
    handler: async (request) => {
      const block = await node.getBlock(request.params.height);
      if (block === undefined) throw new ApiError('NOT_FOUND', `no block at height ${request.params.height}`);
      return envelope(block);
    },
  });

  app.route<{ Querystring: { from: number; limit: number } }>({
    ...routeOptions(ROUTES.listBlocks),
    handler: async (request) => {
      const { from, limit } = request.query;
      const head = node.status().height;
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

  app.route<{ Querystring: SearchQuery }>({
    ...routeOptions(ROUTES.search),
    handler: (request) => {
      checkSearchParameters(request.url);
      return node.search(searchRequest(request.query));
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

  app.route({ ...routeOptions(ROUTES.checkSync), handler: () => node.syncCheck() });

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

      reply.hijack();
      const stream = new BlockStream(
        reply.raw,
        {
          heartbeatMs: opts.events?.heartbeatMs ?? HEARTBEAT_MS,
          maxBufferedBytes: opts.events?.maxBufferedBytes ?? MAX_SSE_BUFFERED_BYTES,
          retryMs: opts.events?.retryMs ?? SSE_RETRY_MS,
          log: request.log,
        },
        { 'x-request-id': request.id },
      );
      streams.add(stream);
      metrics?.addSseClients(1);
      stream.onClose(() => {
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

/** Whether a text parses as JSON at all (JSON.parse keeps "__proto__" as an own key: no pollution). */
function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
