/**
 * Crash-point enumeration for a ledger node (ALICE / FoundationDB style), in
 * one process over TestCluster.
 *
 * Every node's stores are wrapped (CrashDisk): each atomic durable write — a
 * chain batch (one LevelDB batch), a RaftStore.save (one LevelDB batch) or a
 * RaftStore.compact — is counted and labelled. A run arms one node to crash at
 * the n-th write of a label (the same as "write k" of a dry run, but robust to
 * the small timing shifts between runs): that write and every later one of
 * the node are not persisted, the node is killed (network down first, then
 * stopped: nothing it still does reaches a disk or a peer), restarted from
 * what was persisted, and the cluster must converge to one consistent chain.
 *
 * Crash modes:
 *  - reject:    the crashing write (and later ones) fail; the node dies at once.
 *  - hang:      they never complete (a stuck fsync); the node lingers, then is killed.
 *  - stall:     the crashing write never completes and later writes to the SAME
 *               database queue behind it (LevelDB serializes its writers), while
 *               writes to the other database go on until the kill: a write in
 *               flight on one database when the machine dies, the other one ahead.
 *  - lie:       NEGATIVE CONTROL, not a crash model: the crashing write and later
 *               ones are dropped but reported done (a disk that loses acknowledged
 *               writes). The checks must catch what the node then does; a harness
 *               that passes this is blind.
 *  - powerloss: as reject, and writes made with sync: false since the last
 *               synced write of the same database are lost too (LevelDB keeps an
 *               unsynced write across a process crash, not across power loss;
 *               a synced write makes every earlier one of that database durable,
 *               since its log is sequential). The chain and the Raft log are two
 *               databases (src/node/process.ts: CHAIN_DIR, RAFT_DIR).
 *
 * Scenarios (3 nodes, compaction every 3 applied entries keeping 1, so every
 * node compacts its log several times; node-1 has the shortest election
 * timeout and leads, node-2 follows):
 *  - steady:  registrations, commissions recorded / approved / reversed, a payout,
 *             and a membership change (member.add of a node that never runs makes
 *             it a Raft learner, member.remove takes it out: two confChange
 *             entries), one transaction at a time, clients retrying on any node;
 *  - restore: node-2 is cut off while the others commit and compact past it;
 *             healed, it is sent the leader's snapshot and fetches the blocks in
 *             the background (startRestore), entries committed meanwhile deferred;
 *  - burst:   two bursts of 12 concurrent clients with blocks of at most 3
 *             transactions: several blocks in flight, Readies that write entries
 *             while earlier ones are applied.
 *
 * Internals reached into (src/ has no hook for them): MemoryRaftStore's private
 * hardState / snapshot / entries (the durable view the observer checks, and
 * the power-loss rollback), and a LedgerNode's opts.chain (its in-memory state).
 * TestCluster has no kill -9: TestCluster.stop() is LedgerNode.stop(), which waits
 * for the driver loop, so a hung write would hang it; the kill here cuts the
 * node's MemoryNetwork first, fails every write from then on, then stops it.
 *
 * Invariants (RunResult.findings lists each break):
 *  - persist before send, checked on every Raft frame any node sends (hub.dropRaft
 *    as an observer): the term of a message is durable; a granted vote is durable
 *    (term and vote); a vote request follows a durable self-vote; an append
 *    acknowledged is in the durable log; one leader per term; one vote per term
 *    per node across restarts;
 *  - the crashed node restarts (no refusal, no fatal error afterwards);
 *  - term/vote never go back and entries up to the durable commit index survive
 *    across the crash;
 *  - the cluster converges: same blocks (bytes) at every height on every node;
 *  - each chain store equals, key for key, the store a re-execution of the chain
 *    from genesis produces (blocks, receipts, tx index, state, Merkle nodes), and
 *    each node's in-memory ledger state equals the re-executed one;
 *  - every scenario transaction commits; each is in the chain exactly once; every
 *    committed receipt a client got matches the chain (block hash, receipt);
 *  - committed Raft entries agree on every node (Log Matching on the committed prefix).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Message } from '../../../src/consensus/index.js';
import {
  decodeBlock,
  encodeRecord,
  parseBlock,
  type DecodedBlock,
  type DecodedTx,
  type Receipt,
} from '../../../src/ledger/index.js';
import type { SubmitResult } from '../../../src/api/node-api.js';
import { LedgerChain } from '../../../src/node/ledger-chain.js';
import type { LedgerNode } from '../../../src/node/ledger-node.js';
import { decodeRaftMessage, isTxForward } from '../../../src/node/raft-wire.js';
import { chainKeys, MemoryStore, parseTxLocation, type BatchOp } from '../../../src/storage/index.js';
import {
  MemoryRaftStore,
  type Entry,
  type HardState,
  type PersistedRaftState,
  type RaftWrite,
  type Snapshot,
} from '../../../src/storage/raft/index.js';
import { TestCluster } from '../../support/cluster.js';
import { keyFor, pub, tx } from '../../support/ledger-fixture.js';

export type CrashMode = 'reject' | 'hang' | 'powerloss' | 'stall' | 'lie';
export type ScenarioName = 'steady' | 'restore' | 'burst';
/** node-1 leads (its election timeout is the shortest), node-2 follows (and is the one that restores) */
export type Role = 'leader' | 'follower';

export interface WriteRecord {
  /** 1-based index among all durable writes of the node in this run */
  k: number;
  label: string;
  /** 1-based among the node's writes with this label */
  occurrence: number;
  sync: boolean;
}

export interface CrashPoint {
  label: string;
  occurrence: number;
  /** the write's k in the dry run (for the report) */
  k?: number;
}

export class CrashError extends Error {
  override readonly name = 'CrashError';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface RaftFields {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** One node's disk: both stores, the write counter, the crash trigger. */
export class CrashDisk {
  readonly chain: CrashChainStore;
  readonly raft: CrashRaftStore;
  readonly writes: WriteRecord[] = [];
  private readonly counts = new Map<string, number>();
  arm: { point: CrashPoint; mode: CrashMode; onCrash: (w: WriteRecord) => void } | undefined;
  /** the crash happened: writes are dropped until revive() */
  crashed = false;
  /** the node is being killed: dropped writes fail at once (none hangs any more) */
  killing = false;
  crashedAt: WriteRecord | undefined;
  private hung: ((e: Error) => void)[] = [];

  constructor() {
    this.chain = new CrashChainStore(this);
    this.raft = new CrashRaftStore(this);
  }

  /** which database the crashing write was on (stall) */
  private crashedDb: 'chain' | 'raft' | undefined;

  /** Before each write: 'go' to persist it, 'drop' if the node has crashed (now or before). */
  gate(db: 'chain' | 'raft', label: string, sync: boolean): 'go' | 'drop' {
    if (this.crashed) {
      // stall: the other database goes on until the kill
      if (this.arm?.mode === 'stall' && !this.killing && db !== this.crashedDb)
        return this.count(label, sync);
      return 'drop';
    }
    return this.count(label, sync, db);
  }

  private count(label: string, sync: boolean, db?: 'chain' | 'raft'): 'go' | 'drop' {
    const occurrence = (this.counts.get(label) ?? 0) + 1;
    this.counts.set(label, occurrence);
    const w: WriteRecord = { k: this.writes.length + 1, label, occurrence, sync };
    this.writes.push(w);
    const a = this.arm;
    if (db !== undefined && a && a.point.label === label && a.point.occurrence === occurrence) {
      this.crashed = true;
      this.crashedAt = w;
      this.crashedDb = db;
      a.onCrash(w);
      return 'drop';
    }
    return 'go';
  }

  /** What a dropped write's caller sees. */
  dropped(): Promise<void> {
    const mode = this.arm?.mode;
    if (mode === 'lie' && !this.killing) return Promise.resolve();
    if ((mode === 'hang' || mode === 'stall') && !this.killing)
      return new Promise<never>((_resolve, reject) => this.hung.push(reject));
    return Promise.reject(new CrashError(`simulated crash at ${this.crashedAt?.label ?? '?'}`));
  }

  releaseHung(): void {
    const hung = this.hung;
    this.hung = [];
    for (const reject of hung) reject(new CrashError('killed'));
  }

  /** Lose what only an fsync would have kept. */
  powerLoss(): void {
    this.chain.rollbackVolatile();
    this.raft.rollbackVolatile();
  }

  /** The machine is back: the next process writes normally. */
  revive(): void {
    this.crashed = false;
    this.killing = false;
    this.arm = undefined;
    this.crashedDb = undefined;
    this.counts.clear(); // occurrences count from this start on (a second crash point)
  }
}

const GENESIS_KEY = chainKeys.block(0);

function chainLabel(ops: readonly BatchOp[], sync: boolean): string {
  if (ops.some((o) => o.key === GENESIS_KEY)) return 'chain:genesis';
  const block = ops.find((o) => o.key.startsWith('b/'));
  if (block && block.type === 'put') {
    const member = Buffer.from(block.value).includes('"member.');
    // a block applied from the Raft log is written with sync: false; a block fetched to
    // restore a snapshot with sync: true (ledger-node.ts applyCommitted / restoreSnapshot)
    return `chain:${sync ? 'restore-block' : 'block'}${member ? '(member)' : ''}`;
  }
  if (ops.length === 1 && ops[0]!.key === 's/head') return 'chain:flush';
  return 'chain:other';
}

export class CrashChainStore extends MemoryStore {
  /** undo records of writes made with sync: false since the last synced one (powerloss) */
  private undo: [string, Uint8Array | undefined][] = [];
  constructor(private readonly disk: CrashDisk) {
    super();
  }

  override batch(ops: readonly BatchOp[], opts?: { sync?: boolean }): Promise<void> {
    const sync = opts?.sync ?? true;
    if (this.disk.gate('chain', chainLabel(ops, sync), sync) === 'drop') return this.disk.dropped();
    if (sync) this.undo = [];
    else for (const o of ops) this.undo.push([o.key, this.data.get(o.key)]);
    return super.batch(ops);
  }

  rollbackVolatile(): void {
    for (const [k, v] of this.undo.reverse()) {
      if (v === undefined) this.data.delete(k);
      else this.data.set(k, v);
    }
    this.undo = [];
  }
}

export class CrashRaftStore extends MemoryRaftStore {
  /** what survives a power loss: the state as of the last synced save */
  synced: RaftFields = { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] };
  /** the last hard state written (labels only) */
  private lastHard: HardState = { term: 0, vote: null, commit: 0 };

  constructor(private readonly disk: CrashDisk) {
    super();
  }

  private get fields(): RaftFields {
    return this as unknown as RaftFields;
  }

  private label(w: RaftWrite): string {
    if (w.snapshot) {
      if (w.snapshot.data.length === 0) return 'raft:bootstrap';
      if ((w.entries?.length ?? 0) === 0 && !w.hardState) return 'raft:snapshot(compaction)';
      return 'raft:snapshot(received)';
    }
    const entries = w.entries ?? [];
    if (entries.length > 0) {
      if (entries.some((e) => e.type === 'confChange')) return 'raft:entries(conf)';
      if (entries.every((e) => e.data.length === 0)) return 'raft:entries(no-op)';
      return 'raft:entries';
    }
    const hs = w.hardState;
    if (hs && (hs.term !== this.lastHard.term || hs.vote !== this.lastHard.vote)) return 'raft:term-vote';
    return 'raft:commit';
  }

  override save(write: RaftWrite): Promise<void> {
    const sync = write.sync !== false;
    if (this.disk.gate('raft', this.label(write), sync) === 'drop') return this.disk.dropped();
    return super.save(write).then(() => {
      if (write.hardState) this.lastHard = { ...write.hardState };
      if (sync) {
        const f = this.fields;
        this.synced = structuredClone({ hardState: f.hardState, snapshot: f.snapshot, entries: f.entries });
      }
    });
  }

  override compact(index: number): Promise<void> {
    // LevelRaftStore.compact deletes keys load() ignores anyway, without a sync
    if (this.disk.gate('raft', 'raft:compact', false) === 'drop') return this.disk.dropped();
    return super.compact(index);
  }

  rollbackVolatile(): void {
    const f = this.fields;
    const s = structuredClone(this.synced);
    f.hardState = s.hardState;
    f.snapshot = s.snapshot;
    f.entries = s.entries;
    this.lastHard = { ...s.hardState };
  }
}

// ------------------------------------------------------------------ runs

export interface RunSpec {
  scenario: ScenarioName;
  /** `then`: crash again at this write of the restarted process (its occurrences count from the restart) */
  crash?: { role: Role; point: CrashPoint; mode: CrashMode; then?: CrashPoint };
  /** ms the crashed node lingers (hung, or dead) before it is killed */
  lingerMs?: number;
  /** ms between the kill and the restart */
  restartDelayMs?: number;
  /** ms the nodes get to converge at the end (default 20 s) */
  convergeMs?: number;
}

export interface RunResult {
  findings: string[];
  /** every durable write of each node, by role name ('leader' = node-1, 'follower' = node-2, 'other' = node-3) */
  writes: Record<Role | 'other', WriteRecord[]>;
  crashedAt: WriteRecord | undefined;
  /** how many times the target crashed (0 if the armed write never came) */
  crashes: number;
  /** the target's writes after its (first) restart: the points of a second crash */
  afterRestart: WriteRecord[];
  ms: number;
}

interface Ack {
  tx: string;
  node: string;
  result: SubmitResult;
}

/** Election timeouts: node-1 10 ticks, node-2 14, node-3 19 (distinct: no split vote repeats). */
const RANDOM = [0, 0.45, 0.9];

export async function runScenario(spec: RunSpec): Promise<RunResult> {
  const started = performance.now();
  const run = new Run(spec);
  try {
    await run.execute();
  } catch (err) {
    run.findings.push(`scenario aborted: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await run.shutdown();
  }
  return {
    findings: run.findings,
    writes: {
      leader: run.disk(0).writes,
      follower: run.disk(1).writes,
      other: run.disk(2).writes,
    },
    crashedAt: run.firstCrash,
    crashes: run.crashCount,
    afterRestart:
      run.target === undefined || run.firstCrash === undefined
        ? []
        : run.disks.get(run.target)!.writes.filter((w) => w.k > run.firstCrash!.k),
    ms: Math.round(performance.now() - started),
  };
}

class Run {
  readonly c = new TestCluster(3);
  readonly disks = new Map<string, CrashDisk>();
  readonly findings: string[] = [];
  readonly target: string | undefined;
  private readonly starting = new Map<string, Promise<void>>();
  private readonly acks: Ack[] = [];
  private readonly sent: DecodedTx[] = [];
  private readonly crashes: Promise<void>[] = [];
  firstCrash: WriteRecord | undefined;
  crashCount = 0;
  private preCrash: RaftFields | undefined;
  private readonly votes = new Map<string, string>();
  private readonly leaders = new Map<number, string>();
  private readonly violations = new Set<string>();
  private rotate = 0;
  private closed = false;

  constructor(private readonly spec: RunSpec) {
    this.c.nodeOptions = { compactEvery: 3, compactKeep: 1 };
    // burst: small blocks, several in flight at once (pipelining; a Ready writes entries while it applies)
    if (spec.scenario === 'burst') this.c.nodeOptions.maxBlockTxs = 3;
    for (const id of this.c.ids) {
      const d = new CrashDisk();
      this.disks.set(id, d);
      this.c.disks.set(id, { chain: d.chain, raft: d.raft });
    }
    this.c.hub.dropRaft = (from, to, frame) => {
      this.observe(from, to, frame);
      return false;
    };
    if (spec.crash) {
      const target = this.c.ids[spec.crash.role === 'leader' ? 0 : 1]!;
      this.target = target;
      this.armTarget(spec.crash.point);
    }
  }

  private armTarget(point: CrashPoint): void {
    const target = this.target!;
    const disk = this.disks.get(target)!;
    const mode = this.spec.crash!.mode;
    disk.arm = {
      point,
      mode,
      onCrash: (w) => {
        this.firstCrash ??= w;
        this.crashes.push(this.crashAndRestart(target, disk, mode));
      },
    };
  }

  disk(i: number): CrashDisk {
    return this.disks.get(this.c.ids[i]!)!;
  }

  private id(i: number): string {
    return this.c.ids[i]!;
  }

  private violation(what: string): void {
    if (this.violations.size < 20) this.violations.add(what);
  }

  // ------------------------------------------------ persist-before-send observer

  private observe(from: string, to: string, frame: Uint8Array): void {
    if (isTxForward(frame)) return;
    let m: Message;
    try {
      m = decodeRaftMessage(frame);
    } catch {
      return;
    }
    const d = this.disks.get(from)?.raft.synced;
    if (!d) return;
    const name = this.name(from);
    const what = `${name} sent ${m.type} (term ${m.term}) to ${this.name(to)}`;
    const pre = m.type === 'preVote' || m.type === 'preVoteResp';
    if (m.term > 0 && !pre && m.term > d.hardState.term)
      this.violation(`${what} while its durable term is ${d.hardState.term}`);
    if (m.type === 'voteResp' && !m.reject) {
      if (d.hardState.term !== m.term || d.hardState.vote !== m.to)
        this.violation(
          `${what}: a vote granted before it was durable (durable ${JSON.stringify(d.hardState)})`,
        );
      const key = `${from}/${m.term}`;
      const before = this.votes.get(key);
      if (before !== undefined && before !== m.to)
        this.violation(`${name} voted twice in term ${m.term}: ${this.name(before)} and ${this.name(m.to)}`);
      this.votes.set(key, m.to);
    }
    if (m.type === 'vote' && (d.hardState.vote !== from || d.hardState.term < m.term))
      this.violation(`${what}: a vote request before its own vote was durable`);
    if (m.type === 'appResp' && !m.reject && !durableHas(d, m.index))
      this.violation(`${what}: acknowledged index ${m.index}, not in its durable log`);
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' || m.type === 'timeoutNow') {
      const l = this.leaders.get(m.term);
      if (l !== undefined && l !== from)
        this.violation(`two leaders in term ${m.term}: ${this.name(l)} and ${name}`);
      this.leaders.set(m.term, from);
    }
  }

  private name(id: string): string {
    const i = this.c.ids.indexOf(id);
    return i < 0 ? id.slice(0, 8) : `node-${i + 1}`;
  }

  // ------------------------------------------------------------ nodes

  private extra(id: string) {
    const i = this.c.ids.indexOf(id);
    const disk = this.disks.get(id)!;
    const r = RANDOM[i]!;
    return {
      random: () => r,
      onFatal: (err: Error) => {
        // the crashed process dying of its own failed write is the crash itself
        if (disk.crashed || err instanceof CrashError) return;
        this.findings.push(`${this.name(id)} fatal error after restart: ${err.message}`);
      },
    };
  }

  private async startNode(id: string): Promise<void> {
    const disk = this.disks.get(id)!;
    const p = this.c.start(id, undefined, this.extra(id)).then(
      () => undefined,
      (err: unknown) => {
        if (disk.crashed || err instanceof CrashError) return; // it crashed while starting
        this.findings.push(`${this.name(id)} refused to start: ${(err as Error).message}`);
      },
    );
    this.starting.set(id, p);
    await p;
  }

  /** kill -9 (in process): cut the node off, fail what it still writes, stop it; then boot it again. */
  private async crashAndRestart(id: string, disk: CrashDisk, mode: CrashMode): Promise<void> {
    await sleep(
      this.spec.lingerMs ?? (mode === 'reject' || mode === 'powerloss' ? 0 : mode === 'lie' ? 200 : 30),
    );
    void this.c.hub.nodes.get(id)?.stop(); // up = false, at once: nothing more in or out
    disk.killing = true;
    disk.releaseHung();
    await this.starting.get(id);
    const node = this.c.nodes.get(id);
    this.c.nodes.delete(id);
    await node?.stop();
    if (mode === 'powerloss') disk.powerLoss();
    this.preCrash = structuredClone(disk.raft.synced);
    disk.revive();
    const then = this.spec.crash?.then;
    if (++this.crashCount === 1 && then) this.armTarget(then);
    if (this.closed) return;
    await sleep(this.spec.restartDelayMs ?? 50);
    if (this.closed) return;
    await this.startNode(id);
    const back = this.c.nodes.get(id);
    if (back) {
      const st = back.raftStatus;
      const pre = this.preCrash.hardState;
      if (st.term < pre.term || (st.term === pre.term && pre.vote !== null && st.vote !== pre.vote))
        this.findings.push(
          `${this.name(id)} came back with term ${st.term} vote ${st.vote}, before the crash ${pre.term} ${pre.vote}`,
        );
    }
  }

  // ------------------------------------------------------------ clients

  /** Submit `t` until a node answers with its receipt, trying the nodes in turn (a client with retries). */
  private async commit(t: DecodedTx, avoid: readonly string[] = []): Promise<void> {
    this.sent.push(t);
    const deadline = Date.now() + 25_000;
    let last = '';
    while (Date.now() < deadline) {
      const live = [...this.c.nodes.values()].filter((n) => !avoid.includes(n.nodeId));
      const node = live[this.rotate++ % Math.max(1, live.length)];
      if (node) {
        try {
          const r = await node.submit(t.tx, { wait: true, timeoutMs: 2000 });
          if (r.status === 'committed') {
            this.acks.push({ tx: t.id, node: node.nodeId, result: r });
            return;
          }
          last = `status ${r.status}`;
        } catch (err) {
          last = `${(err as { code?: string }).code ?? ''} ${(err as Error).message}`;
          const code = (err as { details?: { receiptCode?: string } }).details?.receiptCode;
          if (code !== undefined && code !== 'UNKNOWN_SIGNER')
            this.findings.push(`tx ${t.tx.kind} refused with ${code} by ${this.name(node.nodeId)}`);
        }
      }
      await sleep(50);
    }
    this.findings.push(`tx ${t.tx.kind} ${t.id.slice(0, 8)} never committed (last: ${last})`);
  }

  private async waitConf(what: string, f: (voters: string[], learners: string[]) => boolean): Promise<void> {
    try {
      await this.c.waitFor(
        what,
        () => {
          const l = this.c.leader();
          if (!l) return false;
          const cs = l.raftStatus.confState;
          return f(cs.voters, cs.learners);
        },
        8000,
      );
    } catch {
      this.findings.push(`timed out waiting for ${what}`);
    }
  }

  // ------------------------------------------------------------ scenarios

  async execute(): Promise<void> {
    for (const id of this.c.ids) await this.startNode(id);
    await this.c.waitForLeader();
    const op = this.c.operator;
    const shop = keyFor('crash-shop');
    const blog = keyFor('crash-blog');
    const now = () => ({ timestamp: Date.now() });
    const register = (k: typeof shop, role: 'merchant' | 'affiliate', name: string) =>
      tx('participant.register', op, { participant: pub(k), role, name }, now());
    let order = 0;
    const record = (amount: number) =>
      tx(
        'commission.record',
        shop,
        {
          merchant: pub(shop),
          affiliate: pub(blog),
          amount: String(amount),
          currency: 'EUR',
          orderId: `o-${++order}`,
          description: `order ${order}`,
        },
        now(),
      );
    await this.commit(register(shop, 'merchant', 'shop'));
    await this.commit(register(blog, 'affiliate', 'blog'));
    if (this.spec.scenario === 'steady') {
      const r1 = record(1000);
      await this.commit(r1);
      const r2 = record(300);
      await this.commit(r2);
      await this.commit(tx('commission.approve', shop, { commission: r1.id }, now()));
      // a membership change: a fourth member in the ledger becomes a Raft learner (it never
      // runs), then leaves again; two confChange entries, applied on every node
      const n4 = pub(keyFor('crash-node-4'));
      await this.commit(tx('member.add', op, { node: n4 }, now()));
      await this.waitConf('node 4 to be a Raft learner', (_v, l) => l.includes(n4));
      await this.commit(
        tx(
          'payout.record',
          op,
          { merchant: pub(shop), affiliate: pub(blog), amount: '400', currency: 'EUR', reference: 'p-1' },
          now(),
        ),
      );
      await this.commit(tx('member.remove', op, { node: n4 }, now()));
      await this.waitConf('node 4 to leave Raft', (v, l) => !v.includes(n4) && !l.includes(n4));
      await this.commit(record(50));
      await this.commit(
        tx('commission.reverse', shop, { commission: r2.id, amount: '100', reason: 'x' }, now()),
      );
      await this.commit(record(75));
    } else if (this.spec.scenario === 'burst') {
      // many clients at once: several blocks in flight, Readies that write entries while
      // they apply earlier ones, commit indexes that cover a Ready's own entries
      const batch = (n: number) => Array.from({ length: n }, (_, i) => this.commit(record(10 + i)));
      await Promise.all(batch(12));
      await this.commit(tx('commission.approve', shop, { commission: this.sent[2]!.id }, now()));
      await Promise.all(batch(12));
    } else {
      // node-2 is cut off while the others commit and compact past it; healed, it is sent the
      // leader's snapshot and fetches the blocks in the background (startRestore)
      const lagging = this.id(1);
      this.c.hub.isolate(lagging);
      for (let i = 0; i < 6; i++) await this.commit(record(100 + i), [lagging]);
      this.c.hub.heal();
      for (let i = 0; i < 4; i++) await this.commit(record(200 + i));
    }
  }

  /** After the scenario: the crashed node back, every node converged, then every check. */
  async shutdown(): Promise<void> {
    try {
      // an armed write that comes after the last receipt (a follower applying the last block)
      // still counts: wait for it, or for the nodes to settle
      const armed = this.target === undefined ? undefined : this.disks.get(this.target)!;
      for (let i = 0; i < this.crashes.length; i++) await this.crashes[i];
      if (armed?.arm && !armed.crashed) {
        await this.c
          .waitFor('the armed write, or quiet', () => armed.crashed || this.settled(), 3000)
          .catch(() => undefined);
        if (!armed.crashed) await sleep(150); // the commit index follows a heartbeat later
      }
      // crashes happen during the scenario only: one still to come is not armed any more
      for (const d of this.disks.values()) if (!d.crashed) d.arm = undefined;
      for (let i = 0; i < this.crashes.length; i++) await this.crashes[i];
      if (this.target && !this.c.nodes.has(this.target) && this.disks.get(this.target)!.crashed === false)
        this.findings.push(`${this.name(this.target)} is not running at the end`);
      if (this.findings.length === 0 || this.findings.every((f) => !f.startsWith('scenario aborted')))
        await this.verify();
    } catch (err) {
      this.findings.push(`verification aborted: ${(err as Error).stack ?? String(err)}`);
    } finally {
      this.closed = true;
      for (const v of this.violations) this.findings.push(`raft: ${v}`);
      this.c.hub.dropRaft = undefined;
      await this.c.stopAll();
    }
  }

  /** all three nodes up, at one head, with a leader */
  private settled(): boolean {
    const ns = [...this.c.nodes.values()];
    if (ns.length !== 3) return false;
    const st = ns.map((n) => n.status());
    return st.every((s) => s.height === st[0]!.height && s.headHash === st[0]!.headHash && s.leader !== null);
  }

  private async verify(): Promise<void> {
    const c = this.c;
    if (this.spec.crash && this.crashCount < (this.spec.crash.then ? 2 : 1))
      this.findings.push(`(no crash: the armed write never came; crashes: ${this.crashCount})`);
    const nodes = () => [...c.nodes.values()];
    // the deadline is generous: a node may have to sit out an election timeout or a restore
    try {
      await c.waitFor('convergence', () => this.settled(), this.spec.convergeMs ?? 20_000);
    } catch {
      const st = nodes().map(
        (n) => `${this.name(n.nodeId)} height ${n.status().height} ${n.raftStatus.role}`,
      );
      this.findings.push(`the cluster did not converge: ${st.join(', ')}`);
      return;
    }
    // a node may be ahead in a store write by one microtask: give the last apply a moment
    await sleep(20);
    const ref = nodes()[0]!;
    const height = ref.status().height;
    const blocks: Uint8Array[] = [];
    for (let h = 0; h <= height; h++) blocks.push((await this.chainOf(ref).store.getBlock(h))!);
    // 1. the same block bytes at every height on every node, nothing above the head
    for (const n of nodes()) {
      const store = this.disks.get(n.nodeId)!.chain;
      for (let h = 0; h <= height; h++) {
        const b = store.data.get(chainKeys.block(h));
        if (!b || !Buffer.from(b).equals(Buffer.from(blocks[h]!)))
          this.findings.push(`${this.name(n.nodeId)} holds another block at height ${h}`);
      }
      if (store.data.has(chainKeys.block(height + 1)))
        this.findings.push(`${this.name(n.nodeId)} holds a block above the head ${height}`);
    }
    // 2. re-execute the chain from genesis: every store equal, key for key
    const replay = new MemoryStore();
    const chain = await LedgerChain.open(replay);
    const decoded: DecodedBlock[] = [];
    for (const bytes of blocks) {
      const block = decodeBlock(parseBlock(JSON.parse(Buffer.from(bytes).toString('utf8'))));
      decoded.push(block);
      await chain.commit(block, { checkSignatures: true });
    }
    for (const n of nodes()) {
      const store = this.disks.get(n.nodeId)!.chain;
      const diff = diffStores(replay.data, store.data);
      if (diff.length > 0)
        this.findings.push(
          `${this.name(n.nodeId)} chain store differs from a re-execution: ${diff.join('; ')}`,
        );
      const state = this.chainOf(n).state.records;
      const mem: string[] = [];
      for (const [k, v] of chain.state.records) {
        const mine = state.get(k);
        if (!mine || !Buffer.from(encodeRecord(mine)).equals(Buffer.from(encodeRecord(v)))) mem.push(k);
      }
      for (const k of state.keys()) if (!chain.state.records.has(k)) mem.push(`${k} (extra)`);
      if (mem.length > 0)
        this.findings.push(
          `${this.name(n.nodeId)} in-memory ledger state differs from a re-execution: ${mem.slice(0, 5).join(', ')}`,
        );
    }
    // 3. every transaction once; every receipt a client got is the chain's
    const seen = new Map<string, number[]>();
    for (const b of decoded)
      for (const t of b.txs) seen.set(t.id, [...(seen.get(t.id) ?? []), b.block.header.height]);
    for (const [id, hs] of seen)
      if (hs.length > 1)
        this.findings.push(
          `tx ${id.slice(0, 8)} is in the chain ${hs.length} times (heights ${hs.join(', ')})`,
        );
    for (const t of this.sent)
      if (!seen.has(t.id)) this.findings.push(`tx ${t.tx.kind} ${t.id.slice(0, 8)} is not in the chain`);
    for (const a of this.acks) {
      const loc = replay.data.get(chainKeys.tx(a.tx));
      if (!loc) {
        this.findings.push(`acknowledged tx ${a.tx.slice(0, 8)} is not in the chain`);
        continue;
      }
      const { height: h, index } = parseTxLocation(loc);
      const receipt = JSON.parse(
        Buffer.from(replay.data.get(chainKeys.receipt(h, index))!).toString('utf8'),
      ) as Receipt;
      if (decoded[h]!.hash !== a.result.blockHash || !isDeepStrictEqual(receipt, a.result.receipt))
        this.findings.push(
          `the receipt ${this.name(a.node)} gave for tx ${a.tx.slice(0, 8)} is not the chain's (block ${h})`,
        );
      if (receipt.code !== 'OK') this.findings.push(`tx ${a.tx.slice(0, 8)} committed with ${receipt.code}`);
    }
    // 4. Raft: committed entries agree everywhere; the crashed node kept what it had durably committed
    const logs = new Map<string, PersistedRaftState>();
    for (const n of nodes()) logs.set(n.nodeId, await this.disks.get(n.nodeId)!.raft.load());
    const terms = new Map<number, { term: number; node: string }>();
    for (const [id, s] of logs) {
      for (const e of s.entries) {
        if (e.index > s.hardState.commit) continue;
        const other = terms.get(e.index);
        if (other && other.term !== e.term)
          this.findings.push(
            `committed entry ${e.index}: term ${e.term} on ${this.name(id)}, ${other.term} on ${this.name(other.node)}`,
          );
        else terms.set(e.index, { term: e.term, node: id });
      }
    }
    if (this.target && this.preCrash) {
      const now = logs.get(this.target);
      const pre = this.preCrash;
      if (now) {
        if (now.hardState.term < pre.hardState.term)
          this.findings.push(
            `${this.name(this.target)}: term went back from ${pre.hardState.term} to ${now.hardState.term}`,
          );
        const snapIndex = now.snapshot?.meta.index ?? 0;
        for (const e of pre.entries) {
          if (e.index > pre.hardState.commit || e.index <= snapIndex) continue;
          const kept = now.entries.find((x) => x.index === e.index);
          if (!kept || kept.term !== e.term)
            this.findings.push(`${this.name(this.target)} lost committed entry ${e.index} (term ${e.term})`);
        }
      }
    }
  }

  private chainOf(n: LedgerNode): LedgerChain {
    return (n as unknown as { opts: { chain: LedgerChain } }).opts.chain;
  }
}

function durableHas(d: RaftFields, index: number): boolean {
  if (index <= (d.snapshot?.meta.index ?? 0)) return true;
  return d.entries.some((e) => e.index === index);
}

function diffStores(want: Map<string, Uint8Array>, have: Map<string, Uint8Array>): string[] {
  const out: string[] = [];
  for (const [k, v] of want) {
    const h = have.get(k);
    if (!h) out.push(`missing ${k}`);
    else if (!Buffer.from(h).equals(Buffer.from(v))) out.push(`other value at ${k}`);
  }
  for (const k of have.keys()) if (!want.has(k)) out.push(`extra ${k}`);
  return out.slice(0, 6);
}

/** The crash points of a dry run's writes for one role: every write, as (label, occurrence). */
export function pointsOf(writes: readonly WriteRecord[]): CrashPoint[] {
  return writes.map((w) => ({ label: w.label, occurrence: w.occurrence, k: w.k }));
}

export const describePoint = (p: CrashPoint) =>
  `${p.label}#${p.occurrence}${p.k === undefined ? '' : ` (k=${p.k})`}`;
