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
  http: {
    host: string;
    port: number;
    /** optional: connections from one address at most (default 1024); raise it behind a reverse proxy */
    maxConnectionsPerSource?: number;
    /** optional: /v1/events streams to one address at most (default 32); the same */
    maxEventStreamsPerSource?: number;
  };
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
export const RAFT_DIR = 'raft';

export async function readNodeConfig(path: string): Promise<NodeConfig & { baseDir: string }> {
  const raw = JSON.parse(await readFile(path, 'utf8')) as NodeConfig;
  const baseDir = dirname(resolve(path));
  return { ...raw, baseDir };
}

const NODE_ID = /^[0-9a-f]{64}$/;

/** The first field of a node config (docs/OPERATIONS.md §A new network) that is missing or of the wrong type. */
export function configProblem(c: Record<string, unknown>): string | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const bad = (field: string, v: unknown, want: string) =>
    `field "${field}" ${v === undefined ? 'is missing' : 'is not ' + want}`;
  const text = (v: unknown) => typeof v === 'string' && v.length > 0;
  if (!isObject(c)) return 'not a JSON object';
  if (typeof c.nodeId !== 'string' || !NODE_ID.test(c.nodeId))
    return bad('nodeId', c.nodeId, 'a public key (64 lowercase hex digits)');
  for (const f of ['chainId', 'keyFile', 'dataDir', 'genesisFile'] as const)
    if (!text(c[f])) return bad(f, c[f], 'a non-empty string');
  const http = c.http;
  if (!isObject(http)) return bad('http', http, 'an object { host, port }');
  if (!text(http.host)) return bad('http.host', http.host, 'a host name or address');
  if (typeof http.port !== 'number' || !Number.isInteger(http.port) || http.port < 0 || http.port > 65535)
    return bad('http.port', http.port, 'a port number (0-65535)');
  for (const f of ['maxConnectionsPerSource', 'maxEventStreamsPerSource'] as const) {
    const v = http[f];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1))
      return bad(`http.${f}`, v, 'a positive integer');
  }
  const p2p = c.p2p;
  if (!isObject(p2p)) return bad('p2p', p2p, 'an object { listen }');
  if (!text(p2p.listen)) return bad('p2p.listen', p2p.listen, 'a multiaddr string');
  if (!Array.isArray(c.peers)) return bad('peers', c.peers, 'an array');
  for (const [i, p] of (c.peers as unknown[]).entries()) {
    if (!isObject(p)) return bad(`peers[${i}]`, p, 'an object { nodeId, http, p2p }');
    if (typeof p.nodeId !== 'string' || !NODE_ID.test(p.nodeId))
      return bad(`peers[${i}].nodeId`, p.nodeId, 'a public key (64 lowercase hex digits)');
    if (!text(p.http)) return bad(`peers[${i}].http`, p.http, 'a URL');
    if (!text(p.p2p)) return bad(`peers[${i}].p2p`, p.p2p, 'a multiaddr string');
  }
  for (const f of ['postgresUrl', 'pgliteSharedBuffers'] as const)
    if (c[f] !== undefined && !text(c[f])) return bad(f, c[f], 'a non-empty string');
  return undefined;
}

export function resolveIn(baseDir: string, p: string): string {
  return resolve(baseDir, p);
}
