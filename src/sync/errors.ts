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
  /** a search request that cannot be answered as asked (bad k, filter, time or amount) */
  'INVALID_QUERY',
  /**
   * the database refused a batch's rows with a data error (SQLSTATE class 22, 23, 42 or 54:
   * a value it cannot hold, a constraint, a column it lacks): the same rows would be refused
   * again, so the sink stops at the block before them instead of retrying forever
   */
  'DATA_REJECTED',
  /**
   * search or check could not reach the mirror's database (connection refused or lost, a
   * server shutting down, a timeout), or the mirror thread is gone: retry later
   */
  'MIRROR_UNAVAILABLE',
  /** a mirror check was asked for while another runs on the same node (one at a time) */
  'CHECK_IN_PROGRESS',
  /** search or check found the mirror's tables gone: the sink is creating them again (retry later) */
  'MIRROR_REBUILDING',
] as const;
export type SyncErrorCode = (typeof SYNC_ERROR_CODES)[number];

const FATAL: ReadonlySet<SyncErrorCode> = new Set<SyncErrorCode>([
  'CURSOR_MISMATCH',
  'CHAIN_DIVERGED',
  'MIRROR_CORRUPT',
  'SCHEMA_TOO_NEW',
  'DATA_REJECTED',
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

/** The SQLSTATE of a database error (Postgres and PGlite both set `code`), or undefined. */
export function sqlState(err: unknown): string | undefined {
  if (err instanceof SyncError) return undefined;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * A database error that retrying the same statement cannot fix: data
 * exceptions (class 22: a value out of range, an encoding the server refuses),
 * integrity constraints (23), a statement the schema cannot run (42: a column
 * or type it lacks; not 42501, a privilege an operator can grant, nor 42P01, a
 * table that is gone: schemaMissing) and program limits (54: a row or index
 * entry too large).
 */
export function isDataError(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined) return false;
  const cls = state.slice(0, 2);
  if (cls === '42') return state !== '42501' && state !== '42P01';
  return cls === '22' || cls === '23' || cls === '54';
}

/** The mirror's tables or schema do not exist (dropped while the node runs): 42P01, 3F000. */
export function schemaMissing(err: unknown): boolean {
  const state = sqlState(err);
  return state === '42P01' || state === '3F000';
}

/** Errors of node's sockets and of pg's connection handling, which carry no SQLSTATE. */
const CONNECTION_MESSAGE =
  /connect|connection|terminat|timeout|timed out|socket|closed|not queryable|shutting down|ECONN|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/i;

/**
 * The database could not be reached or could not answer now, and may later:
 * connection exceptions (class 08), a server shutting down or starting (57P01
 * to 57P03), a statement cancelled by a timeout (57014), insufficient
 * resources (53: too many connections, disk full), serialization failures and
 * deadlocks (40), a lock not available (55P03), system errors (58); or, without
 * a SQLSTATE, a socket error (`ECONNREFUSED`, …) or pg's own connection and
 * timeout errors. Search and check report these as MIRROR_UNAVAILABLE.
 */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof SyncError) return err.code === 'MIRROR_UNAVAILABLE';
  const state = sqlState(err);
  if (state !== undefined) {
    const cls = state.slice(0, 2);
    return (
      cls === '08' ||
      cls === '53' ||
      cls === '40' ||
      cls === '58' ||
      state === '57P01' ||
      state === '57P02' ||
      state === '57P03' ||
      state === '57014' ||
      state === '55P03'
    );
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return CONNECTION_MESSAGE.test(errorMessage(err));
}

/**
 * What search and check throw for an error of the database: MIRROR_UNAVAILABLE
 * (transient: retry later) when it could not be reached, else the error as it is
 * (a SyncError such as INVALID_QUERY, or a database error: a fault).
 */
export function asCallError(err: unknown): unknown {
  if (err instanceof SyncError) return err;
  if (schemaMissing(err))
    return new SyncError('MIRROR_REBUILDING', `the mirror's tables are gone: ${errorMessage(err)}`);
  if (!isUnavailable(err)) return err;
  const state = sqlState(err);
  return new SyncError(
    'MIRROR_UNAVAILABLE',
    `the mirror database is unavailable: ${errorMessage(err)}`,
    state === undefined ? {} : { sqlstate: state },
  );
}
