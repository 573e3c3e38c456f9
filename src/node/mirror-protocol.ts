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
