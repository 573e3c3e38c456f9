// Defects an operator found by using the CLI as a black box, each pinned by the behaviour it
// should have had: the exit status, the code and message printed, and that nothing was sent.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { toHex } from '../../../src/codec/index.js';
import { generateKeyPair } from '../../../src/crypto/index.js';
import { signTransaction, type SignedTx } from '../../../src/ledger/index.js';
import { peerIdFromNodeId } from '../../../src/network/identity.js';
import { writeKeyFile } from '../../../src/node/keyfile.js';
import { fakeNode, jsonError, jsonErrorDoc, NOWHERE, run, type FakeNode } from './helpers.js';

let dir: string;
let keyFile: string;
let secretHex: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bitnexus-cli-review-'));
  keyFile = join(dir, 'm1.key');
  const keys = await writeKeyFile(keyFile);
  secretHex = toHex(keys.secretKey);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.LOG_LEVEL;
});

/** A well-formed signed transaction, as `bitnexus tx` prints it. */
function signedTx(overrides: Partial<{ role: string; timestamp: number }> = {}): SignedTx {
  const keys = generateKeyPair();
  return signTransaction(
    {
      v: 1,
      kind: 'participant.register',
      chainId: 'review-net',
      signer: toHex(keys.publicKey),
      nonce: 'n-1',
      timestamp: overrides.timestamp ?? Date.now(),
      payload: {
        participant: toHex(generateKeyPair().publicKey),
        role: (overrides.role ?? 'merchant') as 'merchant',
        name: 'Shop',
      },
    },
    keys.secretKey,
  );
}

async function txFile(name: string, value: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(value));
  return file;
}

const COMMITTED = {
  status: 200,
  body: { id: 'ab'.repeat(32), status: 'committed', receipt: { code: 'OK', height: 3, index: 0 } },
};

describe('submit checks the transaction before sending it (item 1)', () => {
  let node: FakeNode;
  beforeAll(async () => {
    node = await fakeNode(COMMITTED);
  });
  afterAll(() => node.close());

  it('refuses a key file, says so, never sends it (nor prints the secret)', async () => {
    const before = node.requests.length;
    const r = await run(['submit', keyFile, '--node', node.url]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error INVALID_ARGUMENT: .*m1\.key is a key file, not a transaction/);
    expect(r.stderr).toContain('nothing was sent');
    expect(r.stderr + r.stdout).not.toContain(secretHex);
    expect(node.requests.length).toBe(before);
  });

  it('refuses a key file before dialling --p2p', async () => {
    const r = await run(['submit', keyFile, '--p2p', '/ip4/127.0.0.1/tcp/9', '--json']);
    expect(r.status).toBe(2);
    const message = jsonError(r.stdout, 'INVALID_ARGUMENT');
    expect(message).toContain('is a key file, not a transaction');
    expect(message).not.toContain(secretHex);
  });

  it('refuses a malformed transaction with the validation code and field, nothing sent', async () => {
    const before = node.requests.length;
    const file = await txFile('bad-role.json', signedTx({ role: 'boss' }));
    const r = await run(['submit', file, '--node', node.url, '--json']);
    expect(r.status).toBe(2);
    const e = jsonErrorDoc(r.stdout, 'INVALID_FIELD');
    expect(e.field).toBe('$.payload.role');
    expect(node.requests.length).toBe(before);
    const missing = await run(['submit', await txFile('missing.json', { v: 1 }), '--node', node.url]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^error MISSING_FIELD: \$\.kind|^error UNKNOWN_KIND: \$\.kind/);
    expect(node.requests.length).toBe(before);
  });

  it('leaves a kind or version it does not know to the node (a newer node may know it)', async () => {
    const before = node.requests.length;
    const future = { ...signedTx(), kind: 'commission.split' };
    const r = await run(['submit', await txFile('future.json', future), '--node', node.url]);
    expect(node.requests.length, r.stderr).toBe(before + 1);
    expect(JSON.parse(node.requests.at(-1)!.body)).toEqual(future);
  });

  it('sends a well-formed transaction unchanged', async () => {
    const tx = signedTx();
    const before = node.requests.length;
    const r = await run(['submit', await txFile('ok.json', tx), '--node', node.url]);
    expect(r.status, r.stderr).toBe(0);
    expect(node.requests.length).toBe(before + 1);
    expect(JSON.parse(node.requests.at(-1)!.body)).toEqual(tx);
  });
});

describe('--log-level (item 2)', () => {
  it('a bad --log-level is INVALID_ARGUMENT, exit 2, naming the levels', async () => {
    const r = await run(['start', '--config', join(dir, 'none.json'), '--log-level', 'loud']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error INVALID_ARGUMENT: --log-level /);
    expect(r.stderr).toContain('trace, debug, info, warn, error');
  });

  it('a bad $LOG_LEVEL (the default of --log-level) is INVALID_ARGUMENT too', async () => {
    process.env.LOG_LEVEL = 'loud';
    const r = await run(['start', '--config', join(dir, 'none.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error INVALID_ARGUMENT: \$LOG_LEVEL/);
  });

  it('a good level gets past the check (to the missing config)', async () => {
    const r = await run(['start', '--config', join(dir, 'none.json'), '--log-level', 'debug']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error BAD_CONFIG: /);
  });

  it('devnet refuses a bad $LOG_LEVEL (its nodes would take it) before it makes or starts anything', async () => {
    process.env.LOG_LEVEL = 'loud';
    const net = join(dir, 'devnet-loglevel');
    const r = await run(['devnet', '--dir', net, '--nodes', '1', '--base-port', '47300', '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toMatch(/^\$LOG_LEVEL/);
    await expect(readdir(net)).rejects.toThrow();
  });
});

describe('--json errors carry the node’s details as a field (item 4)', () => {
  it('REJECTED: details beside the message, not inside it; human output still shows them', async () => {
    const node = await fakeNode({
      status: 409,
      body: {
        error: {
          code: 'REJECTED',
          message: 'the transaction timestamp is too far in the future',
          details: { receiptCode: 'TX_FROM_FUTURE' },
        },
      },
    });
    try {
      const file = await txFile('future.json', signedTx());
      const r = await run(['submit', file, '--node', node.url, '--json']);
      expect(r.status).toBe(1);
      const e = jsonErrorDoc(r.stdout, 'REJECTED');
      expect(e.message).toBe('the transaction timestamp is too far in the future');
      expect(e.details).toEqual({ receiptCode: 'TX_FROM_FUTURE' });
      const human = await run(['submit', file, '--node', node.url]);
      expect(human.stderr).toBe(
        'error REJECTED: the transaction timestamp is too far in the future {"receiptCode":"TX_FROM_FUTURE"}\n',
      );
    } finally {
      await node.close();
    }
  });

  it('TIMEOUT: the transaction id is in details; a node’s field is kept', async () => {
    const id = 'cd'.repeat(32);
    const node = await fakeNode({
      status: 504,
      body: { error: { code: 'TIMEOUT', message: 'not committed within 100 ms', details: { id } } },
    });
    try {
      const r = await run(['submit', await txFile('slow.json', signedTx()), '--node', node.url, '--json']);
      expect(r.status).toBe(1);
      const e = jsonErrorDoc(r.stdout, 'TIMEOUT');
      expect(e).toEqual({ code: 'TIMEOUT', message: 'not committed within 100 ms', details: { id } });
    } finally {
      await node.close();
    }
    const validating = await fakeNode({
      status: 400,
      body: { error: { code: 'WRONG_CHAIN', message: '$.chainId: is "x"', field: '$.chainId' } },
    });
    try {
      const r = await run([
        'submit',
        await txFile('wrong.json', signedTx()),
        '--node',
        validating.url,
        '--json',
      ]);
      expect(jsonErrorDoc(r.stdout, 'WRONG_CHAIN')).toEqual({
        code: 'WRONG_CHAIN',
        message: '$.chainId: is "x"',
        field: '$.chainId',
      });
    } finally {
      await validating.close();
    }
  });
});

/** A TCP server that is not HTTP: it does `onConnection` with every socket. */
async function tcpServer(onConnection: (socket: Socket) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server };
}

describe('a --node that answers, but not in HTTP (item 5)', () => {
  it('a libp2p port (multistream-select greeting) is NODE_UNREACHABLE saying it is not HTTP', async () => {
    const { url, server } = await tcpServer((s) => {
      s.on('error', () => undefined);
      s.write('\x13/multistream/1.0.0\n');
    });
    try {
      const r = await run(['status', '--node', url, '--json']);
      expect(r.status).toBe(2);
      const message = jsonError(r.stdout, 'NODE_UNREACHABLE');
      expect(message).toContain('answered, but not in HTTP');
      expect(message).toContain("is this the node's HTTP port (not its libp2p port)?");
    } finally {
      server.close();
    }
  });

  it('a port that closes the connection without an answer (Postgres, say) says so', async () => {
    const { url, server } = await tcpServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end());
    });
    try {
      const r = await run(['status', '--node', url]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^error NODE_UNREACHABLE: /);
      expect(r.stderr).toContain('without an HTTP answer');
      expect(r.stderr).toContain("is this the node's HTTP port (not its libp2p port)?");
    } finally {
      server.close();
    }
  });
});

describe('verify --data-dir one level too high (item 6)', () => {
  it('suggests the data/ folder that holds a chain store', async () => {
    const node3 = join(dir, 'net', 'node-3');
    await mkdir(join(node3, 'data', 'chain'), { recursive: true });
    const r = await run(['verify', '--data-dir', node3, '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'NOT_A_DATA_DIR')).toContain(`did you mean ${join(node3, 'data')}?`);
    const empty = await run(['verify', '--data-dir', join(dir, 'net'), '--json']);
    expect(jsonError(empty.stdout, 'NOT_A_DATA_DIR')).not.toContain('did you mean');
  });
});

describe('init (items 7, 11, 12)', () => {
  it('prints each node’s full libp2p address with its peer id', async () => {
    const net = join(dir, 'init-p2p');
    const r = await run(['init', '--dir', net, '--nodes', '2', '--chain-id', 'review-net']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('node-'));
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      const [, nodeId, p2p] = /^node-\d (\w{64}) http \S+ p2p (\S+)$/.exec(line) ?? [];
      expect(p2p).toBe(
        `/ip4/127.0.0.1/tcp/${p2p!.split('/')[4]}/p2p/${peerIdFromNodeId(nodeId!).toString()}`,
      );
    }
    const json = await run(['init', '--dir', join(dir, 'init-p2p-json'), '--nodes', '1', '--json']);
    const doc = JSON.parse(json.stdout) as { nodes: { nodeId: string; p2p: string }[] };
    expect(doc.nodes[0]!.p2p).toMatch(
      new RegExp(`/p2p/${peerIdFromNodeId(doc.nodes[0]!.nodeId).toString()}$`),
    );
  });

  it.each(['0', '1023', '65531'])('--base-port %s names the valid range', async (port) => {
    const net = join(dir, `init-port-${port}`);
    const r = await run(['init', '--dir', net, '--nodes', '3', '--base-port', port, '--chain-id', 'x-net']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `error INVALID_ARGUMENT: --base-port must be between 1024 and 65530 for 3 nodes (2 ports each), got ${port}\n`,
    );
    await expect(readdir(net)).rejects.toThrow();
  });

  it('devnet --base-port names the valid range too', async () => {
    const net = join(dir, 'devnet-port');
    const r = await run(['devnet', '--dir', net, '--nodes', '1', '--base-port', '0', '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toBe(
      '--base-port must be between 1024 and 65534 for 1 node (2 ports each), got 0',
    );
  });

  it('warns on stderr when --chain-id is left at the devnet default, not when it is given', async () => {
    const plain = await run(['init', '--dir', join(dir, 'init-default-chain'), '--nodes', '1']);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain('network bitnexus-devnet created');
    expect(plain.stderr).toMatch(/^warning: no --chain-id given: .*bitnexus-devnet/);
    const json = await run(['init', '--dir', join(dir, 'init-default-json'), '--nodes', '1', '--json']);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, chainId: 'bitnexus-devnet' });
    expect(json.stderr).toContain('warning: no --chain-id given');
    const given = await run([
      'init',
      '--dir',
      join(dir, 'init-own-chain'),
      '--nodes',
      '1',
      '--chain-id',
      'acme',
    ]);
    expect(given.status).toBe(0);
    expect(given.stderr).toBe('');
  });
});

describe('status prints member ids whole (item 8)', () => {
  it('every member id as members remove and leader transfer take it', async () => {
    const ids = ['42b784d5845a8ef4'.repeat(4), 'a1'.repeat(32)];
    const node = await fakeNode({
      status: 200,
      body: {
        nodeId: ids[0],
        chainId: 'review-net',
        role: 'leader',
        term: 2,
        leader: ids[0],
        commitIndex: 5,
        appliedIndex: 5,
        height: 3,
        headHash: 'ef'.repeat(32),
        mempool: 0,
        members: [
          { nodeId: ids[0], role: 'voter', connected: true },
          { nodeId: ids[1], role: 'learner', connected: false, match: 4 },
        ],
      },
    });
    try {
      const r = await run(['status', '--node', node.url]);
      expect(r.status).toBe(0);
      expect(r.stdout).not.toContain('…');
      expect(r.stdout).toContain(`  ${ids[0]} voter\n`);
      expect(r.stdout).toContain(`  ${ids[1]} learner (disconnected) match 4\n`);
    } finally {
      await node.close();
    }
  });
});

describe('node ids are checked before anything is sent (item 9)', () => {
  it.each([
    ['leader', 'transfer', '--to', '42b784d5845a8ef4'],
    ['members', 'remove', '--member', '42b784d5845a8ef4'],
    ['members', 'add', '--member', 'AB'.repeat(32)],
    ['members', 'promote', '--member', '0x' + 'ab'.repeat(31)],
  ])('%s %s %s %s is INVALID_ARGUMENT, exit 2, nothing sent', async (...args) => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    const r = await run([...args, '--key', keyFile, '--node', NOWHERE, '--json']);
    expect(r.status).toBe(2);
    expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toContain(
      `${args[2]} must be a node id: 64 lower-case hex digits`,
    );
    expect(fetchSpy).not.toHaveBeenCalled();
  });
});

describe('IO_ERROR says why a file could not be read (item 10)', () => {
  it('submit FILE', async () => {
    const r = await run(['submit', join(dir, 'genesis.jsn'), '--node', NOWHERE]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `error IO_ERROR: cannot read ${join(dir, 'genesis.jsn')} (ENOENT: no such file or directory)\n`,
    );
    const folder = await run(['submit', dir, '--node', NOWHERE]);
    expect(folder.stderr).toBe(
      `error IO_ERROR: cannot read ${dir} (EISDIR: illegal operation on a directory)\n`,
    );
  });

  it('tx --genesis FILE', async () => {
    const missing = join(dir, 'net', 'genesis.jsn');
    const r = await run([
      'tx',
      'commission.approve',
      '--key',
      keyFile,
      '--genesis',
      missing,
      '--commission',
      'ab'.repeat(32),
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`error IO_ERROR: cannot read ${missing} (ENOENT: no such file or directory)\n`);
  });
});
