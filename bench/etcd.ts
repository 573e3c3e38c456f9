/**
 * npm run bench:etcd — the issue's reference, measured on this machine: a
 * 3-member etcd 3.4 cluster on loopback (fsync on, etcd's defaults), driven
 * through its HTTP/JSON gateway (`POST /v3/kv/put`) by the same keep-alive
 * client as `npm run bench` (bench/load.ts), requests spread over all
 * members, each a new key with a value the size of a bench transaction.
 * Prints puts per second and p50/p95/p99 latency per level, and the CPU each
 * process used per put.
 *
 * `npm run bench -- --etcd` runs it right after the BitNexus levels, on the
 * same machine minutes apart, and prints the ratio: the issue's target is
 * twice etcd's throughput with p99 no worse.
 *
 * etcd is not a dependency: `bash scripts/install-etcd.sh` installs Debian's
 * etcd-server (3.4). Options: --levels 64,256, --seconds 10, --warmup 5,
 * --value-bytes N (default 700), --etcd-bin PATH (default `etcd` on PATH).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited, keepAliveAgent, LEVEL_HEADER, levelRow, post, runLevel, type LevelResult } from './load.js';
import { machineLine } from './machine.js';

const MEMBERS = 3;
const BASE_PORT = 27370;

export interface EtcdOptions {
  levels: number[];
  seconds: number;
  warmup: number;
  valueBytes: number;
  bin: string;
}

/** The etcd binary's version line, or an error that says how to install it. */
function etcdVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    throw new Error(
      `cannot run ${bin} (${r.error?.message ?? `exit ${r.status}`}): install Debian's etcd 3.4 with ` +
        '`bash scripts/install-etcd.sh`, or pass --etcd-bin PATH',
    );
  return r.stdout.split('\n')[0]!.trim();
}

async function waitHealthy(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok && ((await r.json()) as { health?: string }).health === 'true') return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd on port ${port} not healthy after 30 s`);
}

/**
 * Starts the cluster, runs a warm-up and each level, prints a row per level
 * and the CPU per put, stops the cluster and removes its data.
 */
export async function runEtcd(opts: EtcdOptions): Promise<LevelResult[]> {
  const version = etcdVersion(opts.bin);
  const dir = await mkdtemp(join(tmpdir(), 'bitnexus-etcd-'));
  const children: ChildProcess[] = [];
  const clientPort = (i: number) => BASE_PORT + i;
  const peerPort = (i: number) => BASE_PORT + 10 + i;
  const cluster = Array.from({ length: MEMBERS }, (_, i) => `e${i}=http://127.0.0.1:${peerPort(i)}`).join(
    ',',
  );
  const results: LevelResult[] = [];
  try {
    for (let i = 0; i < MEMBERS; i++) {
      const child = spawn(
        opts.bin,
        [
          ['--name', `e${i}`],
          ['--data-dir', join(dir, `e${i}`)],
          ['--listen-client-urls', `http://127.0.0.1:${clientPort(i)}`],
          ['--advertise-client-urls', `http://127.0.0.1:${clientPort(i)}`],
          ['--listen-peer-urls', `http://127.0.0.1:${peerPort(i)}`],
          ['--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort(i)}`],
          ['--initial-cluster', cluster],
          ['--initial-cluster-state', 'new'],
          ['--initial-cluster-token', 'bitnexus-bench'],
          ['--log-level', 'warn'],
        ].flat(),
        { stdio: ['ignore', 'ignore', 'ignore'] },
      );
      children.push(child);
    }
    await Promise.all(children.map((_, i) => waitHealthy(clientPort(i))));
    console.log(
      `etcd: ${version}, ${MEMBERS} members on loopback, fsync on; PUT /v3/kv/put, a new key per put, ${opts.valueBytes}-byte values`,
    );
    const agent = keepAliveAgent();
    const url = (w: number) => new URL(`http://127.0.0.1:${clientPort(w % MEMBERS)}/v3/kv/put`);
    const value = Buffer.alloc(opts.valueBytes, 'commission ').toString('base64');
    let n = 0;
    const nextBody = () => `{"key":"${Buffer.from(`bench-${n++}`).toString('base64')}","value":"${value}"}`;
    const pids = children.map((c) => c.pid);
    if (opts.warmup > 0) {
      const warm = await runLevel({ agent, c: 64, seconds: opts.warmup, url, nextBody, pids });
      console.log(`warm-up: ${warm.ok} puts at 64 clients in ${opts.warmup} s, not measured`);
    }
    console.log(LEVEL_HEADER.replace('committed tx/s', '    puts/s    '));
    const cpuNotes: string[] = [];
    for (const c of opts.levels) {
      const row = await runLevel({ agent, c, seconds: opts.seconds, url, nextBody, pids });
      results.push(row);
      console.log(levelRow(row));
      cpuNotes.push(`c=${c}: client ${row.cpuPerOk[0]} µs, members ${row.cpuPerOk.slice(1).join(' / ')} µs`);
    }
    // one put answered by each member: the cluster held together
    for (let i = 0; i < MEMBERS; i++) {
      const r = await post(agent, url(i), nextBody());
      if (r.status !== 200) throw new Error(`etcd member ${i} answered ${r.status}: ${r.body}`);
    }
    console.log('CPU time per put (user + system):');
    for (const note of cpuNotes) console.log(`  ${note}`);
    agent.destroy();
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map(exited));
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

/** The options as `npm run bench:etcd` and `npm run bench -- --etcd` read them from argv. */
export function etcdOptionsFromArgs(argv: string[], defaults: { levels: number[] }): EtcdOptions {
  const arg = (name: string, def: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? (argv[i + 1] ?? def) : def;
  };
  return {
    levels: arg('--levels', defaults.levels.join(',')).split(',').map(Number),
    seconds: Number(arg('--seconds', '10')),
    warmup: Number(arg('--warmup', '5')),
    valueBytes: Number(arg('--value-bytes', '700')),
    bin: arg('--etcd-bin', 'etcd'),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(machineLine('bench (etcd reference)', ''));
  try {
    await runEtcd(etcdOptionsFromArgs(process.argv, { levels: [64, 256] }));
  } catch (err) {
    console.error(`bench:etcd: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
