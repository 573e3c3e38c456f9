import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import {
  DEFAULT_SCHEMA,
  SEARCH_SESSION_SETTINGS,
  searchPathFor,
  type QueryResult,
  type SqlExecutor,
  type SqlTarget,
  type VectorIndexType,
} from './target.js';

export interface PgliteTargetOptions {
  /** directory of the database (the node passes `<dataDir>/pglite`); `memory://` for a throwaway one */
  dataDir: string;
  schema?: string;
  /**
   * Postgres' buffer pool inside PGlite (default 384MB). The HNSW index of
   * 100,000 commissions at d = 384 is ~195 MB and its table as much again;
   * with the stock 128MB, searches read pages through PGlite's file system
   * over and over. Much of it is taken when PGlite starts: the process's
   * resident size right after opening an empty database grew by 627 MB at
   * 128MB, 729 MB at 384MB and 1,126 MB at 768MB (docs/SYNC.md §Targets).
   */
  sharedBuffers?: string;
}

/** PGlite's buffer pool when the caller does not say (see PgliteTargetOptions.sharedBuffers). */
export const PGLITE_SHARED_BUFFERS = '384MB';

/**
 * Embedded Postgres (PGlite, WebAssembly) with pgvector, stored in a
 * directory: what a node mirrors into when no `--postgres-url` is given.
 * PGlite is one session; it queues statements, so a search waits for the
 * sink's transaction in flight (and the other way round).
 */
export class PgliteTarget implements SqlTarget {
  readonly kind = 'pglite' as const;
  /** halfvec is several times slower in PGlite's WebAssembly pgvector (target.ts VectorIndexType) */
  readonly vectorIndexType: VectorIndexType = 'vector';

  private constructor(
    readonly db: PGlite,
    readonly schema: string,
    private readonly owned: boolean,
  ) {}

  static async open(opts: PgliteTargetOptions): Promise<PgliteTarget> {
    if (!opts.dataDir.includes('://')) await mkdir(opts.dataDir, { recursive: true });
    const sharedBuffers = opts.sharedBuffers ?? PGLITE_SHARED_BUFFERS;
    if (!/^[1-9][0-9]*(kB|MB|GB)$/.test(sharedBuffers))
      throw new RangeError(`sharedBuffers must look like 384MB, not ${JSON.stringify(sharedBuffers)}`);
    const db = await PGlite.create(opts.dataDir, {
      extensions: { vector },
      postgresqlconf: [`shared_buffers = '${sharedBuffers}'`],
    });
    return PgliteTarget.wrap(db, opts.schema, true);
  }

  /**
   * A target on a PGlite instance opened elsewhere (it must have been created
   * with the `vector` extension). The session's search_path is set to this
   * schema, so use one wrapped target per instance at a time. `close` closes
   * the instance only when `owned`.
   */
  static async wrap(db: PGlite, schema = DEFAULT_SCHEMA, owned = false): Promise<PgliteTarget> {
    await db.exec(`SET search_path TO ${searchPathFor(schema)}`);
    for (const [k, v] of Object.entries(SEARCH_SESSION_SETTINGS)) await db.exec(`SET ${k} = '${v}'`);
    return new PgliteTarget(db, schema, owned);
  }

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const res = await this.db.query<R>(sql, params as unknown[]);
    return { rows: res.rows, rowCount: res.affectedRows ?? 0 };
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const res = await tx.query<R>(sql, params as unknown[]);
          return { rows: res.rows, rowCount: res.affectedRows ?? 0 };
        },
        // PGlite reads COPY … FROM '/dev/blob' from the query's blob
        copyFrom: async (table, columns, data) => {
          const res = await tx.query(`COPY ${table} (${columns.join(', ')}) FROM '/dev/blob'`, [], {
            blob: new Blob([data as string | Uint8Array<ArrayBuffer>]),
          });
          return res.affectedRows ?? 0;
        },
      }),
    );
  }

  async close(): Promise<void> {
    if (this.owned && !this.db.closed) await this.db.close();
  }
}
