import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import type { Logger } from 'pino';
import {
  FrameTooLargeError,
  NetworkConfigError,
  NotMemberError,
  ProtocolViolationError,
  RemoteError,
} from './errors.js';
import { closeStream, decodeStatusFrame, errorCodeOf, errorFrame, framed, okFrame } from './framing.js';
import { peerIdFromNodeId } from './identity.js';
import { MAX_BLOCKS_PER_REQUEST, type NetworkLimits } from './limits.js';
import type { MembershipGate } from './membership.js';
import { BLOCKS_PROTOCOL } from './protocols.js';
import type { LogRateLimiter } from '../util/rate-limited-log.js';
import { deadline, raceAbort, toError } from './wait.js';

/**
 * Returns the blocks at heights `from..to` (inclusive) that this node has, in
 * height order, starting at `from`. It may return fewer (none when it has not
 * reached `from`); the server also stops early at maxBlockResponseBytes.
 */
export type BlockRangeHandler = (from: number, to: number, signal: AbortSignal) => Promise<Uint8Array[]>;

export interface BlockSyncComponents {
  host: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>;
  gate: MembershipGate;
  logger: Logger;
  limits: NetworkLimits;
  signal: AbortSignal;
  warnings: LogRateLimiter;
}

/** The request frame: two unsigned 64-bit big-endian heights, `from` then `to`. */
const REQUEST_BYTES = 16;

/**
 * `/bitnexus/blocks/1.0.0`, members only. The client sends one request frame;
 * the server answers with a status frame (OK with a u32 big-endian block
 * count, or an error), then that many block frames, then closes. A non-member
 * gets a NOT_MEMBER error frame.
 */
export class BlockSync {
  #handler: BlockRangeHandler | undefined;

  constructor(private readonly components: BlockSyncComponents) {}

  setHandler(handler: BlockRangeHandler | undefined): void {
    this.#handler = handler;
  }

  async start(): Promise<void> {
    await this.components.host.handle(
      BLOCKS_PROTOCOL,
      (stream, connection) => this.#serve(stream, connection),
      {
        maxInboundStreams: 4,
      },
    );
  }

  async stop(): Promise<void> {
    await this.components.host.unhandle(BLOCKS_PROTOCOL);
  }

  /** Fetches blocks `from..to` (inclusive, at most 512) from member `nodeId`; may return fewer. */
  async fetch(nodeId: string, from: number, to: number, signal?: AbortSignal): Promise<Uint8Array[]> {
    assertRange(from, to);
    const { host, limits } = this.components;
    const budget = deadline(limits.blockRequestTimeoutMs, this.components.signal, signal);
    try {
      const stream = await host.dialProtocol(peerIdFromNodeId(nodeId), BLOCKS_PROTOCOL, {
        signal: budget.signal,
      });
      try {
        const lp = framed(stream, Math.max(limits.maxBlockBytes, 1024), { consecutive: true });
        await lp.write(encodeRange(from, to), { signal: budget.signal });
        const status = decodeStatusFrame((await lp.read({ signal: budget.signal })).subarray());
        if (!status.ok) {
          throw status.code === 'NOT_MEMBER'
            ? new NotMemberError(`${nodeId} refused: ${status.message}`)
            : new RemoteError(status.code, status.message);
        }
        if (status.body.byteLength !== 4) throw new ProtocolViolationError('block count must be 4 bytes');
        const count = new DataView(status.body.buffer, status.body.byteOffset, 4).getUint32(0);
        if (count > to - from + 1) {
          throw new ProtocolViolationError(`asked for ${to - from + 1} blocks, offered ${count}`);
        }
        const blocks: Uint8Array[] = [];
        let total = 0;
        for (let i = 0; i < count; i++) {
          const block = (await lp.read({ signal: budget.signal })).subarray();
          total += block.byteLength;
          if (total > limits.maxBlockResponseBytes) {
            throw new FrameTooLargeError(total, limits.maxBlockResponseBytes, 'block range response');
          }
          blocks.push(block);
        }
        await closeStream(stream, budget.signal);
        return blocks;
      } catch (err) {
        stream.abort(toError(err));
        throw err;
      }
    } catch (err) {
      throw budget.signal.aborted ? toError(budget.signal.reason) : err;
    } finally {
      budget.clear();
    }
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const { gate, limits, signal } = this.components;
    const peer = connection.remotePeer;
    const budget = deadline(limits.blockRequestTimeoutMs, signal);
    const lp = framed(stream, REQUEST_BYTES);
    try {
      if (!gate.admit(peer, BLOCKS_PROTOCOL)) {
        await lp.write(errorFrame('NOT_MEMBER', 'block sync is for members only'), { signal: budget.signal });
        await closeStream(stream, budget.signal);
        return;
      }
      const request = (await lp.read({ signal: budget.signal })).subarray();
      const range = decodeRange(request);
      if (range === undefined) {
        this.#warn(peer.toString(), 'bad block range request');
        await lp.write(
          errorFrame(
            'BAD_REQUEST',
            `a range is ${REQUEST_BYTES} bytes: from, to (u64 BE), at most ${MAX_BLOCKS_PER_REQUEST} blocks`,
          ),
          {
            signal: budget.signal,
          },
        );
        await closeStream(stream, budget.signal);
        return;
      }
      const blocks = await this.#blocks(range.from, range.to, budget.signal);
      if (blocks instanceof Uint8Array) {
        await lp.write(blocks, { signal: budget.signal });
      } else {
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, blocks.length);
        await lp.write(okFrame(header), { signal: budget.signal });
        for (const block of blocks) await lp.write(block, { signal: budget.signal });
      }
      await closeStream(stream, budget.signal);
    } catch (err) {
      this.#warn(peer.toString(), `block range request failed: ${toError(err).message}`);
      stream.abort(toError(err));
    } finally {
      budget.clear();
    }
  }

  /** The blocks to send, cut to the count and byte limits; or an error frame. */
  async #blocks(from: number, to: number, signal: AbortSignal): Promise<Uint8Array[] | Uint8Array> {
    const { limits, logger } = this.components;
    const handler = this.#handler;
    if (handler === undefined) return errorFrame('UNAVAILABLE', 'this node does not serve blocks yet');
    let blocks: Uint8Array[];
    try {
      blocks = await raceAbort(handler(from, to, signal), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      logger.error({ from, to, err: toError(err).message }, 'block range handler failed');
      return errorFrame(errorCodeOf(err), toError(err).message);
    }
    const sent: Uint8Array[] = [];
    let total = 0;
    for (const block of blocks.slice(0, to - from + 1)) {
      if (block.byteLength > limits.maxBlockBytes) {
        logger.error(
          { height: from + sent.length, size: block.byteLength },
          'block larger than maxBlockBytes',
        );
        break;
      }
      if (total + block.byteLength > limits.maxBlockResponseBytes) break;
      total += block.byteLength;
      sent.push(block);
    }
    return sent;
  }

  #warn(peer: string, msg: string): void {
    const admitted = this.components.warnings.admit(`blocks:${peer}`);
    if (admitted === undefined) return;
    this.components.logger.warn({ peer, suppressed: admitted.suppressed }, msg);
  }
}

function assertRange(from: number, to: number): void {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) {
    throw new NetworkConfigError('BAD_RANGE', `bad block range ${from}..${to}`);
  }
  if (to - from + 1 > MAX_BLOCKS_PER_REQUEST) {
    throw new NetworkConfigError('BAD_RANGE', `at most ${MAX_BLOCKS_PER_REQUEST} blocks per request`);
  }
}

export function encodeRange(from: number, to: number): Uint8Array {
  const bytes = new Uint8Array(REQUEST_BYTES);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(from));
  view.setBigUint64(8, BigInt(to));
  return bytes;
}

export function decodeRange(bytes: Uint8Array): { from: number; to: number } | undefined {
  if (bytes.byteLength !== REQUEST_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const from = view.getBigUint64(0);
  const to = view.getBigUint64(8);
  if (to < from || to > BigInt(Number.MAX_SAFE_INTEGER) || to - from + 1n > BigInt(MAX_BLOCKS_PER_REQUEST)) {
    return undefined;
  }
  return { from: Number(from), to: Number(to) };
}
