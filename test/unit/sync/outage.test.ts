import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMirror, PostgresSink, PostgresTarget } from '../../../src/sync/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { appendTraffic, register } from './chains.js';
import { FollowedChain } from './helpers.js';
import { ThrowawayCluster } from '../../../bench/pg-cluster.js';

// initdb comes with the machine's PostgreSQL 15: its absence is a failure, not a skip.
if (!(await ThrowawayCluster.available()) && process.env.BITNEXUS_SKIP_POSTGRES !== '1') {
  throw new Error(
    'the outage tests need PostgreSQL 15 binaries (initdb, pg_ctl) in /usr/lib/postgresql/15/bin',
  );
}
// Like the Postgres variants elsewhere (helpers.ts): missing PostgreSQL binaries fail the run;
// only an explicit BITNEXUS_SKIP_POSTGRES=1 (a laptop without Postgres) skips this file.
const available = await ThrowawayCluster.available();
if (!available && process.env.BITNEXUS_SKIP_POSTGRES !== '1') {
  throw new Error(
    'the outage tests need PostgreSQL 15 binaries (initdb, pg_ctl) under /usr/lib/postgresql/15/bin or BITNEXUS_PG_BIN; set BITNEXUS_SKIP_POSTGRES=1 to skip them explicitly',
  );
}

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!available)('sink while its Postgres goes away (own throwaway cluster)', () => {
  let cluster: ThrowawayCluster;
  beforeAll(async () => {
    cluster = await ThrowawayCluster.create();
    const c = new pg.Client({ connectionString: cluster.url() });
    await c.connect();
    await c.query('CREATE DATABASE mirror');
    await c.end();
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('keeps following the chain: degraded while the database is down, caught up with no gap after', async () => {
    const fc = new FollowedChain(await buildSampleChain());
    const target = new PostgresTarget({
      url: cluster.url('mirror'),
      connectTimeoutMs: 1000,
      queryTimeoutMs: 5000,
    });
    const sink = new PostgresSink({
      source: fc.source,
      target,
      retry: { initialMs: 20, maxMs: 200 },
      pollMs: 50,
      heartbeatMs: 100,
    });
    sink.start();
    try {
      await sink.waitForHeight(fc.height);
      const parties = await register(fc, ['shop-c'], ['aff-1']);
      // crash the database while blocks keep committing: the chain does not wait
      const traffic = appendTraffic(fc, parties, 4, 2);
      await cluster.stop('immediate');
      await traffic;
      await until('degraded', () => sink.status().state === 'degraded');
      const down = sink.status();
      expect(down.lastError).toBeTruthy();
      await until('lag', () => sink.status().lagBlocks > 0);
      expect(sink.status().height).toBeLessThan(fc.height);
      await cluster.start();
      await sink.waitForHeight(fc.height, 30_000);
      expect(sink.status()).toMatchObject({ state: 'ok', lagBlocks: 0 });
      expect(sink.status().errors).toBeGreaterThan(0);
      const report = await checkMirror(target, fc.tc.chain.store);
      expect(report.difference).toBeUndefined();
      expect(report.ok).toBe(true);
      // an outage while idle shows too (the heartbeat), and heals by itself
      await cluster.stop('fast');
      await until('degraded while idle', () => sink.status().state === 'degraded');
      await cluster.start();
      await until('ok again', () => sink.status().state === 'ok');
    } finally {
      await sink.stop();
      await target.close();
    }
  });
});
