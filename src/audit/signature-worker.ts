import { parentPort } from 'node:worker_threads';
import { verify } from '../crypto/index.js';

// Verifies the batches SignaturePool packs; answers with the indices that failed.
parentPort?.on('message', ({ id, buf }: { id: number; buf: Uint8Array }) => {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bad: number[] = [];
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const len = view.getUint32(off);
    const message = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    const signature = buf.subarray(off, off + 64);
    const publicKey = buf.subarray(off + 64, off + 96);
    off += 96;
    if (!verify(signature, message, publicKey)) bad.push(i);
    i++;
  }
  parentPort?.postMessage({ id, bad });
});
