import type { ClientConfig } from './clients.js';
import type { NetworkFaults } from './network.js';
import type { Prng } from './prng.js';
import type { RaftTuning } from './sim-node.js';

/** How hard the fault schedule pushes. Rates are chances per tick unless noted. */
export interface FaultRates {
  crash: number;
  /** Share of crashes aimed at the current leader. */
  crashLeader: number;
  /** Ticks a crashed node stays down: [min, max]. */
  downtime: [number, number];
  /** Chance per Ready of a crash before persisting / between persisting and sending / before applying. */
  crashInReady: number;
  partition: number;
  /** Ticks a partition lasts: [min, max]. */
  partitionLength: [number, number];
  confChange: number;
  transfer: number;
  /** Chance per tick and node that its clock skips a tick (drift between nodes). */
  tickSkip: number;
  /** Compact a node's log when it holds this many applied entries. */
  compactEvery: number;
  /** If set, each new leader is crashed (or cut off) after a lifetime in [min, max] ticks. */
  leaderLifetime: [number, number] | null;
}

/** Everything a run does besides its seed: drawn from the seed, printed with a failure. */
export interface RunParams {
  raft: RaftTuning;
  network: NetworkFaults;
  faults: FaultRates;
  clients: ClientConfig;
}

export type Schedule = 'mixed' | 'leaderChurn';

/**
 * Draw the run's parameters ("swarm testing": each seed turns different fault
 * knobs up or off, so that combinations the average schedule would dilute get
 * explored). 'leaderChurn' biases towards frequent leader crashes, short
 * downtimes and one-entry appends: the schedule in which commitment of earlier
 * terms' entries (Raft Figure 8) goes wrong.
 */
export function drawParams(rng: Prng, schedule: Schedule, faulty: boolean): RunParams {
  const raft: RaftTuning = {
    electionTick: 10,
    heartbeatTick: 1,
    preVote: rng.chance(0.75),
    checkQuorum: rng.chance(0.75),
    maxMsgEntries: rng.pick([1, 2, 8, 64]),
    maxInflight: rng.pick([1, 4, 256]),
    ...(faulty ? { faults: { commitPriorTermEntries: true } } : {}),
  };
  const maxDelay = rng.range(1, 4);
  const network: NetworkFaults = {
    dropRate: rng.pick([0, 0.01, 0.05, 0.15]),
    duplicateRate: rng.pick([0, 0.01, 0.05]),
    minDelay: 1,
    maxDelay,
    longDelayRate: rng.pick([0, 0.005, 0.03]),
    longDelayMax: 40,
    fifo: rng.chance(0.5),
  };
  const faults: FaultRates = {
    crash: rng.pick([0.001, 0.003, 0.008]),
    crashLeader: rng.pick([0.2, 0.5]),
    downtime: [5, rng.pick([30, 120])],
    crashInReady: rng.pick([0, 0.0005, 0.002]),
    partition: rng.pick([0, 0.005, 0.02]),
    partitionLength: [5, rng.pick([40, 150])],
    confChange: rng.pick([0, 0.003, 0.01]),
    transfer: rng.pick([0, 0.002, 0.01]),
    tickSkip: rng.pick([0, 0.02, 0.1]),
    compactEvery: rng.pick([8, 30, 100, 100_000]),
    leaderLifetime: rng.chance(0.2) ? [1, rng.pick([15, 60])] : null,
  };
  // Tiny appends, a deep pipeline and a reordering network make the core's append
  // storm (see docs/SIMULATOR.md, finding F1): keep that combination rare so that a
  // run's cost stays predictable.
  if (!network.fifo && (raft.maxMsgEntries ?? 64) <= 2 && rng.chance(0.9))
    raft.maxInflight = rng.pick([1, 4, 16]);
  const clients: ClientConfig = {
    clients: rng.range(2, 5),
    keys: rng.range(1, 4),
    opRate: rng.pick([0.1, 0.3, 0.6]),
    writeRatio: rng.pick([0.3, 0.6, 0.9]),
    timeout: rng.pick([15, 40]),
    abandonRate: rng.pick([0, 0.05, 0.2]),
  };
  if (schedule === 'leaderChurn') {
    raft.maxMsgEntries = 1;
    raft.maxInflight = rng.pick([1, 256]);
    network.dropRate = rng.pick([0.1, 0.2]);
    network.longDelayRate = rng.pick([0.05, 0.1]);
    faults.crash = 0.01;
    faults.crashLeader = 0.5;
    faults.downtime = [2, 20];
    faults.crashInReady = 0.003;
    faults.leaderLifetime = [1, rng.pick([5, 15, 40])];
    faults.partition = 0.05;
    faults.partitionLength = [3, 30];
    faults.confChange = 0;
    faults.transfer = 0;
    clients.opRate = 0.8;
    clients.writeRatio = 0.9;
  }
  return { raft, network, faults, clients };
}

export function describeParams(p: RunParams): string {
  const r = p.raft;
  const n = p.network;
  const f = p.faults;
  const c = p.clients;
  return [
    `raft preVote=${r.preVote} checkQuorum=${r.checkQuorum} maxMsgEntries=${r.maxMsgEntries} maxInflight=${r.maxInflight}` +
      (r.faults?.commitPriorTermEntries === true ? ' FAULT=commitPriorTermEntries' : ''),
    `net drop=${n.dropRate} dup=${n.duplicateRate} delay=${n.minDelay}..${n.maxDelay} long=${n.longDelayRate} ` +
      (n.fifo ? 'fifo' : 'reordering'),
    `faults crash=${f.crash} (leader ${f.crashLeader}) down=${f.downtime.join('..')} inReady=${f.crashInReady} ` +
      `partition=${f.partition} (${f.partitionLength.join('..')}) conf=${f.confChange} transfer=${f.transfer} ` +
      `skew=${f.tickSkip} compactEvery=${f.compactEvery}` +
      (f.leaderLifetime !== null ? ` leaderLifetime=${f.leaderLifetime.join('..')}` : ''),
    `clients ${c.clients} keys=${c.keys} rate=${c.opRate} writes=${c.writeRatio} timeout=${c.timeout} abandon=${c.abandonRate}`,
  ].join('\n');
}
