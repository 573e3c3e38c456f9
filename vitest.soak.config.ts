import { defineConfig } from 'vitest/config';

// The fault-injection soak (test/soak): real processes, minutes per run, so it is kept out of
// vitest.config.ts and runs only with `npm run test:soak` (BITNEXUS_SOAK_* env, see test/soak/soak.test.ts).
const seconds = Number(process.env.BITNEXUS_SOAK_SECONDS ?? 120) || 120;

export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    testTimeout: (seconds + 900) * 1000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
