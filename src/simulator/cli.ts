import { parseArgs } from 'node:util';
import type { Schedule } from './params.js';
import { explainFailure, nodesForSeed, summarize } from './report.js';
import { replayCommand, runSimulation } from './simulation.js';

const USAGE = `usage: npm run sim -- [--seed S | --seeds N [--from F]] [--nodes 3|5|7] [--steps T]
                       [--schedule mixed|leaderChurn] [--faulty] [--trace] [--verbose]

  --seed S       run (replay) one seed; with --trace print its whole message transcript
  --seeds N      run seeds F..F+N-1 (default F=1); prints each failure with its replay command
  --nodes N      founding voters (default: 3, 5, 7 by seed)
  --steps T      ticks of the fault phase (default 2000); a calm phase checking liveness follows
  --schedule     fault schedule: mixed (default) or leaderChurn (frequent leader crashes)
  --faulty       run the core with its deliberate Figure-8 bug (expect violations)
  --verbose      one summary line per run`;

function main(): number {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string' },
      nodes: { type: 'string' },
      steps: { type: 'string' },
      schedule: { type: 'string' },
      faulty: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const int = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`--${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  const scheduleArg = values.schedule ?? 'mixed';
  if (scheduleArg !== 'mixed' && scheduleArg !== 'leaderChurn')
    throw new Error(`unknown --schedule ${scheduleArg}`);
  const schedule: Schedule = scheduleArg;
  const steps = int(values.steps, 'steps', 2000);
  const fixedNodes = values.nodes === undefined ? undefined : int(values.nodes, 'nodes', 3);
  if (fixedNodes !== undefined && (fixedNodes < 1 || fixedNodes > 9)) throw new Error('--nodes must be 1..9');
  const faulty = values.faulty;

  if (values.seed !== undefined) {
    const seed = int(values.seed, 'seed', 1);
    const nodes = fixedNodes ?? nodesForSeed(seed);
    const result = runSimulation({
      seed,
      nodes,
      steps,
      schedule,
      faulty,
      ...(values.trace ? { trace: (line: string) => console.log(line) } : {}),
    });
    console.log(result.params);
    console.log(summarize(result));
    if (!result.ok) {
      console.log(values.trace ? `FAIL: ${result.violation?.message}` : explainFailure(result));
      console.log(`replay: ${replayCommand(result)} --trace`);
      return 1;
    }
    return 0;
  }

  const count = int(values.seeds, 'seeds', 100);
  const from = int(values.from, 'from', 1);
  const started = performance.now();
  const failures: string[] = [];
  let ticks = 0;
  let messages = 0;
  const events: Record<string, number> = {};
  for (let seed = from; seed < from + count; seed++) {
    const result = runSimulation({ seed, nodes: fixedNodes ?? nodesForSeed(seed), steps, schedule, faulty });
    ticks += result.stats.ticks;
    messages += result.stats.messages;
    for (const [k, n] of Object.entries(result.stats.events)) events[k] = (events[k] ?? 0) + n;
    if (values.verbose) console.log(summarize(result));
    if (!result.ok) {
      console.log(explainFailure(result));
      failures.push(`seed ${seed}: ${result.violation?.kind} -> ${replayCommand(result)}`);
    }
  }
  const secs = (performance.now() - started) / 1000;
  console.log(
    `${count} runs (seeds ${from}..${from + count - 1}, ${steps} fault ticks each${faulty ? ', FAULTY core' : ''}): ` +
      `${count - failures.length} passed, ${failures.length} failed; ${ticks} ticks, ${messages} messages in ${secs.toFixed(1)} s`,
  );
  console.log(
    `events: ${Object.entries(events)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => `${k}=${n}`)
      .join(' ')}`,
  );
  for (const f of failures) console.log(`  ${f}`);
  return failures.length === 0 ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  console.error(USAGE);
  process.exitCode = 2;
}
