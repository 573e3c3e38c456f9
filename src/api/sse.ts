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
  log: FastifyBaseLogger;
}

/** One SSE connection streaming committed blocks; ends itself on disconnect. */
export class BlockStream {
  private closed = false;
  private unsubscribe: (() => void) | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly onClosed: (() => void)[] = [];

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
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), opts.heartbeatMs);
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
  attach(subscribe: (onBlock: (block: Block, hash: string) => void) => () => void): void {
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

  sendBlock(block: Block, hash: string): void {
    const height = block.header.height;
    this.write(`id: ${height}\nevent: block\ndata: ${JSON.stringify({ height, hash, block })}\n\n`);
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

  private write(chunk: string): void {
    if (this.closed) return;
    this.res.write(chunk);
    if (this.res.writableLength > this.opts.maxBufferedBytes) {
      this.opts.log.warn(
        { buffered: this.res.writableLength },
        'event stream client too slow; disconnecting (it can resume with Last-Event-ID)',
      );
      this.res.destroy();
      this.close();
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    unsubscribe?.();
    for (const fn of this.onClosed.splice(0)) fn();
  }
}
