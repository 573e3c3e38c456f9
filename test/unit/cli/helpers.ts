import { createServer, type IncomingMessage } from 'node:http';
import { expect, vi } from 'vitest';
import { main } from '../../../src/cli/main.js';

/** Run the CLI in this process, returning its exit status and what it printed. */
export async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const status = await main(['node', 'bitnexus', ...args]);
    return { status, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** stdout holds exactly one JSON document, an error with this code; returns its message. */
export function jsonError(stdout: string, code: string): string {
  return jsonErrorDoc(stdout, code).message;
}

/** stdout holds exactly one JSON document, an error with this code; returns the error object. */
export function jsonErrorDoc(
  stdout: string,
  code: string,
): { code: string; message: string; field?: string; details?: unknown } {
  const lines = stdout.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  const doc = JSON.parse(lines[0]!) as {
    ok: boolean;
    error: { code: string; message: string; field?: string; details?: unknown };
  };
  expect(doc).toMatchObject({ ok: false, error: { code } });
  return doc.error;
}

/** A closed local port: nothing is ever sent to it, since every case here is refused first. */
export const NOWHERE = 'http://127.0.0.1:9';

export interface FakeNode {
  url: string;
  /** every request the fake node received: method, path and body */
  requests: { method: string; path: string; body: string }[];
  close(): Promise<void>;
}

/** An HTTP server that records what it is sent and answers every request with `answer`. */
export async function fakeNode(answer: { status: number; body: unknown }): Promise<FakeNode> {
  const requests: FakeNode['requests'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', path: req.url ?? '', body });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
