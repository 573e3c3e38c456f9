import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/audit/index.js';
import { equalsText } from '../../../src/audit/equals-text.js';
import { SignaturePool } from '../../../src/audit/signature-pool.js';
import { decodeStoredFast } from '../../../src/audit/stored-block.js';
import {
  decodeBlock,
  encodeReceiptGeneric,
  encodeRecordGeneric,
  parseBlock,
  type Receipt,
  type StateRecord,
  receiptText,
  recordText,
} from '../../../src/ledger/index.js';
import { MemoryStore } from '../../../src/storage/index.js';
import { pub, tx, withParticipants, TestChain } from '../../support/ledger-fixture.js';
import { buildSampleChain } from '../../support/sample-chain.js';

const tagOf = (h: number, i: number) => h * 2 ** 21 + i + 1;

async function sample() {
  const kv = new MemoryStore();
  const tc = await buildSampleChain(kv);
  return { kv, tc };
}

function blocksOf(kv: MemoryStore): [number, Uint8Array][] {
  return [...kv.data.entries()]
    .filter(([k]) => k.startsWith('b/'))
    .map(([k, v]): [number, Uint8Array] => [Number(k.slice(2)), v])
    .sort((a, b) => a[0] - b[0]);
}

function withBlock(kv: MemoryStore, height: number, text: string | Uint8Array): MemoryStore {
  const copy = new MemoryStore();
  for (const [k, v] of kv.data) copy.data.set(k, v);
  copy.data.set(`b/${String(height).padStart(12, '0')}`, typeof text === 'string' ? Buffer.from(text) : text);
  return copy;
}

describe('stored-block fast path', () => {
  it('gives the ids, hash and signature checks of the exact path', async () => {
    const { kv } = await sample();
    const pool = new SignaturePool({ threads: 0 });
    let fast = 0;
    for (const [h, bytes] of blocksOf(kv)) {
      const exact = decodeBlock(parseBlock(JSON.parse(Buffer.from(bytes).toString('utf8'))));
      const got = decodeStoredFast(h, bytes, pool, tagOf);
      if (h === 0) {
        expect(got).toBeUndefined();
        continue;
      }
      expect(got).toBeDefined();
      fast++;
      expect(got!.hash).toBe(exact.hash);
      expect(got!.block).toEqual(exact.block);
      expect(got!.txs.map((t) => t.id)).toEqual(exact.txs.map((t) => t.id));
      expect(got!.txs.map((t) => Buffer.from(t.idBytes).toString('hex'))).toEqual(exact.txs.map((t) => t.id));
    }
    expect(fast).toBeGreaterThan(3);
    expect(await pool.drain()).toEqual([]);
    await pool.close();
  });

  it('declines anything that is not byte for byte canonical, and verify still names it', async () => {
    const { kv } = await sample();
    const h = 3;
    const bytes = kv.data.get('b/000000000003')!;
    const text = Buffer.from(bytes).toString('utf8');
    const json = JSON.parse(text) as { header: Record<string, unknown> };
    const reordered = JSON.stringify({ ...json, header: { txRoot: json.header.txRoot, ...json.header } });
    const variants: [string, string | Uint8Array][] = [
      ['white space', JSON.stringify(json, null, 1)],
      ['keys out of order', reordered],
      ['an escaped letter', text.replace('"kind":"commission.approve"', '"kind":"commission.appr\\u006fve"')],
      ['a fraction', text.replace(/"term":(\d+)/, '"term":$1.0')],
      ['an exponent', text.replace(/"term":(\d+)/, '"term":$1e0')],
      ['a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes])],
      ['a duplicate key', text.replace('{"header":{', '{"header":{"v":1,')],
      ['white space after the block', `${text} `],
      ['white space between transactions', text.replace('},{"chainId"', '}, {"chainId"')],
      [
        'invalid UTF-8',
        Buffer.from(text.replace('partial return', 'partial r\u00e9turn')).map((b) =>
          b === 0xc3 ? 0xff : b,
        ),
      ],
    ];
    for (const [what, v] of variants) {
      const pool = new SignaturePool({ threads: 0 });
      const b = typeof v === 'string' ? Buffer.from(v) : v;
      expect(Buffer.from(b).equals(bytes), `${what}: a variant`).toBe(false);
      expect(decodeStoredFast(h, b, pool, tagOf), what).toBeUndefined();
      expect(await pool.drain(), `${what}: nothing queued`).toEqual([]);
      await pool.close();
      const report = await verifyChain(withBlock(kv, h, b), { threads: 0 });
      expect(report.ok, what).toBe(false);
      expect(report.failure?.height, `${what}: ${report.failure?.message}`).toBe(h);
      expect(['NON_CANONICAL_BLOCK', 'MALFORMED_BLOCK'], what).toContain(report.failure?.code);
    }
  });

  it('falls back to the exact path for canonical blocks JSON.parse reorders (integer-like keys)', async () => {
    const kv = new MemoryStore();
    const tc = await TestChain.create(undefined, kv);
    const { merchants, affiliates } = await withParticipants(tc, ['m'], ['a']);
    const [m, a] = [merchants[0]!, affiliates[0]!];
    await tc.append(
      tx('commission.record', m, {
        merchant: pub(m),
        affiliate: pub(a),
        amount: '100',
        currency: 'EUR',
        orderId: 'o-1',
        description: 'numeric metadata keys',
        metadata: { '10': 'ten', '9': 'nine', b: 'x' },
      }),
    );
    const stored = Buffer.from(kv.data.get('b/000000000002')!).toString('utf8');
    expect(stored).toContain('"metadata":{"10":"ten","9":"nine","b":"x"}');
    const pool = new SignaturePool({ threads: 0 });
    expect(decodeStoredFast(2, kv.data.get('b/000000000002')!, pool, tagOf)).toBeUndefined();
    await pool.close();
    expect((await verifyChain(kv, { threads: 0 })).failure).toBeUndefined();
    const swapped = stored.replace('{"10":"ten","9":"nine"', '{"9":"nine","10":"ten"');
    expect((await verifyChain(withBlock(kv, 2, swapped), { threads: 0 })).failure).toMatchObject({
      code: 'NON_CANONICAL_BLOCK',
      height: 2,
    });
  });
});

describe('fast receipt and record encoders', () => {
  it('equal encodeReceipt and encodeRecord on a whole chain', async () => {
    const { kv, tc } = await sample();
    let records = 0;
    for (const rec of tc.chain.state.records.values()) {
      const fast = recordText(rec);
      if (fast !== undefined) {
        records++;
        expect(Buffer.from(fast)).toEqual(Buffer.from(encodeRecordGeneric(rec)));
      }
    }
    expect(records).toBeGreaterThan(20);
    let receipts = 0;
    for (const [k, v] of kv.data) {
      if (!k.startsWith('r/')) continue;
      const r = JSON.parse(Buffer.from(v).toString('utf8')) as Receipt;
      expect(receiptText(r)).toBe(Buffer.from(encodeReceiptGeneric(r)).toString('utf8'));
      receipts++;
    }
    expect(receipts).toBe(14);
  });

  it('equal them on arbitrary values, or decline', () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    const big = fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n });
    const int = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const rec = fc.oneof(
      fc.record({ t: fc.constant('nonce' as const), tx: text }),
      fc.record({ t: fc.constant('order' as const), commission: text }),
      fc.record({
        t: fc.constant('participant' as const),
        key: text,
        role: fc.constantFrom('operator' as const, 'merchant' as const),
        name: text,
        since: int,
        tx: fc.option(text, { nil: null }),
      }),
      fc.record({
        t: fc.constant('commission' as const),
        id: text,
        merchant: text,
        affiliate: text,
        currency: text,
        amount: big,
        orderId: text,
        description: text,
        metadata: fc.dictionary(fc.string({ maxLength: 4 }), text, { maxKeys: 4 }),
        status: fc.constantFrom('pending' as const, 'voided' as const),
        approved: big,
        reversed: big,
        recordedAt: int,
        updatedAt: int,
      }),
      fc.record({ t: fc.constant('pair' as const), pending: big, approved: big, clawedBack: big, paid: big }),
      fc.record({ t: fc.constant('account' as const), pending: big, balance: big, paid: big }),
    );
    let usedFast = 0;
    fc.assert(
      fc.property(rec, (r) => {
        const fast = recordText(r);
        if (fast !== undefined) usedFast++;
        let exact: Uint8Array | undefined;
        try {
          exact = encodeRecordGeneric(r);
        } catch {
          exact = undefined;
        }
        if (fast !== undefined) expect(Buffer.from(fast)).toEqual(Buffer.from(exact!));
      }),
      { numRuns: 500 },
    );
    expect(usedFast).toBeGreaterThan(250);
    const receipt = fc.record(
      {
        tx: text,
        height: int,
        index: int,
        code: fc.constantFrom('OK' as const, 'DUPLICATE_TX' as const),
        commission: text,
        existing: text,
      },
      { requiredKeys: ['tx', 'height', 'index', 'code'] },
    );
    fc.assert(
      fc.property(receipt, (r) => {
        const fast = receiptText(r);
        if (fast !== undefined) usedFast++;
        let exact: string | undefined;
        try {
          exact = Buffer.from(encodeReceiptGeneric(r)).toString('utf8');
        } catch {
          exact = undefined;
        }
        if (fast !== undefined) expect(fast).toBe(exact);
      }),
      { numRuns: 500 },
    );
    expect(usedFast).toBeGreaterThan(600);
    // an extra field is never silently left out
    expect(recordText({ t: 'nonce', tx: 'ab', extra: 1 } as unknown as StateRecord)).toBeUndefined();
    expect(receiptText({ tx: 'ab', height: 1, index: 0, code: 'OK', x: 1 } as unknown as Receipt)).toBe(
      undefined,
    );
  });

  it('compare stored bytes with text exactly', () => {
    expect(equalsText(Buffer.from('{"a":1}'), '{"a":1}')).toBe(true);
    expect(equalsText(Buffer.from('{"a":1} '), '{"a":1}')).toBe(false);
    expect(equalsText(Buffer.from('{"a":1'), '{"a":1}')).toBe(false);
    expect(equalsText(Buffer.from('"é"'), '"é"')).toBe(true);
    expect(equalsText(Buffer.from([0x22, 0xe9, 0x22]), '"é"')).toBe(false);
    expect(equalsText(Buffer.from('"\ufffd"'), '"\ufffd"')).toBe(true);
    expect(equalsText(Buffer.from([0x22, 0xff, 0x22]), '"\ufffd"')).toBe(false);
  });
});
