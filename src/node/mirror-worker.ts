import { parentPort, workerData } from 'node:worker_threads';
import { ChainStore, type BatchOp, type KeyValueStore } from '../storage/index.js';
import {
  ChainStoreSource,
  checkMirror,
  HashingEmbedder,
  HttpEmbedder,
  openSyncTarget,
  searchDetailed,
  SyncService,
  type SearchRequest,
  type SyncLogger,
} from '../sync/index.js';
import type { KvPage, MirrorInit, ToMain, ToWorker } from './mirror-protocol.js';

/**
 * The Postgres mirror's thread (see mirror.ts). PGlite runs Postgres as
 * WebAssembly on the thread that calls it, so on the node's own thread every
 * mirror query would stall consensus; here it cannot. The chain store stays
 * with the node (LevelDB allows one opener): this thread reads it through
 * messages, read-only.
 */

const port = parentPort;
if (!port) throw new Error('mirror-worker must run as a worker thread');
const init = workerData as MirrorInit;
const send = (m: ToMain) => port.postMessage(m);

let nextKv = 0;
const kvWaiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

function kvCall<T>(
  m: { op: 'get'; key: string } | { op: 'iterate'; prefix: string; gte?: string; lt?: string },
): Promise<T> {
  const id = nextKv++;
  return new Promise<T>((resolve, reject) => {
    kvWaiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    send({ type: 'kv', id, ...m });
  });
}

/**
 * The node's chain store, read over messages. A walk comes a page at a time
 * (KvPage), each next page from just after the last key of the one before
 * (`key + '\0'`: the least key above it in LevelDB's byte order), so the node's
 * thread never gathers a whole prefix (a check walks every commission).
 */
const remoteKv: KeyValueStore = {
  get: (key) => kvCall<Uint8Array | undefined>({ op: 'get', key }),
  batch: (_ops: readonly BatchOp[]) => Promise.reject(new Error('the mirror never writes the chain store')),
  async *iterate(prefix, opts = {}) {
    let gte = opts.gte;
    for (;;) {
      const q: { op: 'iterate'; prefix: string; gte?: string; lt?: string } = { op: 'iterate', prefix };
      if (gte !== undefined) q.gte = gte;
      if (opts.lt !== undefined) q.lt = opts.lt;
      const page = await kvCall<KvPage>(q);
      for (const entry of page.entries) yield entry;
      const last = page.entries[page.entries.length - 1];
      if (!page.more || last === undefined) return;
      gte = last[0] + '\u0000';
    }
  },
  close: () => Promise.resolve(),
};

const log: SyncLogger = {
  debug: (obj, msg) => send({ type: 'log', level: 'debug', obj, msg }),
  info: (obj, msg) => send({ type: 'log', level: 'info', obj, msg }),
  warn: (obj, msg) => send({ type: 'log', level: 'warn', obj, msg }),
  error: (obj, msg) => send({ type: 'log', level: 'error', obj, msg }),
};

let height = init.height;
const store = new ChainStore(remoteKv);
const source = new ChainStoreSource(store, () => height);

function errorOf(err: unknown) {
  const e = err as { name?: string; code?: string; message?: string };
  return { name: e.name ?? 'Error', code: e.code ?? 'INTERNAL', message: e.message ?? String(err) };
}

interface Running {
  target: Awaited<ReturnType<typeof openSyncTarget>>;
  embedder: HashingEmbedder | HttpEmbedder;
  service: SyncService;
  statusTimer: NodeJS.Timeout;
}

async function open(): Promise<Running> {
  const target = await openSyncTarget({
    pgliteDir: init.pgliteDir,
    ...(init.postgresUrl === undefined ? {} : { postgresUrl: init.postgresUrl }),
    ...(init.pgliteSharedBuffers === undefined ? {} : { pgliteSharedBuffers: init.pgliteSharedBuffers }),
  });
  const embedder = init.embedder ? new HttpEmbedder(init.embedder) : new HashingEmbedder();
  const service: SyncService = new SyncService({
    source,
    target,
    embedder,
    logger: log,
    onAdvance: () => send({ type: 'status', status: service.status() }),
    onFatal: (err) =>
      log.error({ err: err.message, code: err.code }, 'the mirror stopped; consensus goes on'),
  });
  log.info({ target: target.kind, embedder: embedder.id }, 'mirroring the chain into Postgres');
  service.start();
  const statusTimer = setInterval(() => send({ type: 'status', status: service.status() }), 500);
  send({ type: 'ready' });
  send({ type: 'status', status: service.status() });
  return { target, embedder, service, statusTimer };
}

// Listen at once: messages that arrive while the database opens must not be lost.
const opening = open();
opening.catch((err: unknown) => send({ type: 'init-error', error: errorOf(err) }));

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'committed':
      height = Math.max(height, m.height);
      source.committed(m.height, m.block);
      return;
    case 'kv': {
      const w = kvWaiting.get(m.id);
      kvWaiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.value);
      return;
    }
    case 'call':
      opening
        .then(({ target, embedder }): Promise<unknown> =>
          m.method === 'search'
            ? searchDetailed(target, embedder, m.request as SearchRequest)
            : checkMirror(target, store),
        )
        .then(
          (value) => send({ type: 'result', id: m.id, value }),
          (err: unknown) => send({ type: 'result', id: m.id, error: errorOf(err) }),
        );
      return;
    case 'stop':
      opening
        .then(async ({ target, service, statusTimer }) => {
          clearInterval(statusTimer);
          await service.stop();
          await target.close();
        })
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'error while closing the mirror'))
        .finally(() => send({ type: 'stopped' }));
      return;
  }
});
