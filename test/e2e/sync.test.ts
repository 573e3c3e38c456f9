import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { CheckReport, SyncServiceStatus } from '../../src/sync/index.js';
import { Devnet } from '../support/devnet.js';
import { ThrowawayCluster } from '../../bench/pg-cluster.js';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  return (await r.json()) as T;
}

const NAMES = { merchant: 'Acme Audio', affiliate: 'Hifi Blog' };

describe('the Postgres/pgvector mirror on a real network', () => {
  it('every node of a 3-node devnet mirrors into its own embedded PGlite; all mirrors match their chains and each other', async () => {
    const net = await Devnet.create(3, 'bitnexus-mirror');
    cleanups.push(() => net.destroy());
    net.startArgs = () => [];
    await net.startAll();
    await net.waitLeader();
    const p = await net.participants(NAMES);
    const texts = ['Noise cancelling headphones', 'Espresso machine with grinder', 'Trail running shoes'];
    for (let n = 0; n < 12; n++)
      expect(
        (await net.submit(n % 3, net.commission(p, `s-${n}`, String(1000 + n), texts[n % 3]))).body.receipt
          ?.code,
      ).toBe('OK');
    const head = (await net.status(0))!;
    const statuses = await net.waitFor(
      'all mirrors at the head',
      async () => {
        const ss = await Promise.all(
          net.nodes.map((n) => getJson<SyncServiceStatus>(`${n.url}/v1/sync/status`).catch(() => undefined)),
        );
        return ss.every((s) => s && s.height >= head.height) ? ss : undefined;
      },
      60_000,
    );
    expect(new Set(statuses.map((s) => `${s!.height}:${s!.hash}`)).size).toBe(1);
    for (const n of net.nodes) {
      const report = await getJson<CheckReport>(`${n.url}/v1/sync/check`);
      expect(report, n.name).toMatchObject({ ok: true, stateChecked: true });
    }
    const found = await getJson<{ hits: { description?: string }[] }>(
      `${net.nodes[2]!.url}/v1/search?q=${encodeURIComponent('headphnes')}&k=3`,
    );
    expect(found.hits[0]?.description).toContain('headphones');
    // the mirror's progress is on /metrics (the worker reports twice a second)
    const metrics = await net.waitFor('mirror metrics', async () => {
      const text = await (await fetch(`${net.nodes[0]!.url}/metrics`)).text();
      const m = /^bitnexus_mirror_height\{[^}]*\} (\d+)$/m.exec(text);
      return m && Number(m[1]) >= head.height ? text : undefined;
    });
    expect(metrics).toMatch(/^bitnexus_mirror_lag_blocks\{[^}]*\} 0$/m);
    expect(metrics).toMatch(/^bitnexus_mirror_rows_written_total\{[^}]*\} [1-9]\d*$/m);
  });

  it('consensus does not wait on Postgres: the chain commits through an outage, readyz reports the sink, the mirror catches up exactly', async () => {
    const cluster = await ThrowawayCluster.create();
    cleanups.push(() => cluster.destroy());
    const admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    for (let i = 0; i < 3; i++) await admin.query(`CREATE DATABASE node${i}`);
    await admin.end();
    const net = await Devnet.create(3, 'bitnexus-outage');
    cleanups.push(() => net.destroy());
    net.startArgs = (i) => ['--postgres-url', cluster.url(`node${i}`)];
    await net.startAll();
    await net.waitLeader();
    const p = await net.participants(NAMES);
    let n = 0;
    for (; n < 5; n++)
      await net.submit(n % 3, net.commission(p, `s-${n}`, String(1000 + n), 'before the outage'));
    await cluster.stop('immediate');
    for (; n < 25; n++) {
      const r = await net.submit(n % 3, net.commission(p, `s-${n}`, String(1000 + n), 'during the outage'));
      expect(r.body.receipt?.code).toBe('OK');
    }
    const ready = await net.waitFor('readyz to report the sink', async () => {
      const r = await fetch(`${net.nodes[0]!.url}/readyz`);
      const body = (await r.json()) as {
        ready: boolean;
        checks: Record<string, { ok: boolean; detail?: string }>;
      };
      return body.checks.sync && !body.checks.sync.ok ? { status: r.status, body } : undefined;
    });
    expect(ready.body.ready).toBe(true); // writes still work: the mirror is reported, not required
    expect(ready.body.checks.sync!.detail).toMatch(/degraded/);
    await cluster.start();
    const head = (await net.status(0))!;
    for (const node of net.nodes) {
      await net.waitFor(
        `${node.name}'s mirror to catch up`,
        async () => {
          const s = await getJson<SyncServiceStatus>(`${node.url}/v1/sync/status`).catch(() => undefined);
          return s && s.state === 'ok' && s.height >= head.height;
        },
        60_000,
      );
      expect(await getJson<CheckReport>(`${node.url}/v1/sync/check`)).toMatchObject({ ok: true });
    }
  });

  it('kill -9 of a node while it mirrors loses and duplicates nothing', async () => {
    const net = await Devnet.create(3, 'bitnexus-kill-sink');
    cleanups.push(() => net.destroy());
    net.startArgs = (i) => (i === 1 ? [] : ['--no-mirror']);
    await net.startAll();
    await net.waitLeader();
    const p = await net.participants(NAMES);
    // Node 1 is the one killed: load goes to the other two.
    const load = net.steadyLoad(p, { targets: () => [0, 2], workers: 1, prefix: 'under-load' });
    await new Promise((r) => setTimeout(r, 1500));
    await net.kill(1, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    await net.restart(1);
    await new Promise((r) => setTimeout(r, 1000));
    await load.stop();
    const head = (await net.status(0))!;
    await net.waitFor(
      'the restarted node and its mirror to catch up',
      async () => {
        const s = await getJson<SyncServiceStatus>(`${net.nodes[1]!.url}/v1/sync/status`).catch(
          () => undefined,
        );
        return s && s.height >= head.height;
      },
      60_000,
    );
    expect(await getJson<CheckReport>(`${net.nodes[1]!.url}/v1/sync/check`)).toMatchObject({ ok: true });
  });
});
