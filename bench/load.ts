/**
 * The load client shared by `npm run bench` (a BitNexus devnet) and
 * `npm run bench:etcd` (etcd 3.4, the reference): keep-alive HTTP
 * POSTs from `c` concurrent workers for a fixed time, each waiting for its
 * answer, with latency percentiles and the CPU each process used. One client
 * for both, so the two are driven the same way.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';

export interface Reply {
  status: number;
  body: string;
}

/**
 * An agent that reuses connections. Its timeout (longer than any wait for a
 * commit) makes it honour a server's Keep-Alive hint: without one it keeps
 * idle sockets for ever and may reuse one the server is closing.
 */
export function keepAliveAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 512, timeout: REQUEST_TIMEOUT_MS });
}

/** longer than any wait for a commit (the bench asks nodes for timeoutMs=30000) */
const REQUEST_TIMEOUT_MS = 120_000;

export function post(agent: Agent, url: URL, body: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    // an answer that never comes would hold its worker (and the level) past its deadline
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves once `child` has exited (at once if it has already, by a code or a signal). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** CPU seconds (user + system) a process has used, from /proc (Linux); undefined elsewhere. */
export async function cpuSeconds(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface LevelResult {
  c: number;
  /** answered 200 per second */
  rate: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  /** answered 200 */
  ok: number;
  /** CPU µs per answered request of each process in `pids` (the client first), '?' where unknown */
  cpuPerOk: string[];
}

/**
 * `c` workers POST `nextBody()` to `url(worker)` until `seconds` have passed;
 * a request answered 200 counts, any other answer or a failure is an error.
 * `pids` are the processes whose CPU is reported per answered request (this
 * process is added first).
 */
export async function runLevel(opts: {
  agent: Agent;
  c: number;
  seconds: number;
  url: (worker: number) => URL;
  nextBody: () => string | undefined;
  pids: (number | undefined)[];
}): Promise<LevelResult> {
  const pids = [process.pid, ...opts.pids];
  const cpuBefore = await Promise.all(pids.map(cpuSeconds));
  let errors = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + opts.seconds * 1000;
  const worker = async (w: number) => {
    let body: string | undefined;
    while (performance.now() < deadline && (body = opts.nextBody()) !== undefined) {
      const t0 = performance.now();
      try {
        const r = await post(opts.agent, opts.url(w), body);
        if (r.status === 200) latencies.push(performance.now() - t0);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.c }, (_, w) => worker(w)));
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = await Promise.all(pids.map(cpuSeconds));
  latencies.sort((a, b) => a - b);
  return {
    c: opts.c,
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    errors,
    ok: latencies.length,
    cpuPerOk: cpuAfter.map((a, i) => {
      const b = cpuBefore[i];
      return a === undefined || b === undefined || latencies.length === 0
        ? '?'
        : (((a - b) * 1e6) / latencies.length).toFixed(0);
    }),
  };
}

export const LEVEL_HEADER = 'concurrency | committed tx/s | p50 ms | p95 ms | p99 ms | errors';

export function levelRow(r: LevelResult): string {
  return `${String(r.c).padStart(11)} | ${r.rate.toFixed(0).padStart(14)} | ${r.p50.toFixed(1).padStart(6)} | ${r.p95.toFixed(1).padStart(6)} | ${r.p99.toFixed(1).padStart(6)} | ${r.errors}`;
}
