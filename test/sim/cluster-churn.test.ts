import { describe, it } from 'vitest';
import { CHURN_SEEDS, runSeed, seedRange } from './ci-seeds.js';

describe('simulated clusters, leader churn (short-lived leaders, one-entry appends)', () => {
  for (const seed of seedRange(CHURN_SEEDS)) {
    it(`seed ${seed}`, () => {
      runSeed(seed, { schedule: 'leaderChurn' });
    });
  }
});
