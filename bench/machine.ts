import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
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
 * runs of 20,000 records, after one to warm up. Returns µs per record.
 * Round 8 ran on a machine whose signatures were fast and whose JavaScript
 * was slow, so the signature rate alone misled.
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

export interface CoreSpeed {
  /** the CPU the measuring process was pinned to; undefined: not pinned */
  cpu?: number;
  /** Ed25519 verifications per second (oneCoreVerifyRate) */
  verify: number;
  /** µs per record of jsProbeMicros */
  js: number;
  /** µs per page fault (pageFaultMicros) */
  fault: number;
}

function measureHere(): CoreSpeed {
  return { verify: oneCoreVerifyRate(3_000), js: jsProbeMicros(), fault: pageFaultMicros() };
}

/**
 * Each core's speed, from a child process pinned to it with `taskset`.
 * Round 8's machine had, for stretches, one virtual core ~35 % faster than
 * the other, so a measurement on the benchmark's own thread said how fast
 * whichever core it ran on was. Falls back to one unpinned measurement on
 * this thread where `taskset` is missing or refuses.
 */
export function coreSpeeds(): CoreSpeed[] {
  const script = fileURLToPath(import.meta.url);
  const out: CoreSpeed[] = [];
  for (let cpu = 0; cpu < cpus().length; cpu++) {
    const r = spawnSync('taskset', ['-c', String(cpu), process.execPath, script, PROBE_FLAG], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.status !== 0) return [measureHere()];
    out.push({ cpu, ...(JSON.parse(r.stdout) as CoreSpeed) });
  }
  return out.length > 0 ? out : [measureHere()];
}

const PROBE_FLAG = '--core-speed-probe';
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === PROBE_FLAG) {
  console.log(JSON.stringify(measureHere()));
}

/** The speeds machineLine printed last (undefined before the first call). */
export let lastCoreSpeeds: CoreSpeed[] | undefined;

/**
 * The first line of every benchmark: what ran it, and how fast each core is
 * right now. The machines these run on (virtual, 2 cores) drift by up to 2×
 * within an hour with nothing else running (docs/PERFORMANCE.md, round 6),
 * their cores may differ from each other, and signatures and JavaScript need
 * not be fast together (round 8): a figure means little without these.
 */
export function machineLine(name: string, extra = ''): string {
  const speeds = (lastCoreSpeeds = coreSpeeds());
  const each = speeds
    .map(
      (s) =>
        `${s.cpu === undefined ? 'this thread' : `cpu${s.cpu}`} verifies ${Math.round(s.verify).toLocaleString('en-US')} Ed25519 signatures/s, ` +
        `JSON+Map probe ${s.js.toFixed(2)} µs per record, page fault ${s.fault.toFixed(1)} µs`,
    )
    .join('; ');
  return (
    `${name} — ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, node ${process.version}${extra}\n` +
    `machine speed now: ${each}`
  );
}
