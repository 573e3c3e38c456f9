/**
 * Errors of the sync layer, told apart by `code`. A fatal error means the
 * mirror and the chain disagree (or someone else writes to the mirror):
 * retrying cannot help, so the sink stops loudly instead of overwriting.
 * Every other error (connection refused or lost, timeouts, a database that
 * restarts) is transient: the sink backs off and retries.
 */
export const SYNC_ERROR_CODES = [
  /** the cursor in the database is not at the block the sink expected to extend */
  'CURSOR_MISMATCH',
  /** re-executing a block gave other receipts than the chain's, or hashes do not link */
  'CHAIN_DIVERGED',
  /**
   * the mirror is further than the chain it follows. Not fatal: after a machine
   * crash a node's chain store can lag its Raft log until the log is replayed;
   * the sink waits, then checks the hash at its cursor (another chain is CHAIN_DIVERGED)
   */
  'MIRROR_AHEAD',
  /** rows the cursor says cannot exist do exist, or rows that must exist do not */
  'MIRROR_CORRUPT',
  /** a block the source announced cannot be read */
  'SOURCE_MISSING_BLOCK',
  /** an embedder answered with something that is not a vector of its dimension */
  'BAD_EMBEDDING',
  /** an HTTP embedder failed (network error, HTTP status, malformed JSON) */
  'EMBEDDER_FAILED',
  /** the database holds migrations newer than this code knows */
  'SCHEMA_TOO_NEW',
  /** a search request that cannot be answered as asked (bad k, filter or amount) */
  'INVALID_QUERY',
] as const;
export type SyncErrorCode = (typeof SYNC_ERROR_CODES)[number];

const FATAL: ReadonlySet<SyncErrorCode> = new Set<SyncErrorCode>([
  'CURSOR_MISMATCH',
  'CHAIN_DIVERGED',
  'MIRROR_CORRUPT',
  'SCHEMA_TOO_NEW',
]);

export class SyncError extends Error {
  override readonly name = 'SyncError';
  constructor(
    readonly code: SyncErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(`${code}: ${message}`);
  }

  get fatal(): boolean {
    return FATAL.has(this.code);
  }
}

export function isFatal(err: unknown): boolean {
  return err instanceof SyncError && err.fatal;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
