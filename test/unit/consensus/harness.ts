// A tiny in-process cluster for scripted Raft scenarios (etcd's
// testdata/*.txt style): build N nodes, then `tick`, `deliverAll`, `drop`,
// `partition`, `stabilize`. Each node's MemoryStorage stands for its disk
// (the driver appends to it only after "persisting"); the applied state
// machine is volatile and rebuilt from the snapshot on restart.
import {
  MemoryStorage,
  RaftNode,
  decodeConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftFaults,
  type ReadState,
  type Ready,
  type Snapshot,
} from '../../../src/consensus/index.js';

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface AppliedEntry {
  index: number;
  term: number;
  type: Entry['type'];
  data: string;
}

export interface HarnessNode {
  id: NodeId;
  raft: RaftNode;
  /** The "disk": what this node has persisted. */
  storage: MemoryStorage;
  /** The state machine: every applied entry, by index order. */
  applied: AppliedEntry[];
  readStates: ReadState[];
  alive: boolean;
  /** Founding members bootstrap from the initial membership when their disk is empty. */
  founding: boolean;
}

export interface ClusterOptions {
  voters: NodeId[];
  learners?: NodeId[];
  seed?: number;
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxMsgEntries?: number;
  maxMsgBytes?: number;
  maxInflight?: number;
  faults?: RaftFaults;
  /**
   * Preset logs (etcd paper-test style): the node's term and the terms of its
   * entries from index 2 on (index 1 is the bootstrap snapshot). Entry data is
   * `t<term>i<index>`.
   */
  logs?: Record<NodeId, { term: number; entryTerms: number[] }>;
}

type Filter = (m: Message) => boolean;

export class Cluster {
  readonly nodes = new Map<NodeId, HarnessNode>();
  /** Messages sent and not yet delivered or dropped. */
  network: Message[] = [];
  /** Every message ever delivered, for assertions. */
  readonly delivered: Message[] = [];
  readonly leadersByTerm = new Map<number, NodeId>();
  private readonly cuts = new Set<string>();
  private filter: Filter | null = null;
  private readonly random: () => number;
  private readonly conf: ConfState;

  constructor(readonly options: ClusterOptions) {
    this.random = seededRandom(options.seed ?? 1);
    this.conf = { voters: [...options.voters], learners: [...(options.learners ?? [])] };
    for (const id of [...this.conf.voters, ...this.conf.learners]) {
      const preset = options.logs?.[id];
      let storage = new MemoryStorage();
      if (preset !== undefined) storage = presetStorage(this.conf, preset);
      this.nodes.set(id, this.build(id, storage, true));
    }
    this.flush();
  }

  /** The RaftConfig every node here gets; tests may override fields. */
  config(id: NodeId, storage: MemoryStorage, bootstrap: boolean, applied?: number): RaftConfig {
    const o = this.options;
    const cfg: RaftConfig = { id, storage, random: this.random };
    if (bootstrap) cfg.bootstrap = { voters: [...this.conf.voters], learners: [...this.conf.learners] };
    if (o.electionTick !== undefined) cfg.electionTick = o.electionTick;
    if (o.heartbeatTick !== undefined) cfg.heartbeatTick = o.heartbeatTick;
    if (o.preVote !== undefined) cfg.preVote = o.preVote;
    if (o.checkQuorum !== undefined) cfg.checkQuorum = o.checkQuorum;
    if (o.maxMsgEntries !== undefined) cfg.maxMsgEntries = o.maxMsgEntries;
    if (o.maxMsgBytes !== undefined) cfg.maxMsgBytes = o.maxMsgBytes;
    if (o.maxInflight !== undefined) cfg.maxInflight = o.maxInflight;
    if (o.faults !== undefined) cfg.faults = o.faults;
    if (applied !== undefined) cfg.applied = applied;
    return cfg;
  }

  private build(id: NodeId, storage: MemoryStorage, bootstrap: boolean): HarnessNode {
    const node: HarnessNode = {
      id,
      storage,
      raft: new RaftNode(this.config(id, storage, bootstrap)),
      applied: [],
      readStates: [],
      alive: true,
      founding: bootstrap,
    };
    restoreApp(node, storage.snapshot());
    return node;
  }

  node(id: NodeId): HarnessNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  /** A node that joins later: empty storage, no bootstrap; it learns everything from the leader. */
  addNode(id: NodeId): HarnessNode {
    const n = this.build(id, new MemoryStorage(), false);
    this.nodes.set(id, n);
    return n;
  }

  // ------------------------------------------------------------ the driver

  /** Handle one Ready of `id` following the driver contract. */
  handleReady(id: NodeId): Ready {
    const n = this.node(id);
    const rd = n.raft.ready();
    this.persist(n, rd);
    this.network.push(...rd.messages);
    this.apply(n, rd);
    n.raft.advance();
    return rd;
  }

  private persist(n: HarnessNode, rd: Ready): void {
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    if (rd.softState?.role === 'leader') {
      const term = n.raft.status().term;
      const other = this.leadersByTerm.get(term);
      if (other !== undefined && other !== n.id) {
        throw new Error(`election safety violated: ${other} and ${n.id} both lead term ${term}`);
      }
      this.leadersByTerm.set(term, n.id);
    }
  }

  private apply(n: HarnessNode, rd: Ready): void {
    if (rd.snapshot !== undefined) restoreApp(n, rd.snapshot);
    for (const e of rd.committedEntries) {
      const last = n.applied[n.applied.length - 1];
      if (last !== undefined && e.index !== last.index + 1) {
        throw new Error(`${n.id} applied ${e.index} after ${last.index}`);
      }
      n.applied.push({ index: e.index, term: e.term, type: e.type, data: text(e.data) });
      if (e.type === 'confChange') n.raft.applyConfChange(decodeConfChange(e.data));
    }
    n.readStates.push(...rd.readStates);
  }

  /** Process every pending Ready of every live node (nothing is delivered). */
  flush(): void {
    for (const n of this.nodes.values()) {
      if (!n.alive) continue;
      while (n.raft.hasReady()) this.handleReady(n.id);
    }
  }

  // ----------------------------------------------------------- the network

  private blocked(m: Message): boolean {
    const to = this.nodes.get(m.to);
    if (to === undefined || !to.alive) return true;
    if (this.cuts.has(`${m.from}>${m.to}`)) return true;
    return this.filter !== null && this.filter(m);
  }

  /** Deliver the messages in flight now (one round), then flush. Returns how many were delivered. */
  deliverRound(pick: Filter = () => true): number {
    this.flush();
    const batch = this.network.filter(pick);
    this.network = this.network.filter((m) => !pick(m));
    let n = 0;
    for (const m of batch) {
      if (this.blocked(m)) continue;
      this.delivered.push(m);
      this.raft(m.to).step(structuredClone(m));
      n++;
    }
    this.flush();
    return n;
  }

  /** Deliver until the network is quiet. Returns how many messages were delivered. */
  deliverAll(maxRounds = 1000): number {
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      this.flush();
      if (this.network.length === 0) return total;
      total += this.deliverRound();
    }
    throw new Error('network did not quiesce');
  }

  stabilize(): number {
    return this.deliverAll();
  }

  /** Remove in-flight messages matching `pick` (all by default); returns them. */
  drop(pick: Filter = () => true): Message[] {
    const dropped = this.network.filter(pick);
    this.network = this.network.filter((m) => !pick(m));
    return dropped;
  }

  /** Drop matching messages at delivery time until cleared with `setFilter(null)`. */
  setFilter(filter: Filter | null): void {
    this.filter = filter;
  }

  /** Only nodes in the same group can talk. Nodes in no group are isolated. */
  partition(...groups: NodeId[][]): void {
    this.cuts.clear();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const a of this.nodes.keys()) {
      for (const b of this.nodes.keys()) {
        if (a === b) continue;
        const ga = groupOf.get(a);
        if (ga === undefined || ga !== groupOf.get(b)) this.cuts.add(`${a}>${b}`);
      }
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cuts.add(`${id}>${other}`);
      this.cuts.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cuts.clear();
    this.filter = null;
  }

  // --------------------------------------------------------------- time

  /** Tick the given live nodes (all by default) n times, without delivering. */
  tick(n = 1, ids: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) {
        const node = this.node(id);
        if (node.alive) node.raft.tick();
      }
      this.flush();
    }
  }

  /** n times: tick everyone, then deliver until quiet. */
  run(n: number, ids?: NodeId[]): void {
    for (let i = 0; i < n; i++) {
      this.tick(1, ids);
      this.deliverAll();
    }
  }

  /** Elect `id` by having it campaign and delivering everything. */
  elect(id: NodeId): void {
    this.raft(id).campaign();
    this.stabilize();
    const st = this.raft(id).status();
    if (st.role !== 'leader') throw new Error(`${id} failed to become leader (${st.role}, term ${st.term})`);
  }

  // ------------------------------------------------------------ queries

  leaders(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => n.alive && n.raft.status().role === 'leader')
      .map((n) => n.id);
  }

  /** The live leader of the highest term, or null. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const id of this.leaders()) {
      const t = this.raft(id).status().term;
      if (t > bestTerm) {
        best = id;
        bestTerm = t;
      }
    }
    return best;
  }

  propose(id: NodeId, data: string): void {
    this.raft(id).propose(utf8(data));
    this.flush();
  }

  /** Normal entries with data this node applied, in order. */
  appliedData(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === 'normal' && e.data !== '')
      .map((e) => e.data);
  }

  /** Terms of the node's log entries from firstIndex on (unstable included). */
  logTerms(id: NodeId): number[] {
    const st = this.raft(id).status();
    const s = this.node(id).storage;
    const out: number[] = [];
    for (let i = st.firstIndex; i <= Math.min(st.lastIndex, s.lastIndex()); i++) out.push(s.term(i));
    return out;
  }

  /**
   * State Machine Safety (Raft Figure 3): no two nodes applied different
   * entries at the same index.
   */
  checkSafety(): void {
    const byIndex = new Map<number, { id: NodeId; e: AppliedEntry }>();
    for (const n of this.nodes.values()) {
      for (const e of n.applied) {
        const seen = byIndex.get(e.index);
        if (seen === undefined) byIndex.set(e.index, { id: n.id, e });
        else if (seen.e.term !== e.term || seen.e.data !== e.data) {
          throw new Error(
            `state machine safety violated at ${e.index}: ${seen.id} applied ${JSON.stringify(seen.e)}, ` +
              `${n.id} applied ${JSON.stringify(e)}`,
          );
        }
      }
    }
  }

  // --------------------------------------------------------- crash/restart

  /** The node stops; its disk (storage) survives, its memory does not. */
  crash(id: NodeId): void {
    this.node(id).alive = false;
    this.network = this.network.filter((m) => m.from !== id);
  }

  /**
   * Crash after persisting a Ready but before sending its messages or
   * applying it. Returns the lost Ready.
   */
  crashAfterPersist(id: NodeId): Ready {
    const n = this.node(id);
    const rd = n.raft.ready();
    this.persist(n, rd);
    this.crash(id);
    return rd;
  }

  /** Rebuild the node from its disk, as a process restart would. */
  restart(id: NodeId): HarnessNode {
    const old = this.node(id);
    const disk = old.storage;
    const entries =
      disk.lastIndex() >= disk.firstIndex() ? disk.entries(disk.firstIndex(), disk.lastIndex() + 1) : [];
    const snapshot = disk.snapshot();
    const storage = MemoryStorage.fromPersisted({
      hardState: disk.initialState().hardState,
      snapshot: snapshot.meta.index > 0 ? structuredClone(snapshot) : null,
      entries: structuredClone(entries),
    });
    const node: HarnessNode = {
      id,
      storage,
      raft: new RaftNode(this.config(id, storage, old.founding)),
      applied: [],
      readStates: [],
      alive: true,
      founding: old.founding,
    };
    restoreApp(node, storage.snapshot());
    this.nodes.set(id, node);
    this.flush();
    return node;
  }

  /** App-driven compaction on `id` up to `index`. */
  compact(id: NodeId, index: number): Snapshot {
    const n = this.node(id);
    const data = utf8(JSON.stringify(n.applied.filter((e) => e.index <= index)));
    const snap = n.raft.compact(index, data);
    n.storage.applySnapshot(snap);
    return snap;
  }
}

function restoreApp(n: HarnessNode, snapshot: Snapshot): void {
  n.applied = snapshot.data.length === 0 ? [] : (JSON.parse(text(snapshot.data)) as AppliedEntry[]);
}

function presetStorage(conf: ConfState, preset: { term: number; entryTerms: number[] }): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({ meta: { index: 1, term: 1, confState: structuredClone(conf) }, data: new Uint8Array(0) });
  s.append(
    preset.entryTerms.map((term, i) => ({
      index: i + 2,
      term,
      type: 'normal' as const,
      data: utf8(`t${term}i${i + 2}`),
    })),
  );
  s.setHardState({ term: preset.term, vote: null, commit: 1 });
  return s;
}

// ------------------------------------------------ single-node unit helpers

export interface SoloOptions extends Omit<ClusterOptions, 'logs' | 'seed'> {
  id: NodeId;
  /** Current term (default 1). */
  term?: number;
  /** Terms of entries from index 2 on. */
  entryTerms?: number[];
  commit?: number;
  vote?: NodeId | null;
  random?: () => number;
}

/** One RaftNode over a preset log (index 1 = bootstrap snapshot). */
export function solo(o: SoloOptions): { raft: RaftNode; storage: MemoryStorage } {
  const conf: ConfState = { voters: [...o.voters], learners: [...(o.learners ?? [])] };
  const storage = presetStorage(conf, { term: o.term ?? 1, entryTerms: o.entryTerms ?? [] });
  storage.setHardState({ term: o.term ?? 1, vote: o.vote ?? null, commit: o.commit ?? 1 });
  const cfg: RaftConfig = { id: o.id, storage, random: o.random ?? seededRandom(7), applied: o.commit ?? 1 };
  if (o.electionTick !== undefined) cfg.electionTick = o.electionTick;
  if (o.heartbeatTick !== undefined) cfg.heartbeatTick = o.heartbeatTick;
  if (o.preVote !== undefined) cfg.preVote = o.preVote;
  if (o.checkQuorum !== undefined) cfg.checkQuorum = o.checkQuorum;
  if (o.maxMsgEntries !== undefined) cfg.maxMsgEntries = o.maxMsgEntries;
  if (o.maxMsgBytes !== undefined) cfg.maxMsgBytes = o.maxMsgBytes;
  if (o.maxInflight !== undefined) cfg.maxInflight = o.maxInflight;
  if (o.faults !== undefined) cfg.faults = o.faults;
  return { raft: new RaftNode(cfg), storage };
}

/** Drive every pending Ready of a lone node (persist, apply); return what it sent. */
export function drain(raft: RaftNode, storage: MemoryStorage, applied: Entry[] = []): Message[] {
  const out: Message[] = [];
  while (raft.hasReady()) {
    const rd = raft.ready();
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    out.push(...rd.messages);
    for (const e of rd.committedEntries) {
      applied.push(e);
      if (e.type === 'confChange') raft.applyConfChange(decodeConfChange(e.data));
    }
    raft.advance();
  }
  return out;
}

/** A message with every field defaulted. */
export function msg(m: Pick<Message, 'type' | 'from' | 'to' | 'term'> & Partial<Message>): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m };
}

/** Entries from `from` on with the given terms (data `t<term>i<index>`). */
export function entries(from: number, terms: number[]): Entry[] {
  return terms.map((term, i) => ({
    index: from + i,
    term,
    type: 'normal' as const,
    data: utf8(`t${term}i${from + i}`),
  }));
}
