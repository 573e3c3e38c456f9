import { describe, expect, it } from 'vitest';
import { replayCommand, runSimulation } from '../../src/simulator/simulation.js';

describe('a run is a pure function of its seed', () => {
  it('replays the same transcript and the same result', () => {
    const record = (): { lines: string[]; result: unknown } => {
      const lines: string[] = [];
      const result = runSimulation({ seed: 4242, nodes: 5, steps: 600, trace: (l) => lines.push(l) });
      return { lines, result };
    };
    const a = record();
    const b = record();
    expect(a.lines.length).toBeGreaterThan(1000);
    expect(b.lines).toEqual(a.lines);
    expect(b.result).toEqual(a.result);
    // Tracing observes; it does not change the run.
    expect(runSimulation({ seed: 4242, nodes: 5, steps: 600 })).toEqual(a.result);
    expect(a.lines.some((l) => / deliver n\d->n\d app t\d+ prev /.test(l))).toBe(true);
  });

  it('prints a one-line replay command', () => {
    const r = runSimulation({ seed: 7, nodes: 3, steps: 100, schedule: 'leaderChurn', faulty: true });
    expect(replayCommand(r)).toBe(
      'npm run sim -- --seed 7 --nodes 3 --steps 100 --schedule leaderChurn --faulty',
    );
  });
});
