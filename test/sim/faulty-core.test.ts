import { describe, expect, it } from 'vitest';
import { explainFailure } from '../../src/simulator/report.js';
import { replayCommand, runSimulation, type SimResult } from '../../src/simulator/simulation.js';
import { SAFETY_KINDS } from '../../src/simulator/violation.js';
import { CI_STEPS, FAULTY_SEEDS, seedRange } from './ci-seeds.js';

// The simulator's self-test: a core that commits entries of earlier terms by
// counting replicas (Raft Figure 8) must be caught breaking a safety property.
describe('the simulator catches a real Raft bug', () => {
  it('reports a safety violation against the commitPriorTermEntries core within the CI seeds', () => {
    let caught: SimResult | undefined;
    for (const seed of seedRange(FAULTY_SEEDS)) {
      const result = runSimulation({
        seed,
        nodes: 3,
        steps: CI_STEPS,
        schedule: 'leaderChurn',
        faulty: true,
      });
      if (!result.ok && result.violation !== undefined && SAFETY_KINDS.has(result.violation.kind)) {
        caught = result;
        break;
      }
    }
    expect(caught, `no seed in ${FAULTY_SEEDS.join('..')} caught the Figure-8 bug`).toBeDefined();
    if (caught !== undefined) {
      console.log(
        `faulty core caught by seed ${caught.seed}: ${caught.violation?.kind}\n${explainFailure(caught, 30)}`,
      );
      expect(replayCommand(caught)).toContain('--faulty');
    }
  });
});
