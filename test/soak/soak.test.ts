import { afterAll, describe, expect, it } from 'vitest';
import { Soak, soakOptionsFromEnv } from './soak.js';

// A real-process fault-injection soak (npm run test:soak). Environment:
//   BITNEXUS_SOAK_SEED      the seed of the fault schedule and client choices (default: random, printed)
//   BITNEXUS_SOAK_SECONDS   how long faults and load run (default 120)
//   BITNEXUS_SOAK_NODES     3 (default) or 5
//   BITNEXUS_SOAK_CLIENTS   concurrent clients (default 6)
//   BITNEXUS_SOAK_MIRROR=1  nodes mirror into their embedded PGlite; at the end `bitnexus sync check`
//                           must pass on every node (slower: three PGlite databases on the machine)
//   BITNEXUS_SOAK_PARTITIONS=0 no network partitions (they need root and iproute2: each node runs in a
//                           network namespace of its own, and links are cut with blackhole routes)
//   BITNEXUS_SOAK_KEEP=1    keep the temp dir even when the run passes
//   BITNEXUS_SOAK_VERBOSE=0 print only the summary
// A failure prints the seed, every violation and the temp dir (node logs, soak-report.json with a timeline).

const opts = soakOptionsFromEnv();
let soak: Soak | undefined;
let passed = false;

afterAll(async () => {
  if (!soak) return;
  const report = await soak.writeReport();
  const keep = !passed || process.env.BITNEXUS_SOAK_KEEP === '1';
  await soak.destroy(!keep);
  if (keep) console.log(`soak seed ${opts.seed}: kept ${soak.dir} (report ${report})`);
});

describe(`fault-injection soak (seed ${opts.seed}, ${opts.seconds} s, ${opts.nodes} nodes)`, () => {
  it(`loses, duplicates and diverges nothing acknowledged under kill -9, SIGSTOP${opts.partitions ? ' and partitions' : ''}`, async () => {
    console.log(
      `BITNEXUS_SOAK_SEED=${opts.seed} BITNEXUS_SOAK_SECONDS=${opts.seconds} BITNEXUS_SOAK_NODES=${opts.nodes} BITNEXUS_SOAK_PARTITIONS=${opts.partitions ? 1 : 0}`,
    );
    soak = await Soak.create(opts);
    await soak.run();
    const summary = soak.summary();
    console.log(JSON.stringify({ ...summary, episodeList: undefined }, null, 2));
    expect(soak.violations, `seed ${opts.seed}; logs and report in ${soak.dir}`).toEqual([]);
    expect(summary.episodes as number, 'faults were injected').toBeGreaterThan(0);
    expect(summary.acknowledged as number, 'the load committed something').toBeGreaterThan(opts.seconds / 2);
    expect(summary.acknowledged, 'every submitted transaction committed in the end').toBe(summary.submitted);
    passed = true;
  });
});
