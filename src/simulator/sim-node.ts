import {
  decodeConfChange,
  MemoryStorage,
  ProposalDroppedError,
  RaftNode,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type RaftConfig,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotMeta,
} from '../consensus/index.js';
import type { NodeId } from '../storage/raft/types.js';
import { KvStore } from './kv-store.js';
import type { Prng } from './prng.js';
import type { SafetyChecker } from './safety.js';
import { SimViolation } from './violation.js';

/** Where a crash may strike while a Ready is being handled. */
export type CrashPoint = 'beforePersist' | 'afterPersist' | 'afterSend';

/** What a node needs from the simulation around it. */
export interface NodeEnv {
  readonly checker: SafetyChecker;
  send(msg: Message): void;
  /** Where, if at all, this node crashes while handling the Ready it is about to handle. */
  crashPoint(node: NodeId): CrashPoint | null;
  /** A node applied a membership change; `result` is the membership its core switched to. */
  onConfChangeApplied(node: NodeId, index: number, cc: ConfChange, result: ConfState): void;
  /** A node's state now comes from a snapshot (received, or read from disk at restart). */
  onSnapshotInstalled(node: NodeId, meta: SnapshotMeta): void;
  trace(line: string): void;
  /** Count an event for the run's coverage statistics. */
  count(event: string): void;
}

export type RaftTuning = Pick<
  RaftConfig,
  'electionTick' | 'heartbeatTick' | 'preVote' | 'checkQuorum' | 'maxMsgEntries' | 'maxInflight' | 'faults'
>;

interface Volatile {
  raft: RaftNode;
  storage: MemoryStorage;
  kv: KvStore;
  role: Role;
  leader: NodeId | null;
  term: number;
  commit: number;
  /** ReadIndex answers by request context, until a client collects them. */
  readStates: Map<string, number>;
}

const decoder = new TextDecoder();

/**
 * One simulated server: the driver around a RaftNode. Its disk (a MemoryStorage
 * holding only what was persisted) survives crashes; the RaftNode, the in-memory
 * log view and the application state do not. A restart rebuilds all three from the
 * disk alone, exactly as a real process would.
 */
export class SimNode {
  /** The durable state: written before anything that depends on it is sent. */
  private readonly disk = new MemoryStorage();
  private live: Volatile | null = null;
  /** Removed from the cluster and shut down for good. */
  retired = false;
  crashes = 0;

  constructor(
    readonly id: NodeId,
    /** Founding members bootstrap with the initial membership; nodes added later start empty. */
    private readonly bootstrap: ConfState | null,
    private readonly tuning: RaftTuning,
    private readonly rng: Prng,
    private readonly env: NodeEnv,
  ) {}

  get alive(): boolean {
    return this.live !== null;
  }

  get raft(): RaftNode | null {
    return this.live?.raft ?? null;
  }

  get kv(): KvStore | null {
    return this.live?.kv ?? null;
  }

  get role(): Role | null {
    return this.live?.role ?? null;
  }

  get term(): number {
    return this.live?.term ?? this.disk.initialState().hardState.term;
  }

  get leaderHint(): NodeId | null {
    return this.live?.leader ?? null;
  }

  get commit(): number {
    return this.live?.commit ?? 0;
  }

  /** The log view of the running node (for checks and compaction). */
  get log(): MemoryStorage | null {
    return this.live?.storage ?? null;
  }

  takeReadState(context: string): number | undefined {
    const rs = this.live?.readStates;
    const index = rs?.get(context);
    if (index !== undefined) rs?.delete(context);
    return index;
  }

  /** Start (or restart) from what is on disk. */
  start(): void {
    if (this.live !== null) throw new Error(`${this.id} is already running`);
    const hs = this.disk.initialState().hardState;
    const snap = this.disk.snapshot();
    const hasSnap = snap.meta.index > 0;
    const entries =
      this.disk.lastIndex() >= this.disk.firstIndex()
        ? this.disk.entries(this.disk.firstIndex(), this.disk.lastIndex() + 1)
        : [];
    const storage = MemoryStorage.fromPersisted({ hardState: hs, snapshot: hasSnap ? snap : null, entries });
    const kv = hasSnap ? KvStore.restore(snap.data, snap.meta.index) : new KvStore();
    const random = this.rng.fork(`life${this.crashes}`);
    const config: RaftConfig = {
      ...this.tuning,
      id: this.id,
      storage,
      random: () => random.float(),
      ...(hasSnap ? { applied: kv.appliedIndex } : {}),
      ...(this.bootstrap !== null ? { bootstrap: this.bootstrap } : {}),
    };
    const raft = new RaftNode(config);
    const st = raft.status();
    this.live = {
      raft,
      storage,
      kv,
      role: st.role,
      leader: st.leader,
      term: st.term,
      commit: st.commit,
      readStates: new Map(),
    };
    if (hasSnap) {
      this.env.checker.onRestore(this.id, snap.meta.index, kv.digest);
      this.env.onSnapshotInstalled(this.id, snap.meta);
    }
    this.env.checker.onRestart(this.id, st.commit);
    this.env.trace(
      `${this.id} starts: term ${st.term} commit ${st.commit} log [${storage.firstIndex()}, ${storage.lastIndex()}]`,
    );
  }

  /** Lose everything not on disk. */
  crash(why: string): void {
    if (this.live === null) return;
    this.live = null;
    this.crashes++;
    this.env.trace(`${this.id} CRASH (${why})`);
  }

  retire(): void {
    this.crash('removed from the cluster, shut down');
    this.retired = true;
  }

  tick(): void {
    this.live?.raft.tick();
  }

  step(msg: Message): void {
    this.live?.raft.step(msg);
  }

  /** Returns false if the node refused (not leader, transfer in progress, ...). */
  propose(data: Uint8Array): boolean {
    return this.refusable(() => this.live?.raft.propose(data));
  }

  proposeConfChange(cc: ConfChange): boolean {
    return this.refusable(() => this.live?.raft.proposeConfChange(cc));
  }

  readIndex(context: Uint8Array): boolean {
    return this.refusable(() => this.live?.raft.readIndex(context));
  }

  transferLeadership(to: NodeId): boolean {
    return this.refusable(() => this.live?.raft.transferLeadership(to));
  }

  private refusable(call: () => unknown): boolean {
    if (this.live === null) return false;
    try {
      call();
      return true;
    } catch (err) {
      if (err instanceof ProposalDroppedError) return false;
      throw err;
    }
  }

  /** Handle Ready until there is none, following the driver contract; may crash at a crash point. */
  drain(): void {
    while (this.live !== null && this.live.raft.hasReady()) this.handle(this.live, this.live.raft.ready());
  }

  private handle(v: Volatile, rd: Ready): void {
    const { checker } = this.env;
    const crashAt = this.env.crashPoint(this.id);
    if (crashAt === 'beforePersist') return this.crash('before persisting a Ready');

    // 1. Persist: one atomic batch. Cloned, so the disk shares nothing with the live process.
    if (rd.snapshot !== undefined) this.disk.applySnapshot(structuredClone(rd.snapshot));
    if (rd.entries.length > 0) this.disk.append(structuredClone(rd.entries));
    if (rd.hardState !== undefined) {
      this.disk.setHardState({ ...rd.hardState });
      checker.onPersistCommit(this.id, rd.hardState.commit);
    }

    // 2. Install in the log view the core reads.
    if (rd.snapshot !== undefined) v.storage.applySnapshot(rd.snapshot);
    v.storage.append(rd.entries);
    if (rd.hardState !== undefined) v.storage.setHardState(rd.hardState);
    checker.onAppend(this.id, rd.entries, v.storage);
    if (rd.hardState !== undefined) {
      v.term = rd.hardState.term;
      if (rd.hardState.commit !== v.commit) {
        checker.onCommit(this.id, rd.hardState.commit, v.term, v.storage);
        v.commit = rd.hardState.commit;
      }
    }
    if (rd.softState !== undefined) {
      if (rd.softState.role !== v.role)
        this.env.trace(`${this.id} becomes ${rd.softState.role} in term ${v.term}`);
      v.role = rd.softState.role;
      v.leader = rd.softState.leader;
    }
    if (v.role === 'leader') checker.onLeader(this.id, v.term, v.storage);

    if (crashAt === 'afterPersist') return this.crash('after persisting, before sending');

    // 3. Send.
    for (const m of rd.messages) this.env.send(m);

    if (crashAt === 'afterSend') return this.crash('after sending, before applying');

    // 4. Apply.
    if (rd.snapshot !== undefined) this.restore(v, rd.snapshot);
    for (const e of rd.committedEntries) this.apply(v, e);
    for (const rs of rd.readStates) v.readStates.set(decoder.decode(rs.context), rs.index);

    // 5.
    v.raft.advance();
  }

  private restore(v: Volatile, snap: Snapshot): void {
    if (snap.meta.index < v.kv.appliedIndex) {
      throw new SimViolation(
        'coreError',
        `${this.id} was handed snapshot ${snap.meta.index} after applying ${v.kv.appliedIndex}`,
      );
    }
    v.kv = KvStore.restore(snap.data, snap.meta.index);
    this.env.checker.onRestore(this.id, snap.meta.index, v.kv.digest);
    this.env.onSnapshotInstalled(this.id, snap.meta);
    if (snap.data.length > 0) this.env.count('snapshot.restored');
    this.env.trace(`${this.id} restores snapshot ${snap.meta.index}@${snap.meta.term}`);
  }

  private apply(v: Volatile, e: Entry): void {
    if (e.index !== v.kv.appliedIndex + 1) {
      throw new SimViolation(
        'coreError',
        `${this.id} was handed entry ${e.index} to apply after ${v.kv.appliedIndex}`,
      );
    }
    v.kv.apply(e);
    this.env.checker.onApply(this.id, e, v.kv.digest);
    if (e.type === 'confChange') {
      const cc = decodeConfChange(e.data);
      this.env.onConfChangeApplied(this.id, e.index, cc, v.raft.applyConfChange(cc));
    }
  }

  /** Snapshot the application at its applied index and compact the log up to it. */
  compact(): void {
    const v = this.live;
    if (v === null || v.raft.hasReady()) return;
    const index = v.kv.appliedIndex;
    if (index < v.storage.firstIndex()) return;
    const snap = v.raft.compact(index, v.kv.snapshot());
    this.disk.applySnapshot(structuredClone(snap));
    v.storage.applySnapshot(snap);
    this.env.count('compaction');
    this.env.trace(`${this.id} compacts its log up to ${index}`);
  }
}
