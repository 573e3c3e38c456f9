import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { identify, type Identify } from '@libp2p/identify';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import type { ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface';
import { createLibp2p } from 'libp2p';
import { MAX_EARLY_STREAMS, MAX_STREAM_WINDOW_BYTES, type NetworkLimits } from './limits.js';

export interface HostServices extends Record<string, unknown> {
  identify: Identify;
  ping: Ping;
  pubsub: GossipSub;
}

export type Host = Libp2p<HostServices>;

export interface HostOptions {
  privateKey: PrivateKey;
  listen: readonly string[];
  gater: ConnectionGater;
  limits: NetworkLimits;
  /** gossipsub application score of a peer (by peer id string); see `memberGossipScore` */
  gossipPeerScore: (peerId: string) => number;
}

/** Extra room in one gossipsub RPC beyond the transaction itself (signature, key, topic, control). */
const GOSSIP_RPC_OVERHEAD = 64 * 1024;

/**
 * The libp2p host of a ledger node: TCP + Noise + Yamux, identify, ping (the
 * connection monitor pings every peer and aborts dead connections), and
 * gossipsub. It is created stopped; the caller registers its protocols, then
 * starts it.
 */
export async function createHost(options: HostOptions): Promise<Host> {
  const { limits } = options;
  const socket = { noDelay: true, keepAlive: true };
  return createLibp2p<HostServices>({
    start: false,
    privateKey: options.privateKey,
    addresses: { listen: [...options.listen] },
    transports: [tcp({ dialOpts: socket, listenOpts: socket })],
    connectionEncrypters: [noise()],
    // A stream's receive window bounds the muxer messages its reader is handed (framing.ts).
    streamMuxers: [
      yamux({
        streamOptions: { maxStreamWindowSize: MAX_STREAM_WINDOW_BYTES },
        maxEarlyStreams: MAX_EARLY_STREAMS,
      }),
    ],
    connectionGater: options.gater,
    // libp2p's default (one hour, counted from an address's first sighting) unless configured;
    // members' addresses come from the dialer's own book instead (peer-dialer.ts).
    peerStore: { maxAddressAge: limits.peerAddressAgeMs },
    connectionManager: {
      // Above maxNonMemberConnections (connection-guard.ts): the rest is room for members.
      maxConnections: limits.maxConnections,
      dialTimeout: limits.dialTimeoutMs,
      inboundConnectionThreshold: limits.inboundConnectionsPerSecond,
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // With 3-7 validators every publish goes straight to every subscribed
        // peer, not only to the mesh: a transaction must reach the leader.
        floodPublish: true,
        // A single-node network, or one whose peers are all down, still works.
        allowPublishToZeroTopicPeers: true,
        // No floodsub: every node speaks gossipsub, and one gossip protocol family is easier to gate.
        fallbackToFloodsub: false,
        emitSelf: false,
        // Transaction batches are not signed per message: members are authenticated by Noise and
        // every transaction carries its own client signature (see tx-gossip.ts).
        globalSignaturePolicy: 'StrictNoSign',
        maxInboundDataLength: Math.max(4 * 1024 * 1024, limits.maxTxBytes + GOSSIP_RPC_OVERHEAD),
        scoreParams: { appSpecificScore: options.gossipPeerScore, appSpecificWeight: 1 },
      }),
    },
  });
}

/**
 * Gossipsub application score: 0 for members, far below the graylist
 * threshold (-80) for anyone else. A graylisted peer's RPCs are ignored, it is
 * never published to (publish threshold -50) and never grafted into the mesh,
 * so gossip is members-only in both directions. Scores are cached for one
 * heartbeat (1 s), so a membership change takes effect within about a second.
 */
export function memberGossipScore(isMember: (peerId: string) => boolean): (peerId: string) => number {
  return (peerId) => (isMember(peerId) ? 0 : NON_MEMBER_GOSSIP_SCORE);
}

const NON_MEMBER_GOSSIP_SCORE = -1000;
