import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createPromMetrics } from '../api/metrics.js';
import { buildApi } from '../api/server.js';
import { decodeBlock, parseBlock } from '../ledger/index.js';
import { NetworkConfigError, P2PNetwork } from '../network/index.js';
import { LevelStore } from '../storage/index.js';
import { LevelRaftStore } from '../storage/raft/index.js';
import { CHAIN_DIR, RAFT_DIR, configProblem, readNodeConfig, resolveIn, type NodeConfig } from './config.js';
import { readKeyFile } from './keyfile.js';
import { LedgerChain } from './ledger-chain.js';
import { LedgerNode, randomSeed } from './ledger-node.js';
import { WorkerMirror } from './mirror.js';

export const PGLITE_DIR = 'pglite';

export interface RunningNode {
  node: LedgerNode;
  api: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

/**
 * The composition root of a node process: config → key → genesis → stores →
 * network → node → HTTP API, started in that order and stopped in reverse.
 */
export interface RunOptions {
  /** mirror into this Postgres (with pgvector) instead of the embedded PGlite in the data directory */
  postgresUrl?: string;
  /** run without a Postgres mirror (no search) */
  noMirror?: boolean;
  /** an OpenAI-compatible /v1/embeddings server for the vector index, instead of the built-in hashing embedder */
  embedder?: { url: string; model: string; dimension: number };
  /** a stop asked for while the node starts: runNode closes what it opened and throws StartError STOPPED */
  signal?: AbortSignal;
}

/**
 * A node that cannot start for a reason its operator can fix: `bitnexus start`
 * prints it as `error CODE: message` (no stack trace). `STOPPED`: a stop was
 * asked for (RunOptions.signal) while the node started; everything opened so
 * far is closed again.
 */
export class StartError extends Error {
  override readonly name = 'StartError';
  constructor(
    readonly code: 'BAD_CONFIG' | 'BAD_GENESIS' | 'ADDRESS_IN_USE' | 'STORE_UNAVAILABLE' | 'STOPPED',
    message: string,
  ) {
    super(message);
  }
}

export async function runNode(
  configPath: string,
  logger: Logger,
  onFatal: (err: Error) => void,
  run: RunOptions = {},
): Promise<RunningNode> {
  const stopAsked = () => {
    if (run.signal?.aborted === true) throw new StartError('STOPPED', 'stopped while starting');
  };
  const config = await loadConfig(configPath);
  const keys = await readKeyFile(resolveIn(config.baseDir, config.keyFile));
  const nodeId = Buffer.from(keys.publicKey).toString('hex');
  if (nodeId !== config.nodeId)
    throw new StartError(
      'BAD_CONFIG',
      `${configPath}: "keyFile" ${config.keyFile} is the key of ${nodeId}, "nodeId" names ${config.nodeId}`,
    );
  const { genesis, members } = await loadGenesis(configPath, config);
  const dataDir = resolveIn(config.baseDir, config.dataDir);
  const log = logger.child({ node: nodeId.slice(0, 8) });
  stopAsked();

  // What is open so far, closed in reverse if the start fails or is stopped part way.
  const opened: (() => Promise<unknown>)[] = [];
  try {
    const inUse = (err: unknown) =>
      (err as { cause?: { code?: unknown } } | undefined)?.cause?.code === 'LEVEL_LOCKED'
        ? new StartError(
            'STORE_UNAVAILABLE',
            `${dataDir} is in use by another process (is this node running already?); it is "dataDir" in ${configPath}`,
          )
        : err;
    const chainStore = await LevelStore.open(join(dataDir, CHAIN_DIR)).catch((err: unknown) => {
      throw inUse(err);
    });
    opened.push(() => chainStore.close()); // closing the chain closes its store
    const chain = await LedgerChain.open(chainStore);
    stopAsked();
    const raftStore = await LevelRaftStore.open(join(dataDir, RAFT_DIR)).catch((err: unknown) => {
      throw inUse(err);
    });
    opened.push(() => raftStore.close());
    stopAsked();
    let network: P2PNetwork;
    try {
      network = new P2PNetwork({
        chainId: config.chainId,
        seed: keys.secretKey,
        listen: [config.p2p.listen],
        peers: config.peers.map((p) => ({ nodeId: p.nodeId, addrs: [p.p2p] })),
        members,
        logger: log,
      });
    } catch (err) {
      if (err instanceof NetworkConfigError)
        throw new StartError('BAD_CONFIG', `${configPath}: "p2p" or "peers": ${err.message}`);
      throw err;
    }
    const { metrics } = createPromMetrics({ labels: { node: nodeId.slice(0, 8) } });
    const node = await LedgerNode.create({
      nodeId,
      secretKey: keys.secretKey,
      genesis,
      chain,
      raftStore,
      network,
      logger: log,
      metrics,
      random: randomSeed(),
      onFatal,
      peers: config.peers.map((p) => p.nodeId),
    });
    opened.length = 0; // the node closes the network and both stores
    opened.push(() => node.stop());
    stopAsked();
    // buildApi logs through its own child { module: 'api' }
    const api = buildApi(node, {
      logger: log,
      metrics,
      ...(config.http.maxConnectionsPerSource === undefined
        ? {}
        : { http: { maxConnectionsPerSource: config.http.maxConnectionsPerSource } }),
      ...(config.http.maxEventStreamsPerSource === undefined
        ? {}
        : { events: { maxStreamsPerSource: config.http.maxEventStreamsPerSource } }),
    });
    opened.push(() => api.close());
    try {
      await node.start();
    } catch (err) {
      throw listenError(err, configPath, 'p2p.listen', config.p2p.listen);
    }
    stopAsked();
    try {
      await api.listen({ host: config.http.host, port: config.http.port });
    } catch (err) {
      throw listenError(err, configPath, 'http', `${config.http.host}:${config.http.port}`);
    }
    stopAsked();
    const url = `http://${config.http.host}:${config.http.port}`;
    log.info({ url, p2p: config.p2p.listen }, 'serving');
    const postgresUrl = run.postgresUrl ?? config.postgresUrl;
    // The mirror opens in the background: the node serves and takes part in consensus meanwhile.
    if (!run.noMirror) node.mirrorOpening();
    const mirrorOpening = run.noMirror
      ? Promise.resolve()
      : WorkerMirror.start(
          chain,
          log,
          {
            pgliteDir: join(dataDir, PGLITE_DIR),
            ...(postgresUrl === undefined ? {} : { postgresUrl }),
            ...(config.pgliteSharedBuffers === undefined
              ? {}
              : { pgliteSharedBuffers: config.pgliteSharedBuffers }),
            ...(run.embedder === undefined ? {} : { embedder: run.embedder }),
          },
          metrics,
        ).then(
          (m) => node.attachMirror(m),
          (err: unknown) => {
            node.mirrorFailed(err as Error);
            log.error({ err: (err as Error).message }, 'cannot open the Postgres mirror; running without it');
          },
        );
    return {
      node,
      api,
      url,
      async stop() {
        await api.close();
        await mirrorOpening;
        await node.stop();
      },
    };
  } catch (err) {
    for (const close of opened.reverse()) {
      await close().catch((e: unknown) =>
        log.warn({ err: (e as Error).message }, 'error while closing after a failed start'),
      );
    }
    throw err;
  }
}

/** The config file, checked field by field so that a bad one is named, not a TypeError later. */
async function loadConfig(path: string): Promise<NodeConfig & { baseDir: string }> {
  let config: NodeConfig & { baseDir: string };
  try {
    config = await readNodeConfig(path);
  } catch (err) {
    if (err instanceof SyntaxError)
      throw new StartError('BAD_CONFIG', `${path} is not valid JSON: ${err.message.replace(/\s+/g, ' ')}`);
    const code = (err as NodeJS.ErrnoException).code;
    throw new StartError(
      'BAD_CONFIG',
      `cannot read config ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`,
    );
  }
  const problem = configProblem(config as unknown as Record<string, unknown>);
  if (problem !== undefined)
    throw new StartError('BAD_CONFIG', `${path}: ${problem} (bitnexus init writes a complete config)`);
  return config;
}

async function loadGenesis(configPath: string, config: NodeConfig & { baseDir: string }) {
  const path = resolveIn(config.baseDir, config.genesisFile);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StartError(
      'BAD_CONFIG',
      `${configPath}: "genesisFile" ${config.genesisFile}: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(err))}`,
    );
  }
  let genesis: ReturnType<typeof decodeBlock>;
  try {
    genesis = decodeBlock(parseBlock(JSON.parse(text)));
  } catch (err) {
    throw new StartError('BAD_GENESIS', `${path} is not a genesis block: ${(err as Error).message}`);
  }
  if (genesis.block.config?.chainId !== config.chainId)
    throw new StartError(
      'BAD_CONFIG',
      `${configPath}: "chainId" is ${config.chainId}, but ${path} is the genesis of ${genesis.block.config?.chainId ?? 'no network (no config)'}`,
    );
  return { genesis, members: genesis.block.config.members };
}

/** A listen failure as the operator can act on it: which address of which config is taken. */
function listenError(err: unknown, configPath: string, field: string, address: string): unknown {
  const text = err instanceof Error ? err.message : String(err);
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  const what = field === 'http' ? 'HTTP' : 'libp2p';
  if (code === 'EADDRINUSE' || /\bEADDRINUSE\b/.test(text))
    return new StartError(
      'ADDRESS_IN_USE',
      `${what} address ${address} is already in use (another process listens there); it is "${field}" in ${configPath}`,
    );
  for (const [c, why] of [
    ['EADDRNOTAVAIL', 'not an address of this machine'],
    ['EACCES', 'not permitted'],
  ] as const) {
    if (code === c || new RegExp(`\\b${c}\\b`).test(text))
      return new StartError(
        'BAD_CONFIG',
        `cannot listen on ${what} address ${address} (${why}); it is "${field}" in ${configPath}`,
      );
  }
  return err;
}
