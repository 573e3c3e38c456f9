import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { LengthPrefixedStream } from '@libp2p/utils';
import type { Logger } from 'pino';
import { FrameTooLargeError, NotMemberError } from './errors.js';
import { FrameQueue } from './frame-queue.js';
import { closeStream, framed, isEndOfStream } from './framing.js';
import { nodeIdFromPeerId, peerIdFromNodeId } from './identity.js';
import { backoffDelay, type NetworkLimits } from './limits.js';
import type { MembershipGate } from './membership.js';
import { RAFT_PROTOCOL } from './protocols.js';
import type { LogRateLimiter } from '../util/rate-limited-log.js';
import { deadline, toError, Wakeup } from './wait.js';

export type RaftFrameHandler = (from: string, frame: Uint8Array) => void;

export interface RaftTransportComponents {
  host: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'addEventListener' | 'removeEventListener'>;
  gate: MembershipGate;
  logger: Logger;
  limits: NetworkLimits;
  /** aborts on network shutdown */
  signal: AbortSignal;
  /** rate limit for per-peer warnings (bad frames, failed streams) */
  warnings: LogRateLimiter;
  /** receives every frame from a member, in order per sender */
  deliver: RaftFrameHandler;
}

/** Counters since start; Raft tolerates loss, but an operator wants to see it. */
export interface RaftTransportStats {
  framesSent: number;
  framesReceived: number;
  /** dropped because a peer's outbound queue was full (oldest dropped first) */
  droppedQueueFull: number;
  /** dropped because the frame is larger than maxRaftFrameBytes */
  droppedTooLarge: number;
  /** dropped because the destination is not a member */
  droppedNotMember: number;
  /** dropped because the stream failed while the frame was being written, or on shutdown */
  droppedStreamFailed: number;
  /** inbound streams aborted for a garbage or oversized frame */
  badInboundFrames: number;
  /** inbound streams refused because the peer is not a member */
  refusedInbound: number;
}

/** One write carries at most this many frames, or stops once it reaches this many bytes. */
const BATCH_FRAMES = 64;
const BATCH_BYTES = 1024 * 1024;

/** A stream the peer closes sooner than this after opening counts as a failure (backoff applies). */
const SHORT_LIVED_STREAM_MS = 1_000;

/** An idle outbound link wakes this often to notice shutdown or a dead stream. */
const IDLE_WAIT_MS = 30_000;

/**
 * `/bitnexus/raft/1.0.0`: opaque Raft frames between members. Each peer gets
 * one long-lived outbound stream fed from a bounded queue by one writer loop,
 * so frames arrive in order per pair, `send` never blocks, and a slow peer
 * costs at most its queue. A failed stream is aborted and reopened with
 * backoff. Inbound streams from non-members are aborted; a garbage or
 * oversized frame aborts its stream, never the process.
 */
export class RaftTransport {
  readonly #links = new Map<string, RaftPeerLink>();
  readonly #inbound = new Map<string, Set<Stream>>();
  readonly stats: RaftTransportStats = {
    framesSent: 0,
    framesReceived: 0,
    droppedQueueFull: 0,
    droppedTooLarge: 0,
    droppedNotMember: 0,
    droppedStreamFailed: 0,
    badInboundFrames: 0,
    refusedInbound: 0,
  };

  constructor(private readonly components: RaftTransportComponents) {}

  /**
   * A peer that (re)connects is worth trying at once: its link may be sleeping
   * in a backoff grown while the peer was down (up to redialMaxMs), and a
   * cluster that already misses one node cannot commit until the frames flow.
   */
  readonly #onConnect = (evt: CustomEvent<PeerId>): void => {
    const nodeId = nodeIdFromPeerId(evt.detail);
    if (nodeId !== undefined) this.#links.get(nodeId)?.peerConnected();
  };

  async start(): Promise<void> {
    this.components.host.addEventListener('peer:connect', this.#onConnect);
    await this.components.host.handle(
      RAFT_PROTOCOL,
      (stream, connection) => this.#onInboundStream(stream, connection),
      // One stream per direction is the design; a few spare for reconnect races.
      { maxInboundStreams: 4, maxOutboundStreams: 4 },
    );
  }

  async stop(): Promise<void> {
    this.components.host.removeEventListener('peer:connect', this.#onConnect);
    await this.components.host.unhandle(RAFT_PROTOCOL);
    const links = [...this.#links.values()];
    this.#links.clear();
    await Promise.all(links.map((link) => link.close()));
    for (const streams of this.#inbound.values()) {
      for (const stream of streams) stream.abort(new Error('network stopping'));
    }
    this.#inbound.clear();
  }

  /**
   * Queues `frame` for `to`; never blocks and never throws. A frame over the
   * limit is dropped and logged (rate-limited): no peer would accept it, and a
   * throw inside the Raft driver's send loop would stall consensus.
   */
  send(to: string, frame: Uint8Array): void {
    const { gate, limits, logger, warnings } = this.components;
    if (frame.byteLength > limits.maxRaftFrameBytes) {
      this.stats.droppedTooLarge += 1;
      const admitted = warnings.admit('raft-too-large');
      if (admitted !== undefined) {
        const err = new FrameTooLargeError(frame.byteLength, limits.maxRaftFrameBytes, 'Raft frame');
        logger.error({ to, code: err.code, suppressed: admitted.suppressed }, `${err.message}; dropped`);
      }
      return;
    }
    if (!gate.has(to)) {
      this.stats.droppedNotMember += 1;
      return;
    }
    let link = this.#links.get(to);
    if (link === undefined) {
      link = new RaftPeerLink(to, this.components, this.stats);
      this.#links.set(to, link);
    }
    link.enqueue(frame);
  }

  /** Tears down links and inbound streams of peers that are no longer members. */
  forget(nodeIds: readonly string[]): void {
    for (const nodeId of nodeIds) {
      const link = this.#links.get(nodeId);
      if (link !== undefined) {
        this.#links.delete(nodeId);
        void link.close();
      }
      for (const stream of this.#inbound.get(nodeId) ?? []) {
        stream.abort(new NotMemberError(`${nodeId} left the membership`));
      }
      this.#inbound.delete(nodeId);
    }
  }

  /** Frames waiting per peer, for status output. */
  queued(): Record<string, number> {
    return Object.fromEntries([...this.#links].map(([nodeId, link]) => [nodeId, link.queued]));
  }

  async #onInboundStream(stream: Stream, connection: Connection): Promise<void> {
    const { gate, limits, signal, logger, deliver } = this.components;
    const peer = connection.remotePeer;
    const nodeId = nodeIdFromPeerId(peer);
    if (nodeId === undefined || !gate.admit(peer, RAFT_PROTOCOL)) {
      this.stats.refusedInbound += 1;
      stream.abort(new NotMemberError('not a member'));
      return;
    }
    const streams = this.#inbound.get(nodeId) ?? new Set<Stream>();
    streams.add(stream);
    this.#inbound.set(nodeId, streams);
    const lp = framed(stream, limits.maxRaftFrameBytes, { consecutive: true });
    try {
      while (!signal.aborted) {
        const frame = await lp.read({ signal });
        this.stats.framesReceived += 1;
        deliver(nodeId, frame.subarray());
      }
    } catch (err) {
      if (isEndOfStream(err, stream)) {
        logger.debug({ nodeId }, 'inbound Raft stream ended');
        await closeStream(stream, signal);
      } else if (!signal.aborted && stream.status === 'open') {
        this.stats.badInboundFrames += 1;
        this.#warn(peer, nodeId, err, 'bad inbound Raft frame; stream aborted');
        stream.abort(toError(err));
      }
    } finally {
      streams.delete(stream);
      if (streams.size === 0 && this.#inbound.get(nodeId) === streams) this.#inbound.delete(nodeId);
    }
  }

  #warn(peer: PeerId, nodeId: string, err: unknown, msg: string): void {
    const admitted = this.components.warnings.admit(`raft:${peer.toString()}`);
    if (admitted === undefined) return;
    this.components.logger.warn(
      { peer: peer.toString(), nodeId, err: toError(err).message, suppressed: admitted.suppressed },
      msg,
    );
  }
}

/** The outbound half towards one peer: a bounded queue drained by one writer loop. */
class RaftPeerLink {
  readonly #queue: FrameQueue;
  readonly #wakeup = new Wakeup();
  /** cuts a backoff short when the peer connects */
  readonly #reconnected = new Wakeup();
  #failures = 0;
  #backingOff = false;
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal;
  readonly #peerId: PeerId;
  readonly #loop: Promise<void>;
  #stream: Stream | undefined;
  #lp: LengthPrefixedStream<Stream> | undefined;
  #openedAt = 0;

  constructor(
    private readonly nodeId: string,
    private readonly components: RaftTransportComponents,
    private readonly stats: RaftTransportStats,
  ) {
    const { limits } = components;
    this.#queue = new FrameQueue(limits.raftQueueFrames, limits.raftQueueBytes);
    this.#signal = AbortSignal.any([components.signal, this.#controller.signal]);
    this.#peerId = peerIdFromNodeId(nodeId);
    this.#loop = this.#run().catch((err: unknown) => {
      components.logger.error({ nodeId, err: toError(err).message }, 'Raft link failed');
    });
  }

  get queued(): number {
    return this.#queue.length;
  }

  enqueue(frame: Uint8Array): void {
    const dropped = this.#queue.push(frame);
    if (dropped > 0) {
      this.stats.droppedQueueFull += dropped;
      this.#warn('outbound Raft queue full; dropped oldest frames', { dropped });
    }
    this.#wakeup.notify();
  }

  /** The peer has just connected: forget past failures and stop waiting out the backoff. */
  peerConnected(): void {
    this.#failures = 0;
    if (this.#backingOff) this.#reconnected.notify();
  }

  async close(): Promise<void> {
    this.#controller.abort();
    this.#wakeup.notify();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { limits, logger } = this.components;
    while (!this.#signal.aborted) {
      if (this.#queue.length === 0) {
        await this.#wakeup.wait(IDLE_WAIT_MS, this.#signal);
        continue;
      }
      try {
        const lp = await this.#open();
        // Stop when the stream dies between writes (its close event clears #lp); the outer loop reopens.
        while (this.#queue.length > 0 && !this.#signal.aborted && this.#lp === lp) {
          // Frames queued meanwhile go out as one write: one muxer frame, one encryption.
          const batch = this.#takeBatch();
          const write = deadline(limits.raftWriteTimeoutMs, this.#signal);
          try {
            await lp.writeV(batch, { signal: write.signal });
          } catch (err) {
            this.stats.droppedStreamFailed += batch.length;
            throw err;
          } finally {
            write.clear();
          }
          this.stats.framesSent += batch.length;
        }
        if (this.#lp === lp) {
          this.#failures = 0;
        } else if (Date.now() - this.#openedAt < SHORT_LIVED_STREAM_MS) {
          // A peer that resets every new stream (it refuses us, or is broken) must not make us spin.
          throw new Error('Raft stream closed by the peer right after opening');
        }
      } catch (err) {
        this.#drop(err);
        if (this.#signal.aborted) break;
        this.#failures += 1;
        const failures = this.#failures;
        this.#warn('Raft stream failed; reopening with backoff', { err: toError(err).message, failures });
        this.#backingOff = true;
        try {
          await this.#reconnected.wait(
            backoffDelay(failures, limits.redialMinMs, limits.redialMaxMs),
            this.#signal,
          );
        } finally {
          this.#backingOff = false;
        }
      }
    }
    this.#drop(new Error('Raft link closed'));
    this.stats.droppedStreamFailed += this.#queue.clear();
    logger.debug({ nodeId: this.nodeId }, 'Raft link closed');
  }

  #takeBatch(): Uint8Array[] {
    const batch: Uint8Array[] = [];
    let bytes = 0;
    while (batch.length < BATCH_FRAMES && bytes < BATCH_BYTES) {
      const frame = this.#queue.shift();
      if (frame === undefined) break;
      batch.push(frame);
      bytes += frame.byteLength;
    }
    return batch;
  }

  async #open(): Promise<LengthPrefixedStream<Stream>> {
    if (this.#stream !== undefined && this.#lp !== undefined && this.#stream.writeStatus === 'writable') {
      return this.#lp;
    }
    this.#drop(new Error('replacing a dead Raft stream'));
    const { host, limits } = this.components;
    const dial = deadline(limits.dialTimeoutMs, this.#signal);
    let stream: Stream;
    try {
      stream = await host.dialProtocol(this.#peerId, RAFT_PROTOCOL, { signal: dial.signal });
    } finally {
      dial.clear();
    }
    // The remote never writes on this stream; its close or reset means the link is dead.
    stream.addEventListener('close', () => {
      if (this.#stream === stream) {
        this.#stream = undefined;
        this.#lp = undefined;
      }
    });
    stream.addEventListener('remoteCloseWrite', () => void closeStream(stream, this.#signal));
    this.#stream = stream;
    this.#openedAt = Date.now();
    this.#lp = framed(stream, limits.maxRaftFrameBytes);
    this.components.logger.debug({ nodeId: this.nodeId }, 'Raft stream open');
    return this.#lp;
  }

  #drop(err: unknown): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#lp = undefined;
    if (stream !== undefined && stream.status === 'open') stream.abort(toError(err));
  }

  #warn(msg: string, fields: Record<string, unknown>): void {
    const admitted = this.components.warnings.admit(`raft-out:${this.nodeId}`);
    if (admitted === undefined) return;
    this.components.logger.warn({ nodeId: this.nodeId, suppressed: admitted.suppressed, ...fields }, msg);
  }
}
