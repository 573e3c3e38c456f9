import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeStatus, SubmitResult } from '../../src/api/node-api.js';
import { toHex } from '../../src/codec/index.js';
import { generateKeyPair, type KeyPair } from '../../src/crypto/index.js';
import {
  signTransaction,
  type Block,
  type PayloadByKind,
  type SignedTx,
  type TxKind,
  type UnsignedTx,
} from '../../src/ledger/index.js';
import { initNetwork, type InitResult } from '../../src/node/init.js';
import { readKeyFile, writeKeyFile } from '../../src/node/keyfile.js';
import type { NodeConfig } from '../../src/node/config.js';
import { BIN } from './cli.js';

// Below the kernel's ephemeral range (32768+), where outgoing connections could already hold a port.
let portCursor = 10000 + Math.floor(Math.random() * 18000);

/** A block of free-looking ports per devnet, so tests in one run never collide. */
export function nextBasePort(nodes: number): number {
  const base = portCursor;
  portCursor += 2 * nodes + 10;
  return base;
}

export interface Participants {
  shop: KeyPair;
  blog: KeyPair;
}

export interface SteadyLoad {
  /** every transaction that got a committed OK receipt, with where it landed */
  readonly committed: Map<string, { height: number; index: number }>;
  stop(): Promise<void>;
}

export interface DevnetNode {
  name: string;
  nodeId: string;
  url: string;
  p2p: string;
  config: string;
  dataDir: string;
  proc?: ChildProcess;
  /** settles once everything the running process wrote is in its node.log */
  logWritten?: Promise<void>;
}

/**
 * A real multi-process network for end-to-end tests: `bitnexus init` into a
 * temp dir, one `bitnexus start` process per node (logs in the node's
 * folder), helpers to submit, poll, kill -9, SIGSTOP and restart. Always call
 * `destroy()` in afterAll.
 */
export class Devnet {
  private constructor(
    readonly dir: string,
    readonly net: InitResult,
    readonly nodes: DevnetNode[],
    readonly operator: KeyPair,
  ) {}

  /** set by keepForDiagnosis */
  private keep = false;

  static async create(n: number, chainId = 'bitnexus-e2e'): Promise<Devnet> {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-e2e-'));
    const net = await initNetwork({ dir, nodes: n, chainId, basePort: nextBasePort(n) });
    const nodes = net.nodes.map((x) => ({
      name: x.name,
      nodeId: x.nodeId,
      url: x.http,
      p2p: x.p2p,
      config: x.config,
      dataDir: join(dir, x.name, 'data'),
    }));
    const operator = await readKeyFile(join(dir, 'operator.key'));
    return new Devnet(dir, net, nodes, operator);
  }

  /** A new node folder (key + config) next to the others, not yet a member; returns its index. */
  async addNodeFolder(): Promise<number> {
    const i = this.nodes.length;
    const name = `node-${i + 1}`;
    const folder = join(this.dir, name);
    await mkdir(join(folder, 'data'), { recursive: true });
    const keys = await writeKeyFile(join(folder, 'node.key'));
    const nodeId = toHex(keys.publicKey);
    const port = nextBasePort(1);
    const config: NodeConfig = {
      nodeId,
      chainId: this.chainId,
      keyFile: 'node.key',
      dataDir: 'data',
      genesisFile: '../genesis.json',
      http: { host: '127.0.0.1', port },
      p2p: { listen: `/ip4/127.0.0.1/tcp/${port + 1}` },
      peers: this.nodes.map((n) => ({ nodeId: n.nodeId, http: n.url, p2p: n.p2p })),
    };
    await writeFile(join(folder, 'config.json'), JSON.stringify(config, null, 2));
    this.nodes.push({
      name,
      nodeId,
      url: `http://127.0.0.1:${port}`,
      p2p: config.p2p.listen,
      config: join(folder, 'config.json'),
      dataDir: join(folder, 'data'),
    });
    return i;
  }

  get chainId(): string {
    return this.net.chainId;
  }

  /**
   * Extra `bitnexus start` flags per node index. By default nodes run without
   * the Postgres mirror (`--no-mirror`): it is the subject of its own tests,
   * and embedded PGlite would only slow the others down.
   */
  startArgs: (i: number) => string[] = () => ['--no-mirror'];

  /**
   * A command that runs node i's process (its arguments follow), e.g. `ip
   * netns exec NS` to start it in a network namespace (support/netns.ts).
   * Empty by default: the node is started directly. Whatever it is must exec
   * the node, so that signals reach it.
   */
  spawnPrefix: (i: number) => string[] = () => [];

  start(i: number): void {
    const node = this.nodes[i]!;
    const log = createWriteStream(join(this.dir, node.name, 'node.log'), { flags: 'a' });
    const [command, ...prefix] = [...this.spawnPrefix(i), process.execPath];
    const proc = spawn(
      command,
      [
        ...prefix,
        BIN,
        'start',
        '--config',
        node.config,
        '--log-level',
        process.env.LOG_LEVEL ?? 'info',
        ...this.startArgs(i),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    // two sources, one file: it is ended once both are closed, not by whichever closes first
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    node.logWritten = new Promise((resolve) => proc.once('close', () => log.end(resolve)));
    node.proc = proc;
  }

  async startAll(): Promise<void> {
    this.nodes.forEach((_, i) => this.start(i));
    await Promise.all(this.nodes.map((n) => this.waitHealthy(n)));
  }

  async waitHealthy(node: DevnetNode, timeoutMs = 60_000): Promise<void> {
    const proc = node.proc;
    await this.waitFor(
      `${node.name} healthy`,
      async () => {
        if (proc && proc.exitCode !== null) {
          throw new Error(
            `${node.name} exited with ${proc.exitCode} while starting:\n${await this.logTail(node, 2000)}`,
          );
        }
        try {
          return (await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
        } catch {
          return false;
        }
      },
      timeoutMs,
    );
  }

  /** kill with a signal and wait for the exit (SIGKILL = kill -9) */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.nodes[i]!.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  signal(i: number, signal: NodeJS.Signals): void {
    this.nodes[i]!.proc?.kill(signal);
  }

  async restart(i: number): Promise<void> {
    this.start(i);
    await this.waitHealthy(this.nodes[i]!);
  }

  async status(i: number): Promise<NodeStatus | undefined> {
    try {
      const r = await fetch(`${this.nodes[i]!.url}/v1/status`, { signal: AbortSignal.timeout(1500) });
      return r.ok ? ((await r.json()) as NodeStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** index of the node that (a majority of reachable nodes agree) leads, among `among` */
  async waitLeader(among: number[] = this.nodes.map((_, i) => i), timeoutMs = 30_000): Promise<number> {
    return this.waitFor(
      'a leader',
      async () => {
        for (const i of among) {
          const s = await this.status(i);
          if (s?.role === 'leader') return i;
        }
        return undefined;
      },
      timeoutMs,
    );
  }

  signed<K extends TxKind>(
    kind: K,
    signer: KeyPair,
    payload: PayloadByKind[K],
    nonce = randomUUID(),
  ): SignedTx {
    return signTransaction(
      {
        v: 1,
        kind,
        chainId: this.chainId,
        signer: toHex(signer.publicKey),
        nonce,
        timestamp: Date.now(),
        payload,
      } as UnsignedTx,
      signer.secretKey,
    );
  }

  /** Register a new merchant and a new affiliate (operator-signed, via node 0) and wait for both receipts. */
  async participants(names = { merchant: 'merchant', affiliate: 'affiliate' }): Promise<Participants> {
    const shop = generateKeyPair();
    const blog = generateKeyPair();
    for (const [k, role] of [
      [shop, 'merchant'],
      [blog, 'affiliate'],
    ] as const) {
      const tx = this.signed('participant.register', this.operator, {
        participant: toHex(k.publicKey),
        role,
        name: names[role],
      });
      const r = await this.submit(0, tx);
      if (r.body.receipt?.code !== 'OK')
        throw new Error(`registering the ${role} failed: ${JSON.stringify(r)}`);
    }
    return { shop, blog };
  }

  /** A signed commission.record from the participants' merchant to their affiliate. */
  commission(p: Participants, orderId: string, amount = '100', description = ''): SignedTx {
    return this.signed('commission.record', p.shop, {
      merchant: toHex(p.shop.publicKey),
      affiliate: toHex(p.blog.publicKey),
      amount,
      currency: 'EUR',
      orderId,
      description,
    });
  }

  /**
   * Steady load until `stop()`: `workers` loops, each submitting one
   * commission at a time to one of the nodes `targets()` names now (they may
   * die and come back), waiting for its receipt. Only receipts count: a
   * request that fails because its node died may or may not have committed.
   */
  steadyLoad(
    p: Participants,
    opts: { targets: () => number[]; workers?: number; prefix?: string; timeoutMs?: number },
  ): SteadyLoad {
    const committed = new Map<string, { height: number; index: number }>();
    let running = true;
    let seq = 0;
    const worker = async (w: number) => {
      while (running) {
        const targets = opts.targets();
        const n = seq++;
        const i = targets[(w + n) % targets.length]!;
        try {
          const r = await this.submit(
            i,
            this.commission(p, `${opts.prefix ?? 'load'}-${n}`),
            true,
            opts.timeoutMs ?? 5000,
          );
          if (r.status === 200 && r.body.receipt?.code === 'OK')
            committed.set(r.body.id, { height: r.body.receipt.height, index: r.body.receipt.index });
        } catch {
          // the node died under us, or is in transition
        }
      }
    };
    const workers = Array.from({ length: opts.workers ?? 8 }, (_, w) => worker(w));
    return {
      committed,
      async stop() {
        running = false;
        await Promise.all(workers);
      },
    };
  }

  async submit(
    i: number,
    body: unknown,
    wait = true,
    timeoutMs = 10_000,
  ): Promise<{
    status: number;
    body: SubmitResult & { error?: { code: string; details?: Record<string, unknown> } };
  }> {
    const q = wait ? `?wait=commit&timeoutMs=${timeoutMs}` : '?wait=none';
    const r = await fetch(`${this.nodes[i]!.url}/v1/transactions${q}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs + 5000),
    });
    return { status: r.status, body: (await r.json()) as SubmitResult & { error?: { code: string } } };
  }

  /** Node i's chain up to `height` (default: its head), served over its API (GET /v1/blocks, 100 at a time). */
  async chainOf(i: number, height?: number): Promise<Block[]> {
    const to = height ?? (await this.status(i))!.height;
    const blocks: Block[] = [];
    for (let from = 0; from <= to; from += 100) {
      const r = await fetch(
        `${this.nodes[i]!.url}/v1/blocks?from=${from}&limit=${Math.min(100, to - from + 1)}`,
      );
      blocks.push(...((await r.json()) as { blocks: { block: Block }[] }).blocks.map((e) => e.block));
    }
    return blocks;
  }

  /** Waits until every node answers at one head (height and hash); returns that height. */
  async waitOneHead(timeoutMs = 60_000): Promise<number> {
    return this.waitFor(
      'all nodes at one head',
      async () => {
        const ss = await Promise.all(this.nodes.map((_, i) => this.status(i)));
        if (ss.some((s) => !s)) return undefined;
        const first = ss[0]!;
        return ss.every((s) => s!.height === first.height && s!.headHash === first.headHash)
          ? first.height
          : undefined;
      },
      timeoutMs,
    );
  }

  async waitFor<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = await f();
      if (v !== undefined && v !== false) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what} (logs in ${this.dir})`);
  }

  /**
   * Keep the directory when destroyed, and print the end of every node's log
   * then: for a test that failed (its afterEach sees `task.result.state`
   * 'fail' before its clean-ups run), whose error names that directory, and
   * whose CI log is all there is.
   */
  keepForDiagnosis(): void {
    this.keep = true;
  }

  /**
   * The end of a node's log. Its last lines say most (why it exited), so this
   * first waits, briefly, until everything its process wrote is in the file.
   */
  private async logTail(node: DevnetNode, chars: number): Promise<string> {
    await Promise.race([node.logWritten, new Promise((r) => setTimeout(r, 2000).unref())]);
    const path = join(this.dir, node.name, 'node.log');
    const log = await readFile(path, 'utf8').catch((err: unknown) => `(unreadable: ${String(err)})`);
    return log.slice(-chars);
  }

  async destroy(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) {
      this.signal(i, 'SIGCONT');
      await this.kill(i, 'SIGKILL');
    }
    if (this.keep) {
      for (const node of this.nodes) {
        const path = join(this.dir, node.name, 'node.log');
        process.stderr.write(
          `\n--- the last 6,000 characters of ${path}\n${await this.logTail(node, 6000)}\n`,
        );
      }
      process.stderr.write(`--- devnet kept in ${this.dir}\n`);
    } else if (process.env.KEEP_DEVNET !== '1') await rm(this.dir, { recursive: true, force: true });
  }
}
