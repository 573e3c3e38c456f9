import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { Block } from '../ledger/index.js';

export interface BlockStreamOptions {
  /** comment line interval that keeps proxies from closing an idle stream */
  heartbeatMs: number;
  /** a client this far behind (bytes queued in the socket) is dropped; it resumes with Last-Event-ID */
  maxBufferedBytes: number;
  /** how long EventSource should wait before reconnecting */
  retryMs: number;
  /** what all the node's streams may hold together (shared by the streams of one server) */
  budget?: StreamBudget;
  log: FastifyBaseLogger;
}

/**
 * The event of each block, encoded once however many streams send it: the
 * node hands every subscriber the same object for a live block, and every
 * stream queues the same bytes (a Buffer is queued by reference, where a
 * string would be copied into each socket's write). A client that falls
 * behind the live stream holds blocks the others hold too, not copies.
 */
const blockEvents = new WeakMap<Block, Buffer>();

function blockEvent(block: Block, hash: string): Buffer {
  let bytes = blockEvents.get(block);
  if (bytes === undefined) {
    const height = block.header.height;
    bytes = Buffer.from(`id: ${height}\nevent: block\ndata: ${JSON.stringify({ height, hash, block })}\n\n`);
    blockEvents.set(block, bytes);
  }
  return bytes;
}

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

/**
 * The bytes all the streams of one server may hold queued together beyond
 * one block event each. Every `checkMs` it looks at each stream's queue: the
 * bytes it held at the last look and still holds now (at least) are how far
 * it is behind. A client that reads takes a burst of blocks before the next
 * look; one that does not keeps them. A stream at most `graceBytes` behind
 * (one block of the largest size a node cuts) is never dropped for the
 * budget: only streams further behind, and only while together they hold
 * more than `maxBytes` beyond one block each, the furthest behind first.
 * (Streams behind on the same live blocks share those bytes: the count is an
 * upper bound of the memory they hold.)
 */
export class StreamBudget {
  /** each stream's queue at the last look */
  private readonly streams = new Map<BlockStream, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly maxBytes: number,
    readonly graceBytes: number,
    readonly checkMs = 1_000,
  ) {}

  add(stream: BlockStream): void {
    this.streams.set(stream, 0);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.check(), this.checkMs);
      this.timer.unref();
    }
  }

  delete(stream: BlockStream): void {
    this.streams.delete(stream);
    if (this.streams.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private check(): void {
    const behind: [BlockStream, number][] = [];
    let excess = 0;
    for (const [stream, before] of this.streams) {
      const now = stream.buffered;
      this.streams.set(stream, now);
      const held = Math.min(before, now);
      if (held <= this.graceBytes) continue;
      behind.push([stream, held]);
      excess += held - this.graceBytes;
    }
    if (excess <= this.maxBytes) return;
    behind.sort((a, b) => b[1] - a[1]);
    for (const [stream, held] of behind) {
      if (excess <= this.maxBytes) return;
      excess -= held - this.graceBytes;
      stream.drop('event stream client too far behind while the node holds its budget of event bytes');
    }
  }
}

/**
 * Queued blocks are written on the next turn of the event loop. This many
 * waiting means the loop is not turning (a burst of live blocks applied in
 * one turn): they are written at once rather than all held.
 */
const MAX_QUEUED = 16;
/** heartbeat intervals a socket may take to drain before its client counts as gone */
const STALL_HEARTBEATS = 4;

/** One SSE connection streaming committed blocks; ends itself on disconnect. */
export class BlockStream {
  private closed = false;
  private unsubscribe: (() => void) | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly onClosed: (() => void)[] = [];
  private readonly queue: { block: Block; hash: string }[] = [];
  /** settles once the queue is written and the socket has drained, or the stream ended */
  private room: { promise: Promise<void>; settle: () => void } | undefined;
  private awaitingDrain = false;
  /** ends the stream if the socket does not drain in time (flush) */
  private stalled: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly opts: BlockStreamOptions,
    headers: Record<string, string>,
  ) {
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx: do not buffer the stream
      'x-accel-buffering': 'no',
    });
    // The first write flushes the headers, so the client sees the stream open at once.
    res.write(`retry: ${opts.retryMs}\n\n`);
    opts.budget?.add(this);
    this.heartbeat = setInterval(() => this.write(HEARTBEAT), opts.heartbeatMs);
    this.heartbeat.unref();
    res.on('close', () => this.close());
    res.on('error', (err) => {
      opts.log.debug({ err }, 'event stream error');
      this.close();
    });
  }

  /**
   * Attach the subscription. `subscribe` may deliver already-committed blocks
   * synchronously, before it returns the unsubscribe function.
   */
  attach(subscribe: (onBlock: (block: Block, hash: string) => Promise<void>) => () => void): void {
    const unsubscribe = subscribe((block, hash) => this.sendBlock(block, hash));
    if (this.closed) unsubscribe();
    else this.unsubscribe = unsubscribe;
  }

  /** Called once when the stream ends, however it ends. */
  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.onClosed.push(fn);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** bytes queued for the client and not yet handed to the kernel */
  get buffered(): number {
    return this.closed ? 0 : this.res.writableLength;
  }

  /** Disconnect a client that is too far behind; it can resume with Last-Event-ID. */
  drop(why: string): void {
    if (this.closed) return;
    this.opts.log.warn(
      { buffered: this.res.writableLength },
      `${why}; disconnecting (it can resume with Last-Event-ID)`,
    );
    this.res.destroy();
    this.close();
  }

  /**
   * Queue a block. The node calls this for every subscriber while it applies
   * the block, so serialising and writing wait for the next turn of the event
   * loop. The promise settles once the block is written and the socket has
   * drained (or the stream ended): a replay that waits for it feeds a
   * far-behind client at the pace it reads instead of filling its buffer.
   */
  sendBlock(block: Block, hash: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.room === undefined) {
      let settle!: () => void;
      const promise = new Promise<void>((resolve) => (settle = resolve));
      this.room = { promise, settle };
    }
    const { promise } = this.room;
    this.queue.push({ block, hash });
    if (this.queue.length === 1) setImmediate(() => this.flush());
    else if (this.queue.length >= MAX_QUEUED) this.flush();
    return promise;
  }

  /** An error event, then the end of the stream (the client will reconnect). */
  fail(code: string, message: string): void {
    this.write(`event: error\ndata: ${JSON.stringify({ error: { code, message } })}\n\n`);
    this.end();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
    this.close();
  }

  private flush(): void {
    for (const { block, hash } of this.queue.splice(0)) this.write(blockEvent(block, hash));
    if (this.closed || this.awaitingDrain) return;
    if (!this.res.writableNeedDrain) return this.settleRoom();
    this.awaitingDrain = true;
    // A client that stops reading never drains: the replay (which waits for this) would hold its
    // stream, one of the node's few, for ever. No drain within a few heartbeats ends it; it can
    // resume with Last-Event-ID.
    this.stalled = setTimeout(
      () => this.drop('event stream client stopped reading'),
      this.opts.heartbeatMs * STALL_HEARTBEATS,
    );
    this.stalled.unref();
    this.res.once('drain', () => {
      clearTimeout(this.stalled);
      this.awaitingDrain = false;
      this.settleRoom();
    });
  }

  private settleRoom(): void {
    const room = this.room;
    this.room = undefined;
    room?.settle();
  }

  private write(chunk: string | Buffer): void {
    if (this.closed) return;
    this.res.write(chunk);
    if (this.res.writableLength > this.opts.maxBufferedBytes) this.drop('event stream client too slow');
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.stalled);
    this.opts.budget?.delete(this);
    this.queue.length = 0;
    this.settleRoom();
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    unsubscribe?.();
    for (const fn of this.onClosed.splice(0)) fn();
  }
}
