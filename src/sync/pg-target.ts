import pg from 'pg';
import {
  DEFAULT_SCHEMA,
  SEARCH_SESSION_SETTINGS,
  searchPathFor,
  type QueryResult,
  type SqlExecutor,
  type SqlTarget,
} from './target.js';

export interface PostgresTargetOptions {
  /** postgres://user:password@host:port/database (the node's `--postgres-url`) */
  url: string;
  schema?: string;
  /** connections of the pool (default 8): the sink uses one, the indexer one, a search up to three */
  maxConnections?: number;
  /** give up connecting after this long (the sink then backs off and retries) */
  connectTimeoutMs?: number;
  /** client-side limit on one statement, so a hung server cannot hang the sink */
  queryTimeoutMs?: number;
  /** called when an idle connection dies (pg_terminate_backend, server restart) */
  onIdleError?: (err: Error) => void;
}

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
  data: string,
  onQueued: (sent: Promise<void>) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const q = new CopyIn(text, Buffer.from(data, 'utf8'), onQueued);
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
  private readonly pool: pg.Pool;
  /** COPY data still in a socket's buffer (see sent()) */
  private readonly queued = new Set<Promise<void>>();

  constructor(opts: PostgresTargetOptions) {
    this.schema = opts.schema ?? DEFAULT_SCHEMA;
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

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // A connection that dies between two statements emits 'error' on the client; keep it.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const tx: SqlExecutor = {
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const res = await client.query(sql, params as unknown[]);
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

  async close(): Promise<void> {
    await this.pool.end();
  }
}
