import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import type { Logger } from 'pino';
import { closeStream, errorCodeOf, errorFrame, framed, okFrame } from './framing.js';
import type { NetworkLimits } from './limits.js';
import { SUBMIT_PROTOCOL } from './protocols.js';
import type { LogRateLimiter } from './rate-limited-log.js';
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
}

export interface SubmitServiceStats {
  answered: number;
  failed: number;
  badRequests: number;
}

/** Concurrent submit streams one connection may hold open. */
const MAX_SUBMIT_STREAMS_PER_CONNECTION = 16;

/**
 * Server side of `/bitnexus/submit/1.0.0`: read one length-prefixed request
 * frame, answer with one status frame, close. Open to every peer, members or
 * not: services and the CLI submit over it. A peer that is slow to send, sends
 * garbage or sends too much gets its stream aborted (and an error frame where
 * one can still be sent); the node keeps serving everyone else.
 */
export class SubmitService {
  #handler: SubmitHandler | undefined;
  readonly stats: SubmitServiceStats = { answered: 0, failed: 0, badRequests: 0 };

  constructor(private readonly components: SubmitServiceComponents) {}

  setHandler(handler: SubmitHandler | undefined): void {
    this.#handler = handler;
  }

  async start(): Promise<void> {
    await this.components.host.handle(
      SUBMIT_PROTOCOL,
      (stream, connection) => this.#track(stream, connection),
      {
        maxInboundStreams: MAX_SUBMIT_STREAMS_PER_CONNECTION,
      },
    );
  }

  async stop(): Promise<void> {
    await this.components.host.unhandle(SUBMIT_PROTOCOL);
  }

  async #track(stream: Stream, connection: Connection): Promise<void> {
    const { exchanges } = this.components;
    exchanges?.exchangeStarted(connection);
    try {
      await this.#serve(stream, connection);
    } finally {
      exchanges?.exchangeEnded(connection);
    }
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const { limits, signal } = this.components;
    const from = connection.remotePeer.toString();
    const lp = framed(stream, limits.maxSubmitRequestBytes);
    let request: Uint8Array;
    const read = deadline(limits.submitIoTimeoutMs, signal);
    try {
      request = (await lp.read({ signal: read.signal })).subarray();
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

  #warn(peer: string, err: unknown, msg: string): void {
    const admitted = this.components.warnings.admit(`submit:${peer}`);
    if (admitted === undefined) return;
    this.components.logger.warn({ peer, err: toError(err).message, suppressed: admitted.suppressed }, msg);
  }
}

function isOversized(err: unknown): boolean {
  return err instanceof Error && err.name === 'InvalidDataLengthError';
}
