import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/codec/index.js';
import { generateKeyPair } from '../../src/crypto/index.js';
import { acceptTransaction, buildBlock, signTransaction, type DecodedTx } from '../../src/ledger/index.js';
import { readKeyFile } from '../../src/node/keyfile.js';
import { LedgerChain } from '../../src/node/ledger-chain.js';
import { LevelStore } from '../../src/storage/index.js';
import { spawn } from 'node:child_process';
import { BIN, runCli } from '../support/cli.js';
import { nextBasePort } from '../support/devnet.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bitnexus-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A local TCP port that was free a moment ago: listened on, then closed. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

function noStackTrace(text: string) {
  expect(text).not.toMatch(/\n\s+at /);
}

describe('bitnexus keys generate', () => {
  it('writes a key file with mode 0600 and prints the public key', async () => {
    const file = join(dir, 'k1.key');
    const r = await runCli(['keys', 'generate', '--out', file]);
    expect(r.code).toBe(0);
    const key = await readKeyFile(file);
    expect(r.stdout.trim()).toBe(Buffer.from(key.publicKey).toString('hex'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses to overwrite a key, with a code and no stack trace', async () => {
    const file = join(dir, 'k2.key');
    expect((await runCli(['keys', 'generate', '--out', file])).code).toBe(0);
    const r = await runCli(['keys', 'generate', '--out', file, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'FILE_EXISTS' } });
    noStackTrace(r.stdout + r.stderr);
  });
});

describe('a network made by init, driven by tx, checked by verify', () => {
  const net = () => join(dir, 'net');

  it('init creates keys, genesis and one config per node with distinct ports', async () => {
    const r = await runCli([
      'init',
      '--dir',
      net(),
      '--nodes',
      '3',
      '--chain-id',
      'e2e-net',
      '--base-port',
      '17100',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { nodes: { http: string; p2p: string }[]; chainId: string };
    expect(out.chainId).toBe('e2e-net');
    const ports = out.nodes.flatMap((n) => [n.http, n.p2p]);
    expect(new Set(ports).size).toBe(6);
    expect((await stat(join(net(), 'operator.key'))).mode & 0o777).toBe(0o600);
    const again = await runCli(['init', '--dir', net()]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('ALREADY_INITIALISED');
  });

  it('init --hosts makes configs for nodes that listen on all interfaces and dial each other by name', async () => {
    const hosted = join(dir, 'hosted');
    const r = await runCli(['init', '--dir', hosted, '--nodes', '2', '--hosts', 'node-1,10.0.0.2', '--json']);
    expect(r.code).toBe(0);
    const config = JSON.parse(await readFile(join(hosted, 'node-1', 'config.json'), 'utf8')) as {
      http: { host: string };
      p2p: { listen: string };
      peers: { http: string; p2p: string }[];
    };
    expect(config.http.host).toBe('0.0.0.0');
    expect(config.p2p.listen).toMatch(/^\/ip4\/0\.0\.0\.0\/tcp\/\d+$/);
    expect(JSON.stringify(config.peers)).toContain('/ip4/10.0.0.2/tcp/'); // an address stays an address
    const second = JSON.parse(await readFile(join(hosted, 'node-2', 'config.json'), 'utf8')) as {
      peers: { p2p: string }[];
    };
    expect(second.peers[0]!.p2p).toMatch(/^\/dns4\/node-1\/tcp\/\d+$/);
    const wrongCount = await runCli(['init', '--dir', join(dir, 'h2'), '--nodes', '3', '--hosts', 'a,b']);
    expect(wrongCount.code).toBe(2);
    expect(wrongCount.stderr).toContain('INVALID_ARGUMENT');
    await expect(stat(join(dir, 'h2'))).rejects.toThrow(); // nothing made
    const badName = await runCli(['init', '--dir', join(dir, 'h3'), '--nodes', '1', '--hosts', 'a/b']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('INVALID_ARGUMENT');
  });

  it('tx builds signed transactions of every kind that a node accepts', async () => {
    const op = join(net(), 'operator.key');
    const genesis = join(net(), 'genesis.json');
    const mkey = join(dir, 'merchant.key');
    const akey = join(dir, 'affiliate.key');
    const m = (await runCli(['keys', 'generate', '--out', mkey])).stdout.trim();
    const a = (await runCli(['keys', 'generate', '--out', akey])).stdout.trim();
    const txs: DecodedTx[] = [];
    const run = async (args: string[]) => {
      const r = await runCli([...args, '--genesis', genesis, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const d = acceptTransaction(JSON.parse(r.stdout), 'e2e-net');
      expect(r.stderr.trim()).toBe(`id ${d.id}`);
      txs.push(d);
      return d;
    };
    await run([
      'tx',
      'participant.register',
      '--key',
      op,
      '--participant',
      m,
      '--role',
      'merchant',
      '--name',
      'Shop',
    ]);
    await run([
      'tx',
      'participant.register',
      '--key',
      op,
      '--participant',
      a,
      '--role',
      'affiliate',
      '--name',
      'Blog',
    ]);
    const rec = await run([
      'tx',
      'commission.record',
      '--key',
      mkey,
      '--affiliate',
      a,
      '--amount',
      '2500',
      '--currency',
      'EUR',
      '--order-id',
      'ord-1',
      '--description',
      'Headphones',
      '--metadata',
      'sku=HP-1',
      'campaign=autumn',
    ]);
    await run(['tx', 'commission.approve', '--key', mkey, '--commission', rec.id]);
    await run([
      'tx',
      'commission.reverse',
      '--key',
      mkey,
      '--commission',
      rec.id,
      '--amount',
      '500',
      '--reason',
      'return',
    ]);
    await run([
      'tx',
      'payout.record',
      '--key',
      op,
      '--merchant',
      m,
      '--affiliate',
      a,
      '--amount',
      '1000',
      '--currency',
      'EUR',
      '--reference',
      'SEPA-7',
    ]);
    expect(txs[2]!.tx.payload).toMatchObject({ metadata: { sku: 'HP-1', campaign: 'autumn' } });

    // Commit them as node-1 would, then audit node-1's data directory with the CLI.
    const nodeKey = await readKeyFile(join(net(), 'node-1', 'node.key'));
    const chain = await LedgerChain.open(await LevelStore.open(join(net(), 'node-1', 'data', 'chain')));
    for (const group of [txs.slice(0, 2), txs.slice(2)]) {
      const receipts = await chain.commit(
        buildBlock(chain.state, group, {
          timestamp: Date.now(),
          term: 1,
          proposerSecretKey: nodeKey.secretKey,
        }),
      );
      expect(receipts.map((x) => x.code)).toEqual(group.map(() => 'OK'));
    }
    await chain.close();
  });

  it('verify passes on the honest data directory', async () => {
    const r = await runCli(['verify', '--data-dir', join(net(), 'node-1', 'data'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, height: 2, transactions: 6 });
    const human = await runCli(['verify', '--data-dir', join(net(), 'node-1', 'data'), '--threads', '2']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ok: 3 blocks, 6 transactions/);
  });

  it('verify exits 1 and names the block and field when a stored byte changes', async () => {
    const location = join(net(), 'node-1', 'data', 'chain');
    const kv = await LevelStore.open(location);
    const key = 'b/000000000002';
    const bytes = (await kv.get(key))!;
    const text = Buffer.from(bytes).toString('utf8').replace('"amount":"2500"', '"amount":"2600"');
    await kv.batch([{ type: 'put', key, value: Buffer.from(text) }]);
    await kv.close();
    const r = await runCli(['verify', '--data-dir', join(net(), 'node-1', 'data'), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: false,
      failure: { code: 'BAD_TX_SIGNATURE', height: 2, txIndex: 0 },
    });
    const human = await runCli(['verify', '--data-dir', join(net(), 'node-1', 'data')]);
    expect(human.code).toBe(1);
    expect(human.stderr).toContain('block 2 transaction 0');
    noStackTrace(human.stderr);
  });
});

describe('bad input gets a clear error with a stable code, never a stack trace', () => {
  it.each([
    [
      [
        'tx',
        'commission.record',
        '--key',
        '/nonexistent.key',
        '--chain-id',
        'x',
        '--affiliate',
        'ab',
        '--amount',
        '1',
        '--currency',
        'EUR',
        '--order-id',
        'o',
      ],
      'BAD_KEY_FILE',
    ],
    [['verify', '--data-dir', '/nonexistent-dir'], 'NOT_A_DATA_DIR'],
    [['init', '--dir', '/tmp/x', '--nodes', 'three'], 'INVALID_ARGUMENT'],
    [['init', '--dir', '/tmp/x', '--chain-id', 'Bad Id'], 'INVALID_ARGUMENT'],
    [['submit', '--timeout', 'abc', '-'], 'INVALID_ARGUMENT'],
    [['status', '--node', 'notaurl'], 'INVALID_ARGUMENT'],
    [['submit', '--p2p', 'garbage', '-'], 'INVALID_ARGUMENT'],
    [['status', '--bogus'], 'INVALID_ARGUMENT'],
  ])('%j → %s', async (args, code) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error ${code}:`);
    noStackTrace(r.stderr);
  });

  it('reports a field-level validation error from tx', async () => {
    const key = join(dir, 'm2.key');
    await runCli(['keys', 'generate', '--out', key]);
    const r = await runCli([
      'tx',
      'commission.record',
      '--key',
      key,
      '--chain-id',
      'x',
      '--affiliate',
      'ab'.repeat(32),
      '--amount',
      '12.50',
      '--currency',
      'EUR',
      '--order-id',
      'o',
      '--json',
    ]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({
      error: { code: 'INVALID_FIELD', field: '$.payload.amount' },
    });
  });

  it('with --json, a usage error is one JSON document on stdout, exit 2', async () => {
    for (const args of [
      ['verify', '--json'],
      ['status', '--bogus', '--json'],
      ['frobnicate', '--json'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stdout), args.join(' ')).toMatchObject({
        ok: false,
        error: { code: 'INVALID_ARGUMENT', message: expect.any(String) as string },
      });
      expect(r.stderr, args.join(' ')).toBe('');
    }
  });

  it('init refuses a folder that already holds a key, with FILE_EXISTS, and writes nothing', async () => {
    const folder = join(dir, 'has-key');
    expect((await runCli(['keys', 'generate', '--out', folder + '-key'])).code).toBe(0);
    await mkdir(folder);
    await copyFile(folder + '-key', join(folder, 'operator.key'));
    const r = await runCli(['init', '--dir', folder, '--nodes', '1', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'FILE_EXISTS' } });
    expect(await readdir(folder)).toEqual(['operator.key']);
  });

  it('submit --p2p to a port where nothing listens is NODE_UNREACHABLE', async () => {
    const port = await closedPort();
    const keys = generateKeyPair();
    const tx = signTransaction(
      {
        v: 1,
        kind: 'participant.register',
        chainId: 'e2e-net',
        signer: toHex(keys.publicKey),
        nonce: 'n-1',
        timestamp: Date.now(),
        payload: { participant: toHex(keys.publicKey), role: 'merchant', name: 'Shop' },
      },
      keys.secretKey,
    );
    const r = await runCli(['submit', '--p2p', `/ip4/127.0.0.1/tcp/${port}`, '-', '--json'], {
      input: JSON.stringify(tx),
    });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'NODE_UNREACHABLE' } });
  });

  it('submit refuses a key file before any network call, saying it is one; exit 2', async () => {
    const key = join(dir, 'submitted.key');
    expect((await runCli(['keys', 'generate', '--out', key])).code).toBe(0);
    const secret = (JSON.parse(await readFile(key, 'utf8')) as { secretKey: string }).secretKey;
    // a port where nothing listens: before the fix, this was dialled (NODE_UNREACHABLE)
    const port = await closedPort();
    for (const via of [
      ['--p2p', `/ip4/127.0.0.1/tcp/${port}`],
      ['--node', `http://127.0.0.1:${port}`],
    ]) {
      const r = await runCli(['submit', key, ...via]);
      expect(r.code, via.join(' ')).toBe(2);
      expect(r.stderr).toMatch(
        /^error INVALID_ARGUMENT: .* is a key file, not a transaction; nothing was sent/,
      );
      expect(r.stderr).not.toContain(secret);
      noStackTrace(r.stderr);
    }
  });

  it('rejects an unknown command with exit 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('verify');
    expect(await readFile(join(dir, 'net', 'genesis.json'), 'utf8')).toContain('"chainId":"e2e-net"');
  });
});

describe('bitnexus devnet (what npm start runs)', () => {
  it('starts the nodes, prints each one’s URL and libp2p address, takes a submit over that address, stops on SIGINT', async () => {
    const net = join(dir, 'devnet');
    const devnet = spawn(
      process.execPath,
      [BIN, 'devnet', '--dir', net, '--nodes', '1', '--base-port', String(nextBasePort(1)), '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    devnet.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => devnet.on('exit', (code) => r(code)));
    let gone = false;
    void exited.then(() => (gone = true));
    try {
      const started = Date.now();
      let up: { ok: boolean; nodes: { name: string; url: string; p2p: string }[] } | undefined;
      while (!up && !gone && Date.now() - started < 60_000) {
        try {
          up = JSON.parse(stdout) as typeof up;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(up?.ok).toBe(true);
      const node = up!.nodes[0]!;
      expect(node.p2p).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+$/);
      const key = join(dir, 'devnet-merchant.key');
      const merchant = (await runCli(['keys', 'generate', '--out', key])).stdout.trim();
      // a participant.register, signed by the network's operator
      const register = (participant: string, role: string, name: string, ...extra: string[]) =>
        runCli([
          'tx',
          'participant.register',
          '--key',
          join(net, 'operator.key'),
          '--genesis',
          join(net, 'genesis.json'),
          '--participant',
          participant,
          '--role',
          role,
          '--name',
          name,
          ...extra,
        ]);
      const tx = await register(merchant, 'merchant', 'Devnet Shop');
      expect(tx.code, tx.stderr).toBe(0);
      const submitted = await runCli(['submit', '--p2p', node.p2p, '-', '--json'], { input: tx.stdout });
      expect(submitted.code, submitted.stderr).toBe(0);
      expect(JSON.parse(submitted.stdout)).toMatchObject({ status: 'committed', receipt: { code: 'OK' } });
      // a node's refusal with --json: its details are a member of their own, over libp2p and HTTP
      const future = await register(
        'cd'.repeat(32),
        'affiliate',
        'Too Early',
        '--timestamp',
        String(Date.now() + 24 * 3600 * 1000),
      );
      expect(future.code, future.stderr).toBe(0);
      for (const via of [
        ['--p2p', node.p2p],
        ['--node', node.url],
      ]) {
        const rejected = await runCli(['submit', ...via, '-', '--json'], { input: future.stdout });
        expect(rejected.code, rejected.stdout).toBe(1);
        const { error } = JSON.parse(rejected.stdout) as {
          error: { code: string; message: string; details?: { receiptCode?: string } };
        };
        expect(error.code).toBe('REJECTED');
        expect(error.details?.receiptCode, via[0]).toBe('TX_FROM_FUTURE');
        expect(error.message, via[0]).not.toContain('receiptCode');
      }
      // the right address with another node's peer id: the identity check fails, nothing is sent
      const other = '12D3KooWGRgwtxY1L4Zf8VP1SWqnT1xw6v9ZbnWFtsrn3HY2ceLp';
      const impostor = node.p2p.replace(/\/p2p\/\w+$/, `/p2p/${other}`);
      const wrongId = await runCli(['submit', '--p2p', impostor, '-', '--json'], { input: tx.stdout });
      expect(wrongId.code).toBe(2);
      const refusal = JSON.parse(wrongId.stdout) as { error: { code: string; message: string } };
      expect(refusal.error.code).toBe('NODE_UNREACHABLE');
      expect(refusal.error.message).toContain('identity did not match');
    } finally {
      devnet.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
