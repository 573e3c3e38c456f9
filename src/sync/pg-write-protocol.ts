import type { SyncErrorCode } from './errors.js';
import type { BatchPlan } from './writer.js';

/** Messages between PostgresTarget and its write thread (pg-write-worker.ts). */
export type WriteRequest = { type: 'write'; id: number; plan: BatchPlan } | { type: 'close' };

export interface WriteReply {
  id: number;
  /** rows written, when the transaction committed */
  rows?: number;
  /** why it did not: a SyncError (rebuilt as one), or any other error's message and code */
  error?:
    | { sync: true; code: SyncErrorCode; message: string; details: Record<string, unknown> }
    | { sync: false; message: string; code?: string };
}
