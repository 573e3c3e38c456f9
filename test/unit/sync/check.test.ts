import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkMirror,
  PostgresSink,
  type CheckDifference,
  type CheckReport,
  type SqlTarget,
} from '../../../src/sync/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { closeSharedPglite, DB_KINDS, FollowedChain, type TestDb } from './helpers.js';

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
    const sink = new PostgresSink({ source: fc.source, target, pollMs: 50 });
    sink.start();
    await sink.waitForHeight(fc.height);
    await sink.stop();
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
      [`UPDATE pair_balances SET paid = paid + 1 WHERE paid > 0`, { height: -1 }],
      [`DELETE FROM participants WHERE role = 'affiliate' AND name = 'aff-y'`, { height: -1 }],
      [`UPDATE sync_cursor SET height = height + 3`, { what: 'mirror ahead of the chain' }],
    ];
    for (const [tamper, want] of cases) {
      const r = await checkTampered(tamper);
      expect(r.ok, tamper).toBe(false);
      expect(r.difference, tamper).toMatchObject(want);
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
