import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { NodeMetrics } from '../api/metrics.js';
import type {
  CheckReport,
  CommittedBlock,
  SearchRequest,
  SearchResult,
  SyncServiceStatus,
} from '../sync/index.js';
import type { LedgerChain } from './ledger-chain.js';
import {
  KV_PAGE_BYTES,
  KV_PAGE_ENTRIES,
  type KvPage,
  type MirrorInit,
  type ToMain,
  type ToWorker,
  type WireError,
} from './mirror-protocol.js';
import { workerScript } from '../util/worker-script.js';

/**
 * What a node needs from its Postgres mirror. Consensus never waits on it:
 * `committed` only notifies (handing over the block when the node has it, so
 * the mirror need not read it back through the node), `status` is a cached
 * value.
 */
export interface NodeMirror {
  committed(height: number, block?: CommittedBlock): void;
  status(): SyncServiceStatus | undefined;
  search(request: SearchRequest): Promise<SearchResult>;
  check(): Promise<CheckReport>;
  close(): Promise<void>;
}

/**
 * An error from the mirror thread, with its original name and code: a
 * SyncError's name is 'SyncError' and its code one of SYNC_ERROR_CODES
 * (INVALID_QUERY: the request; MIRROR_UNAVAILABLE: the database cannot be
 * reached or the mirror thread is gone; CHECK_IN_PROGRESS: one check at a
 * time); anything else is a fault.
 */
export class MirrorCallError extends Error {
  constructor(
    override readonly name: string,
    readonly code: string,
    message: string,
    /** the node's own words (about its mirror thread), fit for a client; not a database's */
    readonly ownWords?: string,
  ) {
    super(message);
  }
}

/**
 * Bounds on the searches handed to the mirror thread. The thread starts each
 * search as it arrives and cannot be told to drop one, so these bound what it
 * holds (the HTTP API also queues and drops searches before they come here).
 */
export interface MirrorLimits {
  /** a search the thread has not answered in this time fails (MIRROR_UNAVAILABLE); default 45 s */
  searchTimeoutMs?: number;
  /** searches handed to the thread and not answered yet, timed-out ones included; beyond, refused at once; default 16 */
  maxPendingSearches?: number;
}

export const DEFAULT_MIRROR_LIMITS: Readonly<Required<MirrorLimits>> = Object.freeze({
  // above the HTTP embedder's own 30 s, so that a search whose vector list fails still answers
  searchTimeoutMs: 45_000,
  maxPendingSearches: 16,
});

/** A call handed to the thread; `caller` is cleared once the caller has stopped waiting (its deadline). */
interface PendingCall {
  method: 'search' | 'check';
  caller: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  deadline: NodeJS.Timeout | undefined;
}

/** a thread that has not reported for this long (it reports every 500 ms) is not handed blocks */
const HAND_OVER_SILENCE_MS = 3_000;

/** how often the node's lag gauges are refreshed from status() while the thread is silent */
const GAUGE_REFRESH_MS = 500;

/** commit times kept for the lag at most (a mirror this far behind is reported from its own figures) */
const COMMIT_TIMES_LIMIT = 100_000;

const workerUrl = () => workerScript(import.meta.url, 'node/mirror-worker');

/**
 * The mirror (sink, embedding indexer, PGlite or a Postgres pool) on a
 * worker thread of its own. PGlite executes Postgres as WebAssembly
 * synchronously on the calling thread, so on the node's thread a backfill
 * would stall Raft heartbeats. The worker reads the chain store through
 * messages answered here; the node tells it about every applied block.
 */
export class WorkerMirror implements NodeMirror {
  private readonly worker: Worker;
  private last: SyncServiceStatus | undefined;
  /** when each block not yet reported mirrored was committed here (Date.now), oldest first */
  private readonly commitTimes = new Map<number, number>();
  private nextId = 0;
  /** calls handed to the thread and not answered yet (also those whose caller gave up waiting) */
  private readonly calls = new Map<number, PendingCall>();
  private pendingSearches = 0;
  private readonly limits: Required<MirrorLimits>;
  private stopped: (() => void) | undefined;
  private closed = false;
  /** why calls fail at once: the thread exited (set on its exit) */
  private dead: MirrorCallError | undefined;
  /** a check is running (one at a time) */
  private checking = false;
  /** when `last` arrived (Date.now) */
  private lastAt = 0;
  private gauges: NodeJS.Timeout | undefined;

  private constructor(
    private readonly chain: LedgerChain,
    private readonly log: Logger,
    init: MirrorInit,
    private readonly metrics: Pick<NodeMetrics, 'setMirror'> | null,
    limits: MirrorLimits,
  ) {
    this.limits = { ...DEFAULT_MIRROR_LIMITS, ...limits };
    this.worker = new Worker(workerUrl(), { workerData: init });
    this.worker.on('message', (m: ToMain) => this.onMessage(m));
    this.worker.on('error', (err) => {
      this.log.error({ err: err.message }, 'the mirror thread failed; consensus goes on without it');
      this.failAll(err);
    });
    // The lag gauges move with the chain even while the thread is silent (status() measures it
    // here), refreshed on a timer rather than on every applied block.
    if (metrics) {
      this.gauges = setInterval(() => {
        if (this.last) metrics.setMirror(this.status());
      }, GAUGE_REFRESH_MS);
      this.gauges.unref();
    }
    this.worker.on('exit', (code) => {
      this.dead = unavailable(
        this.closed
          ? 'the mirror is closed'
          : `the mirror thread exited (code ${code}); restart the node to mirror again`,
      );
      if (this.closed) {
        clearInterval(this.gauges);
        this.metrics?.setMirror(undefined);
      } else {
        // status() says 'stopped' from now on; the gauges go on showing it (and the lag growing)
        this.log.error({ code }, 'the mirror thread exited; consensus goes on without it');
        this.metrics?.setMirror(this.status());
      }
      this.failAll(this.dead);
      this.stopped?.();
    });
  }

  /**
   * Start the thread; resolves once its database is open and migrated.
   * With `metrics`, every status the thread reports also goes to the node's
   * /metrics (the bitnexus_mirror_* series).
   */
  static start(
    chain: LedgerChain,
    log: Logger,
    init: Omit<MirrorInit, 'height'>,
    metrics: Pick<NodeMetrics, 'setMirror'> | null = null,
    limits: MirrorLimits = {},
  ): Promise<WorkerMirror> {
    const m = new WorkerMirror(
      chain,
      log.child({ module: 'sync' }),
      { ...init, height: chain.height },
      metrics,
      limits,
    );
    return new Promise((resolve, reject) => {
      m.onReady = (err) => (err ? reject(err) : resolve(m));
    });
  }

  private onReady: ((err?: Error) => void) | undefined;

  committed(height: number, block?: CommittedBlock): void {
    if (this.closed) return;
    if (this.commitTimes.size < COMMIT_TIMES_LIMIT && !this.commitTimes.has(height))
      this.commitTimes.set(height, Date.now());
    if (this.dead) return; // the lag goes on growing in status(); nobody to tell
    // Only to a thread that is listening: one busy in a long statement (an index build) would
    // queue every block's bytes meanwhile; it reads from the store what it was not handed.
    const listening = Date.now() - this.lastAt < HAND_OVER_SILENCE_MS;
    this.post(block && listening ? { type: 'committed', height, block } : { type: 'committed', height });
  }

  /**
   * The thread's last report, with the lag measured here: blocks this node
   * has committed that the report does not cover, and how long ago the
   * oldest of them was committed. The thread cannot report while PGlite
   * runs a statement (WebAssembly holds its event loop), so its own figures
   * could only understate a lag; these cannot. Once the thread has exited,
   * its last report with state `stopped` (sink and index) and why.
   */
  status(): SyncServiceStatus | undefined {
    const reported = this.last;
    if (!reported) return undefined;
    const s: SyncServiceStatus = this.dead
      ? {
          ...reported,
          state: 'stopped',
          lastError: this.dead.message,
          index: { ...reported.index, state: 'stopped' },
        }
      : reported;
    const lagBlocks = Math.max(0, this.chain.height - s.height);
    if (lagBlocks === 0) return { ...s, lagBlocks: 0, lagSeconds: 0 };
    const since = this.commitTimes.get(s.height + 1);
    // committed before this mirror started: the thread's figure (from block times), aged since its report
    const lagSeconds =
      since !== undefined ? (Date.now() - since) / 1000 : s.lagSeconds + (Date.now() - this.lastAt) / 1000;
    return { ...s, lagBlocks, lagSeconds: Math.max(lagSeconds, s.lagSeconds) };
  }

  /**
   * Refused at once (MIRROR_UNAVAILABLE) while the thread holds
   * maxPendingSearches unanswered; fails (MIRROR_UNAVAILABLE) when the thread
   * has not answered within searchTimeoutMs. A search that timed out still
   * runs on the thread and counts until it has answered.
   */
  search(request: SearchRequest): Promise<SearchResult> {
    const { maxPendingSearches } = this.limits;
    if (!this.dead && !this.closed && this.pendingSearches >= maxPendingSearches)
      return Promise.reject(
        unavailable(`the mirror thread is running ${maxPendingSearches} searches already; retry later`),
      );
    return this.call<SearchResult>('search', request);
  }

  /**
   * Compare the mirror with the chain. One at a time: a check reads the
   * whole mirror and walks the chain's state through this thread, so a
   * second one asked for meanwhile is refused (CHECK_IN_PROGRESS), not queued.
   */
  check(): Promise<CheckReport> {
    if (this.checking) {
      return Promise.reject(
        new MirrorCallError(
          'SyncError',
          'CHECK_IN_PROGRESS',
          'CHECK_IN_PROGRESS: a mirror check is already running on this node; retry when it has finished',
        ),
      );
    }
    this.checking = true;
    return this.call<CheckReport>('check').finally(() => {
      this.checking = false;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.dead) {
      const done = new Promise<void>((r) => (this.stopped = r));
      this.post({ type: 'stop' });
      const timeout = setTimeout(() => void this.worker.terminate(), 10_000);
      await done;
      clearTimeout(timeout);
      await this.worker.terminate();
    }
    // the thread had exited already: nothing to wait for
    clearInterval(this.gauges);
    this.metrics?.setMirror(undefined);
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private call<T>(method: 'search' | 'check', request?: SearchRequest): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closed) return Promise.reject(unavailable('the mirror is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const call: PendingCall = {
        method,
        caller: { resolve: resolve as (v: unknown) => void, reject },
        deadline: undefined,
      };
      // A check reads the whole mirror (minutes on a long chain) and runs one at a time: no deadline.
      if (method === 'search') {
        this.pendingSearches++;
        const ms = this.limits.searchTimeoutMs;
        call.deadline = setTimeout(() => {
          const caller = call.caller;
          call.caller = undefined;
          caller?.reject(unavailable(`the mirror thread did not answer a search within ${ms / 1000} s`));
        }, ms);
        call.deadline.unref();
      }
      this.calls.set(id, call);
      this.post(request === undefined ? { type: 'call', id, method } : { type: 'call', id, method, request });
    });
  }

  /** The thread answered call `id` (or never will): it no longer counts; its caller, if still waiting, is told. */
  private settle(id: number): PendingCall['caller'] {
    const call = this.calls.get(id);
    if (call === undefined) return undefined;
    this.calls.delete(id);
    clearTimeout(call.deadline);
    if (call.method === 'search') this.pendingSearches--;
    return call.caller;
  }

  private failAll(err: Error): void {
    this.onReady?.(err);
    this.onReady = undefined;
    for (const id of [...this.calls.keys()]) this.settle(id)?.reject(err);
  }

  private onMessage(m: ToMain): void {
    switch (m.type) {
      case 'ready':
        this.onReady?.();
        this.onReady = undefined;
        return;
      case 'init-error':
        this.failAll(toError(m.error));
        return;
      case 'stopped':
        this.stopped?.();
        return;
      case 'status': {
        this.last = m.status;
        this.lastAt = Date.now();
        for (const h of this.commitTimes.keys()) {
          if (h > m.status.height) break;
          this.commitTimes.delete(h);
        }
        this.metrics?.setMirror(this.status());
        return;
      }
      case 'result': {
        const caller = this.settle(m.id);
        if (m.error) caller?.reject(toError(m.error));
        else caller?.resolve(m.value);
        return;
      }
      case 'log':
        this.log[m.level](m.obj, m.msg);
        return;
      case 'kv':
        void this.answerKv(m);
        return;
    }
  }

  private async answerKv(m: Extract<ToMain, { type: 'kv' }>): Promise<void> {
    const kv = this.chain.store.kv;
    try {
      if (m.op === 'get') {
        this.post({ type: 'kv', id: m.id, value: await kv.get(m.key) });
      } else {
        // one page per request (KvPage): this is the node's consensus thread
        const entries: [string, Uint8Array][] = [];
        const opts: { gte?: string; lt?: string } = {};
        if (m.gte !== undefined) opts.gte = m.gte;
        if (m.lt !== undefined) opts.lt = m.lt;
        let bytes = 0;
        let more = false;
        for await (const e of kv.iterate(m.prefix, opts)) {
          if (entries.length >= KV_PAGE_ENTRIES || bytes >= KV_PAGE_BYTES) {
            more = true;
            break;
          }
          entries.push(e);
          bytes += e[0].length + e[1].byteLength;
        }
        this.post({ type: 'kv', id: m.id, value: { entries, more } satisfies KvPage });
      }
    } catch (err) {
      this.post({ type: 'kv', id: m.id, error: (err as Error).message });
    }
  }
}

function toError(e: WireError): MirrorCallError {
  return new MirrorCallError(e.name, e.code, e.message);
}

/** What calls to a mirror without its thread, or with a busy one, reject with (the node answers 503 with `why`). */
export function unavailable(why: string): MirrorCallError {
  return new MirrorCallError('SyncError', 'MIRROR_UNAVAILABLE', `MIRROR_UNAVAILABLE: ${why}`, why);
}
