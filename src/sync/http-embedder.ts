import { checkEmbedder, type Embedder } from './embedder.js';
import { SyncError } from './errors.js';

export interface HttpEmbedderOptions {
  /** base URL of an OpenAI-compatible server (`http://127.0.0.1:8080`), or the full `/v1/embeddings` URL */
  url: string;
  model: string;
  /** the model's output size; checked on every answer */
  dimension: number;
  /** sent as `Authorization: Bearer …` (never logged) */
  apiKey?: string;
  /** ask the server for `dimensions` (models that can shorten their output, e.g. text-embedding-3-*) */
  requestDimensions?: boolean;
  /** texts per request (default 64) */
  batchSize?: number;
  timeoutMs?: number;
  /** defaults to `http:<model>:d<dimension>` */
  id?: string;
}

interface EmbeddingsResponse {
  data?: { index?: unknown; embedding?: unknown }[];
}

/**
 * An embedder backed by an OpenAI-compatible `POST /v1/embeddings` server
 * (a local model server such as llama.cpp, vLLM, Ollama or text-embeddings-
 * inference). Failures are `EMBEDDER_FAILED` (transient: the indexer backs
 * off and retries); an answer of the wrong shape is `BAD_EMBEDDING`.
 */
export class HttpEmbedder implements Embedder {
  readonly id: string;
  readonly dimension: number;
  private readonly endpoint: string;

  constructor(private readonly opts: HttpEmbedderOptions) {
    this.dimension = opts.dimension;
    this.id = opts.id ?? `http:${opts.model}:d${opts.dimension}`;
    const base = opts.url.replace(/\/+$/, '');
    this.endpoint = /\/embeddings$/.test(base) ? base : `${base}/v1/embeddings`;
    checkEmbedder(this);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const size = this.opts.batchSize ?? 64;
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += size) out.push(...(await this.request(texts.slice(i, i + size))));
    return out;
  }

  private async request(input: string[]): Promise<Float32Array[]> {
    const body: Record<string, unknown> = { model: this.opts.model, input, encoding_format: 'float' };
    if (this.opts.requestDimensions) body.dimensions = this.dimension;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.apiKey !== undefined) headers.authorization = `Bearer ${this.opts.apiKey}`;
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new SyncError(
        'EMBEDDER_FAILED',
        `${this.endpoint}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).slice(0, 200);
      throw new SyncError('EMBEDDER_FAILED', `${this.endpoint} answered ${res.status}: ${text}`);
    }
    let json: EmbeddingsResponse;
    try {
      json = (await res.json()) as EmbeddingsResponse;
    } catch {
      throw new SyncError('EMBEDDER_FAILED', `${this.endpoint} answered with something that is not JSON`);
    }
    const data = json.data;
    if (!Array.isArray(data) || data.length !== input.length) {
      throw new SyncError(
        'BAD_EMBEDDING',
        `expected ${input.length} embeddings, got ${Array.isArray(data) ? data.length : 'none'}`,
      );
    }
    const out = new Array<Float32Array | undefined>(input.length);
    data.forEach((d, pos) => {
      const index = typeof d.index === 'number' ? d.index : pos;
      const e = d.embedding;
      if (
        !Array.isArray(e) ||
        e.length !== this.dimension ||
        !e.every((x) => typeof x === 'number' && Number.isFinite(x))
      ) {
        throw new SyncError('BAD_EMBEDDING', `embedding ${index} is not ${this.dimension} finite numbers`);
      }
      if (index < 0 || index >= input.length || out[index])
        throw new SyncError('BAD_EMBEDDING', `bad index ${index}`);
      out[index] = Float32Array.from(e as number[]);
    });
    return out as Float32Array[];
  }
}
