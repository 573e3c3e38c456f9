/**
 * npm run bench:raft — the Raft core's own ceiling: proposals committed per
 * second in a 3-node cluster inside one process, with in-memory storage, no
 * network delay and no serialization (messages are handed over by reference).
 * The leader proposes `--batch` small entries per driver round; every node then
 * handles its Ready (persist to memory, send, apply, advance) until the cluster
 * is quiet. Logs are compacted every `--compact` entries, as a real node would.
 * Options: --entries N (default 1,000,000), --batch N (default: 64, 256 and 1024),
 * --size BYTES (default 32), --compact N (default 10,000), --inflight N (maxInflight, default 4).
 * Prints; asserts nothing (benchmarks never gate CI on wall-clock).
 */
import { MemoryStorage, RaftNode, type Message, type RaftConfig } from '../src/consensus/index.js';
import { Prng } from '../src/simulator/prng.js';
import { machineLine } from './machine.js';

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

interface BenchNode {
  raft: RaftNode;
  storage: MemoryStorage;
  applied: number;
}

interface BenchResult {
  entries: number;
  seconds: number;
  messages: number;
  readies: number;
}

interface BenchOptions {
  entries: number;
  batch: number;
  size: number;
  compact: number;
  maxInflight: number;
}

function runBench(opts: BenchOptions): BenchResult {
  const ids = ['n1', 'n2', 'n3'];
  const tuning: Partial<RaftConfig> = {
    electionTick: 10,
    heartbeatTick: 1,
    maxMsgEntries: 4096,
    maxInflight: opts.maxInflight,
  };
  const nodes = new Map<string, BenchNode>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    const rng = new Prng(ids.indexOf(id) + 1);
    const raft = new RaftNode({
      ...tuning,
      id,
      storage,
      random: () => rng.float(),
      bootstrap: { voters: ids, learners: [] },
    });
    nodes.set(id, { raft, storage, applied: 0 });
  }
  let messages = 0;
  let readies = 0;
  const inbox: Message[] = [];

  const handleReadies = (): void => {
    for (const n of nodes.values()) {
      while (n.raft.hasReady()) {
        const rd = n.raft.ready();
        readies++;
        if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
        n.storage.append(rd.entries);
        if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
        for (const m of rd.messages) inbox.push(m);
        if (rd.snapshot !== undefined) n.applied = rd.snapshot.meta.index;
        const last = rd.committedEntries[rd.committedEntries.length - 1];
        if (last !== undefined) n.applied = last.index;
        n.raft.advance();
      }
    }
  };
  /** Deliver everything, handling Readies, until the cluster is quiet. */
  const pump = (): void => {
    handleReadies();
    while (inbox.length > 0) {
      const batch = inbox.splice(0, inbox.length);
      messages += batch.length;
      for (const m of batch) nodes.get(m.to)?.raft.step(m);
      handleReadies();
    }
  };

  const leader = nodes.get('n1') as BenchNode;
  pump(); // persist the bootstrap snapshot first: a node campaigns only from a stable log
  leader.raft.campaign();
  pump();
  if (leader.raft.status().role !== 'leader') throw new Error('n1 did not become leader');

  const payload = new Uint8Array(opts.size).fill(7);
  const start = leader.applied;
  const t0 = performance.now();
  let proposed = 0;
  let lastCompact = start;
  while (proposed < opts.entries) {
    const k = Math.min(opts.batch, opts.entries - proposed);
    for (let i = 0; i < k; i++) leader.raft.propose(payload);
    proposed += k;
    pump();
    // Heartbeats carry commit to followers; one tick per round is plenty.
    for (const n of nodes.values()) n.raft.tick();
    pump();
    if (leader.applied - lastCompact >= opts.compact) {
      for (const n of nodes.values()) {
        if (n.applied <= n.storage.firstIndex()) continue;
        n.storage.applySnapshot(n.raft.compact(n.applied, new Uint8Array(0)));
      }
      lastCompact = leader.applied;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const committed = leader.applied - start;
  const followersBehind = [...nodes.values()].filter(
    (n) => n.applied < leader.applied - opts.batch * 2,
  ).length;
  if (committed < opts.entries || followersBehind > 0) {
    throw new Error(`only ${committed} of ${opts.entries} applied (${followersBehind} followers behind)`);
  }
  return { entries: committed, seconds, messages, readies };
}

const entries = arg('--entries') ?? 1_000_000;
const size = arg('--size') ?? 32;
const compact = arg('--compact') ?? 10_000;
const batches = arg('--batch') !== undefined ? [arg('--batch') ?? 256] : [64, 256, 1024];
// A shallow window lets proposals pile up between acknowledgements and ride in one
// append; with a deep one every propose() goes out as its own one-entry message.
const maxInflight = arg('--inflight') ?? 4;

console.log(machineLine('bench:raft'));
console.log(
  `3 voters in one process, in-memory storage, no network delay; ${fmt(entries)} entries of ${size} bytes; ` +
    `maxMsgEntries 4096, maxInflight ${maxInflight}; compaction every ${fmt(compact)} entries\n`,
);
// Warm-up (JIT) on a small run, then the measured runs.
runBench({ entries: 20_000, batch: 256, size, compact, maxInflight: 256 });
for (const batch of batches) {
  const r = runBench({ entries, batch, size, compact, maxInflight });
  console.log(
    `  batch ${String(batch).padStart(5)} per round: ${fmt(r.entries / r.seconds).padStart(10)} entries/s committed ` +
      `(${fmt(r.entries)} in ${r.seconds.toFixed(2)} s; ${fmt(r.messages)} messages, ${fmt(r.readies)} Readies)`,
  );
}
console.log('target: >= 200,000 entries/s with batching');
