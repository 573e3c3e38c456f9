import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import pg from 'pg';
import type { DecodedTx } from '../../../src/ledger/index.js';
import {
  ChainStoreSource,
  PgliteTarget,
  PostgresSink,
  PostgresTarget,
  type SqlExecutor,
  type SqlTarget,
  type VectorIndexType,
} from '../../../src/sync/index.js';
import { TestChain } from '../../support/ledger-fixture.js';
import { buildSampleChain } from '../../support/sample-chain.js';

export const PG_ADMIN_URL = process.env.BITNEXUS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database for one test: open targets on it (one at a time for PGlite), drop it at the end. */
export interface TestDb {
  kind: 'pglite' | 'postgres';
  /** writeThread, vectorIndexType, queryTimeoutMs: PostgresTarget's options (Postgres only) */
  open(opts?: {
    schema?: string;
    writeThread?: boolean;
    vectorIndexType?: VectorIndexType;
    queryTimeoutMs?: number;
  }): Promise<SqlTarget>;
  drop(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * initdb of PGlite takes seconds; it runs once per machine into a template
 * directory (created beside and renamed into place, so parallel workers
 * never see half of it), and each test copies the template.
 */
async function pgliteTemplate(): Promise<string> {
  const dir = join(tmpdir(), 'bitnexus-pglite-template-0.5.14');
  if (await exists(join(dir, 'READY'))) return dir;
  const building = await mkdtemp(join(tmpdir(), 'bitnexus-pglite-build-'));
  const t = await PgliteTarget.open({ dataDir: join(building, 'db') });
  await t.close();
  await writeFile(join(building, 'READY'), '');
  try {
    await rename(building, dir);
  } catch {
    // another worker won the race; use its template
    await rm(building, { recursive: true, force: true });
  }
  return dir;
}

/** A copy of the template in its own directory, opened (for tests that reopen a directory). */
export async function pgliteDir(): Promise<{ dataDir: string; remove: () => Promise<void> }> {
  const template = await pgliteTemplate();
  const root = await mkdtemp(join(tmpdir(), 'bitnexus-pglite-'));
  const dataDir = join(root, 'db');
  await cp(join(template, 'db'), dataDir, { recursive: true });
  return { dataDir, remove: () => rm(root, { recursive: true, force: true }) };
}

/**
 * Opening PGlite and loading pgvector take seconds, so a test file shares
 * one instance and each test gets its own schema on it.
 */
let shared: Promise<{ db: PGlite; remove: () => Promise<void> }> | undefined;
let schemaSeq = 0;

async function sharedPglite(): Promise<PGlite> {
  shared ??= (async () => {
    const dir = await pgliteDir();
    const db = await PGlite.create(dir.dataDir, { extensions: { vector } });
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
    return { db, remove: dir.remove };
  })();
  return (await shared).db;
}

/** Close the shared PGlite of this file (call in afterAll). */
export async function closeSharedPglite(): Promise<void> {
  if (!shared) return;
  const s = await shared;
  shared = undefined;
  await s.db.close();
  await s.remove();
}

export async function pgliteDb(): Promise<TestDb> {
  const db = await sharedPglite();
  const schema = `t${process.pid}_${++schemaSeq}`;
  return {
    kind: 'pglite',
    open: (opts = {}) => PgliteTarget.wrap(db, opts.schema ?? schema),
    async drop() {
      await db.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

function databaseUrl(name: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

export async function postgresDb(): Promise<TestDb> {
  const name = `bitnexus_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const opened: SqlTarget[] = [];
  return {
    kind: 'postgres',
    open(opts = {}) {
      const t = new PostgresTarget({ url: databaseUrl(name), ...opts });
      opened.push(t);
      return Promise.resolve(t);
    },
    async drop() {
      for (const t of opened) await t.close().catch(() => undefined);
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function postgresReachable(): Promise<boolean> {
  try {
    await adminQuery('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

/**
 * The machine (and CI) runs PostgreSQL 15 with pgvector: a missing server is a
 * failure, never a silent skip. Only an explicit BITNEXUS_SKIP_POSTGRES=1
 * (a laptop without Postgres) skips the postgres variants.
 */
const reachable = await postgresReachable();
if (!reachable && process.env.BITNEXUS_SKIP_POSTGRES !== '1') {
  throw new Error(
    `sync tests need Postgres with pgvector at ${PG_ADMIN_URL} (scripts/install-pgvector.sh); set BITNEXUS_SKIP_POSTGRES=1 to skip them explicitly`,
  );
}
const HAVE_POSTGRES = reachable;

export const DB_KINDS = [
  { kind: 'pglite' as const, create: pgliteDb, skip: false },
  { kind: 'postgres' as const, create: postgresDb, skip: !HAVE_POSTGRES },
];

/** A TestChain that notifies a ChainStoreSource after every block, as the node will. */
export class FollowedChain {
  readonly source: ChainStoreSource;
  constructor(readonly tc: TestChain) {
    this.source = new ChainStoreSource(tc.chain.store, () => tc.chain.height);
  }

  static async create(): Promise<FollowedChain> {
    return new FollowedChain(await TestChain.create());
  }

  async append(...txs: DecodedTx[]) {
    const receipts = await this.tc.append(...txs);
    this.source.committed(this.tc.chain.height);
    return receipts;
  }

  get height(): number {
    return this.tc.chain.height;
  }
}

/**
 * A target that fails once, inside a transaction, right after a matching
 * statement ran: `throw` rolls the transaction back from the client side;
 * `terminate` kills the session from inside (Postgres only: the connection
 * dies mid-transaction, before COMMIT);
 * `lose-ack` lets the transaction commit and then reports a failure, as when
 * the connection drops before COMMIT's answer arrives.
 */
export class FaultyTarget implements SqlTarget {
  armed = true;
  fired = 0;
  constructor(
    readonly inner: SqlTarget,
    readonly match: RegExp,
    readonly mode: 'throw' | 'terminate' | 'lose-ack',
  ) {}

  get kind() {
    return this.inner.kind;
  }

  get schema() {
    return this.inner.schema;
  }

  get vectorIndexType() {
    return this.inner.vectorIndexType;
  }

  query<R>(sql: string, params?: readonly unknown[]) {
    return this.inner.query<R>(sql, params);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let hit = false;
    // the statement's rows are written (uncommitted) when the failure strikes
    const strike = async (tx: SqlExecutor, sql: string) => {
      if (!this.armed || !this.match.test(sql)) return;
      hit = true;
      if (this.mode === 'throw') {
        this.disarm();
        throw new Error('injected failure inside the transaction');
      }
      if (this.mode === 'terminate') {
        this.disarm();
        await tx.query('SELECT pg_terminate_backend(pg_backend_pid())');
      }
    };
    const result = await this.inner.transaction((tx) => {
      const wrapped: SqlExecutor = {
        query: async <R>(sql: string, params?: readonly unknown[]) => {
          const res = await tx.query<R>(sql, params);
          await strike(tx, sql);
          return res;
        },
      };
      // COPY too (the sink's bulk path), matched as `COPY <table>`
      const copy = tx.copyFrom?.bind(tx);
      if (copy) {
        wrapped.copyFrom = async (table, columns, data) => {
          const n = await copy(table, columns, data);
          await strike(tx, `COPY ${table}`);
          return n;
        };
      }
      return fn(wrapped);
    });
    if (hit && this.armed && this.mode === 'lose-ack') {
      this.disarm();
      throw new Error('injected failure: connection lost after COMMIT');
    }
    return result;
  }

  private disarm() {
    this.armed = false;
    this.fired++;
  }

  close() {
    return this.inner.close();
  }
}

export async function count(t: SqlExecutor, table: string, where = 'true'): Promise<number> {
  const { rows } = await t.query<{ n: number }>(`SELECT count(*)::int8 AS n FROM ${table} WHERE ${where}`);
  return Number(rows[0]!.n);
}

/** Mirror `fc` to its head into `target` with a sink that then stops (its rows, no search index). */
export async function mirrorToHead(fc: FollowedChain, target: SqlTarget): Promise<void> {
  const sink = new PostgresSink({ source: fc.source, target, pollMs: 50 });
  sink.start();
  await sink.waitForHeight(fc.height);
  await sink.stop();
}

/** The sample chain mirrored to its head into a database of `db` (its rows, no search index yet). */
export async function mirrored(db: TestDb): Promise<{ fc: FollowedChain; target: SqlTarget }> {
  const fc = new FollowedChain(await buildSampleChain());
  const target = await db.open();
  await mirrorToHead(fc, target);
  return { fc, target };
}

/** A database made by `create`, dropped after `fn` whatever it does. */
export async function withDb(
  create: () => Promise<TestDb>,
  fn: (db: TestDb) => Promise<void>,
): Promise<void> {
  const db = await create();
  try {
    await fn(db);
  } finally {
    await db.drop();
  }
}

/** `p`, or a rejection saying it is still pending after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Poll `done` every 25 ms until it holds; fails after `timeoutMs`. */
export async function until(what: string, done: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
