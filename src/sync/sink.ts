import {
  LedgerState,
  processBlock,
  type DecodedBlock,
  type ProcessedBlock,
  type Receipt,
  type StateView,
} from '../ledger/index.js';
import { errorMessage, isDataError, isFatal, schemaMissing, sqlState, SyncError } from './errors.js';
import { migrate } from './migrations.js';
import { MirrorBatch } from './rows.js';
import { decodeStoredBlock, type ChainSource } from './source.js';
import { yieldToEventLoop, type SqlTarget } from './target.js';
import { EMPTY_CURSOR, planBatch, readCursor, writeBatch, type BatchPlan, type Cursor } from './writer.js';

/**
 * The Postgres sink: follows the committed chain, block by block, into a
 * SqlTarget (docs/SYNC.md).
 *
 * Rows come from re-execution: the sink keeps its own LedgerState at the
 * mirror's cursor and applies each block with the ledger's own
 * `processBlock`, which yields the receipts and every state record the block
 * changed. The receipts are compared field by field with the chain's, so a
 * mirror can never silently disagree with the node (signatures and Merkle
 * roots, checked when the node committed each block, are not checked
 * again; `bitnexus verify` is the auditor's check of those); the changed records
 * become the commission and balance rows. On start the state is rebuilt by
 * replaying blocks 0…cursor from the source (reads only, no SQL).
 *
 * A backfill is pipelined: while batch k is in its Postgres transaction (on
 * the target's write thread when it has one, SqlTarget.writePlan),
 * batch k + 1 is re-executed on top of it in memory; it is written only after
 * k has committed (and dropped if k fails), so batches still commit one at a
 * time, in order, each moving the cursor from where the previous one left it.
 *
 * Consensus never waits on the sink: it runs beside the node, reads only
 * committed blocks, and yields to the event loop between blocks. When the
 * database is away it backs off, retries and reports `degraded`; a cursor
 * that does not match, or a chain that re-executes differently, stops it
 * loudly (`stopped`, lastError) instead of writing anything.
 */

export type SinkState = 'ok' | 'degraded' | 'stopped';

export interface SyncStatus {
  state: SinkState;
  /** height and hash of the last mirrored block (-1 and 64 zeros before genesis) */
  height: number;
  hash: string;
  /** committed blocks not yet mirrored */
  lagBlocks: number;
  /** age of the oldest committed block not yet mirrored (0 when caught up) */
  lagSeconds: number;
  lastError?: string;
  /** rows inserted or updated since start */
  rowsWritten: number;
  /** failed attempts since start */
  errors: number;
}

export interface SyncLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The logger of a sink, indexer or maintenance given none. */
export const SILENT_LOGGER: SyncLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface SinkOptions {
  source: ChainSource;
  target: SqlTarget;
  logger?: SyncLogger;
  /** wall clock (ms), for lagSeconds */
  now?: () => number;
  /** a backfill writes up to this many blocks … */
  maxBatchBlocks?: number;
  /** … or this many transactions per Postgres transaction */
  maxBatchTxs?: number;
  /** backoff after a failure: initial delay, doubling up to maxMs (with ±20 % jitter) */
  retry?: { initialMs?: number; maxMs?: number };
  /** re-check the source's height this often even without a commit notification */
  pollMs?: number;
  /** when idle, read the database's cursor this often: notices an outage (degraded) or another writer (stopped) */
  heartbeatMs?: number;
  /** new rows by COPY when the target offers it (default true); false: one INSERT … unnest statement per batch */
  copy?: boolean;
  /**
   * Group commit for the mirror (default 100 ms, 0: off): a caught-up sink
   * that hears of a new block waits until that block is this old before it
   * writes, so that one Postgres transaction covers the blocks committed
   * meanwhile. Each batch has a fixed cost (on PGlite ~5 ms: a transaction,
   * the cursor, a COPY per table, the updates), which one block at a time
   * paid per block.
   */
  gatherMs?: number;
  /** called after each committed batch (the embedding indexer listens) */
  onAdvance?: (cursor: Cursor) => void;
  /** called once when the sink stops on a fatal error */
  onFatal?: (err: SyncError) => void;
}

interface Pending {
  batch: MirrorBatch;
  from: Cursor;
  to: Cursor;
}

interface InFlight {
  pending: Pending;
  /** the batch's transaction; resolves to the rows written */
  write: Promise<number>;
}

export class PostgresSink {
  private readonly source: ChainSource;
  private readonly target: SqlTarget;
  private readonly log: SyncLogger;
  private readonly now: () => number;
  private readonly maxBlocks: number;
  private readonly maxTxs: number;
  private readonly retryInitial: number;
  private readonly retryMax: number;
  private readonly pollMs: number;
  private readonly heartbeatMs: number;
  private readonly gatherMs: number;
  /** this batch has waited for more blocks already (gatherMs) */
  private gathered = false;
  private lastContact = 0;

  private state = new LedgerState();
  private cursor: Cursor = EMPTY_CURSOR;
  private prepared = false;
  /** a batch whose write failed: committed or not, the database's cursor will tell */
  private failed: Pending | undefined;
  /** the error that write failed with */
  private failedWith: unknown;
  /** a failed batch that had not committed when reconciled: written again as it is (reconcile) */
  private rewrite: Pending | undefined;
  private inflight: InFlight | undefined;
  /**
   * After the database refused a batch of several blocks with a data error:
   * batches of one block up to this height, to find the block it refuses
   * (everything before it is mirrored; the sink stops at it, naming it).
   */
  private narrowUntil: number | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private signalled = false;
  private wakeIdle: (() => void) | undefined;
  private wakeBackoff: (() => void) | undefined;
  private unsubscribe: (() => void) | undefined;

  private sinkState: SinkState = 'ok';
  private lastError: string | undefined;
  private rowsWritten = 0;
  private errors = 0;
  /** when the sink first saw itself behind since it was last caught up (lagSeconds' fallback) */
  private behindSince: number | undefined;
  /** header times of blocks read but not yet mirrored */
  private readonly headerTimes = new Map<number, number>();
  /** commit notifications not yet mirrored: [head height, when], oldest first */
  private readonly notices: [number, number][] = [];
  private readonly waiters = new Set<{ height: number; resolve: () => void }>();

  constructor(private readonly opts: SinkOptions) {
    this.source = opts.source;
    this.target = opts.target;
    this.log = opts.logger ?? SILENT_LOGGER;
    this.now = opts.now ?? Date.now;
    this.maxBlocks = opts.maxBatchBlocks ?? 500;
    this.maxTxs = opts.maxBatchTxs ?? 10_000;
    this.retryInitial = opts.retry?.initialMs ?? 250;
    this.retryMax = opts.retry?.maxMs ?? 15_000;
    this.pollMs = opts.pollMs ?? 1_000;
    this.heartbeatMs = opts.heartbeatMs ?? 5_000;
    this.gatherMs = opts.gatherMs ?? 100;
  }

  /** Start following the chain in the background. Returns at once; see status(). */
  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.sinkState = 'ok';
    this.unsubscribe = this.source.onCommitted((height) => {
      // bounded (a long outage): the oldest notices are the ones lag is measured from
      if (height > this.cursor.height && this.notices.length < 100_000)
        this.notices.push([height, this.now()]);
      this.wakeUp();
    });
    this.running = this.run();
  }

  /** Stop after the batch in flight (a transaction either commits or rolls back). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.interrupt();
    await this.running;
    this.running = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.sinkState = 'stopped';
  }

  status(): SyncStatus {
    const head = this.source.height();
    const lagBlocks = Math.max(0, head - this.cursor.height);
    const since = lagBlocks === 0 ? undefined : this.oldestUnmirroredAt();
    const lagSeconds = since === undefined ? 0 : Math.max(0, this.now() - since) / 1000;
    const s: SyncStatus = {
      state: this.sinkState,
      height: this.cursor.height,
      hash: this.cursor.hash,
      lagBlocks,
      lagSeconds,
      rowsWritten: this.rowsWritten,
      errors: this.errors,
    };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  /** Resolves once the mirror holds `height` (rejects if the sink stops first). */
  waitForHeight(height: number, timeoutMs = 30_000): Promise<void> {
    if (this.cursor.height >= height) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        height,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(w);
          if (this.cursor.height >= height) resolve();
          else
            reject(new Error(`sink stopped at height ${this.cursor.height}: ${this.lastError ?? 'stopped'}`));
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(
          new Error(`sink did not reach height ${height} in ${timeoutMs} ms (at ${this.cursor.height})`),
        );
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /**
   * Since when the oldest block not yet mirrored has existed: its header time
   * once read, else the first commit notification that covered it, else when
   * the sink first saw itself behind.
   */
  private oldestUnmirroredAt(): number | undefined {
    const h = this.cursor.height + 1;
    let t = this.headerTimes.get(h) ?? this.behindSince;
    const notice = this.notices.find(([height]) => height >= h);
    if (notice && (t === undefined || notice[1] < t)) t = notice[1];
    return t;
  }

  /** A commit notification: cut the idle wait short (never a backoff). */
  private wakeUp(): void {
    this.signalled = true;
    this.wakeIdle?.();
  }

  /** Interrupt every wait (stop). */
  private interrupt(): void {
    this.wakeIdle?.();
    this.wakeBackoff?.();
  }

  /** idle: until a commit notice or ms; backoff and gather: ms, or until stop() */
  private sleep(ms: number, kind: 'idle' | 'backoff' | 'gather'): Promise<void> {
    if (kind === 'idle' && this.signalled) {
      this.signalled = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (kind === 'idle') this.wakeIdle = undefined;
        else this.wakeBackoff = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (kind === 'idle') this.wakeIdle = done;
      else this.wakeBackoff = done;
    });
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        if (!this.prepared) await this.prepare();
        const advanced = await this.step();
        this.markHealthy();
        failures = 0;
        if (!advanced && !this.stopping) await this.sleep(this.pollMs, 'idle');
      } catch (caught) {
        this.errors++;
        let err = caught;
        // a batch's write refused with a data error (not a read, nor a migration: those are retried)
        const refused = this.failed;
        if (refused && err === this.failedWith && !isFatal(err) && isDataError(err)) {
          if (this.narrow(refused, err)) continue;
          err = this.dataRejected(refused, err);
        }
        this.lastError = errorMessage(err);
        if (isFatal(err)) {
          this.sinkState = 'stopped';
          const e = err as SyncError;
          this.log.error(
            {
              err: e,
              code: e.code,
              height: this.cursor.height,
              ...(e.code === 'DATA_REJECTED' ? e.details : {}),
            },
            e.code === 'DATA_REJECTED'
              ? `sync sink stopped: the database refused the rows of block ${String(e.details.block)}`
              : 'sync sink stopped: the mirror disagrees with the chain',
          );
          this.opts.onFatal?.(e);
          break;
        }
        if (schemaMissing(err)) {
          // dropped while the node runs (docs/SYNC.md §Operations): migrate and backfill from genesis
          this.prepared = false;
          this.log.warn(
            { err: this.lastError, height: this.cursor.height },
            "the mirror's tables are gone: creating them again and mirroring from genesis",
          );
        }
        this.sinkState = 'degraded';
        const delay = Math.min(this.retryMax, this.retryInitial * 2 ** Math.min(failures, 16));
        failures++;
        this.log.warn(
          { err: this.lastError, retryInMs: delay, attempt: failures },
          'sync sink degraded, retrying',
        );
        if (!this.stopping) await this.sleep(delay * (0.8 + Math.random() * 0.4), 'backoff');
      }
    }
    // never leave a transaction behind: wait for the batch in flight (commit or rollback)
    if (this.inflight) await this.finishInFlight().catch(() => undefined);
    for (const w of [...this.waiters]) w.resolve();
  }

  /**
   * The database refused a batch of several blocks with a data error: write
   * its blocks one at a time, so that the sink mirrors all before the one it
   * refuses and stops there, naming it. True when it will (the batch is
   * dropped: it had not committed, the database refused it).
   */
  private narrow(p: Pending, err: unknown): boolean {
    if (p.batch.blockCount <= 1) return false;
    this.narrowUntil = p.to.height;
    this.log.warn(
      { err: errorMessage(err), from: p.from.height + 1, to: p.to.height },
      'the database refused a batch of blocks: writing them one at a time to find the block it refuses',
    );
    return true;
  }

  /** The fatal error for a batch refused with a data error (isDataError): which block, which SQLSTATE. */
  private dataRejected(p: Pending, err: unknown): SyncError {
    const block = p.from.height + 1;
    const blocks = p.to.height > block ? `blocks ${block}–${p.to.height}` : `block ${block}`;
    const state = sqlState(err) ?? 'unknown';
    return new SyncError(
      'DATA_REJECTED',
      `the database refused the rows of ${blocks} (SQLSTATE ${state}: ${errorMessage(err)}); ` +
        `the mirror stops at height ${this.cursor.height}: retrying would be refused again`,
      { block, sqlstate: state },
    );
  }

  /** Migrations, then the ledger state at the mirror's cursor. */
  private async prepare(): Promise<void> {
    const report = await migrate(this.target);
    if (report.applied.length > 0) this.log.info({ applied: report.applied }, 'sync schema migrated');
    const cursor = await readCursor(this.target);
    // what the mirror holds, for status() even when the sink cannot go on from it (below)
    this.cursor = cursor;
    const head = this.source.height();
    if (cursor.height > head) {
      throw new SyncError(
        'MIRROR_AHEAD',
        `the mirror is at height ${cursor.height} but the chain only at ${head}: waiting for the chain store to catch up (wrong database?)`,
      );
    }
    const state = new LedgerState();
    let hash = EMPTY_CURSOR.hash;
    for (let h = 0; h <= cursor.height; h++) {
      if (this.stopping) return;
      const block = await this.readBlock(h);
      state.merge(this.process(state, block).writes);
      hash = block.hash;
      await yieldToEventLoop(); // one block at a time: the node's event loop must keep ticking
    }
    if (hash !== cursor.hash) {
      throw new SyncError(
        'CHAIN_DIVERGED',
        `the mirror's block ${cursor.height} is ${cursor.hash}, the chain's is ${hash}: this database mirrors another chain`,
      );
    }
    this.state = state;
    this.cursor = cursor;
    this.failed = undefined;
    this.rewrite = undefined;
    this.narrowUntil = undefined;
    this.prepared = true;
    this.log.info({ height: cursor.height }, 'sync sink resuming from its cursor');
  }

  /** Advance the pipeline by one batch; false when there was nothing to do. */
  private async step(): Promise<boolean> {
    if (this.failed) await this.reconcile(this.failed);
    if (this.rewrite && !this.inflight) {
      const pending = this.rewrite;
      this.rewrite = undefined;
      this.write(pending);
      return true;
    }
    this.signalled = false;
    const head = this.source.height();
    const tip = this.inflight?.pending.to ?? this.cursor;
    if (head <= tip.height) {
      if (this.inflight) {
        await this.finishInFlight();
        return true;
      }
      this.behindSince = undefined;
      this.notices.length = 0;
      this.headerTimes.clear();
      this.notifyWaiters();
      if (this.now() - this.lastContact >= this.heartbeatMs) await this.heartbeat();
      return false;
    }
    this.behindSince ??= this.now();
    if (!this.inflight && !this.gathered && this.gatherMs > 0 && head - tip.height < this.maxBlocks) {
      // once per batch (a clock that stands still must not hold it forever)
      this.gathered = true;
      const wait = (this.oldestUnmirroredAt() ?? this.now()) + this.gatherMs - this.now();
      if (wait > 0) {
        await this.sleep(Math.min(wait, this.gatherMs), 'gather');
        return true;
      }
    }
    this.gathered = false;
    // re-execute the next batch on top of the one in flight (if any) while it is being written
    const batch = await this.buildBatch(this.inflight?.pending.batch ?? this.state, tip, head);
    // Its rows, and for a target with a write thread (Postgres) its whole write, COPY data and
    // all, are prepared before waiting for the batch in flight: from where that one moves the
    // cursor (if it fails, this is dropped and rebuilt). Postgres then gets the next write as soon
    // as it has committed the last, and is fed while this thread re-executes the one after.
    const from = tip;
    const rows = batch.rows();
    const plan = this.copy && this.target.writePlan ? planBatch(rows, from) : undefined;
    if (this.inflight) await this.finishInFlight();
    batch.rebase(this.state);
    const last = batch.last!;
    this.write({ batch, from, to: { height: last.block.header.height, hash: last.hash } }, rows, plan);
    return true;
  }

  private get copy(): boolean {
    return this.opts.copy ?? true;
  }

  /** Start writing a batch (its rows and plan, when already made); finishInFlight observes it. */
  private write(pending: Pending, rows = pending.batch.rows(), plan?: BatchPlan): void {
    const { from } = pending;
    plan ??= this.copy && this.target.writePlan ? planBatch(rows, from) : undefined;
    const write = plan
      ? this.target.writePlan!(plan)
      : this.target.transaction((tx) => writeBatch(tx, rows, from, { copy: this.copy }));
    write.catch(() => undefined); // observed in finishInFlight
    this.inflight = { pending, write };
  }

  private async buildBatch(base: StateView, tip: Cursor, head: number): Promise<MirrorBatch> {
    const batch = new MirrorBatch(base);
    for (let h = tip.height + 1; h <= head; h++) {
      const block = await this.readBlock(h);
      this.headerTimes.set(h, block.block.header.timestamp);
      // Yield between the CPU-heavy steps: the batch in flight waits for this thread to read each
      // answer of Postgres, so every step's length is added to each of its round trips.
      await this.yieldToWrite();
      const processed = this.process(batch, block);
      await this.yieldToWrite();
      await this.checkReceipts(h, processed.receipts);
      batch.add(block, processed);
      const maxBlocks = this.narrowUntil !== undefined && h <= this.narrowUntil ? 1 : this.maxBlocks;
      if (batch.blockCount >= maxBlocks || batch.txCount >= this.maxTxs) break;
      await this.yieldToWrite();
    }
    return batch;
  }

  /** Let the batch in flight go on: its answers are read, and its data sent, by this thread. */
  private async yieldToWrite(): Promise<void> {
    await yieldToEventLoop();
    if (this.inflight) await this.target.sent?.();
  }

  private async finishInFlight(): Promise<void> {
    const f = this.inflight!;
    this.inflight = undefined;
    let written: number;
    try {
      written = await f.write;
    } catch (err) {
      if (movedTo(err, f.pending.to)) {
        // An earlier attempt at this very batch committed after its client had given up on it
        // (a COMMIT slower than the query timeout): the rows are there, exactly once.
        this.log.info({ height: f.pending.to.height }, 'sync batch had committed in an earlier attempt');
        this.applyCommitted(f.pending);
        return;
      }
      this.failed = f.pending;
      this.failedWith = err;
      throw err;
    }
    this.lastContact = this.now();
    this.rowsWritten += written;
    this.applyCommitted(f.pending);
    this.log.debug(
      { from: f.pending.from.height, to: f.pending.to.height, rows: written },
      'sync batch written',
    );
  }

  /**
   * The ledger's own block processing; a block that does not apply means the
   * chain store is not a chain. Signatures and Merkle roots were checked when
   * the node committed the block and are not checked again (ProcessOptions);
   * hash links, execution and, in checkReceipts, every transaction id are.
   */
  private process(state: StateView, block: DecodedBlock): ProcessedBlock {
    try {
      return processBlock(state, block, { checkSignatures: false, trustRoots: true });
    } catch (err) {
      throw new SyncError(
        'CHAIN_DIVERGED',
        `block ${block.block.header.height} does not apply: ${errorMessage(err)}`,
      );
    }
  }

  /** Idle: is the database there, and is the cursor still ours? */
  private async heartbeat(): Promise<void> {
    const db = await readCursor(this.target);
    this.lastContact = this.now();
    if (db.height !== this.cursor.height || db.hash !== this.cursor.hash) {
      throw new SyncError(
        'CURSOR_MISMATCH',
        `the mirror cursor is at ${db.height} (${db.hash.slice(0, 16)}…) but this sink wrote up to ${this.cursor.height}: another writer?`,
        { expected: this.cursor, actual: db },
      );
    }
  }

  /**
   * After a failed write, the transaction either never committed or
   * committed with its acknowledgement lost. The cursor in the database says
   * which; anything else means another writer.
   */
  private async reconcile(p: Pending): Promise<void> {
    const db = await readCursor(this.target);
    this.lastContact = this.now();
    if (db.height === p.to.height && db.hash === p.to.hash) {
      this.failed = undefined;
      this.applyCommitted(p);
      this.log.info({ height: db.height }, 'sync batch had committed before the connection was lost');
    } else if (db.height === this.cursor.height && db.hash === this.cursor.hash) {
      // Not committed, or not yet: a COMMIT can outlive its client's timeout. Written again
      // as it is, the retry either commits or finds the cursor at this batch's end (finishInFlight).
      this.failed = undefined;
      // a batch the database refused (narrow) is rebuilt one block at a time instead
      if (this.narrowUntil === undefined || p.batch.blockCount <= 1) this.rewrite = p;
    } else {
      throw new SyncError(
        'CURSOR_MISMATCH',
        `the mirror cursor moved to ${db.height} (${db.hash.slice(0, 16)}…) while this sink was at ${this.cursor.height}: another writer?`,
        { expected: this.cursor, actual: db },
      );
    }
  }

  private markHealthy(): void {
    if (this.sinkState !== 'degraded') return;
    this.log.info({ height: this.cursor.height }, 'sync sink recovered');
    this.sinkState = 'ok';
    this.lastError = undefined;
  }

  private applyCommitted(p: Pending): void {
    this.state.merge(p.batch.writes);
    this.cursor = p.to;
    if (this.narrowUntil !== undefined && p.to.height >= this.narrowUntil) this.narrowUntil = undefined;
    for (const h of this.headerTimes.keys()) if (h <= p.to.height) this.headerTimes.delete(h);
    while (this.notices.length > 0 && this.notices[0]![0] <= p.to.height) this.notices.shift();
    this.markHealthy();
    this.notifyWaiters();
    this.opts.onAdvance?.(p.to);
  }

  private notifyWaiters(): void {
    for (const w of [...this.waiters]) if (this.cursor.height >= w.height) w.resolve();
  }

  private async readBlock(height: number): Promise<DecodedBlock> {
    const bytes = await this.source.getBlockBytes(height);
    if (!bytes) throw new SyncError('SOURCE_MISSING_BLOCK', `block ${height} is not in the chain store`);
    let block: DecodedBlock;
    try {
      block = decodeStoredBlock(bytes);
    } catch (err) {
      throw new SyncError(
        'CHAIN_DIVERGED',
        `the stored block ${height} cannot be decoded: ${errorMessage(err)}`,
      );
    }
    if (block.block.header.height !== height) {
      throw new SyncError(
        'CHAIN_DIVERGED',
        `the stored block ${height} says it is block ${block.block.header.height}`,
      );
    }
    return block;
  }

  private async checkReceipts(height: number, derived: Receipt[]): Promise<void> {
    const chain = await this.source.getReceipts(height);
    const same = (a: Receipt, b: Receipt) =>
      a.tx === b.tx &&
      a.height === b.height &&
      a.index === b.index &&
      a.code === b.code &&
      a.commission === b.commission &&
      a.existing === b.existing;
    if (chain.length !== derived.length || !chain.every((r, i) => same(r, derived[i]!))) {
      throw new SyncError(
        'CHAIN_DIVERGED',
        `re-executing block ${height} gives other receipts than the chain stored: the mirror will not write it`,
      );
    }
  }
}

/** A CURSOR_MISMATCH that found the cursor exactly at `to`: the same batch, committed already. */
function movedTo(err: unknown, to: Cursor): boolean {
  if (!(err instanceof SyncError) || err.code !== 'CURSOR_MISMATCH') return false;
  const actual = (err.details as { actual?: Partial<Cursor> } | undefined)?.actual;
  return actual?.height === to.height && actual.hash === to.hash;
}
