import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { verify } from '../crypto/index.js';

/**
 * Ed25519 verification spread over worker threads. Jobs are packed into one
 * transferable buffer per batch: for each item, u32 message length, message,
 * 64-byte signature, 32-byte public key. With `threads: 0` it verifies on
 * the calling thread (tests, and machines with one core).
 */
export interface SignatureJob {
  message: Uint8Array;
  signature: Uint8Array;
  publicKey: Uint8Array;
  /** caller's label, returned for failures */
  tag: number;
}

const BATCH = 256;

export class SignaturePool {
  private readonly workers: Worker[] = [];
  private next = 0;
  private pending: SignatureJob[] = [];
  private readonly inflight: Promise<number[]>[] = [];
  private readonly inlineFailures: number[] = [];
  private batchId = 0;
  private wake: (() => void) | undefined;
  private readonly waiting = new Map<
    number,
    { resolve: (bad: number[]) => void; reject: (err: Error) => void }
  >();

  constructor(threads: number = availableParallelism()) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(workerUrl());
      worker.on('message', ({ id, bad }: { id: number; bad: number[] }) => {
        this.waiting.get(id)?.resolve(bad);
        this.waiting.delete(id);
        const wake = this.wake;
        this.wake = undefined;
        wake?.();
      });
      worker.on('error', (err) => {
        for (const w of this.waiting.values()) w.reject(err);
        this.waiting.clear();
      });
      this.workers.push(worker);
    }
  }

  add(job: SignatureJob): void {
    if (this.workers.length === 0) {
      if (!verify(job.signature, job.message, job.publicKey)) this.inlineFailures.push(job.tag);
      return;
    }
    this.pending.push(job);
    if (this.pending.length >= BATCH) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const jobs = this.pending;
    this.pending = [];
    let size = 0;
    for (const j of jobs) size += 4 + j.message.length + 96;
    const buf = new Uint8Array(size);
    const view = new DataView(buf.buffer);
    let off = 0;
    for (const j of jobs) {
      view.setUint32(off, j.message.length);
      buf.set(j.message, off + 4);
      off += 4 + j.message.length;
      buf.set(j.signature, off);
      buf.set(j.publicKey, off + 64);
      off += 96;
    }
    const worker = this.workers[this.next++ % this.workers.length]!;
    const tags = jobs.map((j) => j.tag);
    const id = this.batchId++;
    this.inflight.push(
      new Promise<number[]>((resolve, reject) => {
        this.waiting.set(id, { resolve: (bad) => resolve(bad.map((i) => tags[i]!)), reject });
      }),
    );
    worker.postMessage({ id, buf }, [buf.buffer]);
  }

  /** Back-pressure: wait while more than `perWorker` batches per worker are outstanding. */
  async throttle(perWorker = 4): Promise<void> {
    const limit = perWorker * Math.max(1, this.workers.length);
    while (this.waiting.size > limit) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Wait for every job; the tags of the signatures that failed, ascending. */
  async drain(): Promise<number[]> {
    this.flush();
    const results = await Promise.all(this.inflight.splice(0));
    return [...this.inlineFailures.splice(0), ...results.flat()].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function workerUrl(): URL {
  // Compiled layout: dist/src/audit/signature-worker.js next to this file.
  // Under vitest this module is TypeScript source, so use the build output.
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new URL('../../dist/src/audit/signature-worker.js', here)
    : new URL('./signature-worker.js', here);
}
