import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pub } from '../../support/ledger-fixture.js';
import { HashingEmbedder, SearchIndexer, searchDetailed, type SqlTarget } from '../../../src/sync/index.js';
import { ZERO_QUERY_VECTOR } from '../../../src/sync/search.js';
import { record, register } from './chains.js';
import { closeSharedPglite, count, DB_KINDS, FollowedChain, mirrorToHead, type TestDb } from './helpers.js';

/**
 * Search at its edges: queries that embed to the zero vector, commissions
 * whose text does, times at and beyond what Postgres stores, keys in upper case.
 */

afterAll(closeSharedPglite);

describe.each(DB_KINDS)('search edges on $kind', ({ create, skip }) => {
  let db: TestDb;
  let target: SqlTarget;
  let fc: FollowedChain;
  let merchantKey: string;
  let mute: string;
  const embedder = new HashingEmbedder();

  beforeAll(async () => {
    if (skip) return;
    fc = await FollowedChain.create();
    // "The" and "!!!": names without a word the embedder places; with an empty description, a
    // commission between them embeds to the zero vector
    const p = await register(fc, ['Nordwind Outdoor', 'The'], ['TravelBlog Maria', '!!!']);
    merchantKey = pub(p.merchants[0]!);
    const recs = Array.from({ length: 30 }, (_, i) =>
      record(p.merchants[0]!, p.affiliates[0]!, { description: `Hiking boots model ${i}` }),
    );
    const silent = record(p.merchants[1]!, p.affiliates[1]!, { description: '' });
    mute = silent.id;
    await fc.append(...recs, silent);
    db = await create();
    target = await db.open();
    await mirrorToHead(fc, target);
    await new SearchIndexer({ target, embedder }).drain();
  }, 60_000);
  afterAll(async () => {
    if (!skip) await db.drop();
  });

  /** 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z (search.ts TIME_RANGE_MS) */
  const TIME_RANGE_MS = { min: -62_135_596_800_000, max: 253_402_300_799_999 };

  const noNaN = (hits: { distance?: number }[]) => {
    for (const h of hits) if (h.distance !== undefined) expect(Number.isFinite(h.distance)).toBe(true);
    expect(JSON.stringify(hits)).not.toContain('"distance":null');
  };

  it.skipIf(skip)('stores no embedding for a commission whose text embeds to the zero vector', async () => {
    expect(await count(target, 'commission_embeddings', `commission_id = '${mute}'`)).toBe(0);
    expect(await count(target, 'commission_embeddings')).toBe(30);
  });

  it.skipIf(skip)(
    'leaves the vector list out for a query of stop words or punctuation, and never answers NaN',
    async () => {
      for (const [q, filters] of [
        ['the', {}],
        ['the', { merchant: 'Nordwind Outdoor' }],
        ['?!', {}],
      ] as const) {
        const r = await searchDetailed(target, embedder, { q, k: 5, filters });
        expect(r.vectorUsed).toBe(false);
        expect(r.vectorError).toBe(ZERO_QUERY_VECTOR);
        for (const h of r.hits) expect(h.matchedBy).not.toContain('vector');
        noNaN(r.hits);
      }
    },
  );

  it.skipIf(skip)('never ranks a zero vector stored by an older indexer (distance NaN)', async () => {
    const dimension = embedder.dimension;
    await target.query(
      `INSERT INTO commission_embeddings (commission_id, embedder, embedding) VALUES ($1, $2, $3::vector)`,
      [mute, embedder.id, `[${new Array<number>(dimension).fill(0).join(',')}]`],
    );
    try {
      for (const filters of [{}, { merchant: 'The' }]) {
        const r = await searchDetailed(target, embedder, { q: 'hiking boots', k: 40, filters });
        expect(r.vectorUsed).toBe(true);
        noNaN(r.hits);
        expect(r.hits.find((h) => h.id === mute)?.matchedBy ?? []).not.toContain('vector');
      }
    } finally {
      await target.query(`DELETE FROM commission_embeddings WHERE commission_id = $1`, [mute]);
    }
  });

  it.skipIf(skip)(
    'takes times from 0001-01-01 to 9999-12-31 and refuses the others as INVALID_QUERY',
    async () => {
      for (const q of ['', 'boots']) {
        const all = await searchDetailed(target, embedder, {
          q,
          k: 100,
          filters: { from: TIME_RANGE_MS.min, to: TIME_RANGE_MS.max },
        });
        expect(all.hits.length).toBe(q === '' ? 31 : 30); // every commission, or every boots
        for (const bad of [
          { from: TIME_RANGE_MS.max + 1 }, // 10000-01-01: toISOString writes +010000-…
          { to: 8.64e15 },
          { from: 9e15 }, // beyond a Date: toISOString threw a RangeError
          { from: TIME_RANGE_MS.min - 1 }, // year 0
          { to: -8.64e15 },
          { from: 1.5 },
        ]) {
          await expect(searchDetailed(target, embedder, { q, filters: bad })).rejects.toMatchObject({
            name: 'SyncError',
            code: 'INVALID_QUERY',
          });
        }
      }
    },
  );

  it.skipIf(skip)('takes a merchant key in upper case as the key it is', async () => {
    for (const q of ['', 'boots']) {
      const lower = await searchDetailed(target, embedder, { q, k: 5, filters: { merchant: merchantKey } });
      const upper = await searchDetailed(target, embedder, {
        q,
        k: 5,
        filters: { merchant: merchantKey.toUpperCase() },
      });
      expect(lower.hits).toHaveLength(5);
      expect(upper.hits.map((h) => h.id)).toEqual(lower.hits.map((h) => h.id));
    }
  });
});
