import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { verifyPacked } from './packed.js';
import { workerScript } from '../util/worker-script.js';

/**
 * Ed25519 verification spread over worker threads, with the calling thread
 * taking a share.
 *
 * Callers write each check straight into the current batch buffer
 * (`beginMessage`, `writeAscii`/`writeUtf8`/`writeBytes`, `endMessage`; see
 * packed.ts for the layout), so a message is built once, in place, and can be
 * hashed there (`view`). Full batches are queued; each worker holds at most
 * `CREDIT` batches at a time and gets the next one as soon as it answers, so
 * no worker waits on a round trip. The calling thread verifies queued batches
 * itself when the queue grows past `maxQueuedBytes` (a bound on memory) and
 * during `drain`, so every core stays busy to the end. With `threads: 0` every
 * batch is verified on the calling thread.
 *
 * A worker that fails (throws, exits, cannot receive a batch) makes `balance`
 * and `drain` throw: a verification that did not run is an error, never a
 * silent pass and never a hang.
 */
export interface SignatureJob {
  message: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
  /** caller's label, returned for failures */
  tag: number;
}

export interface SignaturePoolOptions {
  /** worker threads; 0 verifies on the calling thread. Default: one per core. */
  threads?: number;
  /** checks per batch (default 512) */
  batch?: number;
  /** queued, unsent bytes beyond which the calling thread verifies batches itself (default 96 MiB) */
  maxQueuedBytes?: number;
  /** the worker script (tests); default: signature-worker.js next to this module */
  workerUrl?: URL;
}

interface Batch {
  buf: Buffer;
  length: number;
  tags: number[];
}

interface Slot {
  worker: Worker;
  inflight: Map<number, Batch>;
}

const CREDIT = 3;
const INITIAL_CAPACITY = 1 << 18;

export class SignaturePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Batch[] = [];
  private queuedBytes = 0;
  private readonly bad: number[] = [];
  private failure: Error | undefined;
  private closing = false;
  private batchId = 0;
  private wake: (() => void) | undefined;
  private readonly batchSize: number;
  private readonly maxQueuedBytes: number;

  // the batch being written
  private buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_CAPACITY);
  private off = 0;
  private tags: number[] = [];
  private msgStart = -1;
  private capacityHint = INITIAL_CAPACITY;

  constructor(opts: SignaturePoolOptions | number = {}) {
    const o = typeof opts === 'number' ? { threads: opts } : opts;
    const threads = o.threads ?? defaultSignatureThreads();
    this.batchSize = o.batch ?? 512;
    this.maxQueuedBytes = o.maxQueuedBytes ?? 96 * 1024 * 1024;
    for (let i = 0; i < threads; i++) this.slots.push(this.spawn(o.workerUrl ?? workerUrl(), i));
  }

  get threads(): number {
    return this.slots.length;
  }

  private spawn(url: URL, n: number): Slot {
    const worker = new Worker(url);
    const slot: Slot = { worker, inflight: new Map() };
    worker.on('message', ({ id, bad }: { id: number; bad: number[] }) => {
      const batch = slot.inflight.get(id);
      if (batch === undefined) return;
      slot.inflight.delete(id);
      for (const i of bad) this.bad.push(batch.tags[i]!);
      this.dispatch();
      this.notify();
    });
    const fail = (what: string, cause?: unknown) => {
      if (this.closing) return;
      this.failure ??= new Error(`signature worker ${n} ${what}`, { cause });
      this.notify();
    };
    worker.on('error', (err) => fail(`failed: ${err.message}`, err));
    worker.on('messageerror', (err) => fail(`could not receive a batch: ${err.message}`, err));
    worker.on('exit', (code) => fail(`exited (code ${code})`));
    return slot;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  // ---- writing checks into the current batch ----

  private reserve(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  /** Start a check: its message follows. */
  beginMessage(): void {
    this.reserve(4);
    this.msgStart = this.off;
    this.off += 4;
  }

  /** Append a string of ASCII characters (one byte each) to the message. */
  writeAscii(s: string): void {
    this.reserve(s.length);
    this.off += this.buf.write(s, this.off, 'latin1');
  }

  /** Append a string as UTF-8; returns where it starts. */
  writeUtf8(s: string): number {
    const start = this.off;
    this.reserve(s.length * 3);
    this.off += this.buf.write(s, this.off, 'utf8');
    return start;
  }

  writeBytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** Where the next byte of the message goes. */
  get offset(): number {
    return this.off;
  }

  /** Bytes [start, end) of the message being written; valid until the next write. */
  view(start: number, end: number): Uint8Array {
    return this.buf.subarray(start, end);
  }

  /** Finish the check: the signature and public key, as bytes or (validated) lower-case hex. */
  endMessage(tag: number, signature: Uint8Array | string, publicKey: Uint8Array | string): void {
    this.buf.writeUInt32BE(this.off - this.msgStart - 4, this.msgStart);
    this.reserve(96);
    const sigOk = this.put(signature, 64);
    const keyOk = this.put(publicKey, 32);
    // a value of the wrong size can never verify: the all-zero key is refused by verify()
    if (!sigOk || !keyOk) this.buf.fill(0, this.off - 32, this.off);
    this.msgStart = -1;
    this.tags.push(tag);
    if (this.tags.length >= this.batchSize) this.flush();
  }

  /** Write exactly n bytes at the end; false (zeros written) when `v` is not n bytes. */
  private put(v: Uint8Array | string, n: number): boolean {
    let ok: boolean;
    if (typeof v === 'string') {
      ok = v.length === 2 * n && this.buf.write(v, this.off, n, 'hex') === n;
    } else {
      ok = v.length === n;
      if (ok) this.buf.set(v, this.off);
    }
    if (!ok) this.buf.fill(0, this.off, this.off + n);
    this.off += n;
    return ok;
  }

  add(job: SignatureJob): void {
    this.beginMessage();
    this.writeBytes(job.message);
    this.endMessage(job.tag, job.signature, job.publicKey);
  }

  // ---- scheduling ----

  private flush(): void {
    if (this.tags.length === 0) return;
    const batch: Batch = { buf: this.buf, length: this.off, tags: this.tags };
    this.capacityHint = Math.max(this.capacityHint, this.off + (this.off >> 3));
    this.buf = Buffer.allocUnsafeSlow(this.capacityHint);
    this.off = 0;
    this.tags = [];
    if (this.slots.length === 0) {
      this.verifyHere(batch);
      return;
    }
    this.queue.push(batch);
    this.queuedBytes += batch.length;
    this.dispatch();
  }

  private dispatch(): void {
    if (this.failure) return;
    for (const slot of this.slots) {
      while (slot.inflight.size < CREDIT && this.queue.length > 0) {
        const batch = this.queue.shift()!;
        this.queuedBytes -= batch.length;
        const id = this.batchId++;
        slot.inflight.set(id, batch);
        const buf = batch.buf;
        slot.worker.postMessage({ id, buf, length: batch.length }, [buf.buffer as ArrayBuffer]);
      }
    }
  }

  private verifyHere(batch: Batch): void {
    for (const i of verifyPacked(batch.buf, batch.length)) this.bad.push(batch.tags[i]!);
  }

  /** Verify the oldest queued batch on this thread; false when none is queued. */
  private stealOne(): boolean {
    const batch = this.queue.shift();
    if (batch === undefined) return false;
    this.queuedBytes -= batch.length;
    this.verifyHere(batch);
    return true;
  }

  /** Keep memory bounded: verify queued batches here while too much is queued. Throws if a worker failed. */
  balance(): void {
    if (this.failure) throw this.failure;
    while (this.queuedBytes > this.maxQueuedBytes && this.stealOne()) {
      /* keep going */
    }
  }

  /** Wait for every check, verifying queued batches here meanwhile; the tags that failed, ascending. */
  async drain(): Promise<number[]> {
    this.flush();
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.stealOne()) {
        // let worker answers in, so they get their next batch
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      if (!this.slots.some((s) => s.inflight.size > 0)) break;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.bad.splice(0).sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.notify();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

const workerUrl = () => workerScript(import.meta.url, 'audit/signature-worker');

/**
 * Workers besides the main thread, which checks signatures too once its own
 * work is done: one per core but one. On 2 cores 1 worker verified a
 * 100,000-transaction chain in 7.6 s, 2 workers in 8.7 s (bench:ledger).
 */
export function defaultSignatureThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}
