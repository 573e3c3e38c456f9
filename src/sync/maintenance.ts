import { errorMessage } from './errors.js';
import { SILENT_LOGGER, type SyncLogger } from './sink.js';
import { yieldThen, type SqlTarget } from './target.js';

/**
 * Autovacuum for a mirror that has none: PGlite is one Postgres backend in
 * the node's thread, without the autovacuum launcher, and a real Postgres may
 * run with `autovacuum = off` (the project's benchmark machine does); left
 * alone, the tables are never analyzed and never vacuumed. Without statistics the
 * planner guesses, and hybrid search over 100,000 commissions took 2–5× as
 * long (filtered by currency and amount: 90 ms instead of 17 ms); without
 * vacuum, every status change leaves a dead row and dead index entries
 * behind for good.
 *
 * Every `intervalMs` it reads the same counters autovacuum reads
 * (pg_stat_user_tables, pg_class.reltuples) for the mirror's tables and
 * applies autovacuum's default rules (docs/SYNC.md §Maintenance):
 *
 *   VACUUM  when dead rows  > 50 + 0.2 × rows, or rows inserted since the last vacuum > 1000 + 0.2 × rows
 *   ANALYZE when rows changed since the last analyze > 50 + 0.1 × rows, or the table was never analyzed
 *
 * ANALYZE samples fewer rows than Postgres' default (statistics target 30,
 * not 100): on PGlite it holds the one session the sink writes through, and
 * the plans search needs came out the same. The counters live in memory and
 * start again at zero when the node restarts; a table that has rows but was
 * never analyzed is analyzed then.
 *
 * PGlite has no checkpointer either, and a standalone backend never
 * checkpoints by itself (80 WAL segments switched, 1.28 GB: the redo
 * point did not move), only when it closes. Its WAL piled up for as long
 * as the node ran (~2.5 MB/s per node at a devnet's full commit rate), a
 * crash replayed all of it at the next start, and changed pages reached
 * the files only when evicted, each eviction first flushing the WAL up to
 * that page; after a backfill and the first embedding of 100,000
 * commissions search paid for those evictions (docs/SYNC.md
 * §Maintenance). So on PGlite a round ends with a CHECKPOINT when
 * CHECKPOINT_WAL_BYTES of WAL were written since the last one, or more
 * than CHECKPOINT_OWN_WAL and the last is CHECKPOINT_TIMEOUT_S old:
 * Postgres' own `max_wal_size` and `checkpoint_timeout` rule, at a size
 * that keeps each checkpoint short (it holds the session the sink writes
 * through).
 *
 * On a real Postgres (target kind 'postgres') each round first asks the
 * server whether its autovacuum runs (`autovacuum` and `track_counts` on),
 * and does nothing while it does. PGlite is not asked: it reports
 * `autovacuum = on` like any Postgres, but has no launcher to act on it.
 */

/**
 * The columns ANALYZE samples, per table: those the planner needs for the
 * mirror's queries (search's filters and joins, the sink's and the check's
 * lookups). Sampling every column of `commissions` (descriptions, metadata)
 * took 330 ms on PGlite at 100,000 commissions, these 70–85 ms, and each
 * ANALYZE holds the session the sink writes through. Tables not listed are
 * analyzed whole (they are small, or read by key).
 */
export const ANALYZE_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  commissions: [
    'merchant',
    'affiliate',
    'status',
    'currency',
    'amount',
    'recorded_at',
    'recorded_height',
    'order_id',
  ],
  commission_text: ['search_tsv', 'merchant', 'affiliate', 'currency', 'amount', 'recorded_at'],
  commission_embeddings: ['embedder'],
  transactions: ['height', 'tx_id'],
  blocks: ['height', 'hash'],
};

export interface MaintenanceOptions {
  target: SqlTarget;
  logger?: SyncLogger;
  /**
   * Awaited before each VACUUM, ANALYZE or CHECKPOINT, after a turn of the
   * event loop (so that commit notices are read): the SyncService lets the
   * sink catch up first, so an action starts right after a batch and delays
   * the next one by its own length at most.
   */
  between?: () => Promise<void>;
  /** look at the counters this often (default 10 s) */
  intervalMs?: number;
  /** default_statistics_target of its ANALYZE (default 30; Postgres' own default is 100) */
  statisticsTarget?: number;
  /** PGlite: CHECKPOINT once this much WAL was written since the last (default CHECKPOINT_WAL_BYTES; 0: never) */
  checkpointWalBytes?: number;
}

/** WAL since the last checkpoint that makes a PGlite round end with one (16 MiB). */
export const CHECKPOINT_WAL_BYTES = 16 * 1024 * 1024;
/** A checkpoint this old (seconds) is followed by another if any WAL was written since (Postgres' checkpoint_timeout). */
export const CHECKPOINT_TIMEOUT_S = 300;
/** WAL a checkpoint writes itself (its record); more than this since one means something else was written */
const CHECKPOINT_OWN_WAL = 8192;

export interface MaintenanceStatus {
  /** rounds that looked at the counters, since start */
  rounds: number;
  /** tables analyzed, since start */
  analyzed: number;
  /** tables vacuumed, since start */
  vacuumed: number;
  /** checkpoints (PGlite only), since start */
  checkpoints: number;
  /** rounds that failed, since start */
  failed: number;
  /** why the last round failed (cleared by the next that succeeds) */
  lastError?: string;
  /**
   * On a real Postgres: whether the server's autovacuum ran the mirror's
   * tables at the last round (then the round did nothing); absent before the
   * first round, and on PGlite
   */
  serverAutovacuum?: boolean;
}

/** What one round found due and did, table by table. */
export interface MaintenanceRound {
  analyzed: string[];
  vacuumed: string[];
  /** PGlite: whether the round ended with a CHECKPOINT */
  checkpointed: boolean;
}

interface TableCounters {
  relname: string;
  reltuples: number;
  /** size of the table's main fork */
  bytes: number;
  n_dead_tup: number | null;
  n_mod_since_analyze: number | null;
  n_ins_since_vacuum: number | null;
}

// autovacuum's defaults (postgresql.conf): thresholds and scale factors
const VACUUM_THRESHOLD = 50;
const VACUUM_SCALE = 0.2;
const VACUUM_INSERT_THRESHOLD = 1000;
const VACUUM_INSERT_SCALE = 0.2;
const ANALYZE_THRESHOLD = 50;
const ANALYZE_SCALE = 0.1;

/** The decision for one table, by autovacuum's rules (exported for tests). */
export function dueFor(t: TableCounters): { vacuum: boolean; analyze: boolean } {
  const rows = Math.max(0, Number(t.reltuples));
  const dead = Number(t.n_dead_tup ?? 0);
  const inserted = Number(t.n_ins_since_vacuum ?? 0);
  const changed = Number(t.n_mod_since_analyze ?? 0);
  const neverAnalyzed = Number(t.reltuples) < 0 && Number(t.bytes) > 0;
  return {
    vacuum:
      dead > VACUUM_THRESHOLD + VACUUM_SCALE * rows ||
      inserted > VACUUM_INSERT_THRESHOLD + VACUUM_INSERT_SCALE * rows,
    analyze: neverAnalyzed || changed > ANALYZE_THRESHOLD + ANALYZE_SCALE * rows,
  };
}

export class MirrorMaintenance {
  private readonly target: SqlTarget;
  private readonly log: SyncLogger;
  private readonly intervalMs: number;
  private readonly statisticsTarget: number;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<unknown> | undefined;
  private stopped = true;
  /** stop() was called: a round in progress ends after its current table */
  private halted = false;
  private readonly checkpointWalBytes: number;
  private readonly counts: MaintenanceStatus = {
    rounds: 0,
    analyzed: 0,
    vacuumed: 0,
    checkpoints: 0,
    failed: 0,
  };

  constructor(private readonly opts: MaintenanceOptions) {
    this.target = opts.target;
    this.log = opts.logger ?? SILENT_LOGGER;
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.statisticsTarget = opts.statisticsTarget ?? 30;
    if (
      !Number.isInteger(this.statisticsTarget) ||
      this.statisticsTarget < 1 ||
      this.statisticsTarget > 10_000
    )
      throw new RangeError('statisticsTarget must be an integer in 1..10000');
    this.checkpointWalBytes = opts.checkpointWalBytes ?? CHECKPOINT_WAL_BYTES;
    if (!Number.isSafeInteger(this.checkpointWalBytes) || this.checkpointWalBytes < 0)
      throw new RangeError('checkpointWalBytes must be a non-negative integer');
  }

  /** Run rounds in the background, `intervalMs` apart (the first one after `intervalMs`). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.halted = false;
    this.schedule();
  }

  /** Stop; waits for a round in progress (a VACUUM is not interrupted). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.round;
  }

  status(): MaintenanceStatus {
    return { ...this.counts };
  }

  /** One round now: VACUUM and ANALYZE what is due, then (PGlite) CHECKPOINT if due. Errors are thrown (the background rounds log them). */
  async run(): Promise<MaintenanceRound> {
    if (this.target.kind === 'postgres' && (await this.serverAutovacuum())) {
      this.counts.rounds++;
      return { analyzed: [], vacuumed: [], checkpointed: false };
    }
    // a backend publishes its counters at most once a second, when idle: now, before they are read
    await this.target.query(`SELECT pg_stat_force_next_flush()`);
    const { rows } = await this.target.query<TableCounters>(
      `SELECT c.relname, c.reltuples::float8 AS reltuples, pg_relation_size(c.oid)::int8 AS bytes,
              s.n_dead_tup, s.n_mod_since_analyze, s.n_ins_since_vacuum
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
       WHERE n.nspname = $1 AND c.relkind = 'r'
       ORDER BY c.relname`,
      [this.target.schema],
    );
    this.counts.rounds++;
    const done: MaintenanceRound = { analyzed: [], vacuumed: [], checkpointed: false };
    for (const t of rows) {
      if (this.halted) break;
      const due = dueFor(t);
      // relname comes from pg_class of the mirror's schema; quoted all the same
      const table = `"${this.target.schema}"."${t.relname.replace(/"/g, '""')}"`;
      const columns = ANALYZE_COLUMNS[t.relname];
      const analyzed = columns ? `${table} (${columns.join(', ')})` : table;
      if (due.vacuum) {
        await this.act(done, 'vacuumed', t.relname, { deadRows: Number(t.n_dead_tup ?? 0) }, () =>
          this.target.query(`VACUUM ${table}`),
        );
      }
      if (due.analyze) {
        await this.act(done, 'analyzed', t.relname, { changedRows: Number(t.n_mod_since_analyze ?? 0) }, () =>
          this.target.transaction(async (tx) => {
            await tx.query(`SELECT set_config('default_statistics_target', $1, true)`, [
              String(this.statisticsTarget),
            ]);
            await tx.query(`ANALYZE ${analyzed}`);
          }),
        );
      }
    }
    if (this.target.kind === 'pglite' && this.checkpointWalBytes > 0 && !this.halted)
      await this.checkpointIfDue(done);
    return done;
  }

  /** PGlite: CHECKPOINT when enough WAL, or old enough WAL, was written since the last one. */
  private async checkpointIfDue(done: MaintenanceRound): Promise<void> {
    const { rows } = await this.target.query<{ wal: number; age: number }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::int8 AS wal,
              extract(epoch FROM clock_timestamp() - checkpoint_time)::float8 AS age
       FROM pg_control_checkpoint()`,
    );
    const wal = Number(rows[0]?.wal ?? 0);
    const age = Number(rows[0]?.age ?? 0);
    if (wal < this.checkpointWalBytes && !(wal > CHECKPOINT_OWN_WAL && age >= CHECKPOINT_TIMEOUT_S)) return;
    await yieldThen(this.opts.between);
    if (this.halted) return;
    const started = performance.now();
    await this.target.query('CHECKPOINT');
    done.checkpointed = true;
    this.counts.checkpoints++;
    this.log.info(
      { walBytes: wal, sinceS: Math.round(age), ms: Math.round(performance.now() - started) },
      'mirror maintenance: checkpoint',
    );
  }

  /** Does the server's autovacuum look after the mirror? Recorded in the status; a change is logged. */
  private async serverAutovacuum(): Promise<boolean> {
    const { rows } = await this.target.query<{ autovacuum: boolean; counts: boolean }>(
      `SELECT current_setting('autovacuum') = 'on' AS autovacuum, current_setting('track_counts') = 'on' AS counts`,
    );
    const counts = rows[0]?.counts === true;
    const on = rows[0]?.autovacuum === true && counts;
    if (on !== this.counts.serverAutovacuum) {
      if (on) this.log.info({}, "mirror maintenance: the server's autovacuum looks after the mirror");
      else if (counts)
        this.log.warn(
          {},
          'mirror maintenance: autovacuum is off on this Postgres; the mirror vacuums and analyzes its own tables',
        );
      else
        this.log.warn(
          {},
          'mirror maintenance: track_counts is off on this Postgres, so neither autovacuum nor the mirror sees what needs VACUUM or ANALYZE (only tables never analyzed are); turn it on',
        );
    }
    this.counts.serverAutovacuum = on;
    return on;
  }

  /** Run one action on one table; count it, and log it with what made it due and how long it took. */
  private async act(
    done: MaintenanceRound,
    action: 'analyzed' | 'vacuumed',
    table: string,
    why: Record<string, number>,
    run: () => Promise<unknown>,
  ): Promise<void> {
    await yieldThen(this.opts.between);
    if (this.halted) return;
    const started = performance.now();
    await run();
    done[action].push(table);
    this.counts[action]++;
    this.log.info(
      { table, ...why, ms: Math.round(performance.now() - started) },
      `mirror maintenance: ${action}`,
    );
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.round = this.run()
        .then(() => {
          delete this.counts.lastError;
        })
        .catch((err: unknown) => {
          // the database is away (the sink reports that) or busy: the next round tries again
          this.counts.failed++;
          this.counts.lastError = errorMessage(err);
          this.log.warn({ err: this.counts.lastError }, 'mirror maintenance failed, trying again later');
        })
        .finally(() => {
          this.round = undefined;
          this.schedule();
        });
    }, this.intervalMs);
    this.timer.unref?.();
  }
}
