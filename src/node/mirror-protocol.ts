import type { CommittedBlock, SearchRequest, SyncServiceStatus } from '../sync/index.js';

/** Messages between a node and its mirror thread (mirror.ts, mirror-worker.ts). */

export interface MirrorInit {
  pgliteDir: string;
  postgresUrl?: string;
  pgliteSharedBuffers?: string;
  embedder?: { url: string; model: string; dimension: number };
  /** chain height when the mirror starts */
  height: number;
}

export interface WireError {
  name: string;
  code: string;
  message: string;
}

/**
 * One page of a chain-store walk (`kv` iterate): at most KV_PAGE_ENTRIES
 * entries or about KV_PAGE_BYTES, read and posted by the node's thread one
 * page per request; `more` when the walk goes on after the last entry (the
 * mirror thread asks again from there). A check of a million commissions
 * was one array of hundreds of MB, gathered on the node's thread.
 */
export interface KvPage {
  entries: [string, Uint8Array][];
  more: boolean;
}

export const KV_PAGE_ENTRIES = 1_000;
export const KV_PAGE_BYTES = 1 << 20;

export type ToWorker =
  | { type: 'committed'; height: number; block?: CommittedBlock }
  | { type: 'kv'; id: number; value?: unknown; error?: string }
  | { type: 'call'; id: number; method: 'search' | 'check'; request?: SearchRequest }
  | { type: 'stop' };

export type ToMain =
  | { type: 'ready' }
  | { type: 'init-error'; error: WireError }
  | { type: 'stopped' }
  | { type: 'status'; status: SyncServiceStatus }
  | { type: 'result'; id: number; value?: unknown; error?: WireError }
  | { type: 'kv'; id: number; op: 'get'; key: string }
  | { type: 'kv'; id: number; op: 'iterate'; prefix: string; gte?: string; lt?: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; obj: object; msg: string };
