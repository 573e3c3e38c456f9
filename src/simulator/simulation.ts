import {
  applyConfChangeToConfState,
  type ConfChange,
  type ConfState,
  type Message,
  type SnapshotMeta,
} from '../consensus/index.js';
import type { NodeId } from '../storage/raft/types.js';
import { Clients, type ClusterAccess } from './clients.js';
import { describeKvOperation, kvModel } from './kv-model.js';
import type { KvStore } from './kv-store.js';
import { checkLinearizable } from './linearizability.js';
import { SimNetwork } from './network.js';
import { describeParams, drawParams, type RunParams, type Schedule } from './params.js';
import { deriveSeed, Prng } from './prng.js';
import { SafetyChecker } from './safety.js';
import { SimNode, type CrashPoint } from './sim-node.js';
import { describeMessage } from './trace.js';
import { SimViolation, type ViolationKind } from './violation.js';

export interface SimConfig {
  seed: number;
  /** Founding voters: 3, 5 or 7. */
  nodes: number;
  /** Ticks of the fault phase; the calm phase that checks liveness comes after. */
  steps: number;
  schedule?: Schedule;
  /** Run the core with its deliberate Figure-8 bug (the simulator's self-test). */
  faulty?: boolean;
  /** Receives every transcript line (messages, crashes, client events), prefixed with the tick. */
  trace?: (line: string) => void;
}

export interface SimStats {
  ticks: number;
  messages: number;
  crashes: number;
  leaderChanges: number;
  maxTerm: number;
  committed: number;
  confChanges: number;
  snapshotsSent: number;
  writesAcked: number;
  reads: number;
  duplicatesInLog: number;
  /** Ticks from the end of the faults to a leader, and to every pending op done. */
  ticksToLeader: number;
  ticksToDrain: number;
  ticksToConverge: number;
  /** How often each kind of fault and event happened (coverage: 'crash.afterPersist', 'conf.removeLeader', ...). */
  events: Record<string, number>;
}

export interface SimResult {
  seed: number;
  config: Required<Omit<SimConfig, 'trace'>>;
  params: string;
  ok: boolean;
  violation?: { kind: ViolationKind; message: string; tick: number };
  stats: SimStats;
}

/** Bounds of the calm phase, in election timeouts (electionTick each). */
const ELECTION_BOUND = 10;
const DRAIN_BOUND = 30;
const CONVERGE_BOUND = 30;

/** Run one simulation. Pure function of `config` (the trace sink aside). */
export function runSimulation(config: SimConfig): SimResult {
  return new Simulation(config).run();
}

export function replayCommand(r: Pick<SimResult, 'seed' | 'config'>): string {
  const c = r.config;
  return (
    `npm run sim -- --seed ${r.seed} --nodes ${c.nodes} --steps ${c.steps}` +
    (c.schedule !== 'mixed' ? ` --schedule ${c.schedule}` : '') +
    (c.faulty ? ' --faulty' : '')
  );
}

class Simulation implements ClusterAccess {
  private readonly cfg: Required<Omit<SimConfig, 'trace'>>;
  private readonly params: RunParams;
  private readonly rngFaults: Prng;
  private readonly rngSched: Prng;
  private readonly network: SimNetwork<Message>;
  readonly checker = new SafetyChecker();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients: Clients;
  private readonly traceSink: ((line: string) => void) | undefined;
  /** Membership as committed (first application of each confChange entry anywhere). */
  private membership: ConfState;
  private readonly confApplied = new Set<number>();
  /** Membership after each change, by the index of the change (the bootstrap is index 1). */
  private readonly confHistory: { index: number; cs: ConfState }[] = [];
  private readonly restartAt = new Map<NodeId, number>();
  private readonly retireAt = new Map<NodeId, number>();
  private partitionUntil = 0;
  private nextNodeNumber: number;
  private now = 0;
  private calm = false;
  private lastLeader: { id: NodeId | null; term: number } = { id: null, term: 0 };
  /** Tick at which the current leader dies (leaderLifetime schedules), or 0. */
  private leaderDeath = 0;
  private readonly stats: SimStats = {
    ticks: 0,
    messages: 0,
    crashes: 0,
    leaderChanges: 0,
    maxTerm: 0,
    committed: 0,
    confChanges: 0,
    snapshotsSent: 0,
    writesAcked: 0,
    reads: 0,
    duplicatesInLog: 0,
    ticksToLeader: 0,
    ticksToDrain: 0,
    ticksToConverge: 0,
    events: {},
  };

  constructor(config: SimConfig) {
    this.cfg = {
      seed: config.seed >>> 0,
      nodes: config.nodes,
      steps: config.steps,
      schedule: config.schedule ?? 'mixed',
      faulty: config.faulty ?? false,
    };
    this.traceSink = config.trace;
    const root = new Prng(this.cfg.seed);
    this.params = drawParams(root.fork('params'), this.cfg.schedule, this.cfg.faulty);
    this.rngFaults = root.fork('faults');
    this.rngSched = root.fork('schedule');
    this.network = new SimNetwork<Message>(root.fork('network'), this.params.network);
    this.clients = new Clients(this.params.clients, root.fork('clients'), this);
    const founders = Array.from({ length: this.cfg.nodes }, (_, i) => `n${i + 1}`);
    this.nextNodeNumber = this.cfg.nodes + 1;
    this.membership = { voters: [...founders], learners: [] };
    this.confHistory.push({ index: 1, cs: this.membership });
    for (const id of founders) this.addNode(id, { voters: [...founders], learners: [] });
  }

  run(): SimResult {
    let violation: SimResult['violation'];
    try {
      for (this.now = 1; this.now <= this.cfg.steps; this.now++) {
        this.tickCluster();
        this.injectFaults();
      }
      this.calmDown();
    } catch (err) {
      if (!(err instanceof SimViolation)) {
        // A throw from the core (or the driver) is a finding too: report it with the seed.
        const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        violation = { kind: 'coreError', message, tick: this.now };
      } else {
        violation = { kind: err.kind, message: err.message.slice(err.kind.length + 2), tick: this.now };
      }
      this.trace(`VIOLATION ${violation.kind}: ${violation.message}`);
    }
    this.stats.ticks = this.now;
    this.stats.maxTerm = Math.max(0, ...[...this.nodes.values()].map((n) => n.term));
    this.stats.committed = this.checker.maxCommitted;
    this.stats.writesAcked = this.clients.acknowledged.size;
    this.stats.reads = this.clients.history.filter((op) => op.input.kind === 'read').length;
    this.stats.events['client.retry'] = this.clients.retries;
    this.stats.events['client.abandon'] = this.clients.abandoned;
    this.stats.events['snapshot.sent'] = this.stats.snapshotsSent;
    this.stats.events['log.duplicates'] = this.stats.duplicatesInLog;
    return {
      seed: this.cfg.seed,
      config: this.cfg,
      params: describeParams(this.params),
      ok: violation === undefined,
      ...(violation !== undefined ? { violation } : {}),
      stats: this.stats,
    };
  }

  count(event: string): void {
    this.stats.events[event] = (this.stats.events[event] ?? 0) + 1;
  }

  // ---- one tick -------------------------------------------------------------

  private tickCluster(): void {
    const { deliver, blocked } = this.network.takeDue(this.now);
    if (this.traceSink !== undefined)
      for (const env of blocked) this.trace(`drop (partition) ${describeMessage(env.msg)}`);
    for (const env of deliver) {
      const node = this.nodes.get(env.to);
      if (node === undefined || !node.alive) {
        if (this.traceSink !== undefined) this.trace(`drop (${env.to} down) ${describeMessage(env.msg)}`);
        continue;
      }
      if (this.traceSink !== undefined) this.trace(`deliver ${describeMessage(env.msg)}`);
      node.step(env.msg);
      // Sometimes handle each message's Ready at once, sometimes batch a tick's worth.
      if (this.rngSched.chance(0.5)) node.drain();
    }
    for (const node of this.liveNodes()) {
      if (!this.calm && this.rngSched.chance(this.params.faults.tickSkip)) continue;
      node.tick();
    }
    this.drainAll();
    this.clients.step(this.now);
    this.drainAll();
    this.compact();
    this.observeLeader();
  }

  private drainAll(): void {
    for (const node of this.nodes.values()) node.drain();
  }

  private compact(): void {
    const every = this.params.faults.compactEvery;
    for (const node of this.liveNodes()) {
      const log = node.log;
      const kv = node.kv;
      if (log !== null && kv !== null && kv.appliedIndex - log.firstIndex() + 1 >= every) node.compact();
    }
  }

  private observeLeader(): void {
    const leader = this.currentLeader();
    if (leader !== null && (leader.id !== this.lastLeader.id || leader.term !== this.lastLeader.term)) {
      this.lastLeader = { id: leader.id, term: leader.term };
      this.stats.leaderChanges++;
      const lifetime = this.params.faults.leaderLifetime;
      if (lifetime !== null && !this.calm) this.leaderDeath = this.now + this.rngFaults.range(...lifetime);
    }
  }

  // ---- faults ---------------------------------------------------------------

  private injectFaults(): void {
    const f = this.params.faults;
    const rng = this.rngFaults;
    for (const [id, at] of this.restartAt) {
      if (at > this.now) continue;
      this.restartAt.delete(id);
      const node = this.nodes.get(id);
      if (node !== undefined && !node.alive && !node.retired) node.start();
    }
    for (const [id, at] of this.retireAt) {
      if (at > this.now) continue;
      this.retireAt.delete(id);
      this.nodes.get(id)?.retire();
      this.restartAt.delete(id);
    }
    if (this.partitionUntil > 0 && this.now >= this.partitionUntil) {
      this.network.heal();
      this.partitionUntil = 0;
      this.trace('partition heals');
    }
    if (this.leaderDeath > 0 && this.now >= this.leaderDeath) {
      this.leaderDeath = 0;
      const leader = this.currentLeader();
      if (leader !== null) {
        if (this.partitionUntil === 0 && rng.chance(0.3)) {
          this.network.isolate(leader.id, [...this.nodes.keys()]);
          this.partitionUntil = this.now + rng.range(...f.partitionLength);
          this.trace(`partition: leader ${leader.id} isolated`);
        } else {
          leader.crash('leader lifetime over');
          this.count('crash.leaderLifetime');
          this.stats.crashes++;
          this.restartAt.set(leader.id, this.now + rng.range(f.downtime[0], f.downtime[1]));
        }
      }
    }
    if (rng.chance(f.crash)) {
      const leader = this.currentLeader();
      const live = this.liveNodes();
      const victim =
        leader !== null && rng.chance(f.crashLeader) ? leader : live.length > 0 ? rng.pick(live) : null;
      if (victim !== null) {
        victim.crash(victim === leader ? 'leader crash' : 'crash');
        this.count(victim === leader ? 'crash.leader' : 'crash.node');
        this.stats.crashes++;
        this.restartAt.set(victim.id, this.now + rng.range(f.downtime[0], f.downtime[1]));
      }
    }
    if (this.partitionUntil === 0 && rng.chance(f.partition)) this.partition();
    if (rng.chance(f.confChange)) this.changeMembership();
    if (rng.chance(f.transfer)) this.transferLeadership();
  }

  private partition(): void {
    const rng = this.rngFaults;
    const ids = [...this.nodes.values()].filter((n) => !n.retired).map((n) => n.id);
    const leader = this.currentLeader();
    const kind = rng.int(4);
    const [lo, hi] = this.params.faults.partitionLength;
    this.partitionUntil = this.now + rng.range(lo, hi);
    if (kind === 0) {
      // Cut one node off (the leader, often).
      const victim = leader !== null && rng.chance(0.5) ? leader.id : rng.pick(ids);
      this.network.isolate(victim, ids);
      this.count('partition.isolate');
      this.trace(`partition: ${victim} isolated`);
    } else if (kind === 1) {
      // Split in two random sides.
      const shuffled = rng.shuffle([...ids]);
      const cut = rng.range(1, shuffled.length - 1);
      const a = shuffled.slice(0, cut);
      const b = shuffled.slice(cut);
      this.network.partition(a, b);
      this.count('partition.split');
      this.trace(`partition: {${a.join(',')}} | {${b.join(',')}}`);
    } else if (kind === 2) {
      // Asymmetric: a node can send but hears nothing (or the other way round).
      const victim = leader !== null && rng.chance(0.5) ? leader.id : rng.pick(ids);
      const deaf = rng.chance(0.5);
      for (const other of ids) {
        if (other === victim) continue;
        if (deaf) this.network.cutLink(other, victim);
        else this.network.cutLink(victim, other);
      }
      this.count('partition.asymmetric');
      this.trace(`partition: ${victim} ${deaf ? 'hears nobody' : 'reaches nobody'} (asymmetric)`);
    } else {
      // Random one-way link cuts.
      const cuts: string[] = [];
      for (const a of ids)
        for (const b of ids)
          if (a !== b && rng.chance(0.25)) {
            this.network.cutLink(a, b);
            cuts.push(`${a}->${b}`);
          }
      this.count('partition.links');
      this.trace(`partition: links cut ${cuts.join(' ')}`);
    }
  }

  private changeMembership(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const rng = this.rngFaults;
    const { voters, learners } = this.membership;
    const options: ConfChange[] = [];
    if (learners.length < 2 && voters.length + learners.length < this.cfg.nodes + 2) {
      options.push({ type: 'addLearner', nodeId: `n${this.nextNodeNumber}` });
    }
    for (const l of learners) options.push({ type: 'promoteLearner', nodeId: l });
    if (voters.length > 3) for (const v of voters) options.push({ type: 'removeNode', nodeId: v });
    for (const l of learners) options.push({ type: 'removeNode', nodeId: l });
    if (options.length === 0) return;
    // Removing the leader itself is the interesting case: give it a fair share.
    const cc =
      voters.length > 3 && rng.chance(0.2)
        ? { type: 'removeNode' as const, nodeId: leader.id }
        : rng.pick(options);
    const ok = leader.proposeConfChange(cc);
    this.trace(`operator: ${cc.type} ${cc.nodeId} via ${leader.id}${ok ? '' : ' (refused)'}`);
    if (ok && cc.type === 'addLearner') this.nextNodeNumber++;
    if (ok)
      this.count(
        cc.type === 'removeNode' && cc.nodeId === leader.id ? 'conf.proposeRemoveLeader' : `conf.propose`,
      );
    leader.drain();
  }

  private transferLeadership(): void {
    const leader = this.currentLeader();
    if (leader === null) return;
    const targets = this.membership.voters.filter((v) => v !== leader.id);
    if (targets.length === 0) return;
    const to = this.rngFaults.pick(targets);
    const ok = leader.transferLeadership(to);
    if (ok) this.count('transfer');
    this.trace(`operator: transfer leadership ${leader.id} -> ${to}${ok ? '' : ' (refused)'}`);
    leader.drain();
  }

  /**
   * A node applied a membership change. The first application of each one is the
   * operator's cue (start an added node, shut a removed one down); every
   * application is checked to reach the same membership.
   */
  onConfChangeApplied(node: NodeId, index: number, cc: ConfChange, result: ConfState): void {
    if (!this.confApplied.has(index)) {
      this.confApplied.add(index);
      this.stats.confChanges++;
      this.count(`conf.${cc.type}`);
      if (cc.type === 'removeNode' && this.nodes.get(cc.nodeId)?.role === 'leader')
        this.count('conf.removeLeader');
      this.membership = applyConfChangeToConfState(this.membership, cc);
      this.confHistory.push({ index, cs: this.membership });
      this.trace(
        `membership now voters {${this.membership.voters.join(',')}} learners {${this.membership.learners.join(',')}}`,
      );
      if (cc.type === 'addLearner' && !this.nodes.has(cc.nodeId)) this.addNode(cc.nodeId, null);
      if (cc.type === 'removeNode') {
        // The operator shuts the removed server down a little later.
        this.retireAt.set(cc.nodeId, this.now + (this.calm ? 0 : this.rngFaults.range(0, 30)));
      }
    }
    this.checkMembership(node, `after applying the change at ${index}`, index, result);
  }

  onSnapshotInstalled(node: NodeId, meta: SnapshotMeta): void {
    this.checkMembership(node, `in its snapshot at ${meta.index}`, meta.index, meta.confState);
  }

  /** Membership as of log index `index` (the last change at or before it). */
  private membershipAt(index: number): ConfState | undefined {
    for (let i = this.confHistory.length - 1; i >= 0; i--) {
      const h = this.confHistory[i];
      if (h !== undefined && h.index <= index) return h.cs;
    }
    return undefined;
  }

  private checkMembership(node: NodeId, where: string, index: number, cs: ConfState): void {
    const expected = this.membershipAt(index);
    if (expected === undefined || sameMembers(expected, cs)) return;
    throw new SimViolation(
      'stateMachineSafety',
      `${node} has voters {${cs.voters.join(',')}} learners {${cs.learners.join(',')}} ${where}, ` +
        `but the committed membership there is voters {${expected.voters.join(',')}} learners {${expected.learners.join(',')}}`,
    );
  }

  private addNode(id: NodeId, bootstrap: ConfState | null): void {
    const node = new SimNode(id, bootstrap, this.params.raft, new Prng(deriveSeed(this.cfg.seed, id)), this);
    this.nodes.set(id, node);
    node.start();
  }

  // ---- the calm phase: liveness and the end-of-run checks --------------------

  private calmDown(): void {
    this.calm = true;
    const start = this.now;
    const electionTick = this.params.raft.electionTick ?? 10;
    this.trace('FAULTS STOP: heal partitions, restart crashed nodes, calm network');
    this.network.heal();
    this.partitionUntil = 0;
    this.network.faults = { ...this.network.faults, dropRate: 0, duplicateRate: 0, longDelayRate: 0 };
    for (const id of this.retireAt.keys()) this.nodes.get(id)?.retire();
    this.retireAt.clear();
    this.restartAt.clear();
    // Often the last fault takes the leader down, so that liveness includes an election from scratch.
    const leader = this.currentLeader();
    if (leader !== null && this.rngFaults.chance(0.5)) {
      leader.crash('last fault: leader crash');
      this.count('crash.leaderAtCalm');
      this.stats.crashes++;
    }
    for (const node of this.nodes.values()) if (!node.alive && !node.retired) node.start();
    this.clients.mayAbandon = false;
    this.clients.accepting = false;

    const until = (what: string, bound: number, done: () => boolean): number => {
      const from = this.now;
      while (!done()) {
        if (this.now - from >= bound) {
          throw new SimViolation(
            'liveness',
            `${what} within ${bound} ticks after the faults stopped (tick ${start})`,
          );
        }
        this.now++;
        this.tickCluster();
        this.retireRemoved();
      }
      return this.now - from;
    };
    this.stats.ticksToLeader = until(
      'no stable leader',
      ELECTION_BOUND * electionTick,
      () => this.stableLeader() !== null,
    );
    this.stats.ticksToDrain = until(
      `client ops still pending [${this.clients.describePending().join('; ')}]`,
      DRAIN_BOUND * electionTick,
      () => this.clients.busy === 0,
    );
    // Catching a far-behind member up may take a round trip per entry (one-entry appends, probing):
    // the bound grows with the log, but it is still a bound.
    const roundTrip = 2 * this.params.network.maxDelay + 2;
    const convergeBound = CONVERGE_BOUND * electionTick + this.checker.maxCommitted * roundTrip;
    this.stats.ticksToConverge = until('members did not converge on the committed log', convergeBound, () =>
      this.converged(),
    );
    this.finalChecks();
  }

  /** In the calm phase the operator shuts removed nodes down at once. */
  private retireRemoved(): void {
    for (const id of this.retireAt.keys()) this.nodes.get(id)?.retire();
    this.retireAt.clear();
    for (const node of this.nodes.values())
      if (!node.alive && !node.retired && this.isMember(node.id)) node.start();
  }

  private isMember(id: NodeId): boolean {
    return this.membership.voters.includes(id) || this.membership.learners.includes(id);
  }

  private members(): SimNode[] {
    return [...this.nodes.values()].filter((n) => this.isMember(n.id) && !n.retired);
  }

  /** A leader that is a voter and whose term no live member has passed. */
  private stableLeader(): SimNode | null {
    const leader = this.currentLeader();
    if (leader === null || !this.membership.voters.includes(leader.id)) return null;
    const maxTerm = Math.max(...this.members().map((n) => n.term));
    return leader.term >= maxTerm ? leader : null;
  }

  private converged(): boolean {
    const leader = this.stableLeader();
    if (leader === null) return false;
    // Everything ever committed anywhere (acknowledged writes included) is applied on every member.
    const target = this.checker.maxCommitted;
    if (leader.commit < target) return false;
    return this.members().every((n) => n.alive && n.kv !== null && n.kv.appliedIndex >= target);
  }

  private finalChecks(): void {
    // Exactly once: every acknowledged write appears once in every live member's history.
    for (const node of this.members()) {
      const kv = node.kv;
      if (kv === null) continue;
      this.stats.duplicatesInLog = Math.max(this.stats.duplicatesInLog, kv.duplicatesSkipped);
      const counts = new Map<string, number>();
      for (const id of kv.history) counts.set(id, (counts.get(id) ?? 0) + 1);
      for (const id of this.clients.acknowledged) {
        const n = counts.get(id) ?? 0;
        if (n !== 1) {
          throw new SimViolation(
            'exactlyOnce',
            `acknowledged write ${id} took effect ${n} times on ${node.id}`,
          );
        }
      }
    }
    this.clients.closeHistory();
    const result = checkLinearizable(kvModel, this.clients.history);
    if (result.outcome === 'illegal') {
      const ops = result.partition.map((op) => `  ${describeKvOperation(op)}`);
      throw new SimViolation(
        'linearizability',
        `history of key ${result.partition[0]?.input.key ?? '?'} is not linearizable ` +
          `(longest linearizable prefix: ${result.longestLinearized.length} of ${ops.length} ops):\n${ops.slice(-40).join('\n')}`,
      );
    }
    if (result.outcome === 'unknown') this.trace('linearizability check gave up (search too large)');
  }

  // ---- helpers and ClusterAccess ------------------------------------------------

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The live node that believes it leads, in the highest term. */
  private currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values())
      if (n.role === 'leader' && (best === null || n.term > best.term)) best = n;
    return best;
  }

  send(msg: Message): void {
    this.stats.messages++;
    if (msg.type === 'snap') this.stats.snapshotsSent++;
    const outcome = this.network.send(msg.from, msg.to, msg, this.now);
    if (this.traceSink !== undefined && outcome !== 'queued')
      this.trace(`${outcome} ${describeMessage(msg)}`);
  }

  crashPoint(node: NodeId): CrashPoint | null {
    if (this.calm || !this.rngFaults.chance(this.params.faults.crashInReady)) return null;
    const point = this.rngFaults.pick<CrashPoint>(['beforePersist', 'afterPersist', 'afterSend']);
    this.count(`crash.${point}`);
    this.stats.crashes++;
    this.restartAt.set(node, this.now + this.rngFaults.range(...this.params.faults.downtime));
    return point;
  }

  trace(line: string): void {
    if (this.traceSink !== undefined) this.traceSink(`${String(this.now).padStart(5)} ${line}`);
  }

  reachableNodes(): NodeId[] {
    return this.liveNodes().map((n) => n.id);
  }

  propose(node: NodeId, data: Uint8Array): boolean {
    const n = this.nodes.get(node);
    if (n === undefined) return false;
    const ok = n.propose(data);
    n.drain();
    return ok;
  }

  readIndex(node: NodeId, context: Uint8Array): boolean {
    const n = this.nodes.get(node);
    if (n === undefined) return false;
    const ok = n.readIndex(context);
    n.drain();
    return ok;
  }

  readState(node: NodeId, context: string): number | undefined {
    return this.nodes.get(node)?.takeReadState(context);
  }

  leaderHint(node: NodeId): NodeId | null {
    return this.nodes.get(node)?.leaderHint ?? null;
  }

  kv(node: NodeId): KvStore | null {
    return this.nodes.get(node)?.kv ?? null;
  }
}

function sameMembers(a: ConfState, b: ConfState): boolean {
  const norm = (ids: readonly string[]): string => [...ids].sort().join(',');
  return norm(a.voters) === norm(b.voters) && norm(a.learners) === norm(b.learners);
}
