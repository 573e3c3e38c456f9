import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkMirror,
  PostgresSink,
  type CheckDifference,
  type CheckReport,
  type SqlTarget,
} from '../../../src/sync/index.js';
import { ChainStore, type KeyValueStore } from '../../../src/storage/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { record, register } from './chains.js';
import { closeSharedPglite, DB_KINDS, FollowedChain, mirrorToHead, type TestDb } from './helpers.js';

afterAll(closeSharedPglite);

class Rollback extends Error {}

describe.each(DB_KINDS)('sync check on $kind', ({ create, skip }) => {
  let db: TestDb;
  let target: SqlTarget;
  let fc: FollowedChain;

  beforeAll(async () => {
    if (skip) return;
    fc = new FollowedChain(await buildSampleChain());
    db = await create();
    target = await db.open();
    await mirrorToHead(fc, target);
  });
  afterAll(async () => {
    if (!skip) await db.drop();
  });

  /** Check the mirror with `tamper` applied, inside a transaction that is rolled back. */
  async function checkTampered(...tamper: string[]): Promise<CheckReport> {
    let report: CheckReport | undefined;
    await target
      .transaction(async (tx) => {
        for (const sql of tamper) await tx.query(sql);
        report = await checkMirror(tx, fc.tc.chain.store);
        throw new Rollback();
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e;
      });
    return report!;
  }

  it.skipIf(skip)('passes on an exact mirror, checking every block, row and state record', async () => {
    const r = await checkMirror(target, fc.tc.chain.store);
    expect(r).toEqual({
      ok: true,
      chainHeight: fc.height,
      mirrorHeight: fc.height,
      blocksChecked: fc.height + 1,
      transactionsChecked: 14,
      stateChecked: true,
    });
  });

  it.skipIf(skip)('reports the first difference of any kind', async () => {
    const cases: [string, Partial<CheckDifference>][] = [
      [`UPDATE blocks SET hash = repeat('a', 64) WHERE height = 2`, { height: 2, what: 'block hash' }],
      [`DELETE FROM transactions WHERE height = 3 AND idx = 1`, { height: 3, what: 'transaction rows' }],
      [
        `UPDATE transactions SET code = 'OK' WHERE height = 4 AND idx = 1`,
        { height: 4, what: 'transaction 1' },
      ],
      [
        `UPDATE transactions SET tx_id = repeat('b', 64) WHERE height = 2 AND idx = 0`,
        { height: 2, what: 'transaction 0' },
      ],
      [
        `INSERT INTO transactions SELECT height + 100, idx, tx_id, kind, signer, nonce, tx_time, payload, signature, code, commission_id, existing FROM transactions WHERE height = 2 AND idx = 0`,
        { what: 'transactions row above the cursor' },
      ],
      [`DELETE FROM blocks WHERE height = 1`, { height: 1, what: 'block row missing' }],
      [`UPDATE commissions SET status = 'voided' WHERE order_id = 'A-1'`, { height: -1 }],
      [`UPDATE commissions SET description = 'forged' WHERE order_id = 'A-1'`, { height: -1 }],
      [`UPDATE commissions SET merchant_name = 'someone' WHERE order_id = 'A-1'`, { height: -1 }],
      [`UPDATE commissions SET metadata_text = 'a b' WHERE order_id = 'A-1'`, { height: -1 }],
      [`UPDATE participants SET tx_id = NULL WHERE role = 'affiliate'`, { height: -1 }],
      [`UPDATE pair_balances SET paid = paid + 1 WHERE paid > 0`, { height: -1 }],
      [`DELETE FROM participants WHERE role = 'affiliate' AND name = 'aff-y'`, { height: -1 }],
      [`UPDATE sync_cursor SET height = height + 3`, { what: 'mirror ahead of the chain' }],
    ];
    for (const [tamper, want] of cases) {
      const r = await checkTampered(tamper);
      expect(r.ok, tamper).toBe(false);
      expect(r.difference, tamper).toMatchObject(want);
      // a differing state row was compared: not "state rows not compared"
      if (want.height === -1) expect(r.stateChecked, tamper).toBe(true);
    }
    expect((await checkMirror(target, fc.tc.chain.store)).ok).toBe(true);
  });

  it.skipIf(skip)('a mirror that is only behind is not a difference', async () => {
    const r = await checkTampered(
      `DELETE FROM blocks WHERE height = 4`,
      `DELETE FROM transactions WHERE height = 4`,
      `UPDATE sync_cursor SET height = 3, hash = (SELECT hash FROM blocks WHERE height = 3)`,
    );
    expect(r).toMatchObject({
      ok: true,
      mirrorHeight: 3,
      chainHeight: 4,
      stateChecked: false,
      blocksChecked: 4,
    });
  });
});

/** The store behind `store`, each read a turn of the event loop later (as a node's mirror thread reads it). */
function yielding(store: ChainStore): ChainStore {
  const kv = store.kv;
  const turn = () => new Promise((r) => setImmediate(r));
  const slow: KeyValueStore = {
    get: async (key) => {
      await turn();
      return kv.get(key);
    },
    batch: (ops, opts) => kv.batch(ops, opts),
    async *iterate(prefix, opts) {
      await turn();
      const all: [string, Uint8Array][] = [];
      for await (const e of kv.iterate(prefix, opts)) all.push(e);
      yield* all;
    },
    close: () => Promise.resolve(),
  };
  return new ChainStore(slow);
}

describe.each(DB_KINDS)('sync check on a live $kind mirror', ({ create, skip }) => {
  it.skipIf(skip)('never reports a difference while the sink writes and the chain grows', async () => {
    const db = await create();
    try {
      const fc = new FollowedChain(await buildSampleChain());
      const parties = await register(fc, ['shop-live'], ['aff-live']);
      const target = await db.open();
      const sink = new PostgresSink({ source: fc.source, target, pollMs: 10, gatherMs: 0 });
      sink.start();
      await sink.waitForHeight(fc.height);
      let stop = false;
      const traffic = (async () => {
        while (!stop) {
          await fc.append(record(parties.merchants[0]!, parties.affiliates[0]!));
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const reports: CheckReport[] = [];
      const until = Date.now() + 3000;
      while (Date.now() < until) reports.push(await checkMirror(target, yielding(fc.tc.chain.store)));
      stop = true;
      await traffic;
      await sink.waitForHeight(fc.height);
      await sink.stop();
      expect(reports.filter((r) => !r.ok).map((r) => r.difference)).toEqual([]);
      expect(reports.length).toBeGreaterThan(5);
      // and at rest, everything is compared
      expect(await checkMirror(target, fc.tc.chain.store)).toMatchObject({ ok: true, stateChecked: true });
    } finally {
      await db.drop();
    }
  });
});
