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

  async close(): Promise<void> {
    await this.pool.end();
  }
}
