import { afterAll, describe, expect, it } from 'vitest';
import {
  HashingEmbedder,
  HttpEmbedder,
  migrate,
  search,
  SearchIndexer,
  type SqlTarget,
} from '../../../src/sync/index.js';
import { PacedBatch } from '../../../src/sync/indexer.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { appendTraffic, register } from './chains.js';
import { EmbeddingStub } from './embedding-stub.js';
import {
  closeSharedPglite,
  count,
  DB_KINDS,
  FollowedChain,
  mirrored,
  mirrorToHead,
  pgliteDb,
  type TestDb,
} from './helpers.js';

afterAll(closeSharedPglite);

/** A mirror of the sample chain with three rounds of commissions of one merchant and one affiliate. */
async function sampleMirror(db: TestDb, merchant: string, affiliate: string): Promise<SqlTarget> {
  const fc = new FollowedChain(await buildSampleChain());
  await appendTraffic(fc, await register(fc, [merchant], [affiliate]), 3);
  const target = await db.open();
  await mirrorToHead(fc, target);
  return target;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(DB_KINDS)('search indexer on $kind', ({ create, skip }) => {
  it.skipIf(skip)(
    'keeps the full-text index going while the model server is down, and catches up when it is back',
    async () => {
      const db = await create();
      const stub = await EmbeddingStub.start(32);
      try {
        const { target } = await mirrored(db);
        stub.failWith = 503;
        const embedder = new HttpEmbedder({ url: stub.url, model: 'stub', dimension: 32 });
        const indexer = new SearchIndexer({
          target,
          embedder,
          pollMs: 20,
          retry: { initialMs: 20, maxMs: 50 },
        });
        indexer.start();
        await until('degraded', () => Promise.resolve(indexer.status().state === 'degraded'));
        await until('full-text caught up', async () => (await indexer.pending()).text === 0);
        expect((await indexer.pending()).vectors).toBe(3);
        expect(indexer.status().lastError).toMatch(/EMBEDDER_FAILED/);
        // full-text search works meanwhile; the query's own embedding fails softly
        const hits = await search(target, embedder, { q: 'autumn A-2', k: 3 });
        expect(hits.map((h) => h.orderId)).toContain('A-2');
        stub.failWith = undefined;
        await until('vectors caught up', async () => (await indexer.pending()).vectors === 0);
        await until('ok', () => Promise.resolve(indexer.status().state === 'ok'));
        await indexer.stop();
        expect(indexer.status()).toMatchObject({ state: 'stopped', embedded: 3, textThroughHeight: 2 });
        expect(await count(target, 'commission_embeddings')).toBe(3);
        expect(await count(target, 'commission_text')).toBe(3);
        // a second run (a restart) finds nothing to redo
        const again = new SearchIndexer({ target, embedder });
        expect(await again.drain()).toBe(0);
      } finally {
        await stub.close();
        await db.drop();
      }
    },
  );
});

describe('an embedder whose dimension changes under the same id', () => {
  it('is refused with a message that says so, and the mirror keeps what it had', async () => {
    const db = await pgliteDb();
    try {
      const { target } = await mirrored(db);
      const fixed = (dimension: number) => ({
        id: 'custom-model',
        dimension,
        embed: (texts: string[]) => Promise.resolve(texts.map(() => new Float32Array(dimension).fill(0.5))),
      });
      await new SearchIndexer({ target, embedder: fixed(8) }).drain();
      expect(await count(target, 'commission_embeddings')).toBe(3);
      await expect(new SearchIndexer({ target, embedder: fixed(16) }).drain()).rejects.toThrow(
        /dimension 8 .* now makes 16: an embedder's id must change/,
      );
      expect(await count(target, 'commission_embeddings')).toBe(3);
      expect(await count(target, 'embedders')).toBe(1);
    } finally {
      await db.drop();
    }
  });
});

describe.each(DB_KINDS)('full-text rows on $kind', ({ create, skip }) => {
  it.skipIf(skip)(
    "carry their commission's fixed fields, also in a mirror indexed before migration 4",
    async () => {
      const db = await create();
      try {
        const { target } = await mirrored(db);
        const indexer = new SearchIndexer({ target, embedder: new HashingEmbedder() });
        while ((await indexer.textStep()) > 0);
        const differing = () =>
          count(
            target,
            'commission_text t JOIN commissions c ON c.id = t.commission_id',
            `(t.merchant, t.affiliate, t.currency, t.amount, t.recorded_at)
               IS DISTINCT FROM (c.merchant, c.affiliate, c.currency, c.amount, c.recorded_at)`,
          );
        expect(await count(target, 'commission_text')).toBe(3);
        expect(await differing()).toBe(0);
        // as a mirror indexed by an older version left it: no such columns, schema at version 3
        await target.query(
          `ALTER TABLE commission_text DROP COLUMN merchant, DROP COLUMN affiliate, DROP COLUMN currency,
             DROP COLUMN amount, DROP COLUMN recorded_at`,
        );
        await target.query(`DELETE FROM schema_migrations WHERE version = 4`);
        expect((await migrate(target)).applied).toEqual([4]);
        expect(await differing()).toBe(0);
        const hits = await search(target, new HashingEmbedder(), {
          q: 'autumn A-2',
          k: 3,
          filters: { currency: 'USD', minAmount: '5000', maxAmount: '5000' },
        });
        expect(hits.map((h) => h.orderId)).toContain('A-2');
      } finally {
        await db.drop();
      }
    },
  );
});

describe('PacedBatch', () => {
  it('sizes the next batch to the step time, within its bounds, growing at most twofold', () => {
    const b = new PacedBatch(256, 100);
    expect(b.size).toBe(8); // slow start
    for (let i = 0; i < 5; i++) b.took(b.size, 1);
    expect(b.size).toBe(256);
    b.took(256, 1000); // 10x too slow
    expect(b.size).toBe(25);
    b.took(25, 10); // 10x faster than wanted: at most double
    expect(b.size).toBe(50);
    b.took(50, 100);
    expect(b.size).toBe(50);
    b.took(50, 100_000); // a stall: the floor
    expect(b.size).toBe(8);
    b.took(8, 0); // too fast to measure
    expect(b.size).toBe(16);
    b.took(0, 5000); // nothing to do says nothing about speed
    expect(b.size).toBe(16);
    for (let i = 0; i < 10; i++) b.took(b.size, 1);
    expect(b.size).toBe(256);
  });
});

describe('search indexer and the thread it shares', () => {
  it('puts the full text first, but gives the embeddings a step every second while it has work', async () => {
    const db = await DB_KINDS[0]!.create();
    try {
      const target = await sampleMirror(db, 'shop-j', 'aff-j');
      // one commission a step, and a sink that keeps every step waiting 250 ms: full-text work
      // for two seconds and more; after each step, where the two jobs were
      const seen: { text: string; embedded: number }[] = [];
      const indexer: SearchIndexer = new SearchIndexer({
        target,
        embedder: new HashingEmbedder(),
        batchSize: 1,
        textBatchSize: 1,
        between: async () => {
          const s = indexer.status();
          seen.push({ text: `${s.textThroughHeight}/${s.textThroughIndex}`, embedded: s.embedded });
          await new Promise((r) => setTimeout(r, 250));
        },
      });
      const indexed = await indexer.drain();
      expect(indexed).toBeGreaterThanOrEqual(16); // text and vectors of every commission
      const commissions = indexed / 2;
      expect(indexer.status().embedded).toBe(commissions);
      const textDone = `${indexer.status().textThroughHeight}/${indexer.status().textThroughIndex}`;
      // the full text went first …
      expect(seen[0]!.text).not.toBe(textDone);
      expect(seen[0]!.embedded).toBe(0);
      // … and the embeddings took steps before it was done, not only after
      const early = seen.filter((x) => x.text !== textDone && x.embedded > 0);
      expect(early.length).toBeGreaterThan(0);
      expect(early[0]!.embedded).toBeLessThan(commissions);
    } finally {
      await db.drop();
    }
  }, 60_000);

  it('retries a failed job after its backoff while the other one has work, and says degraded meanwhile', async () => {
    const db = await DB_KINDS[0]!.create();
    try {
      const target = await sampleMirror(db, 'shop-r', 'aff-r');
      // the model server is away for its first call only
      const hashing = new HashingEmbedder();
      let calls = 0;
      const flaky = {
        id: hashing.id,
        dimension: hashing.dimension,
        embed: (texts: string[]) =>
          calls++ === 0 ? Promise.reject(new Error('model server away')) : hashing.embed(texts),
      };
      const seen: { text: string; embedded: number; state: string; lastError?: string }[] = [];
      const indexer: SearchIndexer = new SearchIndexer({
        target,
        embedder: flaky,
        batchSize: 1,
        textBatchSize: 1,
        retry: { initialMs: 100, maxMs: 100 },
        between: async () => {
          const s = indexer.status();
          seen.push({
            text: `${s.textThroughHeight}/${s.textThroughIndex}`,
            embedded: s.embedded,
            state: s.state,
            ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
          });
          await new Promise((r) => setTimeout(r, 250));
        },
      });
      const indexed = await indexer.drain(); // no error: the failed job recovered within the drain
      expect(indexed).toBeGreaterThanOrEqual(16);
      expect(indexer.status()).toMatchObject({ state: 'ok', errors: 1, embedded: indexed / 2 });
      expect(indexer.status().lastError).toBeUndefined();
      const textDone = `${indexer.status().textThroughHeight}/${indexer.status().textThroughIndex}`;
      // degraded as soon as the step failed, while the full text went on
      const failedAt = seen.findIndex((x) => x.state === 'degraded');
      expect(failedAt).toBeGreaterThanOrEqual(0);
      expect(seen[failedAt]!.lastError).toMatch(/model server away/);
      expect(seen[failedAt]!.text).not.toBe(textDone);
      // and the embeddings were retried before the full text ran out of work, not after
      expect(seen.some((x) => x.text !== textDone && x.embedded > 0)).toBe(true);
    } finally {
      await db.drop();
    }
  }, 60_000);

  it('lets the event loop turn between its steps (PGlite answers without one)', async () => {
    const db = await DB_KINDS[0]!.create();
    try {
      const target = await sampleMirror(db, 'shop-t', 'aff-t');
      // one commission a step, so that a drain is many steps
      const indexer = new SearchIndexer({
        target,
        embedder: new HashingEmbedder(),
        batchSize: 1,
        textBatchSize: 1,
      });
      let turns = 0;
      const timer = setInterval(() => turns++, 0);
      let indexed: number;
      try {
        indexed = await indexer.drain();
      } finally {
        clearInterval(timer);
      }
      expect(indexed).toBeGreaterThanOrEqual(16); // text and vectors of every commission
      // a timer (as a commit notice would) got a turn between the steps, not only after them all
      expect(turns).toBeGreaterThanOrEqual(indexed / 2);
    } finally {
      await db.drop();
    }
  }, 60_000);
});
