import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * One node's config file (docs/OPERATIONS.md §A new network), written by
 * `bitnexus init`. Paths are relative to the config file's folder.
 */
export interface NodeConfig {
  /** this node's public key (hex); also its block-signing key */
  nodeId: string;
  chainId: string;
  keyFile: string;
  dataDir: string;
  genesisFile: string;
  http: { host: string; port: number };
  p2p: { listen: string };
  peers: PeerConfig[];
  /** optional: mirror into this Postgres instead of the embedded PGlite (overridden by --postgres-url) */
  postgresUrl?: string;
  /** optional: the embedded PGlite's buffer pool, e.g. "1GB" (default 384MB; docs/OPERATIONS.md §A new network, docs/SYNC.md §Targets) */
  pgliteSharedBuffers?: string;
}

export interface PeerConfig {
  nodeId: string;
  http: string;
  p2p: string;
}

export const CHAIN_DIR = 'chain';

export async function readNodeConfig(path: string): Promise<NodeConfig & { baseDir: string }> {
  const raw = JSON.parse(await readFile(path, 'utf8')) as NodeConfig;
  const baseDir = dirname(resolve(path));
  return { ...raw, baseDir };
}

export function resolveIn(baseDir: string, p: string): string {
  return resolve(baseDir, p);
}
