import { afterAll, describe, expect, it } from 'vitest';
import { pub, tx } from '../../support/ledger-fixture.js';
import {
  checkMirror,
  HashingEmbedder,
  migrate,
  PostgresSink,
  SearchIndexer,
  searchDetailed,
  SyncService,
  type SqlTarget,
  type SyncError,
} from '../../../src/sync/index.js';
import { MIGRATIONS } from '../../../src/sync/migrations.js';
import { record, register } from './chains.js';
import { closeSharedPglite, count, DB_KINDS, FollowedChain, withDb } from './helpers.js';

/**
 * What the ledger accepts must mirror: texts holding U+0000 (and the escape
 * character U+2400), sums beyond 10^20; a data error the database keeps
 * refusing stops the sink at the block it refuses instead of retrying
 * forever; a mirror whose schema is dropped under a running node is rebuilt.
 */

afterAll(closeSharedPglite);

const fast = { retry: { initialMs: 10, maxMs: 50 }, pollMs: 50 };
const NUL = '\u0000';
const SYM = '\u2400';

async function syncOnce(fc: FollowedChain, target: SqlTarget, timeoutMs = 20_000) {
  const sink = new PostgresSink({ source: fc.source, target, ...fast });
  sink.start();
  try {
    await sink.waitForHeight(fc.height, timeoutMs);
  } finally {
    await sink.stop();
  }
  return sink;
}

async function expectCheckOk(target: SqlTarget, fc: FollowedChain) {
  const report = await checkMirror(target, fc.tc.chain.store);
  expect(report.difference).toBeUndefined();
  expect(report).toMatchObject({ ok: true, mirrorHeight: fc.height, stateChecked: true });
}

async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(DB_KINDS)('mirror data on $kind', ({ create, skip }) => {
  it.skipIf(skip)(
    'mirrors texts holding U+0000 and U+2400; check passes, search finds them and returns them as written',
    async () => {
      await withDb(create, async (db) => {
        const fc = await FollowedChain.create();
        const merchantName = `Shop${NUL}One ${SYM}`;
        const affiliateName = `Blog${NUL}`;
        const p = await register(fc, [merchantName], [affiliateName, `${NUL}${NUL}`]);
        const [m, a] = [p.merchants[0]!, p.affiliates[0]!];
        // metadata keys are [A-Za-z0-9._-]; values take any character
        const metadata = { note: `v${NUL}al`, sym: `${SYM}\u2401` };
        const nul = record(m, a, {
          description: `alpha${NUL}bravo and ${SYM} charlie`,
          orderId: `ord${NUL}-1`,
          metadata,
        });
        const plain = record(m, a, { description: 'a normal one', orderId: 'ord-2' });
        await fc.append(nul, plain);
        await fc.append(
          tx('commission.reverse', m, { commission: nul.id, amount: '10', reason: `why${NUL}` }),
        );

        const target = await db.open();
        await syncOnce(fc, target);
        await expectCheckOk(target, fc);
        // the raw transaction keeps every string, escaped (docs/SYNC.md: U+0000 → ␀␀, U+2400 → ␀␁)
        const { rows } = await target.query<{ reason: string }>(
          `SELECT payload->>'reason' AS reason FROM transactions WHERE kind = 'commission.reverse'`,
        );
        expect(rows[0]!.reason).toBe(`why${SYM}${SYM}`);

        const embedder = new HashingEmbedder();
        await new SearchIndexer({ target, embedder }).drain();
        // exactly by its order id, NUL and all; every text comes back as the ledger holds it
        const exact = await searchDetailed(target, embedder, { q: `ord${NUL}-1`, k: 3 });
        expect(exact.hits[0]).toMatchObject({
          id: nul.id,
          matchedBy: expect.arrayContaining(['exact']) as unknown,
          merchantName,
          affiliateName,
          orderId: `ord${NUL}-1`,
          description: `alpha${NUL}bravo and ${SYM} charlie`,
          metadata,
          reversed: '10',
        });
        // a NUL breaks words for full-text search, as a space would
        const text = await searchDetailed(target, embedder, { q: 'bravo', k: 3 });
        expect(text.hits[0]).toMatchObject({
          id: nul.id,
          matchedBy: expect.arrayContaining(['text']) as unknown,
        });
        // a name filter holding a NUL finds its party
        const byName = await searchDetailed(target, embedder, {
          q: '',
          k: 5,
          filters: { merchant: merchantName },
        });
        expect(byName.hits.map((h) => h.id).sort()).toEqual([nul.id, plain.id].sort());
      });
    },
  );

  it.skipIf(skip)(
    'mirrors balances and totals beyond numeric(20, 0): the ledger sums without bound',
    async () => {
      await withDb(create, async (db) => {
        const fc = await FollowedChain.create();
        const p = await register(fc, ['Big Shop'], ['Big Blog']);
        const [m, a] = [p.merchants[0]!, p.affiliates[0]!];
        const most = '999999999999999999'; // < 10^18, the largest amount a transaction may carry
        const recs = Array.from({ length: 101 }, () => record(m, a, { amount: most }));
        await fc.append(...recs);
        await fc.append(...recs.map((r) => tx('commission.approve', m, { commission: r.id })));
        await fc.append(
          ...recs.map((_, i) =>
            tx('payout.record', fc.tc.fx.operator, {
              merchant: pub(m),
              affiliate: pub(a),
              amount: most,
              currency: 'EUR',
              reference: `P-${i}`,
            }),
          ),
        );
        const target = await db.open();
        await syncOnce(fc, target);
        await expectCheckOk(target, fc);
        const sum = (101n * BigInt(most)).toString(); // 100999999999999999899: 21 digits
        const { rows } = await target.query<Record<string, string>>(
          `SELECT approved::text, paid::text, payable::text FROM pair_balances`,
        );
        expect(rows).toEqual([{ approved: sum, paid: sum, payable: '0' }]);
        const { rows: totals } = await target.query<Record<string, string>>(
          `SELECT merchant_paid::text, affiliate_paid::text FROM currency_totals`,
        );
        expect(totals).toEqual([{ merchant_paid: sum, affiliate_paid: sum }]);
      });
    },
  );

  it.skipIf(skip)(
    'stops at the block whose rows the database refuses (a data error), naming it, after mirroring those before',
    async () => {
      await withDb(create, async (db) => {
        const fc = await FollowedChain.create();
        const p = await register(fc, ['Strict Shop'], ['Strict Blog']);
        const [m, a] = [p.merchants[0]!, p.affiliates[0]!];
        for (let i = 0; i < 4; i++) await fc.append(record(m, a, { amount: '1000' }));
        const bad = fc.height + 1;
        await fc.append(record(m, a, { amount: '6000' }));
        await fc.append(record(m, a, { amount: '1000' }));
        const target = await db.open();
        await migrate(target);
        // a constraint the ledger does not have: retrying can never satisfy it (SQLSTATE 23514)
        await target.query(`ALTER TABLE commissions ADD CONSTRAINT test_small CHECK (amount < 5000)`);
        const fatal: SyncError[] = [];
        const sink = new PostgresSink({ source: fc.source, target, ...fast, onFatal: (e) => fatal.push(e) });
        sink.start(); // one backfill batch of every block: the sink narrows it down to the block refused
        try {
          await until('the sink to stop', () => sink.status().state === 'stopped');
        } finally {
          await sink.stop();
        }
        const s = sink.status();
        expect(s.height).toBe(bad - 1);
        expect(s.lastError).toMatch(new RegExp(`^DATA_REJECTED: .*block ${bad} .*SQLSTATE 23514`));
        expect(fatal.map((e) => [e.code, e.details.block, e.details.sqlstate])).toEqual([
          ['DATA_REJECTED', bad, '23514'],
        ]);
        expect(await count(target, 'blocks')).toBe(bad);
        const report = await checkMirror(target, fc.tc.chain.store);
        expect(report).toMatchObject({ ok: true, mirrorHeight: bad - 1 });
      });
    },
  );

  it.skipIf(skip)(
    'rebuilds the mirror from genesis when its schema is dropped while the node runs',
    async () => {
      await withDb(create, async (db) => {
        const fc = await FollowedChain.create();
        const p = await register(fc, ['Drop Shop'], ['Drop Blog']);
        const [m, a] = [p.merchants[0]!, p.affiliates[0]!];
        await fc.append(record(m, a, { description: 'hiking boots' }));
        const target = await db.open();
        const service = new SyncService({
          source: fc.source,
          target,
          embedder: new HashingEmbedder(),
          ...fast,
          heartbeatMs: 50,
          indexer: { retry: { initialMs: 10, maxMs: 50 }, pollMs: 50 },
        });
        service.start();
        try {
          await service.sink.waitForHeight(fc.height);
          await until('the index', () => service.status().index.textThroughHeight === fc.height);
          await target.query(`DROP SCHEMA ${target.schema} CASCADE`);
          const late = record(m, a, { description: 'camping tent' });
          await fc.append(late);
          await until('the rebuilt mirror', () => {
            const s = service.status();
            return s.state === 'ok' && s.height === fc.height && s.index.textThroughHeight === fc.height;
          });
          expect(await count(target, 'blocks')).toBe(fc.height + 1);
          await expectCheckOk(target, fc);
          const r = await searchDetailed(target, new HashingEmbedder(), { q: 'tent', k: 3 });
          expect(r.hits[0]?.id).toBe(late.id);
        } finally {
          await service.stop();
        }
      });
    },
  );

  it.skipIf(skip)(
    'migrates an older mirror: unbounded amounts, U+2400 escaped, no zero-length embeddings',
    async () => {
      await withDb(create, async (db) => {
        const target = await db.open();
        await migrate(target, MIGRATIONS.slice(0, 6));
        const key = (c: string) => c.repeat(64);
        await target.query(
          `INSERT INTO participants (key, role, name, since_height, tx_id) VALUES ($1, 'merchant', $2, 0, NULL)`,
          [key('a'), `A${SYM}`],
        );
        await target.query(
          `INSERT INTO commissions (id, merchant, merchant_name, affiliate, affiliate_name, currency, amount,
             approved, reversed, status, order_id, description, metadata, metadata_text, recorded_height,
             recorded_index, recorded_at, updated_height, updated_at)
           VALUES ($1, $2, $3, $4, 'B', 'EUR', 5, 0, 0, 'pending', 'o', $5, $6::jsonb, $7, 1, 0, now(), 1, now())`,
          [key('c'), key('a'), `A${SYM}`, key('b'), `d${SYM}`, JSON.stringify({ k: SYM }), `k ${SYM}`],
        );
        await target.query(
          `INSERT INTO pair_balances (merchant, affiliate, currency, pending, approved, clawed_back, paid, updated_height)
           VALUES ($1, $2, 'EUR', 5, 7, 1, 2, 1)`,
          [key('a'), key('b')],
        );
        await target.query(
          `INSERT INTO commission_embeddings (commission_id, embedder, embedding) VALUES ($1, 'e', '[0,0,0]'), ($2, 'e', '[1,0,0]')`,
          [key('c'), key('d')],
        );
        expect((await migrate(target)).applied).toEqual(MIGRATIONS.slice(6).map((mig) => mig.version));
        const { rows } = await target.query<{ column_name: string; typmod: number }>(
          `SELECT a.attname AS column_name, a.atttypmod AS typmod FROM pg_attribute a
           WHERE a.attrelid = 'pair_balances'::regclass AND a.atttypid = 'numeric'::regtype AND NOT a.attisdropped`,
        );
        expect(rows.map((r) => r.typmod)).toEqual(rows.map(() => -1)); // unconstrained numeric
        expect(rows).toHaveLength(5);
        const { rows: pair } = await target.query<{ payable: string }>(
          `SELECT payable::text FROM pair_balances`,
        );
        expect(pair).toEqual([{ payable: '4' }]);
        await target.query(`UPDATE pair_balances SET approved = 1e21`);
        const { rows: c } = await target.query<{ description: string; metadata: unknown; name: string }>(
          `SELECT c.description, c.metadata, p.name FROM commissions c JOIN participants p ON p.key = c.merchant`,
        );
        expect(c).toEqual([
          { description: `d${SYM}\u2401`, metadata: { k: `${SYM}\u2401` }, name: `A${SYM}\u2401` },
        ]);
        expect(await count(target, 'commission_embeddings')).toBe(1);
      });
    },
  );
});
