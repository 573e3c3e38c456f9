// The seed set CI runs (the `sim` vitest project). A failure names its seed and
// prints a one-line replay command; see docs/SIMULATOR.md.
import { explainFailure, nodesForSeed } from '../../src/simulator/report.js';
import { runSimulation, type SimConfig, type SimResult } from '../../src/simulator/simulation.js';

/** Fault-phase ticks per CI run (a calm phase that checks liveness follows). */
export const CI_STEPS = 3000;

/** The mixed schedule: seeds 1..240, founding clusters of 3, 5 and 7 nodes in turn; split over files to use both cores. */
export const MIXED_SEED_BLOCKS: readonly [number, number][] = [
  [1, 120],
  [121, 240],
];

/** The leader-churn schedule (short-lived leaders, one-entry appends) against the real core. */
export const CHURN_SEEDS: readonly [number, number] = [1, 60];

/** The same schedule against the core with its deliberate Figure-8 bug: some seed here must fail. */
export const FAULTY_SEEDS: readonly [number, number] = [1, 60];

export function seedRange([from, to]: readonly [number, number]): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Run one seed; throw the full failure report (violation, parameters, transcript tail, replay command). */
export function runSeed(seed: number, config: Partial<Omit<SimConfig, 'seed'>> = {}): SimResult {
  const result = runSimulation({ seed, nodes: nodesForSeed(seed), steps: CI_STEPS, ...config });
  if (!result.ok) throw new Error(explainFailure(result));
  return result;
}

/**
 * Every fault and event the simulator claims to exercise, which a block of CI
 * seeds must actually hit (so that a change to the schedule cannot quietly stop
 * testing, say, crashes between persist and send, or removing the leader).
 */
export const REQUIRED_EVENTS: readonly string[] = [
  'crash.node',
  'crash.leader',
  'crash.leaderAtCalm',
  'crash.leaderLifetime',
  'crash.beforePersist',
  'crash.afterPersist',
  'crash.afterSend',
  'partition.isolate',
  'partition.split',
  'partition.asymmetric',
  'partition.links',
  'conf.addLearner',
  'conf.promoteLearner',
  'conf.removeNode',
  'conf.removeLeader',
  'transfer',
  'compaction',
  'snapshot.sent',
  'snapshot.restored',
  'client.retry',
  'client.abandon',
  'log.duplicates',
];

export function missingEvents(results: readonly SimResult[]): string[] {
  const seen = new Map<string, number>();
  for (const r of results)
    for (const [k, n] of Object.entries(r.stats.events)) seen.set(k, (seen.get(k) ?? 0) + n);
  return REQUIRED_EVENTS.filter((e) => (seen.get(e) ?? 0) === 0);
}
