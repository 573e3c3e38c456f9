import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createPromMetrics } from '../api/metrics.js';
import { buildApi } from '../api/server.js';
import { decodeBlock, parseBlock } from '../ledger/index.js';
import { P2PNetwork } from '../network/index.js';
import { LevelStore } from '../storage/index.js';
import { LevelRaftStore } from '../storage/raft/index.js';
import { CHAIN_DIR, readNodeConfig, resolveIn } from './config.js';
import { readKeyFile } from './keyfile.js';
import { LedgerChain } from './ledger-chain.js';
import { LedgerNode, randomSeed } from './ledger-node.js';
import { WorkerMirror } from './mirror.js';

export const RAFT_DIR = 'raft';
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
}

export async function runNode(
  configPath: string,
  logger: Logger,
  onFatal: (err: Error) => void,
  run: RunOptions = {},
): Promise<RunningNode> {
  const config = await readNodeConfig(configPath);
  const keys = await readKeyFile(resolveIn(config.baseDir, config.keyFile));
  const nodeId = Buffer.from(keys.publicKey).toString('hex');
  if (nodeId !== config.nodeId)
    throw new Error(`${config.keyFile} is the key of ${nodeId}, the config names ${config.nodeId}`);
  const genesisPath = resolveIn(config.baseDir, config.genesisFile);
  const genesis = decodeBlock(parseBlock(JSON.parse(await readFile(genesisPath, 'utf8'))));
  if (genesis.block.config?.chainId !== config.chainId)
    throw new Error(`${genesisPath} is not the genesis of ${config.chainId}`);
  const dataDir = resolveIn(config.baseDir, config.dataDir);
  const log = logger.child({ node: nodeId.slice(0, 8) });

  const chain = await LedgerChain.open(await LevelStore.open(join(dataDir, CHAIN_DIR)));
  const raftStore = await LevelRaftStore.open(join(dataDir, RAFT_DIR));
  const network = new P2PNetwork({
    chainId: config.chainId,
    seed: keys.secretKey,
    listen: [config.p2p.listen],
    peers: config.peers.map((p) => ({ nodeId: p.nodeId, addrs: [p.p2p] })),
    members: genesis.block.config.members,
    logger: log,
  });
  const { metrics } = createPromMetrics({ labels: { node: nodeId.slice(0, 8) } });
  const postgresUrl = run.postgresUrl ?? config.postgresUrl;
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
  });
  const api = buildApi(node, { logger: log.child({ module: 'api' }), metrics });
  await node.start();
  await api.listen({ host: config.http.host, port: config.http.port });
  const url = `http://${config.http.host}:${config.http.port}`;
  log.info({ url, p2p: config.p2p.listen }, 'serving');
  // The mirror opens in the background: the node serves and takes part in consensus meanwhile.
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
        (err: unknown) =>
          log.error({ err: (err as Error).message }, 'cannot open the Postgres mirror; running without it'),
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
}
