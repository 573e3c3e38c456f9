import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BalanceView, NodeStatus } from '../../src/api/node-api.js';
import { toHex } from '../../src/codec/index.js';
import { generateKeyPair, type KeyPair } from '../../src/crypto/index.js';
import { txId, unsignedPart, type Block, type SignedTx, type TxKind } from '../../src/ledger/index.js';
import { runCli } from '../support/cli.js';
import { Devnet } from '../support/devnet.js';
import { Namespaces, namespacesUnavailable } from '../support/netns.js';
import { Prng } from '../../src/simulator/prng.js';

/**
 * A fault-injection soak over a real multi-process network: `clients` loops
 * submit pre-signed transactions (resubmitting the same bytes to another node
 * on any failure, as docs/API.md says is safe) while a seeded fault schedule
 * kill -9s and SIGSTOPs nodes and, with `partitions`, cuts the links between
 * them (each node in a network namespace of its own, support/netns.ts); at
 * the end everything is healed and the chain of every node is checked
 * against every receipt the clients were given.
 */

export interface SoakOptions {
  seed: number;
  seconds: number;
  nodes: number;
  clients: number;
  /** print every fault as it happens */
  verbose: boolean;
  /** network partitions too: nodes in network namespaces (root and iproute2 needed) */
  partitions: boolean;
  /** nodes mirror into their embedded PGlite, and every mirror must pass `bitnexus sync check` at the end */
  mirror: boolean;
}

export function soakOptionsFromEnv(): SoakOptions {
  const int = (name: string, dflt: number): number => {
    const v = process.env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
    return n;
  };
  const seed = int('BITNEXUS_SOAK_SEED', Math.floor(Math.random() * 2 ** 31));
  const nodes = int('BITNEXUS_SOAK_NODES', 3);
  if (nodes !== 3 && nodes !== 5) throw new Error(`BITNEXUS_SOAK_NODES must be 3 or 5, got ${nodes}`);
  return {
    seed,
    seconds: int('BITNEXUS_SOAK_SECONDS', 120),
    nodes,
    clients: int('BITNEXUS_SOAK_CLIENTS', 6),
    verbose: process.env.BITNEXUS_SOAK_VERBOSE !== '0',
    partitions: process.env.BITNEXUS_SOAK_PARTITIONS !== '0',
    mirror: process.env.BITNEXUS_SOAK_MIRROR === '1',
  };
}

type NodeState = 'up' | 'stopped' | 'down';

interface Ack {
  height: number;
  index: number;
  code: string;
  node: number;
  blockHash: string;
  /** ms since the soak started */
  at: number;
  /** acknowledged only by the final resubmission after healing */
  late: boolean;
  /** commission.record: the commission's id, from the receipt */
  commission?: string;
}

interface Submission {
  id: string;
  kind: TxKind;
  client: number;
  /** the exact bytes every attempt sends */
  body: string;
  attempts: number;
  /** commission.record: the amount; reverse: the amount reversed */
  amount: bigint;
  /** follow-ups: the commission they act on */
  commission?: string;
  ack?: Ack;
  /** submitted with wait=none: when and where it was first accepted (202) */
  accepted?: { node: number; at: number };
}

interface CommissionInfo {
  id: string;
  amount: bigint;
  status: 'pending' | 'approved' | 'voided' | 'partly-reversed' | 'clawed-back';
}

interface ClientState {
  pair: { shop: KeyPair; blog: KeyPair };
  /** acknowledged commissions this client may still act on */
  open: CommissionInfo[];
  all: CommissionInfo[];
  /** reversed while pending (leaves pending), clawed back from payable */
  reversedPending: bigint;
  clawedBack: bigint;
}

interface Receipt {
  tx: string;
  height: number;
  index: number;
  code: string;
  commission?: string;
}

interface Attempt {
  status?: number;
  json?: {
    id?: string;
    status?: string;
    receipt?: Receipt;
    blockHash?: string;
    error?: { code: string; message?: string; details?: Record<string, unknown> };
  };
  netError?: string;
}

type FaultKind = 'kill' | 'stop' | 'stop-then-kill' | 'kill-twice' | 'kill-while-booting';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Soak {
  readonly violations: string[] = [];
  readonly notes: string[] = [];
  private readonly timeline: string[] = [];
  private readonly t0 = Date.now();
  private readonly rng: Prng;
  private readonly faultRng: Prng;
  private state: NodeState[];
  private procs: { proc: ChildProcess; expected: boolean; exit?: string }[] = [];
  private readonly subs = new Map<string, Submission>();
  private readonly clients: ClientState[] = [];
  private loadRunning = false;
  private faultsRunning = false;
  private readonly recoveries: number[] = [];
  /** when each node was SIGKILLed or SIGSTOPped (ms since the start), to place a violation */
  private readonly hits: { node: number; at: number; what: 'kill' | 'stop' | 'cut' }[] = [];
  private readonly episodes: string[] = [];
  private setupIds = new Set<string>();
  private readonly stats = { attempts: 0, netErrors: 0, http: new Map<string, number>() };
  private readonly minority: number;

  private constructor(
    readonly opts: SoakOptions,
    readonly net: Devnet,
    private readonly ns: Namespaces | undefined,
  ) {
    this.rng = new Prng(opts.seed);
    this.faultRng = this.rng.fork('faults');
    this.state = net.nodes.map(() => 'down');
    this.minority = Math.floor((opts.nodes - 1) / 2);
  }

  static async create(opts: SoakOptions): Promise<Soak> {
    let ns: Namespaces | undefined;
    if (opts.partitions) {
      const why = namespacesUnavailable();
      if (why !== undefined)
        throw new Error(
          `partitions need network namespaces (${why}); BITNEXUS_SOAK_PARTITIONS=0 runs without`,
        );
      ns = Namespaces.create(opts.nodes);
    }
    try {
      const net = await Devnet.create(opts.nodes, 'bitnexus-soak');
      await ns?.place(net);
      if (opts.mirror) net.startArgs = () => []; // the default target: PGlite in the data directory
      return new Soak(opts, net, ns);
    } catch (err) {
      ns?.destroy();
      throw err;
    }
  }

  get dir(): string {
    return this.net.dir;
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  event(msg: string): void {
    const line = `[${(this.now() / 1000).toFixed(1).padStart(6)}s] ${msg}`;
    this.timeline.push(line);
    if (this.opts.verbose) process.stdout.write(line + '\n');
  }

  violation(msg: string): void {
    this.violations.push(msg);
    this.event(`VIOLATION: ${msg}`);
  }

  // ---------------------------------------------------------------- processes

  private start(i: number): void {
    this.net.start(i);
    const proc = this.net.nodes[i]!.proc!;
    const ctx: { proc: ChildProcess; expected: boolean; exit?: string } = { proc, expected: false };
    this.procs[i] = ctx;
    proc.once('exit', (code, signal) => {
      ctx.exit = `code ${code} signal ${signal}`;
      if (this.procs[i] === ctx) this.state[i] = 'down';
      if (!ctx.expected) this.violation(`node ${i} exited by itself (${ctx.exit}); see ${this.logPath(i)}`);
      else this.event(`node ${i} exited (${ctx.exit})`);
    });
    this.state[i] = 'up';
  }

  private logPath(i: number): string {
    return join(this.dir, this.net.nodes[i]!.name, 'node.log');
  }

  /** start (or restart) a node and wait until it answers /healthz; a failure is a violation */
  private async boot(i: number): Promise<boolean> {
    this.start(i);
    try {
      await this.net.waitHealthy(this.net.nodes[i]!, 60_000);
      return true;
    } catch (err) {
      this.violation(`node ${i} did not come back: ${(err as Error).message.split('\n')[0]}`);
      return false;
    }
  }

  private async kill9(i: number): Promise<void> {
    const ctx = this.procs[i];
    if (!ctx || this.state[i] === 'down') return;
    ctx.expected = true;
    this.hits.push({ node: i, at: this.now(), what: 'kill' });
    await this.net.kill(i, 'SIGKILL');
    this.state[i] = 'down';
  }

  private pause(i: number): void {
    if (this.state[i] !== 'up') return;
    this.hits.push({ node: i, at: this.now(), what: 'stop' });
    this.net.signal(i, 'SIGSTOP');
    this.state[i] = 'stopped';
  }

  private resume(i: number): void {
    if (this.state[i] !== 'stopped') return;
    this.net.signal(i, 'SIGCONT');
    this.state[i] = 'up';
  }

  private async heal(i: number): Promise<void> {
    if (this.state[i] === 'stopped') {
      this.resume(i);
      this.event(`SIGCONT node ${i}`);
    } else if (this.state[i] === 'down') {
      this.event(`restart node ${i}`);
      await this.boot(i);
    }
  }

  private impaired(): number {
    return this.state.filter((s) => s !== 'up').length;
  }

  async status(i: number, timeoutMs = 1500): Promise<NodeStatus | undefined> {
    try {
      const r = await fetch(`${this.net.nodes[i]!.url}/v1/status`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return r.ok ? ((await r.json()) as NodeStatus) : undefined;
    } catch {
      return undefined;
    }
  }

  /** the node an up node names as leader, if it is up */
  private async leader(): Promise<number | undefined> {
    for (let i = 0; i < this.state.length; i++) {
      if (this.state[i] !== 'up') continue;
      const s = await this.status(i);
      if (s?.role === 'leader') return i;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- transactions

  private signed(kind: TxKind, signer: KeyPair, payload: unknown): { tx: SignedTx; id: string } {
    const tx = this.net.signed(kind, signer, payload as never, randomUUID());
    return { tx, id: txId(unsignedPart(tx)) };
  }

  private newSub(
    client: number,
    kind: TxKind,
    signer: KeyPair,
    payload: unknown,
    amount: bigint,
  ): Submission {
    const { tx, id } = this.signed(kind, signer, payload);
    const sub: Submission = { id, kind, client, body: JSON.stringify(tx), attempts: 0, amount };
    this.subs.set(id, sub);
    return sub;
  }

  private async post(node: number, body: string, timeoutMs: number, wait = true): Promise<Attempt> {
    this.stats.attempts++;
    const q = wait ? `wait=commit&timeoutMs=${timeoutMs}` : 'wait=none';
    try {
      const r = await fetch(`${this.net.nodes[node]!.url}/v1/transactions?${q}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs + 3000),
      });
      const text = await r.text();
      let json: Attempt['json'];
      try {
        json = JSON.parse(text) as Attempt['json'];
      } catch {
        json = undefined;
      }
      const k = `${r.status}${json?.error ? ' ' + json.error.code : ''}`;
      this.stats.http.set(k, (this.stats.http.get(k) ?? 0) + 1);
      return json === undefined ? { status: r.status } : { status: r.status, json };
    } catch (err) {
      this.stats.netErrors++;
      const e = err as Error & { cause?: { code?: string } };
      return { netError: e.cause?.code ?? e.name };
    }
  }

  /**
   * Send one submission until it has a committed receipt or `keepGoing()`
   * says stop; on any failure the same bytes go to another node.
   */
  private async drive(sub: Submission, rng: Prng, keepGoing: () => boolean, late = false): Promise<boolean> {
    const n = this.opts.nodes;
    let node = rng.int(n);
    for (;;) {
      sub.attempts++;
      const a = await this.post(node, sub.body, 5000);
      const j = a.json;
      if (a.status === 200 && j?.status === 'committed' && j.receipt) {
        this.ackFrom(sub, node, j, late);
        return true;
      }
      if (a.status === 409 || a.status === 400 || a.status === 413 || a.status === 415) {
        // the same signed bytes that were valid when signed: a refusal means the node lost track of it
        this.violation(
          `${sub.kind} ${sub.id} refused on attempt ${sub.attempts} by node ${node}: ${a.status} ${JSON.stringify(j?.error)}`,
        );
        return false;
      }
      if (a.status !== undefined && a.status !== 503 && a.status !== 504 && a.status !== 202)
        this.notes.push(`unexpected answer ${a.status} ${JSON.stringify(j)} from node ${node}`);
      if (!keepGoing()) return false;
      if (a.status === 503) await sleep(200);
      else if (a.netError === 'ECONNREFUSED') await sleep(100);
      node = (node + 1 + rng.int(n - 1)) % n;
    }
  }

  private ackFrom(
    sub: Submission,
    node: number,
    j: { id?: string; receipt?: Receipt; blockHash?: string },
    late: boolean,
  ): void {
    const receipt = j.receipt!;
    if ((j.id !== undefined && j.id !== sub.id) || receipt.tx !== sub.id)
      this.violation(`receipt for ${sub.id} names another transaction: ${JSON.stringify(j)}`);
    sub.ack = {
      height: receipt.height,
      index: receipt.index,
      code: receipt.code,
      node,
      blockHash: j.blockHash ?? '',
      at: this.now(),
      late,
    };
    if (receipt.commission !== undefined) sub.ack.commission = receipt.commission;
    if (receipt.code !== 'OK')
      this.violation(
        `${sub.kind} ${sub.id} (attempt ${sub.attempts}) committed with ${receipt.code}: ${JSON.stringify(receipt)}`,
      );
  }

  private async lookup(
    node: number,
    id: string,
  ): Promise<{ receipt: Receipt; blockHash: string } | undefined> {
    try {
      const r = await fetch(`${this.net.nodes[node]!.url}/v1/transactions/${id}`, {
        signal: AbortSignal.timeout(2000),
      });
      if (r.status !== 200) return undefined;
      return (await r.json()) as { receipt: Receipt; blockHash: string };
    } catch {
      return undefined;
    }
  }

  /**
   * wait=none: submit until some node accepts it (202, or 200 if already committed), then only poll
   * GET /v1/transactions/:id — docs/API.md: accepted means it commits even if that node and the leader fail.
   */
  private async driveAccepted(sub: Submission, rng: Prng, keepGoing: () => boolean): Promise<boolean> {
    const n = this.opts.nodes;
    let node = rng.int(n);
    for (;;) {
      sub.attempts++;
      const a = await this.post(node, sub.body, 5000, false);
      const j = a.json;
      if (a.status === 200 && j?.status === 'committed' && j.receipt) {
        this.ackFrom(sub, node, j, false);
        return true;
      }
      if (a.status === 202) {
        sub.accepted = { node, at: this.now() };
        break;
      }
      if (a.status !== undefined && a.status >= 400 && a.status < 500) {
        this.violation(
          `${sub.kind} ${sub.id} (wait=none) refused on attempt ${sub.attempts} by node ${node}: ${a.status} ${JSON.stringify(j?.error)}`,
        );
        return false;
      }
      if (!keepGoing()) return false;
      await sleep(a.status === 503 ? 200 : 50);
      node = (node + 1 + rng.int(n - 1)) % n;
    }
    while (keepGoing()) {
      const at = rng.int(n);
      const v = await this.lookup(at, sub.id);
      if (v) {
        this.ackFrom(sub, at, { receipt: v.receipt, blockHash: v.blockHash }, false);
        return true;
      }
      await sleep(300);
    }
    return false;
  }

  private nextTx(c: number, rng: Prng): Submission {
    const st = this.clients[c]!;
    const merchant = toHex(st.pair.shop.publicKey);
    if (st.open.length > 0 && rng.chance(0.2)) {
      const com = st.open.splice(rng.int(st.open.length), 1)[0]!;
      if (com.status === 'pending' && rng.chance(0.6)) {
        const s = this.newSub(c, 'commission.approve', st.pair.shop, { commission: com.id }, com.amount);
        s.commission = com.id;
        return s;
      }
      // reverse part (or all) of what is left; a pending commission leaves pending, an approved one is clawed back
      const amount = BigInt(rng.range(1, Number(com.amount)));
      const s = this.newSub(
        c,
        'commission.reverse',
        st.pair.shop,
        { commission: com.id, amount: amount.toString(), reason: 'soak' },
        amount,
      );
      s.commission = com.id;
      return s;
    }
    const amount = BigInt(rng.range(1, 100_000));
    return this.newSub(
      c,
      'commission.record',
      st.pair.shop,
      {
        merchant,
        affiliate: toHex(st.pair.blog.publicKey),
        amount: amount.toString(),
        currency: 'EUR',
        orderId: `soak-${c}-${randomUUID()}`,
        description: `soak seed ${this.opts.seed} client ${c}`,
      },
      amount,
    );
  }

  /** what an acknowledged OK transaction did to its client's commissions */
  private applyAck(sub: Submission): void {
    if (sub.ack?.code !== 'OK') return;
    const st = this.clients[sub.client];
    if (!st) return;
    if (sub.kind === 'commission.record') {
      const com: CommissionInfo = { id: sub.ack.commission ?? sub.id, amount: sub.amount, status: 'pending' };
      st.all.push(com);
      st.open.push(com);
    } else if (sub.kind === 'commission.approve') {
      const com = st.all.find((x) => x.id === sub.commission);
      if (com) {
        com.status = 'approved';
        st.open.push(com);
      }
    } else if (sub.kind === 'commission.reverse') {
      const com = st.all.find((x) => x.id === sub.commission);
      if (com) {
        if (com.status === 'pending') {
          st.reversedPending += sub.amount;
          com.status = sub.amount === com.amount ? 'voided' : 'partly-reversed';
        } else {
          st.clawedBack += sub.amount;
          com.status = 'clawed-back';
        }
      }
    }
  }

  private async client(c: number, rng: Prng): Promise<void> {
    while (this.loadRunning) {
      const sub = this.nextTx(c, rng);
      if (rng.chance(0.25)) await this.driveAccepted(sub, rng, () => this.loadRunning);
      else await this.drive(sub, rng, () => this.loadRunning);
      this.applyAck(sub);
    }
  }

  // ---------------------------------------------------------------- faults

  /** a node to hit: the leader with probability pLeader (if known), else any node that is up */
  private async victim(pLeader: number, exclude: number[] = []): Promise<number | undefined> {
    const up = this.state.map((s, i) => (s === 'up' && !exclude.includes(i) ? i : -1)).filter((i) => i >= 0);
    if (up.length === 0) return undefined;
    if (this.faultRng.chance(pLeader)) {
      const l = await this.leader();
      if (l !== undefined && up.includes(l)) return l;
    }
    return this.faultRng.pick(up);
  }

  /** one fault on node i for `ms`, healed at the end */
  private async fault(kind: FaultKind, i: number, ms: number) {
    switch (kind) {
      case 'kill':
        this.event(`kill -9 node ${i} for ${ms} ms`);
        await this.kill9(i);
        await sleep(ms);
        await this.heal(i);
        return;
      case 'stop':
        this.event(`SIGSTOP node ${i} for ${ms} ms`);
        this.pause(i);
        await sleep(ms);
        await this.heal(i);
        return;
      case 'stop-then-kill':
        this.event(`SIGSTOP node ${i}, kill -9 it while stopped after ${ms} ms`);
        this.pause(i);
        await sleep(ms);
        await this.kill9(i);
        await sleep(this.faultRng.range(200, 2000));
        await this.heal(i);
        return;
      case 'kill-twice':
        this.event(`kill -9 node ${i}, restart, kill -9 again soon after it is healthy`);
        await this.kill9(i);
        await sleep(ms);
        await this.heal(i);
        await sleep(this.faultRng.range(0, 1500));
        await this.kill9(i);
        this.event(`kill -9 node ${i} again`);
        await sleep(this.faultRng.range(200, 3000));
        await this.heal(i);
        return;
      case 'kill-while-booting': {
        const boot = this.faultRng.range(0, 2500);
        this.event(`kill -9 node ${i}, restart after ${ms} ms, kill -9 it ${boot} ms into its start`);
        await this.kill9(i);
        await sleep(ms);
        this.start(i);
        await sleep(boot);
        await this.kill9(i);
        await sleep(this.faultRng.range(200, 2000));
        await this.heal(i);
        return;
      }
    }
  }

  /**
   * Cut `side` (a minority, at most `minority` nodes) off from the rest for
   * `ms`: every process keeps running and every client keeps submitting to
   * the node it picks, on either side; then the links come back.
   */
  private async partition(k: number, side: number[], ms: number): Promise<void> {
    const ns = this.ns!;
    const rest = this.state.map((_, i) => i).filter((i) => !side.includes(i));
    this.episodes.push(`${k}: partition ${side.join('+')} | ${rest.join('+')}`);
    this.event(`partition: ${side.join(', ')} cut off from ${rest.join(', ')} for ${ms} ms`);
    for (const a of side) {
      this.hits.push({ node: a, at: this.now(), what: 'cut' });
      for (const b of rest) ns.cut(a, b);
    }
    await sleep(ms);
    ns.heal();
    this.event('partition healed');
  }

  private async episode(k: number): Promise<void> {
    if (this.ns && this.faultRng.chance(0.3)) {
      // the leader's side in most: that is where a partition can lose or fork something
      const first = await this.victim(0.7);
      if (first === undefined) return;
      const size = this.faultRng.range(1, this.minority);
      const side = [
        first,
        ...this.faultRng.shuffle(this.state.map((_, i) => i).filter((i) => i !== first)).slice(0, size - 1),
      ];
      await this.partition(k, side, this.faultRng.range(1000, 8000));
      return;
    }
    const r = this.faultRng.float();
    const single = async (kind: FaultKind, pLeader: number) => {
      const v = await this.victim(pLeader);
      if (v === undefined) return;
      const ms = kind === 'stop' ? this.faultRng.range(1000, 8000) : this.faultRng.range(300, 8000);
      this.episodes.push(`${k}: ${kind} ${v}`);
      await this.fault(kind, v, ms);
    };
    if (r < 0.27) await single('kill', 0.65);
    else if (r < 0.5) await single('stop', 0.6);
    else if (r < 0.57) await single('stop-then-kill', 0.5);
    else if (r < 0.64) await single('kill-twice', 0.5);
    else if (r < 0.7) await single('kill-while-booting', 0.5);
    else if (r > 0.94) {
      // every node at once: only what each fsynced survives, and every acknowledged transaction must
      const ms = this.faultRng.range(300, 3000);
      this.episodes.push(`${k}: crash-all`);
      this.event(`kill -9 every node at once, restart all after ${ms} ms`);
      await Promise.all(this.state.map((_, i) => this.kill9(i)));
      await sleep(ms);
      await Promise.all(this.state.map((_, i) => this.heal(i)));
    } else {
      // overlapping faults on distinct nodes; with 3 nodes two are a majority: keep that short and
      // then check the network comes back
      const count = r < 0.88 ? 2 : this.minority + 1;
      const first = await this.victim(0.6);
      if (first === undefined) return;
      const victims = [
        first,
        ...this.faultRng
          .shuffle(this.state.map((_, i) => i).filter((i) => i !== first && this.state[i] === 'up'))
          .slice(0, count - 1),
      ];
      const majority = victims.length > this.minority;
      this.episodes.push(`${k}: overlap ${victims.join('+')}${majority ? ' (majority)' : ''}`);
      this.event(`overlapping faults on ${victims.join(', ')}${majority ? ' — a majority' : ''}`);
      await Promise.all(
        victims.map(async (v, j) => {
          await sleep(j === 0 ? 0 : this.faultRng.range(0, 2000));
          const kind = this.faultRng.chance(0.5) ? 'kill' : 'stop';
          await this.fault(
            kind,
            v,
            majority ? this.faultRng.range(500, 4000) : this.faultRng.range(1000, 7000),
          );
        }),
      );
    }
  }

  /** after an episode has healed: a fresh transaction must commit; how long did that take? */
  private async probe(k: number): Promise<void> {
    const t = Date.now();
    const sub = this.nextProbe();
    const ok = await this.drive(sub, this.faultRng, () => Date.now() - t < 60_000);
    const ms = Date.now() - t;
    if (!ok) {
      if (sub.ack === undefined && !this.violations.some((v) => v.includes(sub.id)))
        this.violation(`no commit within 60 s after episode ${k} healed (nodes ${this.state.join(',')})`);
      return;
    }
    this.recoveries.push(ms);
    if (ms > 10_000) this.event(`episode ${k}: commits resumed only after ${ms} ms`);
  }

  private nextProbe(): Submission {
    const st = this.clients[0]!;
    const amount = 1n;
    const sub = this.newSub(
      -1,
      'commission.record',
      st.pair.shop,
      {
        merchant: toHex(st.pair.shop.publicKey),
        affiliate: toHex(st.pair.blog.publicKey),
        amount: '1',
        currency: 'EUR',
        orderId: `probe-${randomUUID()}`,
        description: 'liveness probe',
      },
      amount,
    );
    return sub;
  }

  private async faults(until: number): Promise<void> {
    let k = 0;
    await sleep(this.faultRng.range(1000, 4000));
    while (this.faultsRunning && Date.now() < until) {
      k++;
      await this.episode(k);
      // anything the episode left impaired (a node that did not come back) is healed here
      for (let i = 0; i < this.state.length; i++) if (this.state[i] !== 'up') await this.heal(i);
      await this.probe(k);
      await sleep(this.faultRng.range(500, 6000));
    }
  }

  // ---------------------------------------------------------------- run

  async run(): Promise<void> {
    const o = this.opts;
    this.event(
      `soak seed=${o.seed} seconds=${o.seconds} nodes=${o.nodes} clients=${o.clients} dir=${this.dir}`,
    );
    for (let i = 0; i < o.nodes; i++) this.start(i);
    await Promise.all(this.net.nodes.map((n) => this.net.waitHealthy(n)));
    await this.net.waitLeader();
    await this.register();
    this.event(`network up, ${o.clients} merchant/affiliate pairs registered`);

    this.loadRunning = true;
    this.faultsRunning = true;
    const until = Date.now() + o.seconds * 1000;
    const workers = this.clients.map((_, c) => this.client(c, this.rng.fork(`client-${c}`)));
    await this.faults(until);
    this.loadRunning = false;
    this.faultsRunning = false;
    await Promise.all(workers);
    this.event(`load stopped: ${this.acked().length} acknowledged of ${this.subs.size} submitted`);

    this.ns?.heal();
    for (let i = 0; i < o.nodes; i++) await this.heal(i);
    await this.acceptedCommit();
    await this.finalResubmit();
    await this.checks();
  }

  private acked(): Submission[] {
    return [...this.subs.values()].filter((s) => s.ack !== undefined);
  }

  private async register(): Promise<void> {
    for (let c = 0; c < this.opts.clients; c++) {
      this.clients.push({
        pair: { shop: generateKeyPair(), blog: generateKeyPair() },
        open: [],
        all: [],
        reversedPending: 0n,
        clawedBack: 0n,
      });
    }
    await Promise.all(
      this.clients.flatMap((st) =>
        (
          [
            [st.pair.shop, 'merchant'],
            [st.pair.blog, 'affiliate'],
          ] as const
        ).map(async ([k, role]) => {
          const { tx, id } = this.signed('participant.register', this.net.operator, {
            participant: toHex(k.publicKey),
            role,
            name: `${role}-${toHex(k.publicKey).slice(0, 8)}`,
          });
          this.setupIds.add(id);
          const r = await this.net.submit(0, tx);
          if (r.body.receipt?.code !== 'OK')
            throw new Error(`registering a ${role} failed: ${JSON.stringify(r)}`);
        }),
      ),
    );
  }

  /** Healed: what a node accepted with 202 commits without being resubmitted (docs/API.md, wait=none). */
  private async acceptedCommit(): Promise<void> {
    const waiting = [...this.subs.values()].filter((s) => s.accepted && !s.ack);
    this.event(`${waiting.length} transactions accepted with 202 and not seen committed yet: polling`);
    const deadline = Date.now() + 60_000;
    const rng = this.rng.fork('final');
    let next = 0;
    const worker = async () => {
      while (next < waiting.length) {
        const s = waiting[next++]!;
        while (Date.now() < deadline) {
          const at = rng.int(this.opts.nodes);
          const v = await this.lookup(at, s.id);
          if (v) {
            this.ackFrom(s, at, { receipt: v.receipt, blockHash: v.blockHash }, true);
            this.applyAck(s);
            break;
          }
          await sleep(250);
        }
        if (!s.ack) {
          const acc = s.accepted!;
          const next = this.hits.find((h) => h.at >= acc.at - 1000);
          const near = this.hits
            .filter((h) => Math.abs(h.at - acc.at) < 3000)
            .map((h) => `${h.what} node ${h.node} at ${h.at - acc.at >= 0 ? '+' : ''}${h.at - acc.at} ms`)
            .join(', ');
          this.violation(
            `${s.kind} ${s.id} was accepted (202) by node ${acc.node} at ${acc.at} ms (${s.attempts} attempts) and had not committed 60 s after healing; faults around then: ${near || (next ? `next ${next.what} node ${next.node} at ${next.at} ms` : 'none')}`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
  }

  /** Healed: every transaction a client gave up on is resubmitted (same bytes) and must commit now. */
  private async finalResubmit(): Promise<void> {
    await this.net
      .waitLeader(undefined, 60_000)
      .catch(() => this.violation('no leader within 60 s after healing'));
    const pending = [...this.subs.values()].filter((s) => s.ack === undefined);
    this.event(`resubmitting ${pending.length} unacknowledged transactions after healing`);
    const rng = this.rng.fork('final');
    let next = 0;
    const worker = async () => {
      while (next < pending.length) {
        const s = pending[next++]!;
        const t = Date.now();
        const ok = await this.drive(s, rng, () => Date.now() - t < 60_000, true);
        if (ok) this.applyAck(s);
        else if (!this.violations.some((v) => v.includes(s.id)))
          this.violation(`${s.kind} ${s.id} did not commit within 60 s of resubmission after healing`);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
  }

  private async settle(): Promise<NodeStatus[] | undefined> {
    const deadline = Date.now() + 120_000;
    let last: (NodeStatus | undefined)[] = [];
    while (Date.now() < deadline) {
      last = await Promise.all(this.net.nodes.map((_, i) => this.status(i, 3000)));
      const ss = last.filter((s): s is NodeStatus => s !== undefined);
      if (
        ss.length === last.length &&
        ss.every((s) => s.height === ss[0]!.height && s.headHash === ss[0]!.headHash) &&
        ss.every((s) => s.appliedIndex === s.commitIndex)
      )
        return ss;
      await sleep(250);
    }
    this.violation(
      `nodes did not reach one head within 120 s: ${JSON.stringify(
        last.map(
          (s) =>
            s && {
              role: s.role,
              height: s.height,
              head: s.headHash.slice(0, 12),
              commit: s.commitIndex,
              applied: s.appliedIndex,
            },
        ),
      )}`,
    );
    return undefined;
  }

  private async chainOf(i: number): Promise<{ height: number; hash: string; block: Block }[]> {
    const out: { height: number; hash: string; block: Block }[] = [];
    let from = 0;
    for (;;) {
      const r = await fetch(`${this.net.nodes[i]!.url}/v1/blocks?from=${from}&limit=100`);
      if (!r.ok) throw new Error(`GET /v1/blocks?from=${from} on node ${i}: ${r.status}`);
      const page = (await r.json()) as {
        blocks: { height: number; hash: string; block: Block }[];
        next: number;
        head: number;
      };
      out.push(...page.blocks);
      if (page.next > page.head) return out;
      from = page.next;
    }
  }

  private async checks(): Promise<void> {
    const statuses = await this.settle();
    // the chain checks need one head; the stop, verify and log checks run either way
    if (statuses) await this.chainChecks(statuses[0]!);
    if (statuses && this.opts.mirror) await this.mirrorChecks();
    await this.stopAndAudit(statuses?.[0]);
  }

  /** every node's mirror catches up with the chain and matches it, state rows included */
  private async mirrorChecks(): Promise<void> {
    for (let i = 0; i < this.opts.nodes; i++) {
      const deadline = Date.now() + 180_000;
      for (;;) {
        const v = await runCli([
          'sync',
          'check',
          '--node',
          this.net.nodes[i]!.url,
          '--require-state',
          '--json',
        ]);
        if (v.code === 0) break;
        if (Date.now() > deadline) {
          this.violation(
            `sync check of node ${i} still fails 180 s after the chains settled (exit ${v.code}): ${v.stdout.slice(0, 1000)} ${v.stderr.slice(0, 500)}`,
          );
          break;
        }
        await sleep(2000);
      }
    }
    this.event('sync check: every mirror matches its chain');
  }

  private async chainChecks(head: NodeStatus): Promise<void> {
    const n = this.opts.nodes;
    this.event(`settled: every node at height ${head.height}, head ${head.headHash.slice(0, 16)}…`);
    // the mempools should drain once everything is committed (a note, not a rule of the API)
    await sleep(3000);
    const after = await Promise.all(this.net.nodes.map((_, i) => this.status(i, 3000)));
    after.forEach((s, i) => {
      if (s && s.mempool !== 0)
        this.notes.push(`node ${i} (${s.role}) mempool holds ${s.mempool} after everything committed`);
    });

    // (1) identical chains, block by block
    const chains = await Promise.all(this.net.nodes.map((_, i) => this.chainOf(i)));
    const ref = chains[0]!;
    if (ref.length !== head.height + 1)
      this.violation(`node 0 served ${ref.length} blocks for height ${head.height}`);
    ref.forEach((b, h) => {
      if (b.height !== h) this.violation(`node 0 block at position ${h} says height ${b.height}`);
      if (h > 0 && b.block.header.prevHash !== ref[h - 1]!.hash)
        this.violation(`node 0 block ${h} prevHash does not link to block ${h - 1}`);
    });
    for (let i = 1; i < n; i++) {
      const c = chains[i]!;
      if (c.length !== ref.length) this.violation(`node ${i} has ${c.length} blocks, node 0 ${ref.length}`);
      for (let h = 0; h < Math.min(c.length, ref.length); h++)
        if (c[h]!.hash !== ref[h]!.hash) {
          this.violation(`node ${i} diverges from node 0 at height ${h}: ${c[h]!.hash} vs ${ref[h]!.hash}`);
          break;
        }
    }

    // (2)+(3) where every transaction is, and only once
    const where = new Map<string, { height: number; index: number }[]>();
    const signerNonce = new Map<string, number>();
    for (const b of ref)
      b.block.txs.forEach((tx, index) => {
        const id = txId(unsignedPart(tx));
        const at = where.get(id) ?? [];
        at.push({ height: b.height, index });
        where.set(id, at);
        const sn = `${tx.signer}/${tx.nonce}`;
        signerNonce.set(sn, (signerNonce.get(sn) ?? 0) + 1);
      });
    for (const [id, at] of where)
      if (at.length > 1) this.violation(`tx ${id} appears ${at.length} times: ${JSON.stringify(at)}`);
    for (const [sn, count] of signerNonce)
      if (count > 1) this.violation(`signer/nonce ${sn} appears ${count} times`);
    const acked = this.acked();
    for (const s of acked) {
      const at = where.get(s.id);
      if (!at) this.violation(`acknowledged ${s.kind} ${s.id} (height ${s.ack!.height}) is not in the chain`);
      else if (at[0]!.height !== s.ack!.height || at[0]!.index !== s.ack!.index)
        this.violation(
          `acknowledged ${s.id} at ${s.ack!.height}/${s.ack!.index} but the chain has it at ${at[0]!.height}/${at[0]!.index}`,
        );
      else if (s.ack!.blockHash !== ref[s.ack!.height]!.hash)
        this.violation(
          `receipt for ${s.id} named block hash ${s.ack!.blockHash}, the chain has ${ref[s.ack!.height]!.hash}`,
        );
    }
    for (const id of where.keys())
      if (!this.subs.has(id) && !this.setupIds.has(id))
        this.violation(`the chain holds tx ${id} nobody submitted`);
    for (const s of this.subs.values())
      if (!s.ack && !where.has(s.id)) this.notes.push(`${s.kind} ${s.id} never committed`);

    // every node serves the same receipt for every acknowledged transaction
    let q = 0;
    const getWorker = async () => {
      while (q < acked.length) {
        const s = acked[q++]!;
        for (let i = 0; i < n; i++) {
          const r = await fetch(`${this.net.nodes[i]!.url}/v1/transactions/${s.id}`);
          if (r.status !== 200) {
            this.violation(`GET /v1/transactions/${s.id} on node ${i}: ${r.status}`);
            continue;
          }
          const v = (await r.json()) as {
            receipt: { height: number; index: number; code: string };
            blockHash: string;
          };
          if (
            v.receipt.height !== s.ack!.height ||
            v.receipt.index !== s.ack!.index ||
            v.receipt.code !== s.ack!.code
          )
            this.violation(
              `node ${i} serves receipt ${JSON.stringify(v.receipt)} for ${s.id}, acked ${JSON.stringify(s.ack)}`,
            );
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, getWorker));

    // balances follow from the acknowledged transactions (all OK, each acting on its own commission)
    if (acked.length === this.subs.size) {
      for (const [c, st] of this.clients.entries()) {
        let pending = 0n;
        let payable = 0n;
        for (const com of st.all) {
          if (com.status === 'approved' || com.status === 'clawed-back') payable += com.amount;
          else pending += com.amount;
        }
        pending -= st.reversedPending;
        payable -= st.clawedBack;
        // the probes (client -1) recorded 1 each on client 0's pair
        if (c === 0) pending += BigInt(acked.filter((s) => s.client === -1).length);
        for (let i = 0; i < n; i++) {
          const r = await fetch(
            `${this.net.nodes[i]!.url}/v1/affiliates/${toHex(st.pair.blog.publicKey)}/balances`,
          );
          const v = (await r.json()) as { balances: BalanceView[] };
          const eur = v.balances.find((b) => b.currency === 'EUR');
          const got = eur ? { pending: eur.pending, payable: eur.payable } : { pending: '0', payable: '0' };
          const want = { pending: pending.toString(), payable: payable.toString() };
          if (got.pending !== want.pending || got.payable !== want.payable)
            this.violation(
              `node ${i}: client ${c} affiliate balance ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`,
            );
        }
      }
    }
  }

  private async stopAndAudit(head: NodeStatus | undefined): Promise<void> {
    const n = this.opts.nodes;
    // (4) a clean stop, then `bitnexus verify` over every node's data
    for (let i = 0; i < n; i++) {
      const ctx = this.procs[i]!;
      ctx.expected = true;
      const exited = new Promise<void>((r) => ctx.proc.once('exit', () => r()));
      if (ctx.exit === undefined) {
        ctx.proc.kill('SIGTERM');
        const t = setTimeout(() => {
          this.violation(`node ${i} did not stop within 30 s of SIGTERM; killing it`);
          ctx.proc.kill('SIGKILL');
        }, 30_000);
        await exited;
        clearTimeout(t);
      }
      if (ctx.proc.exitCode !== 0) this.violation(`node ${i} stopped with ${ctx.exit} on SIGTERM, not 0`);
      this.state[i] = 'down';
    }
    for (let i = 0; i < n; i++) {
      const v = await runCli([
        'verify',
        '--data-dir',
        this.net.nodes[i]!.dataDir,
        '--json',
        '--threads',
        '1',
      ]);
      let report: { ok?: boolean; headHash?: string; height?: number } = {};
      try {
        report = JSON.parse(v.stdout) as typeof report;
      } catch {
        // reported below
      }
      if (v.code !== 0 || report.ok !== true)
        this.violation(
          `verify of node ${i} failed (exit ${v.code}): ${v.stdout.slice(0, 1000)} ${v.stderr.slice(0, 1000)}`,
        );
      else if (head && report.headHash !== head.headHash)
        this.violation(
          `verify of node ${i} ends at ${report.headHash}, the network's head is ${head.headHash}`,
        );
    }
    this.event(
      `verify passed on ${n - this.violations.filter((v) => v.startsWith('verify')).length}/${n} nodes`,
    );

    // (5) logs: no fatal line, nothing on stderr that is not a log line
    for (let i = 0; i < n; i++) {
      const text = await readFile(this.logPath(i), 'utf8').catch(() => '');
      const errors = new Map<string, number>();
      const raw: string[] = [];
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let rec: { level?: number; msg?: string; err?: unknown };
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          raw.push(line);
          continue;
        }
        if ((rec.level ?? 0) >= 60) this.violation(`node ${i} logged fatal: ${line.slice(0, 600)}`);
        else if ((rec.level ?? 0) >= 50) errors.set(rec.msg ?? '?', (errors.get(rec.msg ?? '?') ?? 0) + 1);
      }
      if (raw.length > 0)
        this.violation(
          `node ${i} wrote ${raw.length} non-log lines (a crash trace?): ${raw.slice(0, 5).join(' | ').slice(0, 800)}`,
        );
      for (const [msg, count] of errors) this.notes.push(`node ${i} logged error ×${count}: ${msg}`);
    }
  }

  summary(): Record<string, unknown> {
    const acked = this.acked();
    const rec = [...this.recoveries].sort((a, b) => a - b);
    const byKind = new Map<string, number>();
    for (const s of acked) byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + 1);
    return {
      seed: this.opts.seed,
      seconds: this.opts.seconds,
      nodes: this.opts.nodes,
      clients: this.opts.clients,
      dir: this.dir,
      submitted: this.subs.size,
      acknowledged: acked.length,
      acknowledgedLate: acked.filter((s) => s.ack!.late).length,
      acceptedWaitNone: [...this.subs.values()].filter((s) => s.accepted).length,
      byKind: Object.fromEntries(byKind),
      maxAttempts: Math.max(0, ...[...this.subs.values()].map((s) => s.attempts)),
      attempts: this.stats.attempts,
      netErrors: this.stats.netErrors,
      http: Object.fromEntries(this.stats.http),
      episodes: this.episodes.length,
      episodeList: this.episodes,
      recoveryMs: rec.length
        ? { min: rec[0], median: rec[Math.floor(rec.length / 2)], max: rec[rec.length - 1] }
        : undefined,
      violations: this.violations,
      notes: [...new Set(this.notes)].slice(0, 50),
    };
  }

  async writeReport(): Promise<string> {
    const path = join(this.dir, 'soak-report.json');
    await writeFile(path, JSON.stringify({ ...this.summary(), timeline: this.timeline }, null, 2));
    const subs = [...this.subs.values()].map(({ body: _b, amount, ...x }) => ({
      ...x,
      amount: amount.toString(),
    }));
    await writeFile(join(this.dir, 'soak-submissions.json'), JSON.stringify({ hits: this.hits, subs }));
    return path;
  }

  /** kill whatever still runs; remove the temp dir only when asked to (the test does so on success) */
  async destroy(removeDir: boolean): Promise<void> {
    for (let i = 0; i < this.procs.length; i++) {
      const ctx = this.procs[i];
      if (!ctx || ctx.exit !== undefined) continue;
      ctx.expected = true;
      this.net.signal(i, 'SIGCONT');
      await this.net.kill(i, 'SIGKILL');
    }
    this.ns?.destroy();
    if (removeDir) await rm(this.dir, { recursive: true, force: true });
  }
}
