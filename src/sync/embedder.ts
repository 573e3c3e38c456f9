/**
 * Embedders turn text into vectors for the pgvector index. One small
 * interface; the id names the vector space (model and dimension), is stored
 * with every embedding, and a change of id makes the indexer re-embed.
 */
export interface Embedder {
  /** names the vector space: the same id must always give the same vectors */
  readonly id: string;
  readonly dimension: number;
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** Ids go into SQL (a partial index predicate), so they are restricted to plain characters. */
export const EMBEDDER_ID_RE = /^[A-Za-z0-9._:@/+-]{1,128}$/;

export function checkEmbedder(e: Embedder): Embedder {
  if (!EMBEDDER_ID_RE.test(e.id))
    throw new Error(`embedder id ${JSON.stringify(e.id)} must match ${EMBEDDER_ID_RE.source}`);
  // pgvector's HNSW index on `vector` takes up to 2,000 dimensions
  if (!Number.isInteger(e.dimension) || e.dimension < 1 || e.dimension > 2_000)
    throw new Error(`embedder dimension ${e.dimension} must be an integer in 1..2000`);
  return e;
}

export interface HashingEmbedderOptions {
  /** vector size (default 384) */
  dimension?: number;
  /** character n-gram lengths (default 3 and 4) */
  ngrams?: readonly number[];
}

/** Words too common to say anything about a commission. */
const STOP_WORDS = new Set(
  'a an and are as at be by for from has have in is it its of on or that the this to via was were will with'.split(
    ' ',
  ),
);

/**
 * The built-in embedder: feature hashing, no model weights, fully offline and
 * deterministic. Each word of the text and each character n-gram of each word
 * (with `<` `>` marking the word's ends) is hashed to one of `dimension`
 * buckets with a hashed sign (so collisions cancel out on average instead of
 * piling up), the vector is L2-normalised. Cosine similarity is then the
 * overlap of words and word pieces: a typo changes a few n-grams of one word
 * and leaves the rest, so "Amazonn" stays close to "Amazon".
 */
export class HashingEmbedder implements Embedder {
  readonly id: string;
  readonly dimension: number;
  private readonly ngrams: readonly number[];

  constructor(opts: HashingEmbedderOptions = {}) {
    this.dimension = opts.dimension ?? 384;
    this.ngrams = opts.ngrams ?? [3, 4];
    if (this.ngrams.some((n) => !Number.isInteger(n) || n < 2 || n > 8))
      throw new Error('n-gram lengths must be 2..8');
    this.id = `hash-v1:d${this.dimension}:n${this.ngrams.join('-')}`;
    checkEmbedder(this);
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    return Promise.resolve(texts.map((t) => this.embedOne(t)));
  }

  embedOne(text: string): Float32Array {
    const v = new Float32Array(this.dimension);
    for (const word of words(text)) {
      if (STOP_WORDS.has(word)) continue;
      this.add(v, `w:${word}`, 1);
      const marked = `<${word}>`;
      for (const n of this.ngrams) {
        const count = marked.length - n + 1;
        if (count < 1) continue;
        // a word's pieces together weigh about as much as the word itself, whatever its length
        const w = 1 / Math.sqrt(count);
        for (let i = 0; i < count; i++) this.add(v, `${n}:${marked.slice(i, i + n)}`, w);
      }
    }
    let norm = 0;
    for (const x of v) norm += x * x;
    if (norm > 0) {
      const inv = 1 / Math.sqrt(norm);
      for (let i = 0; i < v.length; i++) v[i]! *= inv;
    }
    return v;
  }

  private add(v: Float32Array, feature: string, weight: number): void {
    const h = murmur3(feature, 0x9747b28c);
    const bucket = h % this.dimension;
    const sign = murmur3(feature, 0x5bd1e995) & 1 ? 1 : -1;
    v[bucket]! += sign * weight;
  }
}

/** Lower-case words of letters and digits, accents removed (NFKD). */
export function words(text: string): string[] {
  return (
    text
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

const utf8 = new TextEncoder();
let scratch = new Uint8Array(256);

/** MurmurHash3 x86_32 of the UTF-8 bytes of a string (the reference algorithm); unsigned. */
export function murmur3(key: string, seed: number): number {
  if (scratch.length < key.length * 3) scratch = new Uint8Array(key.length * 3);
  const len = utf8.encodeInto(key, scratch).written;
  const b = scratch;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = len & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= b[i + 2]! << 16;
    if (rest >= 2) k ^= b[i + 1]! << 8;
    k ^= b[i]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Cosine similarity of two L2-normalised vectors. */
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
