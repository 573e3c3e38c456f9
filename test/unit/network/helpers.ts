// Shared helpers for the network tests: real libp2p nodes over loopback TCP
// with OS-assigned ports, a pino logger that keeps its lines for assertions,
// and polling with a deadline instead of fixed sleeps.
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { createLibp2p } from 'libp2p';
import { pino, type Logger } from 'pino';
import {
  P2PNetwork,
  nodeIdFromSeed,
  type NetworkConfig,
  type NetworkLimits,
} from '../../../src/network/index.js';

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A fixed, distinct 32-byte seed per test identity. */
export function seed(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

export function nodeIdOf(n: number): string {
  return nodeIdFromSeed(seed(n));
}

export interface LogLine {
  level: number;
  msg: string;
  peer?: string;
  nodeId?: string;
  protocol?: string;
  [key: string]: unknown;
}

/** A pino logger at debug level that records every line as parsed JSON. */
export function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { logger, lines };
}

/** Limits that keep the tests quick: short timeouts, fast redials. */
export const TEST_LIMITS: Partial<NetworkLimits> = {
  redialMinMs: 50,
  redialMaxMs: 500,
  dialTimeoutMs: 2_000,
  submitIoTimeoutMs: 1_500,
  submitHandlerTimeoutMs: 400,
  inboundConnectionsPerSecond: 1_000,
  logIntervalMs: 60_000,
};

export const CHAIN_ID = 'bitnexus-test';

export interface TestNode {
  net: P2PNetwork;
  lines: LogLine[];
  /** frames received: "<from>" -> payload strings in arrival order */
  raft: Map<string, string[]>;
  txs: { from: string; tx: string }[];
}

export async function startNode(
  n: number,
  options: Partial<Omit<NetworkConfig, 'seed' | 'logger'>> & { members: string[] },
): Promise<TestNode> {
  const { logger, lines } = capturingLogger();
  const net = new P2PNetwork({
    chainId: CHAIN_ID,
    seed: seed(n),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    peers: [],
    logger,
    ...options,
    limits: { ...TEST_LIMITS, ...options.limits },
  });
  const node: TestNode = { net, lines, raft: new Map(), txs: [] };
  net.onRaftFrame((from, frame) => {
    const list = node.raft.get(from) ?? [];
    list.push(text(frame));
    node.raft.set(from, list);
  });
  net.onTx((from, tx) => node.txs.push({ from, tx: text(tx) }));
  await net.start();
  return node;
}

/** A bare dial-only libp2p node, for playing a misbehaving peer. */
export async function rawClient(privateKey?: PrivateKey): Promise<Libp2p> {
  return createLibp2p({
    ...(privateKey === undefined ? {} : { privateKey }),
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
  });
}

/** Polls `condition` every 20 ms until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function hasLog(lines: LogLine[], match: (line: LogLine) => boolean): boolean {
  return lines.some(match);
}
