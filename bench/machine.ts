import { availableParallelism, cpus } from 'node:os';
import { generateKeyPair, sign, verify, type KeyPair } from '../src/crypto/index.js';

/** n signatures of one key on 260-byte messages. */
export function signedSample(n: number): { k: KeyPair; msgs: Buffer[]; sigs: Uint8Array[] } {
  const k = generateKeyPair();
  const msgs = Array.from({ length: n }, (_, i) => Buffer.from(`message ${i} `.repeat(20)));
  return { k, msgs, sigs: msgs.map((m) => sign(m, k.secretKey)) };
}

/**
 * Ed25519 verifications per second on this thread, through the fast path
 * `bitnexus verify` uses (`verify`: OpenSSL plus the strict checks), over n
 * signatures of one key on 260-byte messages.
 */
export function oneCoreVerifyRate(n: number): number {
  const { k, msgs, sigs } = signedSample(n);
  const t = performance.now();
  for (let i = 0; i < n; i++) if (!verify(sigs[i]!, msgs[i]!, k.publicKey)) throw new Error('verify failed');
  return n / ((performance.now() - t) / 1000);
}

/**
 * The first line of every benchmark: what ran it, and how fast one core is
 * right now. The machines these run on (virtual, 2 cores) drift by up to 2×
 * within an hour with nothing else running (docs/PERFORMANCE.md, round 6), so
 * a figure means little without the speed it was taken at.
 */
export function machineLine(name: string, extra = ''): string {
  const rate = oneCoreVerifyRate(3_000);
  return (
    `${name} — ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, node ${process.version}${extra}; ` +
    `machine speed now: one core verifies ${Math.round(rate).toLocaleString('en-US')} Ed25519 signatures/s`
  );
}
