import { describe, expect, it } from 'vitest';
import { checkMirror, PostgresSink, readCursor } from '../../../src/sync/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { record, register } from './chains.js';
import { count, DB_KINDS, FollowedChain, postgresDb } from './helpers.js';

const skip = DB_KINDS.find((k) => k.kind === 'postgres')!.skip;

/**
 * A COMMIT slower than the client's query timeout: the client gives up, the
 * server commits anyway. The sink finds the cursor still at the batch's
 * start, writes the same batch again, and that write finds the cursor at the
 * batch's end: committed once, and the sink goes on (it used to stop with
 * CURSOR_MISMATCH, "another writer?").
 */
describe.each([true, false])('a batch whose COMMIT outlives its timeout (write thread %s)', (writeThread) => {
  it.skipIf(skip)('is found committed, once, and the sink goes on', async () => {
    const db = await postgresDb();
    try {
      const fc = new FollowedChain(await buildSampleChain());
      const parties = await register(fc, ['shop-slow'], ['aff-slow']);
      const target = await db.open({ queryTimeoutMs: 1000, writeThread });
      const sink = new PostgresSink({
        source: fc.source,
        target,
        retry: { initialMs: 10, maxMs: 50 },
        pollMs: 20,
        gatherMs: 0,
      });
      sink.start();
      await sink.waitForHeight(fc.height);
      // the next commit that moves the cursor takes 3 s, once
      await target.query(`CREATE TABLE slow_once (x int)`);
      await target.query(`INSERT INTO slow_once VALUES (1)`);
      await target.query(`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF EXISTS (SELECT FROM slow_once) THEN DELETE FROM slow_once; PERFORM pg_sleep(3); END IF;
        RETURN NULL; END $$`);
      await target.query(`CREATE CONSTRAINT TRIGGER slow AFTER UPDATE ON sync_cursor
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`);
      const rowsBefore = await count(target, 'transactions');
      await fc.append(record(parties.merchants[0]!, parties.affiliates[0]!));
      await fc.append(record(parties.merchants[0]!, parties.affiliates[0]!));
      await sink.waitForHeight(fc.height, 15_000);
      expect(sink.status().state).not.toBe('stopped');
      expect((await readCursor(target)).height).toBe(fc.height);
      expect(await count(target, 'transactions')).toBe(rowsBefore + 2);
      await sink.stop();
      expect((await checkMirror(target, fc.tc.chain.store)).ok).toBe(true);
    } finally {
      await db.drop();
    }
  });
});

/**
 * Index builds and migrations run longer than the query timeout on a large
 * mirror; a client that gave up on them left the server building while it
 * retried (and the build never finished). They run with a timeout of their
 * own, which the server enforces too.
 */
describe('a transaction with a timeout of its own (Postgres)', () => {
  it.skipIf(skip)('outlasts the query timeout, and the server stops it at its own', async () => {
    const db = await postgresDb();
    try {
      const target = await db.open({ queryTimeoutMs: 300 });
      const sleep = (s: number) => (tx: { query: (sql: string) => Promise<unknown> }) =>
        tx.query(`SELECT pg_sleep(${s})`);
      await expect(target.transaction(sleep(0.8))).rejects.toThrow(/timeout/i);
      await expect(target.transaction(sleep(0.8), { timeoutMs: 5000 })).resolves.toBeDefined();
      // the server cancels it (57014), rather than the client walking away from it
      await expect(target.transaction(sleep(5), { timeoutMs: 200 })).rejects.toMatchObject({ code: '57014' });
    } finally {
      await db.drop();
    }
  });
});
