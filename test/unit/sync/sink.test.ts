import { afterAll, describe, expect, it } from 'vitest';
import type { Receipt } from '../../../src/ledger/index.js';
import {
  checkMirror,
  migrate,
  PgliteTarget,
  PostgresSink,
  readCursor,
  SyncError,
  type ChainSource,
  type SqlTarget,
} from '../../../src/sync/index.js';
import { MIGRATIONS } from '../../../src/sync/migrations.js';
import { advanceCursor } from '../../../src/sync/writer.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { appendTraffic, record, register } from './chains.js';
import {
  closeSharedPglite,
  count,
  DB_KINDS,
  FaultyTarget,
  FollowedChain,
  mirrored,
  pgliteDir,
  withDb,
} from './helpers.js';

afterAll(closeSharedPglite);

const fast = { retry: { initialMs: 10, maxMs: 50 }, pollMs: 50 };

async function expectCheckOk(target: SqlTarget, fc: FollowedChain) {
  const report = await checkMirror(target, fc.tc.chain.store);
  expect(report.difference).toBeUndefined();
  expect(report).toMatchObject({
    ok: true,
    mirrorHeight: fc.height,
    chainHeight: fc.height,
    stateChecked: true,
  });
  expect(await count(target, 'blocks')).toBe(fc.height + 1);
  return report;
}

/** `source` with some of its methods replaced. */
function withOverrides(source: ChainSource, overrides: Partial<ChainSource>): ChainSource {
  return {
    height: () => source.height(),
    getBlockBytes: (h) => source.getBlockBytes(h),
    getReceipts: (h) => source.getReceipts(h),
    onCommitted: (l) => source.onCommitted(l),
    ...overrides,
  };
}

/** Run a sink to the chain's head and stop it. */
async function syncOnce(
  fc: FollowedChain,
  target: SqlTarget,
  opts: Partial<ConstructorParameters<typeof PostgresSink>[0]> = {},
) {
  const sink = new PostgresSink({ source: fc.source, target, ...fast, ...opts });
  sink.start();
  await sink.waitForHeight(fc.height);
  await sink.stop();
  return sink;
}

describe.each(DB_KINDS)('sink on $kind', ({ create, skip }) => {
  it.skipIf(skip)(
    'backfills a chain it joined late, in multi-block batches, then follows live blocks',
    async () => {
      await withDb(create, async (db) => {
        const fc = new FollowedChain(await buildSampleChain());
        const target = await db.open();
        const sink = new PostgresSink({ source: fc.source, target, ...fast, maxBatchBlocks: 2 });
        sink.start();
        await sink.waitForHeight(fc.height);
        const parties = await register(fc, ['shop-c', 'shop-d'], ['aff-1', 'aff-2']);
        await appendTraffic(fc, parties, 2);
        await sink.waitForHeight(fc.height);
        const s = sink.status();
        expect(s).toMatchObject({ state: 'ok', height: fc.height, lagBlocks: 0, lagSeconds: 0, errors: 0 });
        expect(s.hash).toBe(fc.tc.chain.head!.hash);
        expect(s.rowsWritten).toBeGreaterThan(50);
        await sink.stop();
        expect(sink.status().state).toBe('stopped');
        const report = await expectCheckOk(target, fc);
        expect(report.transactionsChecked).toBe(await count(target, 'transactions'));
        // rows carry what the ledger computed
        const { rows } = await target.query<{ status: string; n: number }>(
          `SELECT status, count(*)::int8 AS n FROM commissions GROUP BY status ORDER BY status`,
        );
        expect(rows.map((r) => [r.status, Number(r.n)])).toEqual([
          ['approved', 4],
          ['pending', 5],
        ]);
        const paid = await target.query<{ paid: string; payable: string }>(
          `SELECT paid::text, payable::text FROM pair_balances WHERE paid > 0 ORDER BY paid`,
        );
        expect(paid.rows.length).toBeGreaterThan(0);
      });
    },
  );

  it.skipIf(skip)(
    "mirrors text with COPY's special characters exactly (tab, newline, CR, backslash, \\N, non-ASCII)",
    async () => {
      await withDb(create, async (db) => {
        const fc = new FollowedChain(await buildSampleChain());
        const parties = await register(fc, ['shop-c'], ['aff-1']);
        const tricky = 'a\tb\nc\rd\\e \\N f\\\\g — ünïcødé 🚀';
        const t = record(parties.merchants[0]!, parties.affiliates[0]!, {
          description: tricky,
          metadata: { 'k\t1': 'v\\N', note: 'line1\nline2' },
        });
        await fc.append(t);
        const target = await db.open();
        await syncOnce(fc, target);
        const { rows } = await target.query<{ description: string; metadata: unknown }>(
          `SELECT description, metadata FROM commissions WHERE id = $1`,
          [t.id],
        );
        expect(rows[0]?.description).toBe(tricky);
        expect(rows[0]?.metadata).toEqual({ 'k\t1': 'v\\N', note: 'line1\nline2' });
        await expectCheckOk(target, fc);
      });
    },
  );

  it.skipIf(skip)(
    'reports lag in seconds from the oldest unmirrored block, also between batches',
    async () => {
      await withDb(create, async (db) => {
        const fc = new FollowedChain(await buildSampleChain());
        const parties = await register(fc, ['shop-c'], ['aff-1']);
        await appendTraffic(fc, parties, 2);
        const head = fc.tc.chain.head!;
        // a wall clock 10 s after the last block: every unmirrored block is at least that old
        const now = () => head.timestamp + 10_000;
        const seen: { lagBlocks: number; lagSeconds: number }[] = [];
        const sink: PostgresSink = new PostgresSink({
          source: fc.source,
          target: await db.open(),
          ...fast,
          now,
          maxBatchBlocks: 2,
          onAdvance: () => seen.push(sink.status()),
        });
        sink.start();
        await sink.waitForHeight(fc.height);
        await sink.stop();
        const behind = seen.filter((s) => s.lagBlocks > 0);
        expect(behind.length).toBeGreaterThan(2);
        for (const s of behind) expect(s.lagSeconds).toBeGreaterThanOrEqual(10);
        // older blocks are older: the lag shrinks as the sink catches up
        expect(behind[0]!.lagSeconds).toBeGreaterThan(behind[behind.length - 1]!.lagSeconds);
        expect(sink.status()).toMatchObject({ lagBlocks: 0, lagSeconds: 0 });
      });
    },
  );

  it.skipIf(skip)('restarts from its cursor: nothing written twice, nothing skipped', async () => {
    await withDb(create, async (db) => {
      const fc = new FollowedChain(await buildSampleChain());
      await syncOnce(fc, await db.open());
      const parties = await register(fc, ['shop-c'], ['aff-1']);
      await appendTraffic(fc, parties, 1, 1);
      const target = await db.open();
      const sink = await syncOnce(fc, target);
      // the second sink wrote only the blocks after the first one's cursor
      expect(sink.status().rowsWritten).toBeLessThan(40);
      await expectCheckOk(target, fc);
    });
  });

  it.skipIf(skip)('writes the same mirror with one statement per batch instead of COPY', async () => {
    await withDb(create, async (db) => {
      const fc = new FollowedChain(await buildSampleChain());
      const target = await db.open();
      await syncOnce(fc, target, { copy: false, maxBatchBlocks: 3 });
      const parties = await register(fc, ['shop-c', 'shop-d'], ['aff-1', 'aff-2']);
      await appendTraffic(fc, parties, 2);
      await syncOnce(fc, target, { copy: false });
      await expectCheckOk(target, fc);
    });
  });

  // one block per batch: the next batch is re-executed on top of the failing one while it is
  // written, and must be dropped (or kept, when the failed one had committed) with it
  for (const [mode, copy, maxBatchBlocks] of [
    ['throw', true, 500],
    ['terminate', true, 500],
    ['lose-ack', true, 500],
    ['throw', false, 500],
    ['terminate', false, 500],
    ['throw', true, 1],
    ['lose-ack', true, 1],
  ] as const) {
    it.skipIf(skip)(
      `survives a failure mid-block (${mode}, ${copy ? 'COPY' : 'one statement'}, ${maxBatchBlocks === 1 ? 'one block per batch' : 'batches of up to 500 blocks'}) and goes on with no duplicate and no gap`,
      async () => {
        await withDb(create, async (db) => {
          if (mode === 'terminate' && db.kind === 'pglite') return; // PGlite has no connection to kill
          const fc = new FollowedChain(await buildSampleChain());
          const target = new FaultyTarget(
            await db.open(),
            /INSERT INTO transactions|COPY transactions/,
            mode,
          );
          const sink = await syncOnce(fc, target, { copy, maxBatchBlocks });
          expect(target.fired).toBe(1);
          expect(sink.status().errors).toBe(1);
          expect(sink.status().state).toBe('stopped');
          await expectCheckOk(target, fc);
        });
      },
    );
  }

  it.skipIf(skip)('a sink that dies mid-block is replaced by a new one that resumes', async () => {
    await withDb(create, async (db) => {
      const fc = new FollowedChain(await buildSampleChain());
      await syncOnce(fc, await db.open(), { maxBatchBlocks: 1 });
      const parties = await register(fc, ['shop-c'], ['aff-1']);
      await appendTraffic(fc, parties, 1, 2);
      // the first sink fails inside the transaction of the next block and is then dropped
      const faulty = new FaultyTarget(await db.open(), /INSERT INTO transactions|COPY transactions/, 'throw');
      const dying = new PostgresSink({
        source: fc.source,
        target: faulty,
        retry: { initialMs: 60_000 },
        pollMs: 50,
      });
      dying.start();
      while (dying.status().state !== 'degraded') await new Promise((r) => setTimeout(r, 5));
      expect(faulty.fired).toBe(1);
      expect(dying.status().state).toBe('degraded');
      expect(dying.status().lastError).toMatch(/injected/);
      expect(dying.status().lagBlocks).toBeGreaterThan(0);
      await dying.stop();
      const target = await db.open();
      expect((await readCursor(target)).height).toBeLessThan(fc.height);
      await syncOnce(fc, target);
      await expectCheckOk(target, fc);
    });
  });

  it.skipIf(skip)('the cursor compare-and-set refuses a wrong previous hash and writes nothing', async () => {
    await withDb(create, async (db) => {
      const { target } = await mirrored(db);
      const at = await readCursor(target);
      const err = await target
        .transaction((tx) =>
          advanceCursor(
            tx,
            { height: at.height, hash: 'ab'.repeat(32) },
            { height: at.height + 1, hash: 'cd'.repeat(32), chainId: 'x', time: new Date().toISOString() },
          ),
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SyncError);
      expect((err as SyncError).code).toBe('CURSOR_MISMATCH');
      expect(await readCursor(target)).toEqual(at);
    });
  });

  it.skipIf(skip)('stops loudly when another writer moved the cursor, and overwrites nothing', async () => {
    await withDb(create, async (db) => {
      const fc = new FollowedChain(await buildSampleChain());
      const target = await db.open();
      const fatal: SyncError[] = [];
      const sink = new PostgresSink({ source: fc.source, target, ...fast, onFatal: (e) => fatal.push(e) });
      sink.start();
      await sink.waitForHeight(fc.height);
      await target.query(`UPDATE sync_cursor SET height = height + 1, hash = $1`, ['ee'.repeat(32)]);
      const parties = await register(fc, ['shop-c'], ['aff-1']);
      void parties;
      await expect(sink.waitForHeight(fc.height, 10_000)).rejects.toThrow(/CURSOR_MISMATCH/);
      expect(sink.status()).toMatchObject({ state: 'stopped', errors: 1 });
      expect(fatal.map((e) => e.code)).toEqual(['CURSOR_MISMATCH']);
      expect(await count(target, 'blocks', `height = ${fc.height}`)).toBe(0);
      await sink.stop();
    });
  });

  it.skipIf(skip)(
    'refuses to resume on a mirror of another chain; waits when it is ahead of the chain',
    async () => {
      await withDb(create, async (db) => {
        const { fc, target } = await mirrored(db);
        await target.query(`UPDATE sync_cursor SET hash = $1`, ['ee'.repeat(32)]);
        const a = new PostgresSink({ source: fc.source, target, ...fast });
        a.start();
        await expect(a.waitForHeight(fc.height + 1, 10_000)).rejects.toThrow(/CHAIN_DIVERGED/);
        // status names where the mirror is, not -1 (it read its cursor before it refused)
        expect(a.status()).toMatchObject({ height: fc.height, hash: 'ee'.repeat(32) });
        await a.stop();
        // ahead of the chain: wait (a chain store may lag its Raft log after a crash), then check the hash
        await target.query(`UPDATE sync_cursor SET height = height + 2`);
        const b = new PostgresSink({ source: fc.source, target, ...fast });
        b.start();
        while (b.status().state !== 'degraded') await new Promise((r) => setTimeout(r, 5));
        expect(b.status().lastError).toMatch(/MIRROR_AHEAD/);
        expect(b.status()).toMatchObject({ height: fc.height + 2, lagBlocks: 0 });
        const parties = await register(fc, ['shop-c'], ['aff-1']);
        await appendTraffic(fc, parties, 1, 1);
        await expect(b.waitForHeight(fc.height + 1, 10_000)).rejects.toThrow(/CHAIN_DIVERGED/);
        await b.stop();
      });
    },
  );

  it.skipIf(skip)(
    'stops loudly on rows the cursor says are new but exist (MIRROR_CORRUPT), writing nothing',
    async () => {
      await withDb(create, async (db) => {
        const { fc, target } = await mirrored(db);
        // the cursor set back one block: that block's rows are there already
        const { rows } = await target.query<{ hash: string }>(`SELECT hash FROM blocks WHERE height = $1`, [
          fc.height - 1,
        ]);
        await target.query(`UPDATE sync_cursor SET height = $1, hash = $2`, [fc.height - 1, rows[0]!.hash]);
        const fatal: SyncError[] = [];
        const sink = new PostgresSink({ source: fc.source, target, ...fast, onFatal: (e) => fatal.push(e) });
        sink.start();
        await expect(sink.waitForHeight(fc.height, 10_000)).rejects.toThrow(/MIRROR_CORRUPT/);
        expect(fatal.map((e) => e.code)).toEqual(['MIRROR_CORRUPT']);
        expect(sink.status().state).toBe('stopped');
        expect((await readCursor(target)).height).toBe(fc.height - 1);
        expect(await count(target, 'blocks')).toBe(fc.height + 1);
        await sink.stop();
      });
    },
  );

  // Block 2 of the source altered two ways; either must stop the sink before it writes block 2.
  // The second matters because the sink trusts the stored Merkle roots (checked when the node
  // committed the block): an altered transaction is caught by its id in the chain's receipt.
  const alterations: [string, (source: ChainSource) => Partial<ChainSource>][] = [
    [
      'refuses a block whose re-execution disagrees with the chain’s receipts',
      (source) => ({
        getReceipts: async (h): Promise<Receipt[]> => {
          const rs = await source.getReceipts(h);
          return h === 2 ? rs.map((r, i) => (i === 0 ? { ...r, code: 'UNAUTHORIZED' } : r)) : rs;
        },
      }),
    ],
    [
      'refuses a stored transaction that is not the one its receipt names',
      (source) => ({
        getBlockBytes: async (h) => {
          const bytes = await source.getBlockBytes(h);
          if (h !== 2 || !bytes) return bytes;
          const block = JSON.parse(new TextDecoder().decode(bytes)) as { txs: { timestamp: number }[] };
          block.txs[0]!.timestamp += 1;
          return new TextEncoder().encode(JSON.stringify(block));
        },
      }),
    ],
  ];
  for (const [name, alter] of alterations) {
    it.skipIf(skip)(name, async () => {
      await withDb(create, async (db) => {
        const fc = new FollowedChain(await buildSampleChain());
        const source = withOverrides(fc.source, alter(fc.source));
        const target = await db.open();
        const sink = new PostgresSink({ source, target, ...fast, maxBatchBlocks: 1 });
        sink.start();
        await expect(sink.waitForHeight(fc.height, 10_000)).rejects.toThrow(/CHAIN_DIVERGED/);
        expect((await readCursor(target)).height).toBe(1);
        expect(await count(target, 'transactions', 'height = 2')).toBe(0);
        await sink.stop();
      });
    });
  }

  it.skipIf(skip)(
    'a block that cannot be read for a moment, mid-batch, is read again: no duplicate, no gap',
    async () => {
      await withDb(create, async (db) => {
        const fc = new FollowedChain(await buildSampleChain());
        const parties = await register(fc, ['shop-c'], ['aff-1']);
        await appendTraffic(fc, parties, 2);
        // the blocks before it are re-executed into the batch before this fails
        const flaky = fc.height - 1;
        let failures = 0;
        const source = withOverrides(fc.source, {
          getBlockBytes: (h) => {
            if (h === flaky && failures === 0) {
              failures++;
              return Promise.reject(new Error('injected: the chain store is busy'));
            }
            return fc.source.getBlockBytes(h);
          },
        });
        const target = await db.open();
        const sink = await syncOnce(fc, target, { source });
        expect(failures).toBe(1);
        expect(sink.status().errors).toBe(1);
        await expectCheckOk(target, fc);
      });
    },
  );

  it.skipIf(skip)('applies migrations once, however often and concurrently it starts', async () => {
    await withDb(create, async (db) => {
      const target = await db.open();
      const runs = await Promise.all([migrate(target), migrate(target), migrate(target)]);
      const versions = MIGRATIONS.map((m) => m.version);
      expect(runs.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(versions);
      expect((await migrate(target)).applied).toEqual([]);
      expect(await count(target, 'schema_migrations')).toBe(versions.length);
      expect(await readCursor(target)).toEqual({ height: -1, hash: '0'.repeat(64) });
      await target.query(`INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')`);
      await expect(migrate(target)).rejects.toThrow(/SCHEMA_TOO_NEW/);
    });
  });
});

describe('PGlite in a directory', () => {
  it('keeps the mirror across close and reopen', async () => {
    const dir = await pgliteDir();
    try {
      const fc = new FollowedChain(await buildSampleChain());
      let target = await PgliteTarget.open({ dataDir: dir.dataDir });
      await syncOnce(fc, target);
      await target.close();
      const parties = await register(fc, ['shop-c'], ['aff-1']);
      await appendTraffic(fc, parties, 1, 1);
      target = await PgliteTarget.open({ dataDir: dir.dataDir });
      await syncOnce(fc, target);
      await expectCheckOk(target, fc);
      await target.close();
    } finally {
      await dir.remove();
    }
  });
});

describe('group commit (gatherMs)', () => {
  it('writes blocks committed close together in one transaction, and never stalls on a clock that stands still', async () => {
    await withDb(DB_KINDS[0]!.create, async (db) => {
      const fc = new FollowedChain(await buildSampleChain());
      const parties = await register(fc, ['shop-g'], ['aff-g']);
      const target = await db.open();
      const batches: number[] = [];
      const sink = new PostgresSink({
        source: fc.source,
        target,
        ...fast,
        gatherMs: 2_000, // far more than three appends take, however busy the machine
        onAdvance: (c) => batches.push(c.height),
      });
      sink.start();
      await sink.waitForHeight(fc.height);
      const from = fc.height;
      batches.length = 0;
      for (let i = 0; i < 3; i++) await fc.append(record(parties.merchants[0]!, parties.affiliates[0]!));
      await sink.waitForHeight(fc.height);
      await sink.stop();
      expect(fc.height).toBe(from + 3);
      expect(batches).toEqual([from + 3]); // one batch for the three blocks
      await expectCheckOk(target, fc);

      // a frozen clock: each batch waits once, then goes
      await fc.append(record(parties.merchants[0]!, parties.affiliates[0]!));
      const frozen = new PostgresSink({ source: fc.source, target, ...fast, gatherMs: 50, now: () => 0 });
      frozen.start();
      await frozen.waitForHeight(fc.height, 10_000);
      await frozen.stop();
      await expectCheckOk(target, fc);
    });
  }, 60_000);
});
