import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from 'pino';
import { NetworkConfigError } from './errors.js';
import { assertNodeId, peerIdFromNodeId } from './identity.js';
import type { NetworkLimits } from './limits.js';

/** A peer from the static bootstrap list: its node id and where to dial it. */
export interface StaticPeer {
  nodeId: string;
  /** multiaddrs, with or without a trailing /p2p/<peer id> */
  addrs: readonly string[];
}

export interface NetworkConfig {
  /** the network's chain id; names the transaction gossip topic */
  chainId: string;
  /** the 32-byte Ed25519 seed of this node's key (from its key file) */
  seed: Uint8Array;
  /** multiaddrs to listen on, e.g. /ip4/127.0.0.1/tcp/7101 (tcp/0 picks a free port) */
  listen: readonly string[];
  /** static bootstrap list; these peers are redialled with backoff for as long as the node runs */
  peers: readonly StaticPeer[];
  /** node ids allowed to speak Raft, serve and fetch blocks, and gossip transactions */
  members: readonly string[];
  /** the node's logger; the network logs through `logger.child({ module: 'network' })` */
  logger: Logger;
  limits?: Partial<NetworkLimits>;
  /** the node's shutdown signal; when it aborts, the network stops (as by `stop()`) */
  signal?: AbortSignal;
}

/** A static peer resolved for dialing: every address ends with this peer's /p2p/ id. */
export interface DialablePeer {
  nodeId: string;
  peerId: PeerId;
  addrs: Multiaddr[];
}

export function parseMultiaddr(address: string): Multiaddr {
  try {
    return multiaddr(address);
  } catch (err) {
    throw new NetworkConfigError('BAD_MULTIADDR', `${address} is not a multiaddr: ${String(err)}`);
  }
}

/** The /p2p/ component of a multiaddr, if any. */
export function peerIdStringOf(address: Multiaddr): string | undefined {
  return address.getComponents().find((c) => c.name === 'p2p')?.value;
}

/**
 * A node address to submit to (`bitnexus submit --p2p`): a multiaddr whose
 * /p2p/ part, if any, is a peer id. Checked before dialling: libp2p reports
 * a bad peer id only as a bare decoding error once it dials.
 */
export function checkSubmitAddress(address: string): void {
  const peer = peerIdStringOf(parseMultiaddr(address));
  if (peer === undefined) return;
  try {
    peerIdFromString(peer);
  } catch {
    throw new NetworkConfigError('BAD_MULTIADDR', `${JSON.stringify(peer)} in ${address} is not a peer id`);
  }
}

export function resolveStaticPeers(peers: readonly StaticPeer[], selfNodeId: string): DialablePeer[] {
  const byNode = new Map<string, DialablePeer>();
  for (const peer of peers) {
    assertNodeId(peer.nodeId, 'peers[].nodeId');
    if (peer.nodeId === selfNodeId) continue;
    const peerId = peerIdFromNodeId(peer.nodeId);
    const entry = byNode.get(peer.nodeId) ?? { nodeId: peer.nodeId, peerId, addrs: [] };
    for (const address of peer.addrs) {
      let ma = parseMultiaddr(address);
      const named = peerIdStringOf(ma);
      if (named === undefined) {
        ma = ma.encapsulate(`/p2p/${peerId.toString()}`);
      } else if (named !== peerId.toString()) {
        throw new NetworkConfigError(
          'BAD_MULTIADDR',
          `${address} names peer ${named}, but node ${peer.nodeId} is ${peerId.toString()}`,
        );
      }
      entry.addrs.push(ma);
    }
    byNode.set(peer.nodeId, entry);
  }
  return [...byNode.values()];
}
