import { afterAll, describe, expect, it } from 'vitest';
import {
  HashingEmbedder,
  migrate,
  MirrorMaintenance,
  SyncService,
  type SqlTarget,
} from '../../../src/sync/index.js';
import {
  ANALYZE_COLUMNS,
  CHECKPOINT_TIMEOUT_S,
  CHECKPOINT_WAL_BYTES,
  dueFor,
} from '../../../src/sync/maintenance.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { closeSharedPglite, DB_KINDS, FollowedChain, pgliteDb, postgresDb } from './helpers.js';

afterAll(closeSharedPglite);

const counters = (over: Partial<Parameters<typeof dueFor>[0]> = {}) => ({
  relname: 't',
  reltuples: 1000,
  bytes: 81_920,
  n_dead_tup: 0,
  n_mod_since_analyze: 0,
  n_ins_since_vacuum: 0,
  ...over,
});

describe('maintenance rules (autovacuum defaults)', () => {
  it('vacuums past 50 + 20 % dead rows or 1000 + 20 % inserted rows, analyzes past 50 + 10 % changed rows', () => {
    expect(dueFor(counters())).toEqual({ vacuum: false, analyze: false });
    expect(dueFor(counters({ n_dead_tup: 250 }))).toEqual({ vacuum: false, analyze: false });
    expect(dueFor(counters({ n_dead_tup: 251 })).vacuum).toBe(true);
    expect(dueFor(counters({ n_ins_since_vacuum: 1200 })).vacuum).toBe(false);
    expect(dueFor(counters({ n_ins_since_vacuum: 1201 })).vacuum).toBe(true);
    expect(dueFor(counters({ n_mod_since_analyze: 150 })).analyze).toBe(false);
    expect(dueFor(counters({ n_mod_since_analyze: 151 })).analyze).toBe(true);
  });

  it('analyzes a table that holds rows but was never analyzed, whatever its counters say (a restart zeroes them)', () => {
    expect(dueFor(counters({ reltuples: -1, bytes: 8192 })).analyze).toBe(true);
    expect(dueFor(counters({ reltuples: -1, bytes: 0 })).analyze).toBe(false);
    expect(
      dueFor(counters({ reltuples: -1, bytes: 0, n_dead_tup: null, n_mod_since_analyze: null })),
    ).toEqual({ vacuum: false, analyze: false });
  });
});

async function stat(target: SqlTarget, table: string) {
  await target.query(`SELECT pg_stat_force_next_flush()`); // published by the next statement's end
  await target.query(`SELECT 1`);
  const { rows } = await target.query<{ n_dead_tup: number; n_mod_since_analyze: number; reltuples: number }>(
    `SELECT s.n_dead_tup, s.n_mod_since_analyze, c.reltuples::float8 AS reltuples
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
     WHERE s.schemaname = $1 AND s.relname = $2`,
    [target.schema, table],
  );
  return rows[0]!;
}

/** has ANALYZE left statistics for the table? */
async function analyzed(target: SqlTarget, table: string): Promise<boolean> {
  const { rows } = await target.query<{ n: number }>(
    `SELECT count(*)::int8 AS n FROM pg_stats WHERE schemaname = $1 AND tablename = $2`,
    [target.schema, table],
  );
  return Number(rows[0]!.n) > 0;
}

/** the histogram of one column as pg_stats holds it (undefined before any ANALYZE) */
async function histogram(target: SqlTarget, table: string, column: string): Promise<string[] | undefined> {
  const { rows } = await target.query<{ h: string[] | null }>(
    `SELECT histogram_bounds::text::text[] AS h FROM pg_stats WHERE schemaname = $1 AND tablename = $2 AND attname = $3`,
    [target.schema, table, column],
  );
  return rows[0]?.h ?? undefined;
}

/** A SyncService over the sample chain, started, its sink caught up; maintenance rounds every intervalMs. */
async function caughtUp(
  target: SqlTarget,
  intervalMs: number,
  sink: { pollMs?: number; heartbeatMs?: number } = {},
): Promise<SyncService> {
  const fc = new FollowedChain(await buildSampleChain());
  const service = new SyncService({
    source: fc.source,
    target,
    embedder: new HashingEmbedder(),
    pollMs: 50,
    ...sink,
    indexer: { pollMs: 50 },
    maintenance: { intervalMs },
  });
  service.start();
  await service.sink.waitForHeight(fc.height);
  return service;
}

/** A migrated mirror with `n` merchants in `participants` (one table with rows to analyze and vacuum). */
async function withMerchants(target: SqlTarget, n: number): Promise<void> {
  await migrate(target);
  await target.query(
    `INSERT INTO participants (key, role, name, since_height)
     SELECT 'k' || g, 'merchant', 'merchant ' || g, g FROM generate_series(1, $1::int) g`,
    [n],
  );
}

describe('mirror maintenance on PGlite', () => {
  it('analyzes new tables with a small sample, vacuums after updates, and then finds nothing due', async () => {
    const db = await pgliteDb();
    try {
      const target = await db.open();
      await withMerchants(target, 400);
      expect(await analyzed(target, 'participants')).toBe(false);
      const m = new MirrorMaintenance({ target });
      const first = await m.run();
      expect(first.analyzed).toContain('participants');
      // statistics target 30: at most 31 histogram bounds over 400 distinct heights (Postgres' default would keep 101)
      const bounds = await histogram(target, 'participants', 'since_height');
      expect(bounds!.length).toBeGreaterThan(10);
      expect(bounds!.length).toBeLessThanOrEqual(31);
      expect((await stat(target, 'participants')).reltuples).toBe(400);

      // (whether a round also checkpoints is the test below's)
      expect(await m.run()).toMatchObject({ analyzed: [], vacuumed: [] });

      // 400 updates: dead rows past 50 + 0.2 × 400 and changes past 50 + 0.1 × 400
      await target.query(`UPDATE participants SET name = name || ' (renamed)'`);
      expect((await stat(target, 'participants')).n_dead_tup).toBe(400);
      const third = await m.run();
      expect(third).toMatchObject({ analyzed: ['participants'], vacuumed: ['participants'] });
      expect(await stat(target, 'participants')).toMatchObject({ n_dead_tup: 0, n_mod_since_analyze: 0 });
      expect(m.status()).toMatchObject({ rounds: 3, vacuumed: 1 });
      expect(m.status().analyzed).toBeGreaterThanOrEqual(2);
    } finally {
      await db.drop();
    }
  });

  it('checkpoints PGlite (no checkpointer of its own) once enough WAL was written, and not again without more', async () => {
    const db = await pgliteDb();
    try {
      const target = await db.open();
      await migrate(target);
      const redo = async () =>
        (await target.query<{ lsn: string }>(`SELECT redo_lsn::text AS lsn FROM pg_control_checkpoint()`))
          .rows[0]!.lsn;
      const m = new MirrorMaintenance({ target, checkpointWalBytes: 1024 * 1024 });
      await m.run(); // whatever is due from before
      const before = await redo();
      // ~4 MB of WAL: 8,000 rows of 400 characters each, and their index entries
      await target.query(
        `INSERT INTO participants (key, role, name, since_height)
         SELECT 'w' || g, 'affiliate', repeat('x', 400), g FROM generate_series(1, 8000) g`,
      );
      const counted = m.status().checkpoints;
      const round = await m.run();
      expect(round.checkpointed).toBe(true);
      expect(await redo()).not.toBe(before);
      expect(m.status().checkpoints).toBe(counted + 1);
      const after = await redo();
      expect((await m.run()).checkpointed).toBe(false);
      expect(await redo()).toBe(after);
      expect(m.status().checkpoints).toBe(counted + 1);
      expect(() => new MirrorMaintenance({ target, checkpointWalBytes: -1 })).toThrow(RangeError);
    } finally {
      await db.drop();
    }
  });

  it('lets the event loop turn before each action (PGlite answers without one), so the sink hears of new blocks', async () => {
    const db = await pgliteDb();
    try {
      const target = await db.open();
      await withMerchants(target, 400);
      await target.query(`UPDATE participants SET name = name || ' (renamed)'`);
      // each `between` schedules a callback, as a commit notice would arrive, and records whether
      // the one of the `between` before it has run by now
      const ran: boolean[] = [];
      const seen: boolean[] = [];
      const m = new MirrorMaintenance({
        target,
        checkpointWalBytes: 1,
        between: () => {
          if (ran.length > 0) seen.push(ran.at(-1)!);
          const i = ran.push(false) - 1;
          setImmediate(() => (ran[i] = true));
          return Promise.resolve();
        },
      });
      const round = await m.run();
      // vacuum and analyze of participants (at least), and a checkpoint: one `between` each
      expect(round.vacuumed).toContain('participants');
      expect(round.checkpointed).toBe(true);
      expect(ran.length).toBe(round.vacuumed.length + round.analyzed.length + 1);
      // the thread ran that callback between every two actions, not only after the round
      expect(seen).toEqual(ran.slice(1).map(() => true));
    } finally {
      await db.drop();
    }
  });

  it('checkpoints by WAL written or by age, as Postgres would, and never when told not to', async () => {
    /** a PGlite whose WAL since the last checkpoint and that checkpoint's age are given */
    const pglite = (wal: number, age: number) => {
      const checkpoints: string[] = [];
      const target = {
        kind: 'pglite',
        schema: 'bitnexus',
        query: (sql: string) => {
          if (sql === 'CHECKPOINT') checkpoints.push(sql);
          const rows = sql.includes('pg_control_checkpoint') ? [{ wal: String(wal), age }] : [];
          return Promise.resolve({ rows, rowCount: rows.length });
        },
      } as unknown as SqlTarget;
      return { target, checkpoints };
    };
    const round = async (wal: number, age: number, opts: { checkpointWalBytes?: number } = {}) => {
      const t = pglite(wal, age);
      const r = await new MirrorMaintenance({ target: t.target, ...opts }).run();
      expect(t.checkpoints).toHaveLength(r.checkpointed ? 1 : 0);
      return r.checkpointed;
    };
    expect(CHECKPOINT_WAL_BYTES).toBe(16 * 1024 * 1024);
    expect(await round(CHECKPOINT_WAL_BYTES, 1)).toBe(true);
    expect(await round(CHECKPOINT_WAL_BYTES - 1, 1)).toBe(false);
    // five minutes (checkpoint_timeout), and more WAL than a checkpoint writes itself
    expect(await round(8193, CHECKPOINT_TIMEOUT_S)).toBe(true);
    expect(await round(8192, 10 * CHECKPOINT_TIMEOUT_S)).toBe(false);
    expect(await round(1_000_000, CHECKPOINT_TIMEOUT_S - 1)).toBe(false);
    expect(await round(1 << 30, 10 * CHECKPOINT_TIMEOUT_S, { checkpointWalBytes: 0 })).toBe(false);
    expect(await round(2048, 1, { checkpointWalBytes: 2048 })).toBe(true);
    for (const bad of [-1, 1.5, Number.NaN])
      expect(() => new MirrorMaintenance({ target: pglite(0, 0).target, checkpointWalBytes: bad })).toThrow(
        RangeError,
      );
  });

  it('runs in the background of a SyncService on PGlite', async () => {
    const db = await pgliteDb();
    try {
      const target = await db.open();
      const service = await caughtUp(target, 50);
      const end = Date.now() + 15_000;
      while (!(await analyzed(target, 'commissions'))) {
        if (Date.now() > end) throw new Error('commissions were never analyzed');
        await new Promise((r) => setTimeout(r, 50));
      }
      await service.stop();
      // only the columns the mirror's queries use (ANALYZE_COLUMNS), not the descriptions
      const { rows } = await target.query<{ attname: string }>(
        `SELECT attname FROM pg_stats WHERE schemaname = $1 AND tablename = 'commissions' ORDER BY attname`,
        [target.schema],
      );
      expect(rows.map((r) => r.attname)).toEqual([...ANALYZE_COLUMNS.commissions!].sort());
      expect(service.maintenance.status().analyzed).toBeGreaterThan(0);
      expect(service.maintenance.status().lastError).toBeUndefined();
    } finally {
      await db.drop();
    }
  });

  it('stops with the sink when the mirror turns out not to be its own (another writer)', async () => {
    const db = await pgliteDb();
    try {
      const target = await db.open();
      const service = await caughtUp(target, 50, { pollMs: 20, heartbeatMs: 50 });
      await target.query(`UPDATE sync_cursor SET height = height - 1`); // someone else's cursor now
      const end = Date.now() + 10_000;
      while (service.status().state !== 'stopped') {
        if (Date.now() > end) throw new Error('the sink never stopped');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(service.status().lastError).toMatch(/CURSOR_MISMATCH/);
      while (service.status().index.state !== 'stopped') {
        if (Date.now() > end) throw new Error('the indexer never stopped');
        await new Promise((r) => setTimeout(r, 20));
      }
      const rounds = service.maintenance.status().rounds;
      await new Promise((r) => setTimeout(r, 200));
      expect(service.maintenance.status().rounds).toBe(rounds);
      await service.stop();
    } finally {
      await db.drop();
    }
  });

  const noPostgres = DB_KINDS.find((k) => k.kind === 'postgres')!.skip;
  it.skipIf(noPostgres)(
    'runs on Postgres too, acting only while the server’s autovacuum is off',
    async () => {
      const db = await postgresDb();
      try {
        const target = await db.open();
        const service = await caughtUp(target, 600_000); // rounds run by hand below
        // the server's own setting (the project's machine runs with autovacuum off): both ways are checked
        const { rows } = await target.query<{ on: boolean }>(
          `SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on' AS on`,
        );
        const serverAutovacuum = rows[0]!.on;
        const round = await service.maintenance.run();
        expect(service.maintenance.status()).toMatchObject({ rounds: 1, serverAutovacuum });
        if (serverAutovacuum) {
          expect(round).toEqual({ analyzed: [], vacuumed: [], checkpointed: false });
        } else {
          expect(round.analyzed).toContain('commissions');
          expect(round.checkpointed).toBe(false); // a real Postgres checkpoints by itself
          expect(await analyzed(target, 'commissions')).toBe(true);
        }
        expect(service.status().maintenance.serverAutovacuum).toBe(serverAutovacuum);
        await service.stop();
      } finally {
        await db.drop();
      }
    },
  );
});

describe('mirror maintenance on a Postgres whose autovacuum runs', () => {
  /** A target that answers the autovacuum question and fails on anything else. */
  function serverWith(autovacuum: boolean, counts = true): { target: SqlTarget; queries: string[] } {
    const queries: string[] = [];
    const target = {
      kind: 'postgres',
      schema: 'bitnexus',
      query: (sql: string) => {
        queries.push(sql);
        if (sql.includes("current_setting('autovacuum')"))
          return Promise.resolve({ rows: [{ autovacuum, counts }] });
        return Promise.reject(new Error('the round went on to the tables'));
      },
    } as unknown as SqlTarget;
    return { target, queries };
  }

  it('does nothing while it runs, and starts on the tables once it is off', async () => {
    const on = serverWith(true);
    const m = new MirrorMaintenance({ target: on.target });
    expect(await m.run()).toEqual({ analyzed: [], vacuumed: [], checkpointed: false });
    expect(on.queries).toHaveLength(1);
    expect(m.status()).toEqual({
      rounds: 1,
      analyzed: 0,
      vacuumed: 0,
      checkpoints: 0,
      failed: 0,
      serverAutovacuum: true,
    });

    const off = serverWith(false);
    const n = new MirrorMaintenance({ target: off.target });
    await expect(n.run()).rejects.toThrow('the round went on to the tables');
    expect(n.status().serverAutovacuum).toBe(false);

    // autovacuum on but track_counts off: autovacuum cannot run
    const blind = serverWith(true, false);
    const b = new MirrorMaintenance({ target: blind.target });
    await expect(b.run()).rejects.toThrow('the round went on to the tables');
    expect(b.status().serverAutovacuum).toBe(false);
  });
});
