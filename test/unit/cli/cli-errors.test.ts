import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkP2pAddress, p2pError } from '../../../src/cli/commands/client.js';
import { intArg, intInRange } from '../../../src/cli/commands/args.js';
import { api, nodeUrl } from '../../../src/cli/http.js';
import { jsonRequested } from '../../../src/cli/main.js';
import { CliError } from '../../../src/cli/output.js';
import {
  FrameTooLargeError,
  NetworkConfigError,
  ProtocolViolationError,
  RemoteError,
  RequestTimeoutError,
} from '../../../src/network/index.js';
import { fakeNode, jsonError, NOWHERE, run } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('usage errors', () => {
  it.each([
    [['verify', '--json'], "required option '--data-dir <dir>' not specified"],
    [['status', '--bogus', '--json'], "unknown option '--bogus'"],
    [['frobnicate', '--json'], "unknown command 'frobnicate'"],
    [['submit', '--json'], "missing required argument 'file'"],
    [['search', 'a', 'b', '--json'], 'too many arguments'],
  ])('with --json, %j prints one INVALID_ARGUMENT document on stdout and exits 2', async (args, message) => {
    const r = await run(args);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toContain(message);
    expect(r.stderr).toBe('');
  });

  it('without --json, print `error INVALID_ARGUMENT: …` and the help on stderr, and exit 2', async () => {
    const r = await run(['status', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error INVALID_ARGUMENT: unknown option '--bogus'\n/);
    expect(r.stderr).toContain('Usage: bitnexus status');
  });

  it('--help and --version still print and exit 0, with --json or without', async () => {
    const help = await run(['--help', '--json']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: bitnexus');
    const sub = await run(['submit', '--help', '--json']);
    expect(sub.status).toBe(0);
    expect(sub.stdout).toContain('--timeout <ms>');
    const version = await run(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toBe('0.1.0\n');
  });

  it('--json counts only among the options, not after --', () => {
    expect(jsonRequested(['status', '--json'])).toBe(true);
    expect(jsonRequested(['submit', '--', '--json'])).toBe(false);
    expect(jsonRequested(['status'])).toBe(false);
  });
});

describe('numeric options', () => {
  it.each(['abc', '0', '-5', '60001', '1.5', '1e3'])(
    'submit --timeout %s is INVALID_ARGUMENT, never an unreachable node',
    async (timeout) => {
      const r = await run(['submit', '--timeout', timeout, '--node', NOWHERE, '/nonexistent.json', '--json']);
      expect(r.status).toBe(2);
      expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toMatch(/^--timeout must be/);
    },
  );

  it('submit --timeout is checked before the transaction file is read', async () => {
    const r = await run(['submit', '--timeout', '0', '--node', NOWHERE, '/nonexistent.json']);
    expect(r.stderr).toBe('error INVALID_ARGUMENT: --timeout must be between 1 and 60000, got 0\n');
    const ok = await run(['submit', '--timeout', '60000', '--node', NOWHERE, '/nonexistent.json']);
    expect(ok.stderr).toBe(
      'error IO_ERROR: cannot read /nonexistent.json (ENOENT: no such file or directory)\n',
    );
  });

  it.each(['0', '99999999999', 'soon'])('sync check --timeout %s is INVALID_ARGUMENT', async (timeout) => {
    const r = await run(['sync', 'check', '--timeout', timeout, '--node', NOWHERE, '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toMatch(/^--timeout must be/);
  });

  it('intArg refuses integers beyond the safe range; intInRange checks the bounds', () => {
    expect(intArg('-12', '--n')).toBe(-12);
    expect(() => intArg('99999999999999999999', '--n')).toThrow('--n is out of range');
    expect(intInRange('7', '--n', 1, 7)).toBe(7);
    expect(() => intInRange('8', '--n', 1, 7)).toThrow('--n must be between 1 and 7, got 8');
  });

  it('api refuses a timeout a timer cannot take, without sending anything', async () => {
    const node = await fakeNode({ status: 200, body: {} });
    try {
      for (const timeoutMs of [Number.NaN, 0, 2 ** 31])
        await expect(api(node.url, 'v1/status', { timeoutMs })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      expect(node.requests).toEqual([]);
      // the same node is reached with a timeout a timer can take
      await api(node.url, 'v1/status', { timeoutMs: 1000 });
      expect(node.requests).toHaveLength(1);
    } finally {
      await node.close();
    }
  });
});

describe('--node', () => {
  it.each(['notaurl', 'ftp://127.0.0.1:7100', ''])('status --node %j is INVALID_ARGUMENT', async (node) => {
    const r = await run(['status', '--node', node, '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toMatch(/^--node: /);
  });

  it('takes http and https URLs, with or without a trailing slash', () => {
    expect(nodeUrl('http://127.0.0.1:7100').href).toBe('http://127.0.0.1:7100/');
    expect(nodeUrl('https://ledger.example/api/').href).toBe('https://ledger.example/api/');
  });
});

describe('submit --p2p errors', () => {
  const ADDRESS = '/ip4/127.0.0.1/tcp/7701/p2p/12D3KooWGRgwtxY1L4Zf8VP1SWqnT1xw6v9ZbnWFtsrn3HY2ceLp';
  const mapped = (err: unknown) => p2pError(err, ADDRESS, 15_000) as CliError;
  const named = (name: string, message: string, extra: Record<string, unknown> = {}) =>
    Object.assign(new Error(message), { name, ...extra });

  it('checks the address before dialling: a multiaddr, with a peer id if it names one', () => {
    expect(() => checkP2pAddress(ADDRESS)).not.toThrow();
    expect(() => checkP2pAddress('/dns4/node-1/tcp/7101')).not.toThrow();
    for (const bad of ['garbage', '/ip4/127.0.0.1/tcp/7701/p2p/QmNotAPeerId', '/ip4/300.1.1.1/tcp/1']) {
      expect(() => checkP2pAddress(bad), bad).toThrow(CliError);
      try {
        checkP2pAddress(bad);
      } catch (err) {
        expect((err as CliError).code).toBe('INVALID_ARGUMENT');
        expect((err as CliError).exitCode).toBe(2);
      }
    }
  });

  it('submit --p2p with a bad address is INVALID_ARGUMENT before the file is read', async () => {
    const r = await run(['submit', '--p2p', 'garbage', '/nonexistent.json', '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toContain('is not a multiaddr');
  });

  it('an unreachable peer is NODE_UNREACHABLE', () => {
    const e = mapped(
      named('Error', 'connection error 127.0.0.1:7999: connect ECONNREFUSED', { code: 'ECONNREFUSED' }),
    );
    expect(e).toBeInstanceOf(CliError);
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toContain('ECONNREFUSED');
    expect(mapped(new AggregateError([named('Error', 'x', { code: 'ENOTFOUND' })])).code).toBe(
      'NODE_UNREACHABLE',
    );
    expect(mapped(named('DialError', 'dial failed')).code).toBe('NODE_UNREACHABLE');
  });

  it('a peer with another identity is NODE_UNREACHABLE, saying the identity did not match', () => {
    const e = mapped(
      named(
        'EncryptionFailedError',
        'Payload identity key 12D3KooWA does not match expected remote identity key 12D3KooWB',
      ),
    );
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toContain('identity did not match');
    // not libp2p at all (an HTTP port, say)
    expect(mapped(named('EncryptionFailedError', 'Missing newline')).code).toBe('NODE_UNREACHABLE');
  });

  it('no answer in time is NODE_UNREACHABLE, and says a resubmission is safe', () => {
    const e = mapped(new RequestTimeoutError('submit timed out'));
    expect(e.code).toBe('NODE_UNREACHABLE');
    expect(e.message).toContain('within 15000 ms');
    expect(e.message).toContain('resubmitting the same file is safe');
  });

  it('bad input is INVALID_ARGUMENT: not a multiaddr, not a TCP address, too large', () => {
    expect(mapped(new NetworkConfigError('BAD_MULTIADDR', 'garbage is not a multiaddr')).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(mapped(named('NoValidAddressesError', 'no valid addresses')).code).toBe('INVALID_ARGUMENT');
    expect(mapped(new FrameTooLargeError(20_000, 16_384, 'submit request')).code).toBe('INVALID_ARGUMENT');
  });

  it("a node's refusal keeps the node's code and exits 1; a broken answer is BAD_RESPONSE", () => {
    const refused = mapped(new RemoteError('NOT_READY', 'catching up'));
    expect([refused.code, refused.exitCode, refused.message]).toEqual(['NOT_READY', 1, 'catching up']);
    expect(mapped(new ProtocolViolationError('truncated status frame')).code).toBe('BAD_RESPONSE');
  });

  it('anything else is left alone (reported as INTERNAL)', () => {
    const bug = new TypeError('x is undefined');
    expect(p2pError(bug, ADDRESS, 1)).toBe(bug);
  });
});

describe('sync check --require-state', () => {
  it('exits 1 when the node could not compare the state rows, 0 without the option', async () => {
    const { createServer } = await import('node:http');
    const report = {
      ok: true,
      chainHeight: 9,
      mirrorHeight: 8,
      blocksChecked: 9,
      transactionsChecked: 40,
      stateChecked: false,
    };
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(report));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const node = `http://127.0.0.1:${port}`;
      const plain = await run(['sync', 'check', '--node', node]);
      expect(plain.status).toBe(0);
      expect(plain.stdout).toContain('state rows not compared');
      const strict = await run(['sync', 'check', '--node', node, '--require-state']);
      expect(strict.status).toBe(1);
      expect(strict.stderr).toContain('--require-state');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
