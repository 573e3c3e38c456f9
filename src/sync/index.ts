// sync/: the Postgres + pgvector mirror of the committed chain (docs/SYNC.md):
// the sink, its two targets, migrations, embedders, the embedding indexer,
// hybrid search and the mirror check. Reads the chain; never writes it.
export * from './errors.js';
export * from './target.js';
export { PostgresTarget, type PostgresTargetOptions } from './pg-target.js';
export { PgliteTarget, type PgliteTargetOptions } from './pglite-target.js';
export { migrate, MIGRATIONS, SCHEMA_VERSION, type Migration, type MigrationReport } from './migrations.js';
export {
  ChainStoreSource,
  type CommittedBlock,
  decodeStoredBlock,
  readReceipts,
  storedHeight,
  type ChainSource,
} from './source.js';
export { readCursor, EMPTY_CURSOR, type Cursor } from './writer.js';
export { searchableText } from './rows.js';
export { PostgresSink, type SinkOptions, type SinkState, type SyncLogger, type SyncStatus } from './sink.js';
export {
  checkEmbedder,
  EMBEDDER_ID_RE,
  HashingEmbedder,
  type Embedder,
  type HashingEmbedderOptions,
} from './embedder.js';
export { HttpEmbedder, type HttpEmbedderOptions } from './http-embedder.js';
export { SearchIndexer, embedderIndexName, type IndexerOptions, type IndexerStatus } from './indexer.js';
export {
  COMMISSION_STATUSES,
  search,
  searchDetailed,
  searchIndexType,
  type SearchFilters,
  type SearchHit,
  type SearchOptions,
  type SearchRequest,
  type SearchResult,
} from './search.js';
export {
  MirrorMaintenance,
  type MaintenanceOptions,
  type MaintenanceRound,
  type MaintenanceStatus,
} from './maintenance.js';
export { checkMirror, type CheckDifference, type CheckOptions, type CheckReport } from './check.js';
export {
  openSyncTarget,
  SyncService,
  type SyncServiceOptions,
  type SyncServiceStatus,
  type SyncTargetOptions,
} from './service.js';
