import { replayCommand, runSimulation, type SimConfig, type SimResult } from './simulation.js';
import { TraceTail } from './trace.js';

/** Founding cluster size for a seed when none is given: cycles 3, 5, 7. */
export function nodesForSeed(seed: number): number {
  return [3, 5, 7][seed % 3] ?? 3;
}

/**
 * The report of a failed run: the violation, the drawn parameters, the tail of
 * its transcript (the run is replayed with tracing on: it is deterministic) and
 * the one-line command that replays it.
 */
export function explainFailure(result: SimResult, tailLines = 60): string {
  const tail = new TraceTail(tailLines);
  const { schedule, faulty, seed, nodes, steps } = result.config;
  runSimulation({ seed, nodes, steps, schedule, faulty, trace: (line) => tail.push(line) });
  const v = result.violation;
  return [
    `FAIL seed ${result.seed}: ${v?.kind ?? '?'} at tick ${v?.tick ?? '?'}`,
    `  ${v?.message.replaceAll('\n', '\n  ') ?? ''}`,
    `  parameters:`,
    `    ${result.params.replaceAll('\n', '\n    ')}`,
    `  last ${tailLines} transcript lines:`,
    ...tail.tail.map((l) => `    ${l}`),
    `  replay: ${replayCommand(result)}${' --trace'}`,
  ].join('\n');
}

export function summarize(result: SimResult): string {
  const s = result.stats;
  const status = result.ok ? 'ok  ' : `FAIL ${result.violation?.kind ?? ''}`;
  return (
    `seed ${result.seed} nodes ${result.config.nodes}: ${status} ticks=${s.ticks} msgs=${s.messages} ` +
    `crashes=${s.crashes} leaders=${s.leaderChanges} term=${s.maxTerm} committed=${s.committed} ` +
    `conf=${s.confChanges} snaps=${s.snapshotsSent} acked=${s.writesAcked} reads=${s.reads} ` +
    `dupes=${s.duplicatesInLog} toLeader=${s.ticksToLeader} toDrain=${s.ticksToDrain} toConverge=${s.ticksToConverge}`
  );
}

export type { SimConfig, SimResult };
