import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HashingEmbedder } from '../../../src/sync/index.js';

/**
 * A small OpenAI-compatible `/v1/embeddings` server on 127.0.0.1 for tests.
 * It embeds with a HashingEmbedder of its own dimension (so answers are
 * deterministic), answers in reverse order (clients must use `index`), and
 * can be told to fail.
 */
export class EmbeddingStub {
  requests: { auth: string | undefined; model: unknown; inputs: number }[] = [];
  failWith: number | undefined;
  /** answer with vectors of this size instead (a misconfigured model) */
  wrongDimension: number | undefined;
  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly dimension: number,
  ) {}

  static async start(dimension: number): Promise<EmbeddingStub> {
    const inner = new HashingEmbedder({ dimension });
    const holder: { stub?: EmbeddingStub } = {};
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const s = holder.stub!;
        const parsed = JSON.parse(body) as { model: unknown; input: string[] };
        s.requests.push({
          auth: req.headers.authorization,
          model: parsed.model,
          inputs: parsed.input.length,
        });
        if (req.url !== '/v1/embeddings' || req.method !== 'POST') {
          res.writeHead(404).end('not found');
          return;
        }
        if (s.failWith !== undefined) {
          res.writeHead(s.failWith, { 'content-type': 'application/json' }).end('{"error":"stub failure"}');
          return;
        }
        const size = s.wrongDimension ?? dimension;
        const data = parsed.input.map((text, index) => ({
          object: 'embedding',
          index,
          embedding: Array.from(size === dimension ? inner.embedOne(text) : new Float32Array(size).fill(0.1)),
        }));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', model: parsed.model, data: data.reverse() }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    holder.stub = new EmbeddingStub(server, `http://127.0.0.1:${port}`, dimension);
    return holder.stub;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
