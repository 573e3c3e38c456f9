import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { workerScript } from '../util/worker-script.js';
import { SyncError } from './errors.js';
import type { WriteReply, WriteRequest } from './pg-write-protocol.js';
import { runPlan, type BatchPlan } from './writer.js';
import {
  DEFAULT_SCHEMA,
  SEARCH_SESSION_SETTINGS,
  searchPathFor,
  type QueryResult,
  type SqlExecutor,
  type SqlTarget,
  type TransactionOptions,
  type VectorIndexType,
} from './target.js';

export interface PostgresTargetOptions {
  /** postgres://user:password@host:port/database (the node's `--postgres-url`) */
  url: string;
  schema?: string;
  /** connections of the pool (default 8): the indexer uses one, a search up to three; the sink's batches go through the write thread's own connection */
  maxConnections?: number;
  /** give up connecting after this long (the sink then backs off and retries) */
  connectTimeoutMs?: number;
  /** client-side limit on one statement, so a hung server cannot hang the sink */
  queryTimeoutMs?: number;
  /** called when an idle connection dies (pg_terminate_backend, server restart) */
  onIdleError?: (err: Error) => void;
  /**
   * Run `writePlan` on a worker thread with a connection of its own (default
   * true), so that a batch's COPY data and statements go out while the
   * calling thread computes; false runs it in this thread's transaction.
   */
  writeThread?: boolean;
  /** the element type of HNSW indexes built from now on (default halfvec; target.ts VectorIndexType) */
  vectorIndexType?: VectorIndexType;
}

/** What the write thread is started with: the options that can cross threads. */
type WriteThreadOptions = Pick<
  PostgresTargetOptions,
  'url' | 'schema' | 'connectTimeoutMs' | 'queryTimeoutMs'
>;

const INT8_OID = 20;

/** The part of pg's Connection a COPY FROM STDIN uses (pg ≥ 8; not in @types/pg). */
interface CopyConnection {
  stream?: {
    writableNeedDrain?: boolean;
    once(event: 'drain' | 'close', listener: () => void): unknown;
    off(event: 'drain' | 'close', listener: () => void): unknown;
  };
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

const COPY_CHUNK = 1 << 20;

/**
 * `COPY … FROM STDIN` as a pg Submittable (what the pg-copy-streams package
 * does, without a stream): the client sends the statement, the server answers
 * CopyInResponse, the data goes as CopyData messages and CopyDone, and the
 * server's CommandComplete (`COPY n`) and ReadyForQuery end it. An error
 * (ErrorResponse, a lost connection, pg's query timeout) settles it at once.
 */
class CopyIn {
  callback: ((err: Error | null, rows?: number) => void) | undefined;
  private rows = 0;
  private settled = false;

  constructor(
    readonly text: string,
    private readonly data: Buffer,
    /** told when the data waits in the socket's buffer, with a promise of its departure */
    private readonly onQueued: (sent: Promise<void>) => void,
  ) {}

  submit(connection: unknown): void {
    (connection as CopyConnection).query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (let off = 0; off < this.data.length; off += COPY_CHUNK) {
      connection.sendCopyFromChunk(this.data.subarray(off, off + COPY_CHUNK));
    }
    connection.endCopyFrom();
    const stream = connection.stream;
    if (stream?.writableNeedDrain) {
      this.onQueued(
        new Promise((resolve) => {
          const done = () => {
            stream.off('drain', done);
            stream.off('close', done);
            resolve();
          };
          stream.once('drain', done);
          stream.once('close', done);
        }),
      );
    }
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)/.exec(msg.text ?? '');
    if (m) this.rows = Number(m[1]);
  }

  handleError(err: Error): void {
    this.settle(err);
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }

  // a COPY returns no rows; pg may still call these
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  private settle(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.callback?.(err, this.rows);
  }
}

function copyIn(
  client: pg.PoolClient,
  text: string,
  data: string | Uint8Array,
  onQueued: (sent: Promise<void>) => void,
): Promise<number> {
  const bytes =
    typeof data === 'string'
      ? Buffer.from(data, 'utf8')
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return new Promise((resolve, reject) => {
    const q = new CopyIn(text, bytes, onQueued);
    q.callback = (err, rows) => (err ? reject(err) : resolve(rows ?? 0));
    client.query(q);
  });
}

/** int8 as a JS number (heights and counts stay far below 2^53); everything else as pg does it. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (oid === INT8_OID) return (value: string) => Number(value);
    // pg's parser table is typed loosely; the text format is what the pool uses
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

/** A real Postgres (with pgvector) through a `pg` pool. */
export class PostgresTarget implements SqlTarget {
  readonly kind = 'postgres' as const;
  readonly schema: string;
  readonly vectorIndexType: VectorIndexType;
  private readonly pool: pg.Pool;
  /** COPY data still in a socket's buffer (see sent()) */
  private readonly queued = new Set<Promise<void>>();
  private readonly writeThread: WriteThreadOptions | undefined;
  private writer: Worker | undefined;
  private nextWrite = 1;
  private readonly writes = new Map<
    number,
    { resolve: (rows: number) => void; reject: (err: Error) => void }
  >();

  constructor(opts: PostgresTargetOptions) {
    this.schema = opts.schema ?? DEFAULT_SCHEMA;
    this.vectorIndexType = opts.vectorIndexType ?? 'halfvec';
    if (opts.writeThread !== false) {
      this.writeThread = {
        url: opts.url,
        schema: this.schema,
        ...(opts.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: opts.connectTimeoutMs }),
        ...(opts.queryTimeoutMs === undefined ? {} : { queryTimeoutMs: opts.queryTimeoutMs }),
      };
    }
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.maxConnections ?? 8,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      query_timeout: opts.queryTimeoutMs ?? 120_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      // startup options: every pooled session gets them, however it is reused
      options: [
        `-c search_path=${searchPathFor(this.schema).replaceAll(' ', '')}`,
        ...Object.entries(SEARCH_SESSION_SETTINGS).map(([k, v]) => `-c ${k}=${v}`),
      ].join(' '),
      types,
    });
    // Without a listener an idle client that dies would crash the process.
    this.pool.on('error', (err) => opts.onIdleError?.(err));
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const res = await this.pool.query(sql, params as unknown[]);
    return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs;
    if (
      timeoutMs !== undefined &&
      (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1)
    )
      throw new Error(`timeoutMs ${timeoutMs} must be an integer of 1..2^31-1 milliseconds`);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // A connection that dies between two statements emits 'error' on the client; keep it.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      // the server gives up first; the client waits a little longer for its answer
      const clientTimeout = timeoutMs === undefined ? undefined : Math.min(2 ** 31 - 1, timeoutMs + 10_000);
      if (timeoutMs !== undefined) await client.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
      const tx: SqlExecutor = {
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          // node-postgres reads a per-query query_timeout; its types do not declare it
          const config: pg.QueryConfig & { query_timeout?: number } = {
            text: sql,
            values: params as unknown[],
          };
          if (clientTimeout !== undefined) config.query_timeout = clientTimeout;
          const res = await client.query(config);
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        },
        copyFrom: (table, columns, data) =>
          copyIn(client, `COPY ${table} (${columns.join(', ')}) FROM STDIN`, data, (sent) => {
            this.queued.add(sent);
            void sent.then(() => this.queued.delete(sent));
          }),
      };
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // the connection is gone: the server rolls back by itself; do not reuse this client
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      }
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /**
   * Resolves when the COPY data handed to the sockets has left this process.
   * Node writes what the kernel does not take at once between turns of the
   * event loop, so a thread busy with CPU work (the sink re-executing the
   * next batch) would trickle megabytes out a few hundred kB per turn while
   * Postgres waits; the sink calls this between its steps.
   */
  async sent(): Promise<void> {
    while (this.queued.size > 0) await Promise.all(this.queued);
  }

  /**
   * A batch's bulk write (writer.ts `runPlan`) in one transaction on the
   * write thread. Its COPY data is handed over, not copied: the plan's byte
   * arrays are unusable here afterwards. A SyncError comes back as one (a
   * cursor that moved, a duplicate row); anything else (a lost connection, a
   * timeout) as an Error with Postgres' code, as the caller's own transaction
   * would have thrown.
   */
  writePlan(plan: BatchPlan): Promise<number> {
    if (!this.writeThread) return this.transaction((tx) => runPlan(tx, plan));
    const worker = (this.writer ??= this.startWriter(this.writeThread));
    const id = this.nextWrite++;
    const transfer: ArrayBuffer[] = [];
    for (const c of plan.copies) {
      const b = c.data.buffer;
      // a large Buffer owns its memory; a small one is a slice of a shared pool, copied instead
      if (b instanceof ArrayBuffer && c.data.byteOffset === 0 && c.data.byteLength === b.byteLength)
        transfer.push(b);
    }
    return new Promise<number>((resolve, reject) => {
      this.writes.set(id, { resolve, reject });
      if (this.writes.size === 1) worker.ref();
      worker.postMessage({ type: 'write', id, plan } satisfies WriteRequest, transfer);
    });
  }

  private startWriter(options: WriteThreadOptions): Worker {
    const worker = new Worker(workerScript(import.meta.url, 'sync/pg-write-worker'), { workerData: options });
    worker.unref(); // referenced only while a write is in flight
    const settle = (id: number) => {
      const w = this.writes.get(id);
      this.writes.delete(id);
      if (this.writes.size === 0) worker.unref();
      return w;
    };
    worker.on('message', (reply: WriteReply) => {
      const w = settle(reply.id);
      if (!w) return;
      const e = reply.error;
      if (!e) w.resolve(reply.rows ?? 0);
      else if (e.sync) w.reject(new SyncError(e.code, e.message, e.details));
      else w.reject(Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code }));
    });
    const fail = (err: Error) => {
      if (this.writer === worker) this.writer = undefined;
      for (const id of [...this.writes.keys()]) settle(id)?.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the Postgres write thread exited (code ${code})`)));
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.writer;
    this.writer = undefined;
    if (worker) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'close' } satisfies WriteRequest);
      const timer = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await this.pool.end();
  }
}
