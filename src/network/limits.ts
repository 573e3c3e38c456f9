import { NetworkConfigError } from './errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Every bound the network layer enforces. Defaults are sized for a handful of
 * validators on a LAN or WAN; docs/NETWORK.md §Limits explains each one.
 */
export interface NetworkLimits {
  /** largest Raft frame accepted or sent */
  maxRaftFrameBytes: number;
  /** per-peer outbound Raft queue: frames; the oldest frame is dropped when full */
  raftQueueFrames: number;
  /** per-peer outbound Raft queue: bytes (at least maxRaftFrameBytes) */
  raftQueueBytes: number;
  /** a Raft frame write that waits longer than this for the peer to drain aborts the stream */
  raftWriteTimeoutMs: number;
  /** largest gossiped transaction */
  maxTxBytes: number;
  /**
   * largest submit request frame: the largest valid request with margin (a
   * signed transaction is at most 8 KiB; the HTTP API takes 64 KiB)
   */
  maxSubmitRequestBytes: number;
  /**
   * concurrent submit streams on one connection of a non-member (a member, whose
   * follower asks its leader 8 questions at once, gets 16)
   */
  maxSubmitStreamsPerConnection: number;
  /**
   * submit request bytes in flight, all streams together: `maxSubmitRequestBytes`
   * for each request still being read, its own size for one being answered. A new
   * submit stream of a non-member that would pass it is refused with BUSY.
   */
  maxSubmitBufferBytes: number;
  /** largest submit response frame */
  maxSubmitResponseBytes: number;
  /** time a submitter has to send its request frame once the stream is open, and to take the response */
  submitIoTimeoutMs: number;
  /** time the submit handler has to answer */
  submitHandlerTimeoutMs: number;
  /** largest single block frame */
  maxBlockBytes: number;
  /** total bytes of blocks in one block-range response; a server sends a shorter range past it */
  maxBlockResponseBytes: number;
  /** time for a whole block-range exchange, client and server side */
  blockRequestTimeoutMs: number;
  /** timeout for one dial (connection or protocol stream) */
  dialTimeoutMs: number;
  /** first and largest delay between redials of a static peer or reopenings of a Raft stream */
  redialMinMs: number;
  redialMaxMs: number;
  /** refusals, bad frames and drops are logged at most once per peer per interval */
  logIntervalMs: number;
  /** new inbound connections per second from one host before libp2p refuses more */
  inboundConnectionsPerSecond: number;
  /**
   * libp2p connection-manager ceiling: libp2p refuses every inbound connection
   * once this many are open. Kept above `maxNonMemberConnections`, so the
   * difference is always room for members and static peers.
   */
  maxConnections: number;
  /** open connections of peers that are neither members nor static peers, all addresses together */
  maxNonMemberConnections: number;
  /** open connections of non-member peers from one IPv4 address or one IPv6 /64 */
  maxNonMemberConnectionsPerIp: number;
  /**
   * a non-member connection with no submit stream in progress is closed once it
   * has been idle this long: after it opened, or after its last submit exchange
   */
  nonMemberIdleMs: number;
  /**
   * how long libp2p's peer store keeps an address, counted from when it was
   * first seen (libp2p's default is one hour). Members are redialed at the
   * addresses they last announced (identify), which do not depend on it.
   */
  peerAddressAgeMs: number;
}

/** Blocks per block-range request; a protocol constant, not a tunable. */
export const MAX_BLOCKS_PER_REQUEST = 512;

/**
 * Largest yamux receive window of one stream on this node's host (yamux's own
 * default is 16 MiB). A peer may send no more than the window before we grant
 * more, so no muxer message handed to a stream reader is larger than this; a
 * reader of back-to-back frames must buffer one frame plus one such message
 * (framing.ts `framed`). At 4 MiB a stream still moves 40 MiB/s over a 100 ms
 * round trip.
 */
export const MAX_STREAM_WINDOW_BYTES = 4 * MiB;

/**
 * Streams a connection may open before our end has finished setting it up
 * (yamux buffers them until then). Past this yamux aborts the whole
 * connection (MaxEarlyStreamsError); its default, 10, was passed on a loaded
 * machine by a follower's asks to its leader right after connecting, beside
 * identify, Raft and gossip. Each early stream holds at most yamux's initial
 * window (256 KiB) unread: 8 MiB per connection at most.
 */
export const MAX_EARLY_STREAMS = 32;

export const DEFAULT_LIMITS: Readonly<NetworkLimits> = Object.freeze({
  maxRaftFrameBytes: 16 * MiB,
  raftQueueFrames: 1024,
  raftQueueBytes: 64 * MiB,
  raftWriteTimeoutMs: 30_000,
  maxTxBytes: 128 * KiB,
  maxSubmitRequestBytes: 64 * KiB,
  maxSubmitStreamsPerConnection: 4,
  maxSubmitBufferBytes: 16 * MiB,
  maxSubmitResponseBytes: 1 * MiB,
  submitIoTimeoutMs: 5_000,
  submitHandlerTimeoutMs: 30_000,
  maxBlockBytes: 16 * MiB,
  maxBlockResponseBytes: 64 * MiB,
  blockRequestTimeoutMs: 60_000,
  dialTimeoutMs: 5_000,
  redialMinMs: 250,
  redialMaxMs: 30_000,
  logIntervalMs: 10_000,
  inboundConnectionsPerSecond: 25,
  maxConnections: 200,
  maxNonMemberConnections: 128,
  maxNonMemberConnectionsPerIp: 8,
  nonMemberIdleMs: 5_000,
  peerAddressAgeMs: 60 * 60 * 1000,
});

export function resolveLimits(overrides: Partial<NetworkLimits> = {}): NetworkLimits {
  const limits: NetworkLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof NetworkLimits, unknown][]) {
    if (!(key in DEFAULT_LIMITS)) {
      throw new NetworkConfigError('BAD_LIMIT', `unknown network limit ${String(key)}`);
    }
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new NetworkConfigError('BAD_LIMIT', `network limit ${key} must be a positive integer`);
    }
    limits[key] = value;
  }
  if (limits.raftQueueBytes < limits.maxRaftFrameBytes) {
    throw new NetworkConfigError('BAD_LIMIT', 'raftQueueBytes must be at least maxRaftFrameBytes');
  }
  if (limits.maxBlockResponseBytes < limits.maxBlockBytes) {
    throw new NetworkConfigError('BAD_LIMIT', 'maxBlockResponseBytes must be at least maxBlockBytes');
  }
  if (limits.maxSubmitBufferBytes < limits.maxSubmitRequestBytes) {
    throw new NetworkConfigError('BAD_LIMIT', 'maxSubmitBufferBytes must be at least maxSubmitRequestBytes');
  }
  if (limits.maxNonMemberConnections >= limits.maxConnections) {
    throw new NetworkConfigError(
      'BAD_LIMIT',
      'maxNonMemberConnections must be below maxConnections (the rest is room for members)',
    );
  }
  if (limits.redialMaxMs < limits.redialMinMs) {
    throw new NetworkConfigError('BAD_LIMIT', 'redialMaxMs must be at least redialMinMs');
  }
  return limits;
}

/** Exponential backoff with jitter: attempt 1 waits about `min`, doubling up to `max`. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(base * (0.5 + Math.random() / 2));
}
