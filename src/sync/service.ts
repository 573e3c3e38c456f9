import type { Embedder } from './embedder.js';
import { SearchIndexer, type IndexerOptions, type IndexerStatus } from './indexer.js';
import { MirrorMaintenance, type MaintenanceOptions, type MaintenanceStatus } from './maintenance.js';
import { PostgresTarget } from './pg-target.js';
import { PgliteTarget } from './pglite-target.js';
import { PostgresSink, type SinkOptions, type SyncStatus } from './sink.js';
import type { SqlTarget } from './target.js';

/**
 * What a node runs: the sink, the embedding indexer it wakes after each
 * batch, and the mirror's VACUUM and ANALYZE where no autovacuum does them
 * (always on PGlite; on a real Postgres while its autovacuum is off).
 */
export interface SyncServiceOptions extends SinkOptions {
  embedder: Embedder;
  indexer?: Omit<IndexerOptions, 'target' | 'embedder'>;
  maintenance?: Omit<MaintenanceOptions, 'target' | 'logger'>;
}

export interface SyncServiceStatus extends SyncStatus {
  index: IndexerStatus;
  /** VACUUM and ANALYZE of the mirror's tables, and PGlite's checkpoints (MirrorMaintenance) */
  maintenance: MaintenanceStatus;
}

export class SyncService {
  readonly sink: PostgresSink;
  readonly indexer: SearchIndexer;
  readonly maintenance: MirrorMaintenance;

  constructor(opts: SyncServiceOptions) {
    this.indexer = new SearchIndexer({
      target: opts.target,
      embedder: opts.embedder,
      ...(opts.logger ? { logger: opts.logger } : {}),
      // The mirror first: while the sink is behind, the indexer waits for it to catch up, but
      // takes one step a second at least, so that search does not stop under a load that never ends.
      between: () => this.sinkCaughtUp(),
      ...opts.indexer,
    });
    this.maintenance = new MirrorMaintenance({
      target: opts.target,
      ...(opts.logger ? { logger: opts.logger } : {}),
      // the mirror first, as for the indexer: each action right after a batch
      between: () => this.sinkCaughtUp(),
      ...opts.maintenance,
    });
    this.sink = new PostgresSink({
      ...opts,
      onAdvance: (cursor) => {
        this.indexer.notify();
        opts.onAdvance?.(cursor);
      },
      // The mirror is not this node's to write (another writer, another chain, corrupt rows, a
      // newer schema): the indexer and the maintenance stop writing to it as well. Rows the
      // database refused (DATA_REJECTED) leave the mirror this node's: search goes on over what
      // was mirrored up to there.
      onFatal: (err) => {
        if (err.code !== 'DATA_REJECTED') {
          void this.indexer.stop();
          void this.maintenance.stop();
        }
        opts.onFatal?.(err);
      },
    });
  }

  /** While the sink is behind, wait for it to catch up, 1 s at most (so a load that never ends cannot stall the others). */
  private async sinkCaughtUp(): Promise<void> {
    const s = this.sink.status();
    if (s.lagBlocks > 0 && s.state === 'ok') {
      await this.sink.waitForHeight(s.height + s.lagBlocks, 1_000).catch(() => undefined);
    }
  }

  start(): void {
    this.sink.start();
    this.indexer.start();
    this.maintenance.start();
  }

  async stop(): Promise<void> {
    await this.maintenance.stop();
    await this.sink.stop();
    await this.indexer.stop();
  }

  status(): SyncServiceStatus {
    return {
      ...this.sink.status(),
      index: this.indexer.status(),
      maintenance: this.maintenance.status(),
    };
  }
}

export interface SyncTargetOptions {
  /** a real Postgres with pgvector (`--postgres-url`); without it, PGlite in `pgliteDir` */
  postgresUrl?: string;
  /** the node passes `<dataDir>/pglite` */
  pgliteDir: string;
  /** PGlite's buffer pool (PgliteTargetOptions.sharedBuffers) */
  pgliteSharedBuffers?: string;
  schema?: string;
}

/** The target a node mirrors into. */
export async function openSyncTarget(opts: SyncTargetOptions): Promise<SqlTarget> {
  const schema = opts.schema !== undefined ? { schema: opts.schema } : {};
  if (opts.postgresUrl !== undefined) return new PostgresTarget({ url: opts.postgresUrl, ...schema });
  return PgliteTarget.open({
    dataDir: opts.pgliteDir,
    ...schema,
    ...(opts.pgliteSharedBuffers === undefined ? {} : { sharedBuffers: opts.pgliteSharedBuffers }),
  });
}
