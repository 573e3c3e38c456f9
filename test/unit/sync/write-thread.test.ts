import { describe, expect, it } from 'vitest';
import { LedgerState, processBlock } from '../../../src/ledger/index.js';
import { decodeStoredBlock, EMPTY_CURSOR, migrate, readCursor, SyncError } from '../../../src/sync/index.js';
import { MirrorBatch } from '../../../src/sync/rows.js';
import { planBatch } from '../../../src/sync/writer.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { count, DB_KINDS, FollowedChain, postgresDb } from './helpers.js';

const skip = DB_KINDS.find((k) => k.kind === 'postgres')!.skip;

/** The whole sample chain as one batch's rows. */
async function sampleRows() {
  const fc = new FollowedChain(await buildSampleChain());
  const batch = new MirrorBatch(new LedgerState());
  for (let h = 0; h <= fc.height; h++) {
    const block = decodeStoredBlock((await fc.source.getBlockBytes(h))!);
    batch.add(block, processBlock(batch, block, { checkSignatures: false, trustRoots: true }));
  }
  return { rows: batch.rows(), height: fc.height };
}

describe('PostgresTarget.writePlan', () => {
  it.skipIf(skip)(
    'writes a batch on its own thread as this thread would, and returns its errors typed',
    async () => {
      const [a, b] = [await postgresDb(), await postgresDb()];
      try {
        const threaded = await a.open();
        const inline = await b.open({ writeThread: false });
        await migrate(threaded);
        await migrate(inline);
        const { rows, height } = await sampleRows();
        const written = await threaded.writePlan!(planBatch(rows, EMPTY_CURSOR)!);
        expect(written).toBe(await inline.writePlan!(planBatch(rows, EMPTY_CURSOR)!));
        for (const table of ['blocks', 'transactions', 'commissions', 'pair_balances'])
          expect(await count(threaded, table)).toBe(await count(inline, table));
        const cursor = await readCursor(threaded);
        expect(cursor.height).toBe(height);

        // the same batch again: the cursor has moved on, and the error says so, as a SyncError
        const again = threaded.writePlan!(planBatch(rows, EMPTY_CURSOR)!);
        await expect(again).rejects.toBeInstanceOf(SyncError);
        await expect(again).rejects.toMatchObject({ code: 'CURSOR_MISMATCH', details: { actual: cursor } });

        // any other failure keeps Postgres' code, and the transaction is rolled back
        const broken = threaded.writePlan!({
          from: cursor,
          to: {
            height: cursor.height + 1,
            hash: 'ab'.repeat(32),
            chainId: 'x',
            time: new Date(0).toISOString(),
          },
          copies: [{ table: 'no_such_table', columns: ['x'], data: Buffer.from('1\n'), rows: 1 }],
        });
        await expect(broken).rejects.toMatchObject({ code: '42P01' });
        await expect(broken).rejects.not.toBeInstanceOf(SyncError);
        expect(await readCursor(threaded)).toEqual(cursor);
      } finally {
        await a.drop(); // closes its targets: the write thread must let the process go on
        await b.drop();
      }
    },
  );
});
