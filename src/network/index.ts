// network/: the libp2p host of a ledger node and the BitNexus protocols on it
// (docs/NETWORK.md). Above this folder everything speaks node ids (hex Ed25519
// public keys); PeerIds stay inside.
export { P2PNetwork, type NetworkStats } from './p2p-network.js';
export type { NetworkConfig, StaticPeer } from './config.js';
export {
  DEFAULT_LIMITS,
  MAX_BLOCKS_PER_REQUEST,
  MAX_STREAM_WINDOW_BYTES,
  type NetworkLimits,
} from './limits.js';
export { submitOverP2P, type SubmitOptions } from './submit-client.js';
export { checkSubmitAddress } from './config.js';
export type { SubmitHandler } from './submit-service.js';
export type { BlockRangeHandler } from './block-sync.js';
export type { RaftFrameHandler, RaftTransportStats } from './raft-transport.js';
export { joinBatch, splitBatch, type TxHandler, type TxGossipStats } from './tx-gossip.js';
export type { MemberConnectionHandler } from './member-presence.js';
export {
  isNodeId,
  nodeIdFromPeerId,
  nodeIdFromSeed,
  peerIdFromNodeId,
  privateKeyFromSeed,
} from './identity.js';
export { RAFT_PROTOCOL, SUBMIT_PROTOCOL, BLOCKS_PROTOCOL, txTopic } from './protocols.js';
export {
  FrameTooLargeError,
  NetworkConfigError,
  NetworkStateError,
  NotMemberError,
  PeerUnreachableError,
  ProtocolViolationError,
  RemoteError,
  RequestTimeoutError,
} from './errors.js';
