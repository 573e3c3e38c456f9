import { afterAll, describe, expect, it } from 'vitest';
import type { SimResult } from '../../src/simulator/simulation.js';
import { MIXED_SEED_BLOCKS, missingEvents, runSeed, seedRange } from './ci-seeds.js';

describe('simulated clusters, mixed faults (seeds block A)', () => {
  const results: SimResult[] = [];
  for (const seed of seedRange(MIXED_SEED_BLOCKS[0] ?? [1, 1])) {
    it(`seed ${seed}`, () => {
      results.push(runSeed(seed));
    });
  }
  afterAll(() => {
    // Only meaningful when the whole block ran (not under a name filter).
    if (results.length === seedRange(MIXED_SEED_BLOCKS[0] ?? [1, 1]).length) {
      expect(missingEvents(results), 'faults this block never exercised').toEqual([]);
    }
  });
});
