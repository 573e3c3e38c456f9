import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import type { Logger } from 'pino';
import { closeStream, errorCodeOf, errorFrame, framed, lengthPrefixed, okFrame } from './framing.js';
import type { NetworkLimits } from './limits.js';
import { SUBMIT_PROTOCOL } from './protocols.js';
import type { LogRateLimiter } from '../util/rate-limited-log.js';
import { deadline, raceAbort, toError } from './wait.js';

/**
 * Answers one submit request. `from` is the submitter's peer id (any peer may
 * submit); `signal` aborts on timeout or shutdown. Domain outcomes (accepted,
 * rejected, duplicate) belong in the returned bytes; a thrown error becomes an
 * error status frame with the error's `code` (or INTERNAL).
 */
export type SubmitHandler = (request: Uint8Array, from: string, signal: AbortSignal) => Promise<Uint8Array>;

export interface SubmitServiceComponents {
  host: Pick<Libp2p, 'handle' | 'unhandle'>;
  logger: Logger;
  limits: NetworkLimits;
  signal: AbortSignal;
  warnings: LogRateLimiter;
  /** told when an exchange starts and ends (a non-member connection is closed once idle) */
  exchanges?: {
    exchangeStarted(connection: Connection): void;
    exchangeEnded(connection: Connection): void;
  };
  /**
   * members and static peers: a member's connection may hold more streams
   * (its follower asks its leader several questions at once), and a member is
   * never refused for the shared budget of request bytes
   */
  isPrivileged?: (peer: PeerId) => boolean;
}

export interface SubmitServiceStats {
  answered: number;
  failed: number;
  badRequests: number;
  /**
   * streams answered BUSY at once, without reading them: their non-member
   * connection had maxSubmitStreamsPerConnection open
   */
  refusedStreams: number;
  /** streams answered BUSY at once: the request bytes in flight had reached maxSubmitBufferBytes */
  refusedBusy: number;
}

/**
 * Concurrent submit streams one member's connection may hold open (libp2p
 * resets more); a follower asks its leader at most 8 questions at once.
 * Non-members get `maxSubmitStreamsPerConnection`, enforced here.
 */
const MAX_SUBMIT_STREAMS_PER_MEMBER_CONNECTION = 16;

/**
 * Streams beyond `maxSubmitStreamsPerConnection` that a non-member's
 * connection may open and still be answered BUSY, at the least: libp2p's
 * limit is kept at least this far above ours (at the defaults it is further:
 * 16, the members' limit, against 4).
 */
const MIN_BUSY_STREAMS_PER_CONNECTION = 4;

/**
 * A refusal (BUSY) is over within this: its answer sent, and the client's end
 * closed once it has read it; a client that takes longer has the stream
 * aborted. So a refused stream holds its libp2p slot this long at most.
 */
const REFUSAL_TIMEOUT_MS = 1_000;

/**
 * libp2p's limit of inbound submit streams on one connection, for members and
 * non-members alike (one registration serves both); a stream past it is
 * reset. A non-member's streams between `maxSubmitStreamsPerConnection` and
 * this are answered BUSY. At the defaults: 4 served, 12 more answered BUSY, the
 * 17th reset.
 */
export function submitInboundStreamLimit(
  limits: Pick<NetworkLimits, 'maxSubmitStreamsPerConnection'>,
): number {
  return Math.max(
    MAX_SUBMIT_STREAMS_PER_MEMBER_CONNECTION,
    limits.maxSubmitStreamsPerConnection + MIN_BUSY_STREAMS_PER_CONNECTION,
  );
}

/**
 * Server side of `/bitnexus/submit/1.0.0`: read one length-prefixed request
 * frame, answer with one status frame, close. Open to every peer, members or
 * not: services and the CLI submit over it. A peer that is slow to send, sends
 * garbage or sends too much gets its stream aborted (and an error frame where
 * one can still be sent); the node keeps serving everyone else.
 *
 * What submit streams can make the node buffer is bounded three ways: a
 * request is at most `maxSubmitRequestBytes` (the stream's buffer holds one
 * request); a non-member's connection has at most
 * `maxSubmitStreamsPerConnection` streams served at once; and the request
 * bytes in flight, all streams together, stay within `maxSubmitBufferBytes`:
 * a stream counts `maxSubmitRequestBytes` while its request is being read
 * (that much may arrive), then the request's own size until it is answered.
 * A non-member's new stream past either limit is answered BUSY at once,
 * without reading it (what it sends is dropped), so its client can tell an
 * overloaded node from a broken connection and retry; members are counted but
 * never refused (their streams are few and bounded by libp2p). Refusing is
 * cheap and bounded as well: a refused stream buffers nothing and is gone
 * within REFUSAL_TIMEOUT_MS, and libp2p resets any stream past
 * `submitInboundStreamLimit` on a connection before it reaches us.
 */
export class SubmitService {
  #handler: SubmitHandler | undefined;
  readonly stats: SubmitServiceStats = {
    answered: 0,
    failed: 0,
    badRequests: 0,
    refusedStreams: 0,
    refusedBusy: 0,
  };
  /** request bytes in flight (see above) */
  #inflightBytes = 0;
  /** submit streams open per connection id */
  readonly #streams = new Map<string, number>();

  constructor(private readonly components: SubmitServiceComponents) {}

  setHandler(handler: SubmitHandler | undefined): void {
    this.#handler = handler;
  }

  async start(): Promise<void> {
    await this.components.host.handle(
      SUBMIT_PROTOCOL,
      (stream, connection) => this.#track(stream, connection),
      {
        maxInboundStreams: submitInboundStreamLimit(this.components.limits),
      },
    );
  }

  async stop(): Promise<void> {
    await this.components.host.unhandle(SUBMIT_PROTOCOL);
  }

  async #track(stream: Stream, connection: Connection): Promise<void> {
    const { exchanges, limits, isPrivileged } = this.components;
    const privileged = isPrivileged?.(connection.remotePeer) ?? false;
    const open = this.#streams.get(connection.id) ?? 0;
    const reserved = limits.maxSubmitRequestBytes;
    if (!privileged && open >= limits.maxSubmitStreamsPerConnection) {
      this.stats.refusedStreams += 1;
      this.#warnRefusal(connection, `${open} open on its connection (maxSubmitStreamsPerConnection)`);
      const max = limits.maxSubmitStreamsPerConnection;
      await this.#refuse(
        stream,
        'BUSY',
        `too many submit streams on this connection: at most ${max} per connection at once; ` +
          'try again once one has been answered',
      );
      return;
    }
    if (!privileged && this.#inflightBytes + reserved > limits.maxSubmitBufferBytes) {
      this.stats.refusedBusy += 1;
      this.#warnRefusal(connection, 'the request bytes in flight reached maxSubmitBufferBytes');
      await this.#refuse(stream, 'BUSY', 'too many submissions in progress; try again shortly');
      return;
    }
    const held = { bytes: reserved };
    this.#inflightBytes += held.bytes;
    this.#streams.set(connection.id, open + 1);
    exchanges?.exchangeStarted(connection);
    try {
      await this.#serve(stream, connection, held);
    } finally {
      this.#inflightBytes -= held.bytes;
      const left = (this.#streams.get(connection.id) ?? 1) - 1;
      if (left > 0) this.#streams.set(connection.id, left);
      else this.#streams.delete(connection.id);
      exchanges?.exchangeEnded(connection);
    }
  }

  /**
   * Answers `code` without reading the request: what the client sends is
   * dropped as it arrives, never buffered. Then closes our end and waits for
   * the client to close its own (it does once it has read the answer); a
   * client that has not within REFUSAL_TIMEOUT_MS, all told, has the stream
   * aborted.
   */
  async #refuse(stream: Stream, code: string, message: string): Promise<void> {
    stream.addEventListener('message', () => {});
    const refusal = deadline(REFUSAL_TIMEOUT_MS, this.components.signal);
    try {
      if (!stream.send(lengthPrefixed(errorFrame(code, message))))
        await stream.onDrain({ signal: refusal.signal });
      await stream.close({ signal: refusal.signal });
      await streamEnded(stream, refusal.signal);
    } catch (err) {
      stream.abort(toError(err));
    } finally {
      refusal.clear();
    }
  }

  async #serve(stream: Stream, connection: Connection, held: { bytes: number }): Promise<void> {
    const { limits, signal } = this.components;
    const from = connection.remotePeer.toString();
    const lp = framed(stream, limits.maxSubmitRequestBytes);
    let request: Uint8Array;
    const read = deadline(limits.submitIoTimeoutMs, signal);
    try {
      // a copy of exactly the request, so that what is held while it is answered is what is counted
      request = (await lp.read({ signal: read.signal })).slice();
      this.#inflightBytes -= held.bytes - request.byteLength;
      held.bytes = request.byteLength;
    } catch (err) {
      this.stats.badRequests += 1;
      this.#warn(from, err, 'bad submit request; stream aborted');
      if (!stream.writableNeedsDrain && stream.writeStatus === 'writable' && isOversized(err)) {
        // Tell an honest client why, then give up on the stream.
        await lp.write(errorFrame('REQUEST_TOO_LARGE', toError(err).message), { signal }).catch(() => {});
      }
      stream.abort(toError(err));
      return;
    } finally {
      read.clear();
    }

    const response = await this.#answer(request, from);
    const write = deadline(limits.submitIoTimeoutMs, signal);
    try {
      await lp.write(response, { signal: write.signal });
      await closeStream(stream, write.signal);
    } catch (err) {
      stream.abort(toError(err));
    } finally {
      write.clear();
    }
  }

  async #answer(request: Uint8Array, from: string): Promise<Uint8Array> {
    const { limits, signal, logger } = this.components;
    const handler = this.#handler;
    if (handler === undefined) {
      this.stats.failed += 1;
      return errorFrame('UNAVAILABLE', 'this node does not accept submissions yet');
    }
    const budget = deadline(limits.submitHandlerTimeoutMs, signal);
    try {
      const body = await raceAbort(handler(request, from, budget.signal), budget.signal);
      if (body.byteLength + 1 > limits.maxSubmitResponseBytes) {
        logger.error({ size: body.byteLength }, 'submit handler answered more than maxSubmitResponseBytes');
        this.stats.failed += 1;
        return errorFrame('INTERNAL', 'response too large');
      }
      this.stats.answered += 1;
      return okFrame(body);
    } catch (err) {
      this.stats.failed += 1;
      const timedOut = budget.signal.aborted && !signal.aborted;
      logger.debug({ peer: from, err: toError(err).message }, 'submit handler failed');
      return timedOut
        ? errorFrame('TIMEOUT', 'the node did not answer in time')
        : errorFrame(errorCodeOf(err), toError(err).message);
    } finally {
      budget.clear();
    }
  }

  #warnRefusal(connection: Connection, reason: string): void {
    const peer = connection.remotePeer.toString();
    const admitted = this.components.warnings.admit(`submit-refused:${peer}`);
    if (admitted === undefined) return;
    this.components.logger.warn(
      { peer, addr: connection.remoteAddr.toString(), suppressed: admitted.suppressed },
      `refused a submit stream: ${reason}`,
    );
  }

  #warn(peer: string, err: unknown, msg: string): void {
    const admitted = this.components.warnings.admit(`submit:${peer}`);
    if (admitted === undefined) return;
    this.components.logger.warn({ peer, err: toError(err).message, suppressed: admitted.suppressed }, msg);
  }
}

/** Resolves once `stream` is over (both ends closed, aborted or reset); rejects when `signal` aborts first. */
function streamEnded(stream: Stream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.status !== 'open' && stream.status !== 'closing') {
      resolve();
      return;
    }
    if (signal.aborted) {
      reject(toError(signal.reason));
      return;
    }
    const ended = (): void => {
      signal.removeEventListener('abort', aborted);
      resolve();
    };
    const aborted = (): void => {
      stream.removeEventListener('close', ended);
      reject(toError(signal.reason));
    };
    stream.addEventListener('close', ended, { once: true });
    signal.addEventListener('abort', aborted, { once: true });
  });
}

function isOversized(err: unknown): boolean {
  return err instanceof Error && err.name === 'InvalidDataLengthError';
}
