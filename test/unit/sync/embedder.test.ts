import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dot, HashingEmbedder, murmur3, words } from '../../../src/sync/embedder.js';
import { HttpEmbedder, SyncError } from '../../../src/sync/index.js';
import { EmbeddingStub } from './embedding-stub.js';

describe('HashingEmbedder', () => {
  const e = new HashingEmbedder();

  it('is deterministic, L2-normalised and names its vector space', async () => {
    const [a, b] = await e.embed(['Espresso machine, stainless steel', 'Espresso machine, stainless steel']);
    expect(a).toEqual(b);
    expect(a!.length).toBe(384);
    expect(dot(a!, a!)).toBeCloseTo(1, 5);
    expect(e.id).toBe('hash-v1:d384:n3-4');
    expect(new HashingEmbedder({ dimension: 64 }).id).toBe('hash-v1:d64:n3-4');
    // pinned, so a change of the hashing (which would need a new id) cannot go unnoticed
    // reference MurmurHash3 x86_32 vectors
    expect(murmur3('hello', 0)).toBe(0x248bfa47);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c)).toBe(0x2fa826cd);
    expect(e.embedOne('Café')).toEqual(e.embedOne('cafe'));
  });

  it('keeps a typo close to its word and far from unrelated text', () => {
    const doc = e.embedOne('Bella Cucina Cooking with Tom Espresso machine, stainless steel');
    const other = e.embedOne('TechNova Electronics GadgetReviews Mechanical keyboard with RGB lighting');
    const typo = e.embedOne('espreso machne');
    expect(dot(typo, doc)).toBeGreaterThan(0.15);
    expect(dot(typo, doc)).toBeGreaterThan(dot(typo, other) + 0.1);
  });

  it('splits words on anything but letters and digits, drops accents and case', () => {
    expect(words('Hiking-boots, Größe 42 (Zürich)!')).toEqual(['hiking', 'boots', 'große', '42', 'zurich']);
    const empty = e.embedOne('');
    expect(empty.every((x) => x === 0)).toBe(true);
  });
});

describe('HttpEmbedder against a local OpenAI-compatible stub', () => {
  let stub: EmbeddingStub;
  beforeAll(async () => {
    stub = await EmbeddingStub.start(48);
  });
  afterAll(() => stub.close());

  it('posts batches to /v1/embeddings with the key, and orders answers by index', async () => {
    stub.requests = [];
    const h = new HttpEmbedder({
      url: stub.url,
      model: 'stub-model',
      dimension: 48,
      apiKey: 'sk-test',
      batchSize: 2,
    });
    expect(h.id).toBe('http:stub-model:d48');
    const texts = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    const got = await h.embed(texts);
    const local = new HashingEmbedder({ dimension: 48 });
    expect(got).toEqual(texts.map((t) => local.embedOne(t)));
    expect(stub.requests.map((r) => r.inputs)).toEqual([2, 2, 1]);
    expect(stub.requests.every((r) => r.auth === 'Bearer sk-test' && r.model === 'stub-model')).toBe(true);
  });

  it('reports server errors as EMBEDDER_FAILED and wrong shapes as BAD_EMBEDDING', async () => {
    const h = new HttpEmbedder({ url: `${stub.url}/v1/embeddings`, model: 'm', dimension: 48 });
    stub.failWith = 503;
    await expect(h.embed(['x'])).rejects.toMatchObject({ code: 'EMBEDDER_FAILED' });
    stub.failWith = undefined;
    stub.wrongDimension = 12;
    await expect(h.embed(['x'])).rejects.toMatchObject({ code: 'BAD_EMBEDDING' });
    stub.wrongDimension = undefined;
    const down = new HttpEmbedder({ url: 'http://127.0.0.1:9', model: 'm', dimension: 48, timeoutMs: 2000 });
    const err = await down.embed(['x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect((err as SyncError).code).toBe('EMBEDDER_FAILED');
    expect((err as SyncError).fatal).toBe(false);
  });
});
