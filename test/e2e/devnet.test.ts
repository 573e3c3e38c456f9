import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonStrict } from '../../src/codec/index.js';
import { LevelStore } from '../../src/storage/index.js';
import { BIN, runCli } from '../support/cli.js';
import { nextBasePort } from '../support/devnet.js';

// `bitnexus devnet` (what `npm start` runs) and `bitnexus start` as an operator meets them:
// a port already taken, a bad config, a node or the devnet itself going away, a stop while
// the nodes start. Every case waits for an outcome, never for an amount of time.

let dir: string;
const servers: Server[] = [];
const spawned: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bitnexus-devnet-'));
});
afterAll(async () => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const s of servers) if (s.listening) s.close();
  // a node left behind by a failed case must not outlive the run
  for (const pid of await nodeProcesses(dir)) process.kill(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

function noStackTrace(text: string) {
  expect(text).not.toMatch(/\n\s+at /);
}

/** Polls `cond` (what it waits for is in its name); the test's timeout bounds it. */
async function until(_what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
}

/** Whether a process runs (a zombie no longer does: nobody may reap an orphan in a container). */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every running `bitnexus start` whose config lies under `under`. */
async function nodeProcesses(under: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
      const config = cmd[cmd.indexOf('--config') + 1];
      if (cmd.includes('start') && config?.startsWith(under) && (await running(Number(entry))))
        pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function listen(server: Server, port: number): Promise<void> {
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

interface Up {
  ok: true;
  nodes: { name: string; url: string; p2p: string; pid: number }[];
}

/** `bitnexus devnet … --json` in the background: its stdout lines as they come, and its exit. */
function devnet(args: string[]) {
  const proc = spawn(process.execPath, [BIN, 'devnet', ...args, '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.push(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const lines = () =>
    stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    proc,
    exited,
    lines,
    stderr: () => stderr,
    /** the "up" document, once printed */
    async up(): Promise<Up> {
      await until('devnet to print its first line', () => gone || stdout.includes('\n'));
      const first = lines()[0];
      expect(first, stdout + stderr).toMatchObject({ ok: true });
      return first as unknown as Up;
    },
  };
}

describe('bitnexus devnet', () => {
  it('a node that cannot start (its HTTP port is taken by a server that answers /healthz) fails the devnet: exit 2, the node, the reason and its log named, nothing left running', async () => {
    const base = nextBasePort(2);
    // answers every request, as the old health check wanted, but as another node
    await listen(
      createHttpServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(req.url === '/v1/status' ? { nodeId: 'f'.repeat(64) } : { ok: true }));
      }),
      base,
    );
    const net = join(dir, 'taken');
    const args = ['devnet', '--dir', net, '--nodes', '2', '--base-port', String(base)];
    const r = await runCli([...args, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1); // no "up" document first
    const doc = JSON.parse(lines[0]!) as { ok: boolean; error: { code: string; message: string } };
    expect(doc).toMatchObject({ ok: false, error: { code: 'NODE_EXITED' } });
    expect(doc.error.message).toContain('node-1 exited with code 2 while starting');
    expect(doc.error.message).toContain(`ADDRESS_IN_USE: HTTP address 127.0.0.1:${base} is already in use`);
    expect(doc.error.message).toContain(join(net, 'node-1', 'node.log'));
    expect(await nodeProcesses(net)).toEqual([]);

    const human = await runCli(args);
    expect(human.code).toBe(2);
    expect(human.stdout).not.toContain('nodes up');
    expect(human.stderr).toMatch(/^error NODE_EXITED: node-1 exited with code 2 while starting/);
    noStackTrace(human.stderr);
    expect(await nodeProcesses(net)).toEqual([]);
  });

  it('a node that exits while the devnet runs stops the devnet: exit 1, a second JSON line naming the node', async () => {
    const net = join(dir, 'dies');
    const d = devnet(['--dir', net, '--nodes', '2', '--base-port', String(nextBasePort(2))]);
    const up = await d.up();
    expect(up.nodes.map((n) => n.name)).toEqual(['node-1', 'node-2']);
    process.kill(up.nodes[1]!.pid, 'SIGKILL');
    expect(await d.exited).toBe(1);
    const [, failure, ...more] = d.lines();
    expect(more).toEqual([]);
    expect(failure).toMatchObject({ ok: false, error: { code: 'NODE_EXITED' } });
    expect((failure as { error: { message: string } }).error.message).toContain(
      'node-2 was killed by SIGKILL',
    );
    expect(await nodeProcesses(net)).toEqual([]);
  });

  it('kill -9 of the devnet: its nodes stop by themselves, and their logs still get every line', async () => {
    const net = join(dir, 'orphan');
    const d = devnet(['--dir', net, '--nodes', '1', '--base-port', String(nextBasePort(1))]);
    const up = await d.up();
    const pid = up.nodes[0]!.pid;
    d.proc.kill('SIGKILL');
    await d.exited;
    await until('the orphaned node to stop', async () => !(await running(pid)));
    const log = await readFile(join(net, 'node-1', 'node.log'), 'utf8');
    expect(log).toContain('"msg":"serving"');
    expect(log).toContain('"reason":"the parent process went away","msg":"stopping"');
    expect(log).toContain('"msg":"node stopped"');
    // each line one JSON object without a key named twice (the API's lines said "module" twice)
    const lines = log.trim().split('\n');
    for (const line of lines) expect(() => parseJsonStrict(line), line).not.toThrow();
    expect(lines.some((l) => l.includes('"module":"api"'))).toBe(true);
  });

  it('Ctrl-C while the nodes start stops them all and exits 0', async () => {
    const net = join(dir, 'interrupted');
    const d = devnet(['--dir', net, '--nodes', '2', '--base-port', String(nextBasePort(2))]);
    const log = join(net, 'node-1', 'node.log');
    // node-1 writes its first line from inside its start: its handlers are in place
    await until('node-1 to log', async () => ((await stat(log).catch(() => undefined))?.size ?? 0) > 0);
    d.proc.kill('SIGINT');
    expect(await d.exited, d.stderr()).toBe(0);
    expect(await nodeProcesses(net)).toEqual([]);
    expect(await readFile(log, 'utf8')).toContain('"signal":"SIGTERM","msg":"stopping"');
  });

  // A 99-node init takes about a second: the signal lands while it writes the nodes' stores in
  // its staging folder beside the new folder (as in init-interrupted.test.ts).
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s while devnet inits a new folder stops the init as for bitnexus init: exit %i, nothing left',
    async (signal, code) => {
      const parent = join(dir, `init-${signal}`);
      await mkdir(parent);
      const net = join(parent, 'net');
      const d = devnet(['--dir', net, '--nodes', '99', '--base-port', String(nextBasePort(99))]);
      const staging = join(parent, `.net.init-${d.proc.pid}-tmp`);
      await until(
        'init to write node-30',
        async () =>
          d.proc.exitCode !== null ||
          (await exists(join(staging, 'node-30', 'config.json'))) ||
          (await exists(net)),
      );
      d.proc.kill(signal);
      expect(await d.exited, d.stderr()).toBe(code);
      expect(await readdir(parent)).toEqual([]);
      expect(d.lines()).toEqual([
        {
          ok: false,
          error: {
            code: 'INTERRUPTED',
            message: `init was interrupted by ${signal}; ${net} was not created`,
          },
        },
      ]);
      expect(await nodeProcesses(parent)).toEqual([]);
    },
  );
});

describe('bitnexus start: a clear error with a code, never a stack trace', () => {
  const net = () => join(dir, 'single');
  let base: number;

  beforeAll(async () => {
    base = nextBasePort(1);
    const r = await runCli(['init', '--dir', net(), '--nodes', '1', '--base-port', String(base)]);
    expect(r.code, r.stderr).toBe(0);
  });

  async function startFails(config: string, code: string): Promise<string> {
    const r = await runCli(['start', '--config', config, '--no-mirror']);
    expect(r.code, r.stderr).toBe(2);
    const line = r.stderr.split('\n').find((l) => l.startsWith('error '));
    expect(line).toMatch(new RegExp(`^error ${code}: `));
    noStackTrace(r.stderr);
    return line!;
  }

  async function configWith(name: string, change: (c: Record<string, unknown>) => void): Promise<string> {
    const c = JSON.parse(await readFile(join(net(), 'node-1', 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    change(c);
    const file = join(net(), 'node-1', name); // beside the real one: relative paths still resolve
    await writeFile(file, JSON.stringify(c));
    return file;
  }

  it('a missing, non-JSON or incomplete config is BAD_CONFIG naming the file and the field', async () => {
    expect(await startFails(join(dir, 'nope.json'), 'BAD_CONFIG')).toContain(
      `cannot read config ${join(dir, 'nope.json')}: no such file`,
    );
    const notJson = join(dir, 'not-json.json');
    await writeFile(notJson, 'nope{\n');
    expect(await startFails(notJson, 'BAD_CONFIG')).toContain(`${notJson} is not valid JSON`);
    const empty = join(dir, 'empty.json');
    await writeFile(empty, '{}');
    expect(await startFails(empty, 'BAD_CONFIG')).toContain('field "nodeId" is missing');
    const port = await configWith('port.json', (c) => ((c.http as { port: unknown }).port = '7100'));
    expect(await startFails(port, 'BAD_CONFIG')).toContain('field "http.port" is not a port number');
    const cap = await configWith(
      'cap.json',
      (c) => ((c.http as { maxEventStreamsPerSource: unknown }).maxEventStreamsPerSource = 0),
    );
    expect(await startFails(cap, 'BAD_CONFIG')).toContain(
      'field "http.maxEventStreamsPerSource" is not a positive integer',
    );
    const genesis = await configWith('genesis.json', (c) => (c.genesisFile = 'missing-genesis.json'));
    expect(await startFails(genesis, 'BAD_CONFIG')).toContain('"genesisFile" missing-genesis.json');
  });

  it('a taken HTTP or libp2p port is ADDRESS_IN_USE naming the address, and the process ends', async () => {
    const config = join(net(), 'node-1', 'config.json');
    const http = createTcpServer();
    await listen(http, base);
    expect(await startFails(config, 'ADDRESS_IN_USE')).toContain(
      `HTTP address 127.0.0.1:${base} is already in use`,
    );
    await new Promise((r) => http.close(r));
    await listen(createTcpServer(), base + 1);
    expect(await startFails(config, 'ADDRESS_IN_USE')).toContain(
      `libp2p address /ip4/127.0.0.1/tcp/${base + 1} is already in use`,
    );
  });

  it('a data directory another process holds is STORE_UNAVAILABLE', async () => {
    const held = await LevelStore.open(join(net(), 'node-1', 'data', 'chain'));
    try {
      expect(await startFails(join(net(), 'node-1', 'config.json'), 'STORE_UNAVAILABLE')).toContain(
        `${join(net(), 'node-1', 'data')} is in use by another process`,
      );
    } finally {
      await held.close();
    }
  });

  it('SIGTERM once the node has begun to start: it logs that it stops, stops cleanly and exits 0', async () => {
    for (const s of servers) if (s.listening) await new Promise((r) => s.close(r));
    const child = spawn(
      process.execPath,
      [BIN, 'start', '--config', join(net(), 'node-1', 'config.json'), '--no-mirror'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    spawned.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    // its first log line comes from inside the start, after the handlers are in place
    await until('the node to log', () => out.includes('\n'));
    child.kill('SIGTERM');
    expect(await code, out).toBe(0);
    expect(out).toContain('"signal":"SIGTERM","msg":"stopping"');
    expect(out).toMatch(/"msg":"(stopped while starting|node stopped)"/);
  });

  it('started with an IPC channel, a node stops cleanly when its parent goes away, even while it starts', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'start', '--config', join(net(), 'node-1', 'config.json'), '--no-mirror'],
      { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    spawned.push(child);
    let out = '';
    if (!child.stdout || !child.stderr) throw new Error('no pipes');
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.disconnect(); // as when devnet dies: the channel closes
    // (after a disconnect from this side, node emits 'exit' but never 'close')
    const [status] = await Promise.all([code, finished(child.stdout), finished(child.stderr)]);
    expect(status, out).toBe(0);
    expect(out).toContain('"reason":"the parent process went away","msg":"stopping"');
  });
});

describe('bin/bitnexus.js', () => {
  it('refuses a Node.js older than 22 with one line and exit 2', async () => {
    const fake = join(dir, 'node20.mjs');
    await writeFile(fake, 'Object.defineProperty(process.versions, "node", { value: "20.11.0" });\n');
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', fake, BIN, 'status'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error UNSUPPORTED_NODE: bitnexus needs Node\.js 22 or later; .* is v20\.11\.0 .*\n$/,
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  });
});
