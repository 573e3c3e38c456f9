import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { api } from '../../../src/cli/http.js';
import { CliError } from '../../../src/cli/output.js';

// api() goes through node:http, with the CLI's timeout as its only limit: the global fetch
// (undici) gave up on any answer slower than its 300 s headersTimeout / bodyTimeout.

const servers: Server[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

/** A local HTTP server answering with `handler`; returns its base URL. */
async function serve(handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

/** Answers `{"slow":true}`, but sends even its headers only after `ms`. */
function slowHeaders(ms: number): RequestListener {
  return (_req, res) => {
    setTimeout(() => {
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"slow":true}');
    }, ms);
  };
}

/** What api() rejected with: a CliError. */
async function refusal(p: Promise<unknown>): Promise<CliError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  return err as CliError;
}

/** A port where nothing listens: bound, then closed again. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('api(): the CLI’s timeout is the only limit', () => {
  it('waits for headers that come after 1.5 s, within a 5 s timeout', async () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const base = await serve(slowHeaders(1500));
    const started = Date.now();
    await expect(api(base, 'v1/status', { timeoutMs: 5000 })).resolves.toEqual({ slow: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(fetchSpy).not.toHaveBeenCalled();
  });

  it('gives up after its own timeout: NODE_UNREACHABLE, named TimeoutError as fetch’s was', async () => {
    const base = await serve(slowHeaders(1500));
    const started = Date.now();
    const e = await refusal(api(base, 'v1/status', { timeoutMs: 500 }));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1400);
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toBe(`cannot reach ${base} (TimeoutError)`);
    expect(e.exitCode).toBe(2);
  });

  it('reads a body that comes in two pieces 1 s apart, within a 5 s timeout', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"parts":');
      setTimeout(() => res.end('[1,2]}'), 1000);
    });
    await expect(api(base, 'v1/status', { timeoutMs: 5000 })).resolves.toEqual({ parts: [1, 2] });
  });

  it('the timeout covers the body too: a body that stops is lost (TimeoutError)', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"parts":');
    });
    const e = await refusal(api(base, 'v1/status', { timeoutMs: 500 }));
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toBe(`lost ${base} while reading its answer (TimeoutError)`);
  });
});

describe('api(): errors keep their codes and messages', () => {
  it('a closed port is NODE_UNREACHABLE (ECONNREFUSED)', async () => {
    const base = `http://127.0.0.1:${await closedPort()}`;
    const e = await refusal(api(base, 'v1/status'));
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toBe(`cannot reach ${base} (ECONNREFUSED)`);
    expect(e.exitCode).toBe(2);
  });

  it('a connection closed in the middle of the body is NODE_UNREACHABLE, lost while reading', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"parts":');
      setTimeout(() => res.socket?.end(), 50);
    });
    const e = await refusal(api(base, 'v1/status'));
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toBe(`lost ${base} while reading its answer (UND_ERR_SOCKET)`);
  });

  it("an API error keeps the API's code, message, field and details, and exits 1", async () => {
    const base = await serve((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          error: { code: 'BAD_HEX', message: 'params.id is not hex', field: 'params.id', details: { n: 1 } },
        }),
      );
    });
    const e = await refusal(api(base, 'v1/transactions/zz'));
    expect(e.code).toBe('BAD_HEX');
    expect(e.message).toBe('params.id is not hex');
    expect(e.exitCode).toBe(1);
    expect(e.extra).toEqual({ field: 'params.id', details: { n: 1 } });
  });

  it('an HTTP error without an error code is HTTP_<status>, with its reason phrase', async () => {
    const base = await serve((_req, res) => res.writeHead(502, 'Proxy Trouble').end('{}'));
    const e = await refusal(api(base, 'v1/status'));
    expect(e.code).toBe('HTTP_502');
    expect(e.message).toBe('Proxy Trouble');
  });

  it('an answer that is not JSON is BAD_RESPONSE', async () => {
    const base = await serve((_req, res) => res.writeHead(200).end('<html>a proxy</html>'));
    const e = await refusal(api(base, 'v1/status'));
    expect(e.code).toBe('BAD_RESPONSE');
    expect(e.message).toBe(`${base}/v1/status answered 200 with non-JSON`);
    expect(e.exitCode).toBe(2);
  });

  it('a redirect is not followed: it is an HTTP_3xx error', async () => {
    const base = await serve((req, res) => {
      if (req.url === '/v1/status') res.writeHead(302, { location: '/v1/elsewhere' }).end();
      else res.end('{"followed":true}');
    });
    const e = await refusal(api(base, 'v1/status'));
    expect(e.code).toBe('HTTP_302');
  });
});

describe('api(): the request', () => {
  it('sends a body as JSON with its content type, and an empty answer is undefined', async () => {
    const seen: {
      method: string | undefined;
      url: string | undefined;
      type: string | undefined;
      body: string;
    }[] = [];
    const base = await serve((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body });
        res.writeHead(204).end();
      });
    });
    await expect(api(base, 'v1/admin', { method: 'POST', body: { to: 'é' } })).resolves.toBeUndefined();
    await expect(api(base + '/', 'v1/status')).resolves.toBeUndefined();
    expect(seen).toEqual([
      { method: 'POST', url: '/v1/admin', type: 'application/json', body: '{"to":"é"}' },
      { method: 'GET', url: '/v1/status', type: undefined, body: '' },
    ]);
  });
});
