import { parentPort } from 'node:worker_threads';
import { verifyPacked } from './packed.js';

// Verifies the batches SignaturePool packs; answers with the positions that failed.
parentPort?.on('message', ({ id, buf, length }: { id: number; buf: Uint8Array; length?: number }) => {
  parentPort?.postMessage({ id, bad: verifyPacked(buf, length ?? buf.length) });
});
