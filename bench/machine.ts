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
 * Work like the ledger's and the sink's, without signatures: per record, one
 * object stringified and parsed as JSON, kept in a Map (of 4,096 entries)
 * under a freshly built string key and looked up again; the median of three
 * runs of 20,000 records, after one to warm up. Returns µs per record. Round 8 ran on a machine whose signatures were fast
 * and whose JavaScript was slow, so the signature rate alone misled.
 */
export function jsProbeMicros(): number {
  const run = (n: number) => {
    const t = performance.now();
    const m = new Map<string, unknown>();
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const id = `c/${(i & 4095).toString(16).padStart(16, '0')}`;
      const text = JSON.stringify({
        id,
        kind: 'commission.record',
        amount: String(i * 7),
        meta: { k: `v${i}` },
      });
      const o = JSON.parse(text) as { id: string };
      m.set(o.id, o);
      if (m.get(`c/${((i >> 1) & 4095).toString(16).padStart(16, '0')}`) !== undefined) hits++;
    }
    if (hits !== n) throw new Error('probe miscounted');
    return ((performance.now() - t) * 1000) / n;
  };
  run(20_000);
  const runs = [run(20_000), run(20_000), run(20_000)].sort((a, b) => a - b);
  return runs[1]!;
}

/**
 * What the first touch of a fresh 4 KiB page costs (µs): the kernel's page
 * fault, zeroing included. ~0.1–0.3 µs on bare metal; ~13 µs on the virtual
 * machines of round 8, where it was up to a quarter of the sink's time
 * (docs/PERFORMANCE.md).
 */
export function pageFaultMicros(): number {
  const size = 32 << 20;
  const bytes = new Uint8Array(new ArrayBuffer(size)); // zeroed pages, mapped on first touch
  const t = performance.now();
  for (let i = 0; i < size; i += 4096) bytes[i] = 1;
  return ((performance.now() - t) * 1000) / (size / 4096);
}

/**
 * The first line of every benchmark: what ran it, and how fast one core is
 * right now. The machines these run on (virtual, 2 cores) drift by up to 2×
 * within an hour with nothing else running (docs/PERFORMANCE.md, round 6), so
 * a figure means little without the speed it was taken at; and machines
 * differ in more than one way (round 8), so it gives three measures.
 */
export function machineLine(name: string, extra = ''): string {
  const rate = oneCoreVerifyRate(3_000);
  const js = jsProbeMicros();
  const fault = pageFaultMicros();
  return (
    `${name} — ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, node ${process.version}${extra}; ` +
    `machine speed now: one core verifies ${Math.round(rate).toLocaleString('en-US')} Ed25519 signatures/s, ` +
    `JSON+Map probe ${js.toFixed(2)} µs per record, page fault ${fault.toFixed(1)} µs`
  );
}
