import { describe, expect, it } from 'vitest';
import type { BatchRows, BlockRow, TxRow } from '../../../src/sync/rows.js';
import { copyText } from '../../../src/sync/target.js';
import { EMPTY_CURSOR, planBatch } from '../../../src/sync/writer.js';

const block: BlockRow = {
  height: 7,
  hash: 'ab'.repeat(32),
  prevHash: 'cd'.repeat(32),
  chainId: 'test-chain',
  time: '2026-12-05T12:00:00.000Z',
  term: 2,
  proposer: 'ef'.repeat(32),
  txCount: 0,
  txRoot: '01'.repeat(32),
  ledgerRoot: '02'.repeat(32),
  ledgerSize: 0,
  signature: '03'.repeat(64),
  config: null,
};

function txRow(i: number): TxRow {
  // multi-byte text, and every character COPY escapes, at every position in the chunks
  const text = `Größe ✓ 😀 ${'x'.repeat(i % 97)}\ttab\nnewline\\backslash\rreturn #${i}`;
  return {
    height: 7,
    idx: i,
    txId: i.toString(16).padStart(64, '0'),
    kind: 'commission.record',
    signer: 'aa'.repeat(32),
    nonce: `n-${i}`,
    time: '2026-12-05T12:00:00.123Z',
    payload: JSON.stringify({ description: text, amount: String(i) }),
    signature: 'bb'.repeat(64),
    code: 'OK',
    commission: i % 3 === 0 ? null : i.toString(16),
    existing: null,
  };
}

function rowsOf(txs: TxRow[]): BatchRows {
  const none = { insert: [], update: [] };
  return {
    blocks: [{ ...block, txCount: txs.length }],
    txs,
    participants: [],
    commissions: none,
    pairs: none,
    accounts: none,
    totals: none,
  };
}

const TX_FIELDS: [string, keyof TxRow][] = [
  ['height', 'height'],
  ['idx', 'idx'],
  ['tx_id', 'txId'],
  ['kind', 'kind'],
  ['signer', 'signer'],
  ['nonce', 'nonce'],
  ['tx_time', 'time'],
  ['payload', 'payload'],
  ['signature', 'signature'],
  ['code', 'code'],
  ['commission_id', 'commission'],
  ['existing', 'existing'],
];

/** COPY text the obvious way: one string, then its UTF-8 bytes. */
function expectedCopy(txs: TxRow[]): Buffer {
  const lines = txs.map((r) => TX_FIELDS.map(([, f]) => copyText(r[f])).join('\t') + '\n');
  return Buffer.from(lines.join(''), 'utf8');
}

describe('planBatch COPY data', () => {
  it('is the UTF-8 of the rows in COPY text format, for batches small and large', () => {
    // 1 row; a few chunks; several megabytes (the scratch buffer grows, twice); small again after
    for (const n of [1, 300, 12_000, 40]) {
      const txs = Array.from({ length: n }, (_, i) => txRow(i));
      const plan = planBatch(rowsOf(txs), EMPTY_CURSOR)!;
      const copy = plan.copies.find((c) => c.table === 'transactions')!;
      expect(copy.columns).toEqual(TX_FIELDS.map(([name]) => name));
      expect(copy.rows).toBe(n);
      const want = expectedCopy(txs);
      expect(copy.data.byteLength).toBe(want.byteLength);
      expect(Buffer.from(copy.data).equals(want), `${n} rows`).toBe(true);
    }
  });

  it('gives each copy bytes of its own, which later batches never overwrite', () => {
    const first = planBatch(rowsOf([txRow(1), txRow(2)]), EMPTY_CURSOR)!;
    const before = Buffer.from(first.copies[1]!.data);
    planBatch(rowsOf(Array.from({ length: 5000 }, (_, i) => txRow(i + 100))), EMPTY_CURSOR);
    expect(Buffer.from(first.copies[1]!.data).equals(before)).toBe(true);
    // a buffer the write thread can take over whole (PostgresTarget.writePlan transfers it)
    const data = first.copies[1]!.data;
    expect(data.byteOffset).toBe(0);
    expect(data.byteLength).toBe(data.buffer.byteLength);
  });
});
