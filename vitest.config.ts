import { defineConfig } from 'vitest/config';

// Three tiers (see ../shared/ARCHITECTURE.md "Testing tiers"): pure unit and
// property tests, deterministic Raft simulation, and end-to-end tests that
// spawn the real CLI. Each runs as its own vitest project so it can be run alone
// (`npm run test:unit`, `test:sim`, `test:e2e`).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'sim',
          include: ['test/sim/**/*.test.ts'],
          testTimeout: 600_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
