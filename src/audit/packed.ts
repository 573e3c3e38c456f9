import { verify } from '../crypto/index.js';

/**
 * A batch of signature checks packed into one transferable buffer: for each
 * item, u32 (big-endian) message length, the message, the 64-byte signature
 * and the 32-byte public key. Shared by the worker threads and by the thread
 * that verifies a batch itself.
 */

/** Verify every item of a packed batch; the positions (0-based) of those that fail, ascending. */
export function verifyPacked(buf: Uint8Array, length: number = buf.length): number[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bad: number[] = [];
  let off = 0;
  let i = 0;
  while (off < length) {
    const len = view.getUint32(off);
    const message = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    const signature = buf.subarray(off, off + 64);
    const publicKey = buf.subarray(off + 64, off + 96);
    off += 96;
    if (!verify(signature, message, publicKey)) bad.push(i);
    i++;
  }
  return bad;
}
