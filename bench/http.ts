/**
 * npm run bench — the whole system under load: a 3-node devnet (separate
 * processes, fsync on), pre-signed commission transactions submitted over
 * HTTP with keep-alive at concurrency 1, 16, 64 and 256, each request waiting
 * for its committed receipt. Prints committed transactions per second and
 * p50/p95/p99 commit latency per level.
 *
 * Options: --seconds N per level (default 10), --levels 1,16,64,256, --warmup N
 * seconds at 64 clients before the first level, not measured (default 5),
 * --target all|leader (default all: requests round-robin over every node,
 * followers gossip to the leader), --nodes 3, --keep (leave the devnet dir),
 * --etcd (then the same levels against etcd 3.4 on this machine, bench/etcd.ts,
 * and the ratio the issue's target is stated in).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../src/codec/index.js';
import { generateKeyPair, type KeyPair } from '../src/crypto/index.js';
import type { UnsignedTx } from '../src/ledger/index.js';
import { initNetwork } from '../src/node/init.js';
import { readKeyFile } from '../src/node/keyfile.js';
import { etcdOptionsFromArgs, runEtcd } from './etcd.js';
import { exited, keepAliveAgent, LEVEL_HEADER, levelRow, post, runLevel, type LevelResult } from './load.js';
import { machineLine } from './machine.js';
import { signedJson } from './workload.js';

const BIN = fileURLToPath(new URL('../../bin/bitnexus.js', import.meta.url));

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

const seconds = Number(arg('--seconds', '10'));
const levels = arg('--levels', '1,16,64,256').split(',').map(Number);
/** seconds of load at 64 clients before the first level, not measured (JIT, caches, LevelDB warm) */
const warmup = Number(arg('--warmup', '5'));
const target = arg('--target', 'all');
const nodeCount = Number(arg('--nodes', '3'));
const keep = process.argv.includes('--keep');
/** nodes mirror into embedded PGlite by default, as `npm start` does; --no-mirror measures consensus alone */
const mirror = !process.argv.includes('--no-mirror');
/** then the same levels against a 3-member etcd 3.4 on this machine (bench/etcd.ts) */
const withEtcd = process.argv.includes('--etcd');
/** a bench transaction's JSON length: the etcd run's value size */
let txBytes = 700;

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

async function waitHealthy(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) return;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

const dir = await mkdtemp(join(tmpdir(), 'bitnexus-bench-'));
const results: LevelResult[] = [];
const children: ChildProcess[] = [];
try {
  console.log(machineLine('bench (HTTP)', `; ${nodeCount} nodes, fsync on, target ${target}`));
  const net = await initNetwork({ dir, nodes: nodeCount, chainId: 'bitnexus-bench', basePort: 27100 });
  for (const n of net.nodes) {
    const args = [
      BIN,
      'start',
      '--config',
      n.config,
      '--log-level',
      'warn',
      ...(mirror ? [] : ['--no-mirror']),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
  }
  const urls = net.nodes.map((n) => n.http);
  await Promise.all(urls.map(waitHealthy));
  const operator = await readKeyFile(join(dir, 'operator.key'));
  const chainId = net.chainId;
  const sign = (signer: KeyPair, kind: UnsignedTx['kind'], payload: unknown) =>
    signedJson(chainId, signer, kind, payload);
  const agent = keepAliveAgent();
  const commitUrl = (i: number) =>
    new URL(`${urls[target === 'all' ? i % urls.length : 0]}/v1/transactions?wait=commit&timeoutMs=30000`);

  // participants: 16 merchants, 64 affiliates
  const merchants = Array.from({ length: 16 }, () => generateKeyPair());
  const affiliates = Array.from({ length: 64 }, () => generateKeyPair());
  const regs = [
    ...merchants.map((k) => [k, 'merchant'] as const),
    ...affiliates.map((k) => [k, 'affiliate'] as const),
  ].map(([k, role], i) =>
    sign(operator, 'participant.register', { participant: toHex(k.publicKey), role, name: `${role} ${i}` }),
  );
  await Promise.all(
    regs.map(async (body, i) => {
      const r = await post(agent, commitUrl(i), body);
      if (r.status !== 200) throw new Error(`registration failed: ${r.status} ${r.body}`);
    }),
  );
  if (target === 'leader') {
    const s = await getJson<{ leader: string }>(`${urls[0]}/v1/status`);
    const leaderIdx = net.nodes.findIndex((n) => n.nodeId === s.leader);
    if (leaderIdx > 0) urls.unshift(...urls.splice(leaderIdx, 1));
  }

  /** the highest chain height any node reports: the blocks a level committed */
  const leaderHeight = async () =>
    Math.max(
      ...(await Promise.all(urls.map((u) => getJson<{ height: number }>(`${u}/v1/status`)))).map(
        (s) => s.height,
      ),
    );

  let order = 0;
  const makeTx = () => {
    const m = merchants[order % merchants.length]!;
    const a = affiliates[(order * 7) % affiliates.length]!;
    order++;
    return sign(m, 'commission.record', {
      merchant: toHex(m.publicKey),
      affiliate: toHex(a.publicKey),
      amount: String(1000 + (order % 9000)),
      currency: 'EUR',
      orderId: `bench-${order}`,
      description: `Order ${order}: referral for product line ${order % 40}`,
    });
  };

  if (warmup > 0) {
    // A node that has been running for a while, not one seconds old: otherwise whichever level
    // comes first pays for the JIT compiling the hot paths (~20 % fewer tx/s at 64 clients).
    const txs = Array.from({ length: Math.ceil(3000 * warmup) }, makeTx);
    let next = 0;
    const deadline = performance.now() + warmup * 1000;
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        while (performance.now() < deadline && next < txs.length) {
          await post(agent, commitUrl(w), txs[next++]!).catch(() => undefined);
        }
      }),
    );
    console.log(`warm-up: ${next} transactions at 64 clients in ${warmup} s, not measured`);
  }
  console.log(LEVEL_HEADER);
  const cpuNotes: string[] = [];
  for (const c of levels) {
    // Pre-sign enough for this level (an upper bound of what it can commit), so signing is not measured.
    const budget = Math.min(60_000, Math.max(2000, c * 60 * seconds));
    const txs = Array.from({ length: budget }, makeTx);
    let next = 0;
    const heightBefore = await leaderHeight();
    const row = await runLevel({
      agent,
      c,
      seconds,
      url: commitUrl,
      nextBody: () => txs[next++],
      pids: children.map((ch) => ch.pid),
    });
    const blocks = (await leaderHeight()) - heightBefore;
    results.push(row);
    if (mirror) {
      // The mirror's lag right after the level: consensus never waits on it, so it may trail.
      const lags = await Promise.all(
        urls.map((u) =>
          getJson<{ lagBlocks?: number; lagSeconds?: number }>(`${u}/v1/sync/status`).catch(() => ({
            lagBlocks: undefined,
            lagSeconds: undefined,
          })),
        ),
      );
      console.log(
        `            mirror lag: ${lags.map((l) => `${l.lagBlocks ?? '?'} blocks / ${l.lagSeconds?.toFixed(2) ?? '?'} s`).join(', ')}`,
      );
    }
    // CPU used per committed transaction, by the client and each node: a measure of work that,
    // unlike the rate, does not depend on what else the machine is doing.
    const perTx = row.cpuPerOk;
    cpuNotes.push(
      `c=${c}: client ${perTx[0]} µs, nodes ${perTx.slice(1).join(' / ')} µs; ${blocks} blocks, ${(row.ok / Math.max(1, blocks)).toFixed(1)} tx per block`,
    );
    console.log(levelRow(row));
  }
  console.log('CPU time per committed transaction (user + system):');
  for (const n of cpuNotes) console.log(`  ${n}`);
  const heights = await Promise.all(
    urls.map((u) => getJson<{ height: number; headHash: string }>(`${u}/v1/status`)),
  );
  console.log(
    `final heights ${heights.map((h) => h.height).join(', ')}; the issue's reference: etcd 3.4, 3 members: ~1,800 puts/s at c=64 (p99 ≈ 95 ms), ~2,300 at c=256${withEtcd ? '' : ' (--etcd measures it here)'}`,
  );
  txBytes = Buffer.byteLength(makeTx());
  agent.destroy();
} finally {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map(exited));
  if (!keep) await rm(dir, { recursive: true, force: true });
  else console.log(`devnet kept in ${dir}`);
}

if (withEtcd) {
  // The devnet has stopped: etcd gets the machine to itself, as the nodes had.
  const opts = etcdOptionsFromArgs(process.argv, { levels });
  if (!process.argv.includes('--value-bytes')) opts.valueBytes = txBytes;
  const ref = await runEtcd(opts);
  console.log('BitNexus against etcd, this run (the target: ≥ 2× the throughput, p99 no worse):');
  for (const r of results) {
    const e = ref.find((x) => x.c === r.c);
    if (e)
      console.log(
        `  c=${r.c}: ${(r.rate / e.rate).toFixed(2)}× the throughput (${r.rate.toFixed(0)} / ${e.rate.toFixed(0)}), p99 ${r.p99.toFixed(1)} / ${e.p99.toFixed(1)} ms`,
      );
  }
}
