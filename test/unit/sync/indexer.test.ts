import { afterAll, describe, expect, it } from 'vitest';
import { HttpEmbedder, PostgresSink, search, SearchIndexer } from '../../../src/sync/index.js';
import { buildSampleChain } from '../../support/sample-chain.js';
import { EmbeddingStub } from './embedding-stub.js';
import { closeSharedPglite, count, DB_KINDS, FollowedChain } from './helpers.js';

afterAll(closeSharedPglite);

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
        const fc = new FollowedChain(await buildSampleChain());
        const target = await db.open();
        const sink = new PostgresSink({ source: fc.source, target, pollMs: 50 });
        sink.start();
        await sink.waitForHeight(fc.height);
        await sink.stop();
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
