import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createPromMetrics } from '../../../src/api/metrics.js';
import { buildApi } from '../../../src/api/server.js';
import { WorkerMirror } from '../../../src/node/mirror.js';
import type { SyncServiceStatus } from '../../../src/sync/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { FakeNode } from '../api/fake-node.js';
import { appendTraffic, register } from './chains.js';
import { FollowedChain, pgliteDir } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function scrape(metrics: ReturnType<typeof createPromMetrics>['metrics']): Promise<string> {
  const app = buildApi(await FakeNode.create(), { logger: false, metrics });
  cleanups.push(() => app.close());
  const res = await app.inject('/metrics');
  expect(res.statusCode).toBe(200);
  return res.body;
}

/** The value of one series in a Prometheus text exposition (undefined when absent). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const status = (over: Partial<SyncServiceStatus> = {}): SyncServiceStatus => ({
  state: 'ok',
  height: 120,
  hash: 'ab'.repeat(32),
  lagBlocks: 3,
  lagSeconds: 0.75,
  rowsWritten: 400,
  errors: 1,
  index: {
    state: 'ok',
    embedder: 'hash-v1:d384:n3-4',
    dimension: 384,
    throughHeight: 110,
    throughIndex: 4,
    textThroughHeight: 118,
    textThroughIndex: 0,
    embedded: 90,
    vectorIndex: 'halfvec',
    errors: 0,
  },
  maintenance: { rounds: 0, analyzed: 0, vacuumed: 0, checkpoints: 0, failed: 0 },
  ...over,
});

describe('mirror metrics on /metrics', () => {
  it('exports the status the mirror thread reports; counters follow its totals; gone with the mirror', async () => {
    const { metrics } = createPromMetrics({ processMetrics: false });
    expect(await scrape(metrics)).not.toContain('bitnexus_mirror_');

    metrics.setMirror(status());
    let text = await scrape(metrics);
    expect(value(text, 'bitnexus_mirror_height')).toBe(120);
    expect(value(text, 'bitnexus_mirror_lag_blocks')).toBe(3);
    expect(value(text, 'bitnexus_mirror_lag_seconds')).toBe(0.75);
    expect(value(text, 'bitnexus_mirror_rows_written_total')).toBe(400);
    expect(value(text, 'bitnexus_mirror_errors_total')).toBe(1);
    expect(value(text, 'bitnexus_mirror_state{state="ok"}')).toBe(1);
    expect(value(text, 'bitnexus_mirror_state{state="degraded"}')).toBe(0);
    expect(value(text, 'bitnexus_mirror_index_through_height{index="text"}')).toBe(118);
    expect(value(text, 'bitnexus_mirror_index_through_height{index="vectors"}')).toBe(110);
    expect(value(text, 'bitnexus_mirror_embedded_total')).toBe(90);
    expect(text).toContain('# TYPE bitnexus_mirror_rows_written_total counter');

    // totals since the thread started: the counters add the difference …
    metrics.setMirror(status({ state: 'degraded', rowsWritten: 650, errors: 4, lagBlocks: 9 }));
    text = await scrape(metrics);
    expect(value(text, 'bitnexus_mirror_rows_written_total')).toBe(650);
    expect(value(text, 'bitnexus_mirror_errors_total')).toBe(4);
    expect(value(text, 'bitnexus_mirror_state{state="ok"}')).toBe(0);
    expect(value(text, 'bitnexus_mirror_state{state="degraded"}')).toBe(1);
    // … and a restarted thread (totals back near 0) never makes them go down
    metrics.setMirror(status({ rowsWritten: 50, errors: 0 }));
    text = await scrape(metrics);
    expect(value(text, 'bitnexus_mirror_rows_written_total')).toBe(700);
    expect(value(text, 'bitnexus_mirror_errors_total')).toBe(4);

    // the mirror's own VACUUM and ANALYZE (PGlite, or a Postgres with autovacuum off)
    expect(value(text, 'bitnexus_mirror_tables_analyzed_total')).toBe(0);
    metrics.setMirror(
      status({ maintenance: { rounds: 6, analyzed: 5, vacuumed: 2, checkpoints: 3, failed: 1 } }),
    );
    text = await scrape(metrics);
    expect(value(text, 'bitnexus_mirror_tables_analyzed_total')).toBe(5);
    expect(value(text, 'bitnexus_mirror_tables_vacuumed_total')).toBe(2);
    expect(value(text, 'bitnexus_mirror_checkpoints_total')).toBe(3);
    expect(value(text, 'bitnexus_mirror_maintenance_errors_total')).toBe(1);

    metrics.setMirror(undefined);
    expect(await scrape(metrics)).not.toContain('bitnexus_mirror_');
  });

  // The mirror thread runs the compiled worker (dist/, `npm run build`), as in a node.
  const worker = fileURLToPath(new URL('../../../dist/src/node/mirror-worker.js', import.meta.url));
  it('a node mirror (worker thread, PGlite) reports height, lag and rows written on /metrics', async () => {
    if (!existsSync(worker)) return expect.fail(`build first: ${worker} is missing`);
    const fc = new FollowedChain(await buildSampleChain());
    const dir = await pgliteDir();
    cleanups.push(() => dir.remove());
    const { metrics } = createPromMetrics({ processMetrics: false });
    const mirror = await WorkerMirror.start(
      fc.tc.chain,
      pino({ level: 'silent' }),
      { pgliteDir: dir.dataDir },
      metrics,
    );
    cleanups.push(() => mirror.close());
    const caughtUp = async () => {
      mirror.committed(fc.height);
      const deadline = Date.now() + 60_000;
      while (mirror.status()?.height !== fc.height || mirror.status()?.lagBlocks !== 0) {
        if (Date.now() > deadline) throw new Error(`mirror stuck: ${JSON.stringify(mirror.status())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await caughtUp();
    let text = await scrape(metrics);
    expect(value(text, 'bitnexus_mirror_height')).toBe(fc.height);
    expect(value(text, 'bitnexus_mirror_lag_blocks')).toBe(0);
    expect(value(text, 'bitnexus_mirror_lag_seconds')).toBe(0);
    expect(value(text, 'bitnexus_mirror_state{state="ok"}')).toBe(1);
    expect(value(text, 'bitnexus_mirror_errors_total')).toBe(0);
    const rows = value(text, 'bitnexus_mirror_rows_written_total')!;
    expect(rows).toBeGreaterThan(fc.height); // at least a block row and a cursor move per block

    const parties = await register(fc, ['shop-m'], ['aff-m']);
    await appendTraffic(fc, parties, 2);
    await caughtUp();
    text = await scrape(metrics);
    expect(value(text, 'bitnexus_mirror_height')).toBe(fc.height);
    expect(value(text, 'bitnexus_mirror_rows_written_total')).toBeGreaterThan(rows);

    // The lag is the node's view: blocks it committed that the thread has not reported mirrored,
    // even while the thread says nothing (here: it has not been told of them).
    const before = fc.height;
    await appendTraffic(fc, parties, 1);
    await new Promise((r) => setTimeout(r, 30));
    const behind = mirror.status()!;
    expect(behind.height).toBe(before);
    expect(behind.lagBlocks).toBe(fc.height - before);
    expect(behind.lagSeconds).toBeGreaterThan(0);
    await caughtUp();
    expect(mirror.status()!.lagSeconds).toBe(0);

    await mirror.close();
    expect(await scrape(metrics)).not.toContain('bitnexus_mirror_');
  });
});
