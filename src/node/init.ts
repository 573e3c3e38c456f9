import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toHex } from '../codec/index.js';
import { generateKeyPair } from '../crypto/index.js';
import {
  createGenesisBlock,
  decodeBlock,
  DEFAULT_PARAMS,
  encodeBlock,
  type GenesisConfig,
} from '../ledger/index.js';
import { bootstrapState } from '../consensus/index.js';
import { LevelStore } from '../storage/index.js';
import { LevelRaftStore } from '../storage/raft/index.js';
import { CHAIN_DIR, RAFT_DIR, type NodeConfig } from './config.js';
import { writeKeyFile } from './keyfile.js';
import { LedgerChain } from './ledger-chain.js';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export interface InitOptions {
  dir: string;
  nodes: number;
  chainId: string;
  /** node i (1-based) listens on HTTP basePort + 2(i−1) and libp2p basePort + 2(i−1) + 1 */
  basePort: number;
  now?: number;
  /**
   * Host names the nodes reach each other by (containers, separate machines),
   * one per node. When given, nodes listen on all interfaces and dial peers at
   * /dns4/<host>/tcp/<port> (/ip4/ for an IPv4 address); otherwise
   * everything is on 127.0.0.1.
   */
  hosts?: string[];
}

export interface InitResult {
  chainId: string;
  genesisHash: string;
  operator: string;
  nodes: { name: string; nodeId: string; config: string; http: string; p2p: string }[];
}

export class InitError extends Error {
  override readonly name = 'InitError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A new network on disk:
 *   DIR/operator.key          the first operator's key (keep it offline)
 *   DIR/genesis.json          the genesis block (config + operator signature)
 *   DIR/node-<i>/node.key     node i's key; its public key is a Raft member and signs blocks
 *   DIR/node-<i>/config.json  node i's config (ports, peers)
 *   DIR/node-<i>/data/chain   node i's chain store, holding genesis
 */
/**
 * A founding member's first Raft state (genesis's members at index 1, the
 * state RaftNode builds at bootstrap), written ahead of its first start: a
 * node that finds its Raft store empty waits to be sent the log, so one whose
 * data was lost cannot found the network a second time (docs/OPERATIONS.md).
 */
export async function writeFoundingRaftState(dataDir: string, members: readonly string[]): Promise<void> {
  const raft = await LevelRaftStore.open(join(dataDir, RAFT_DIR));
  try {
    await raft.save(bootstrapState({ voters: [...members], learners: [] }));
  } finally {
    await raft.close();
  }
}

/**
 * Why `basePort` cannot serve `nodes` nodes (each uses 2 ports, the last of
 * them at most 65535; ports below 1024 need privileges), or undefined.
 */
export function basePortProblem(basePort: number, nodes: number): string | undefined {
  const min = 1024;
  const max = 65536 - 2 * nodes;
  if (Number.isInteger(basePort) && basePort >= min && basePort <= max) return undefined;
  return `--base-port must be between ${min} and ${max} for ${nodes} node${nodes === 1 ? '' : 's'} (2 ports each), got ${basePort}`;
}

export async function initNetwork(opts: InitOptions): Promise<InitResult> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 99) {
    throw new InitError('INVALID_ARGUMENT', '--nodes must be an integer from 1 to 99');
  }
  const portProblem = basePortProblem(opts.basePort, opts.nodes);
  if (portProblem !== undefined) throw new InitError('INVALID_ARGUMENT', portProblem);
  if (opts.hosts !== undefined && opts.hosts.length !== opts.nodes) {
    throw new InitError(
      'INVALID_ARGUMENT',
      `--hosts names ${opts.hosts.length} hosts for ${opts.nodes} nodes`,
    );
  }
  const genesisPath = join(opts.dir, 'genesis.json');
  if (await exists(genesisPath)) {
    throw new InitError('ALREADY_INITIALISED', `${genesisPath} exists: ${opts.dir} already holds a network`);
  }
  // Every file init writes is checked first: finding one half way would leave a half-made folder
  // (an operator key written, say) that the next attempt then refuses.
  const targets = [join(opts.dir, 'operator.key')];
  for (let i = 1; i <= opts.nodes; i++)
    targets.push(join(opts.dir, `node-${i}`, 'node.key'), join(opts.dir, `node-${i}`, 'config.json'));
  for (const path of targets) {
    if (await exists(path))
      throw new InitError(
        'FILE_EXISTS',
        `${path} exists; init refuses to overwrite it (use an empty folder)`,
      );
  }
  await mkdir(opts.dir, { recursive: true });
  const operator = await writeKeyFile(join(opts.dir, 'operator.key'));
  const nodes = [];
  for (let i = 1; i <= opts.nodes; i++) {
    const name = `node-${i}`;
    await mkdir(join(opts.dir, name, 'data'), { recursive: true });
    const keys = await writeKeyFile(join(opts.dir, name, 'node.key'), generateKeyPair());
    const httpPort = opts.basePort + 2 * (i - 1);
    const host = opts.hosts?.[i - 1];
    nodes.push({
      name,
      nodeId: toHex(keys.publicKey),
      http: { host: host === undefined ? '127.0.0.1' : '0.0.0.0', port: httpPort },
      p2p: `/ip4/${host === undefined ? '127.0.0.1' : '0.0.0.0'}/tcp/${httpPort + 1}`,
      dialHttp: `http://${host ?? '127.0.0.1'}:${httpPort}`,
      dialP2p:
        host === undefined
          ? `/ip4/127.0.0.1/tcp/${httpPort + 1}`
          : `/${IPV4.test(host) ? 'ip4' : 'dns4'}/${host}/tcp/${httpPort + 1}`,
    });
  }
  const config: GenesisConfig = {
    chainId: opts.chainId,
    createdAt: opts.now ?? Date.now(),
    operators: [toHex(operator.publicKey)],
    members: nodes.map((n) => n.nodeId),
    params: { ...DEFAULT_PARAMS },
  };
  const genesis = createGenesisBlock(config, operator.secretKey);
  await writeFile(genesisPath, Buffer.from(encodeBlock(genesis)));
  const decoded = decodeBlock(genesis);
  for (const n of nodes) {
    const nodeConfig: NodeConfig = {
      nodeId: n.nodeId,
      chainId: opts.chainId,
      keyFile: 'node.key',
      dataDir: 'data',
      genesisFile: '../genesis.json',
      http: n.http,
      p2p: { listen: n.p2p },
      peers: nodes
        .filter((p) => p !== n)
        .map((p) => ({ nodeId: p.nodeId, http: p.dialHttp, p2p: p.dialP2p })),
    };
    await writeFile(join(opts.dir, n.name, 'config.json'), JSON.stringify(nodeConfig, null, 2) + '\n');
    const chain = await LedgerChain.open(await LevelStore.open(join(opts.dir, n.name, 'data', CHAIN_DIR)));
    try {
      await chain.commit(decoded);
    } finally {
      await chain.close();
    }
    await writeFoundingRaftState(join(opts.dir, n.name, 'data'), config.members);
  }
  return {
    chainId: opts.chainId,
    genesisHash: decoded.hash,
    operator: toHex(operator.publicKey),
    nodes: nodes.map((n) => ({
      name: n.name,
      nodeId: n.nodeId,
      config: join(opts.dir, n.name, 'config.json'),
      http: n.dialHttp,
      p2p: n.dialP2p,
    })),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
