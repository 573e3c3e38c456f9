import type { ConfState, Entry, HardState, NodeId, Snapshot } from '../storage/raft/types.js';
import {
  applyConfChangeToConfState,
  confChangeProblem,
  decodeConfChange,
  encodeConfChange,
} from './conf-change.js';
import { ProposalDroppedError, RaftUsageError } from './errors.js';
import { cloneConfState, type LogStorage } from './memory-storage.js';
import { ProgressTracker } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import type {
  ConfChange,
  Message,
  MessageType,
  RaftConfig,
  RaftFaults,
  RaftLogger,
  RaftStatus,
  ReadState,
  Ready,
  Role,
  SoftState,
} from './types.js';
import { isWellFormed } from './validate.js';

type CampaignType = 'preElection' | 'election' | 'transfer';

/** What advance() must acknowledge about the Ready handed out last. */
interface PendingReady {
  lastEntry: { index: number; term: number } | null;
  snapshotIndex: number | null;
  appliedCursor: number;
}

/** A message being built: `from` is always this node, unset fields default to 0 / empty. */
type Outgoing = Pick<Message, 'type' | 'to'> & Partial<Omit<Message, 'type' | 'to' | 'from'>>;

const EMPTY = new Uint8Array(0);
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

const VOTE_RESPONSE: Partial<Record<MessageType, MessageType>> = { vote: 'voteResp', preVote: 'preVoteResp' };

/**
 * One Raft peer as a deterministic state machine (etcd raft + RawNode). See
 * index.ts and README.md for the driver contract.
 */
/**
 * The state every founding member starts from: a snapshot at index 1 (term 1)
 * holding the initial membership, so that membership is part of the
 * replicated state and a member that joins later receives it with the log.
 * RaftNode builds it from `bootstrap` when its storage is empty; an operator
 * tool writes it to a founding node's store ahead of time instead (`bitnexus
 * init`), so that a node whose store was lost never bootstraps again.
 */
export function bootstrapState(conf: ConfState): { snapshot: Snapshot; hardState: HardState } {
  if (conf.voters.length === 0)
    throw new RaftUsageError('invalidConfig', 'bootstrap needs at least one voter');
  return {
    snapshot: { meta: { index: 1, term: 1, confState: cloneConfState(conf) }, data: EMPTY },
    hardState: { term: 1, vote: null, commit: 1 },
  };
}

export class RaftNode {
  readonly id: NodeId;
  private term = 0;
  private vote: NodeId | null = null;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private readonly log: RaftLog;
  private readonly prs: ProgressTracker;
  private isLearner = false;
  /** abstainUntilLeader: no vote is granted until a leader of the current term is heard from */
  private abstaining: boolean;

  private readonly electionTimeout: number;
  /** heartbeat ticks since this node last became leader (heardFromRecently) */
  private ticksAsLeader = 0;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  /** Ticks since the last election timeout (leader, candidate) or since hearing from the leader (follower). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;

  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxMsgEntries: number;
  private readonly maxMsgBytes: number;
  private readonly random: () => number;
  private readonly faults: RaftFaults;
  private readonly logger: RaftLogger | undefined;

  private leadTransferee: NodeId | null = null;
  /** TimeoutNow arrived while a committed membership change was unapplied: campaign once it is applied. */
  private transferCampaignPending = false;
  /** Index of the last membership change this leader appended; a new one waits until it is applied. */
  private pendingConfIndex = 0;
  private readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term. */
  private pendingReadIndexMessages: Message[] = [];

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private pendingReady: PendingReady | null = null;

  constructor(config: RaftConfig) {
    this.id = config.id;
    this.electionTimeout = config.electionTick ?? 10;
    this.heartbeatTimeout = config.heartbeatTick ?? 1;
    if (!Number.isSafeInteger(this.heartbeatTimeout) || this.heartbeatTimeout < 1) {
      throw new RaftUsageError('invalidConfig', 'heartbeatTick must be a positive integer');
    }
    if (!Number.isSafeInteger(this.electionTimeout) || this.electionTimeout <= this.heartbeatTimeout) {
      throw new RaftUsageError('invalidConfig', 'electionTick must be an integer greater than heartbeatTick');
    }
    this.preVote = config.preVote ?? true;
    this.abstaining = config.abstainUntilLeader ?? false;
    this.checkQuorum = config.checkQuorum ?? true;
    this.maxMsgEntries = positive(config.maxMsgEntries ?? 64, 'maxMsgEntries');
    this.maxMsgBytes = positive(config.maxMsgBytes ?? 1024 * 1024, 'maxMsgBytes');
    this.random = config.random;
    this.faults = { ...config.faults };
    this.logger = config.logger;
    this.prs = new ProgressTracker(positive(config.maxInflight ?? 256, 'maxInflight'));

    const storage: LogStorage = config.storage;
    this.log = new RaftLog(storage);
    const { hardState, confState: snapshotConf } = storage.initialState();
    const storageEmpty = storage.firstIndex() === 1 && storage.lastIndex() === 0;
    let confState: ConfState;
    let term = 0;
    if (storageEmpty && config.bootstrap !== undefined) {
      const boot = bootstrapState(config.bootstrap);
      confState = cloneConfState(config.bootstrap);
      this.log.restore(boot.snapshot);
      term = boot.hardState.term;
      this.prevHardState = { term: 0, vote: null, commit: 0 };
    } else {
      if (hardState.commit > this.log.lastIndex() || hardState.commit < this.log.committed) {
        throw new RaftUsageError(
          'invalidConfig',
          `stored commit ${hardState.commit} outside [${this.log.committed}, ${this.log.lastIndex()}]`,
        );
      }
      term = hardState.term;
      this.log.commitTo(hardState.commit);
      const applied = Math.max(config.applied ?? 0, this.log.applied);
      if (applied > this.log.committed) {
        throw new RaftUsageError(
          'invalidConfig',
          `applied ${applied} is beyond commit ${this.log.committed}`,
        );
      }
      this.log.appliedTo(applied);
      confState = this.confStateAt(snapshotConf, storage.firstIndex() - 1, applied);
      this.prevHardState = { ...hardState };
    }
    this.prs.applyConfState(confState, this.log.lastIndex() + 1);
    this.isLearner = this.prs.learners.includes(this.id);
    this.becomeFollower(term, null);
    if (!(storageEmpty && config.bootstrap !== undefined)) this.vote = hardState.vote;
    this.prevSoftState = { leader: null, role: 'follower' };
  }

  // ---------------------------------------------------------------- inputs

  /** Advance logical time by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  /** Feed a message from the network. Malformed, misaddressed or stale messages are dropped. */
  step(message: Message): void {
    if (!isWellFormed(message, this.id)) {
      this.logger?.debug({ id: this.id }, 'raft: dropped malformed message');
      return;
    }
    const m = message;
    if (m.term === 0) {
      // Only the forwarded readIndex / transferLeader carry no term; a node
      // serves them only as the leader (followers forward local requests only).
      if (this.role === 'leader') this.stepLeader(m);
      return;
    }
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease =
          this.checkQuorum && this.leader !== null && this.electionElapsed < this.electionTimeout;
        if (m.transfer !== true && inLease) {
          // Leader lease (Raft thesis §4.2.3): we heard from a live leader
          // within the minimum election timeout, so we neither update our
          // term nor grant the vote.
          this.logger?.debug({ id: this.id, from: m.from, term: m.term }, 'raft: vote ignored, lease');
          return;
        }
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // Our term moves only when the real election starts.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader, e.g. one isolated by a partition: answer with our
        // term so it steps down (otherwise, with pre-vote or check-quorum, it
        // might never learn of the newer term).
        this.send({ type: 'appResp', to: m.from });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    // A leader speaks, of a term at least this node's (older ones returned above). It may still
    // be a term this node voted in before it lost its store, or older than one it voted in (a
    // leader cut off since, or its queued frames): abstaining narrows the danger, it cannot
    // close it without the lost record. The leader is recorded as this term's vote, so that
    // after a restart the node does not vote for another in it.
    if (this.abstaining && (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap')) {
      this.abstaining = false;
      this.vote ??= m.from;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /** Append `data` to the log. Only the leader accepts proposals; followers do not forward. */
  propose(data: Uint8Array): void {
    this.checkCanPropose();
    this.appendEntries([{ type: 'normal', data }]);
    this.bcastAppend();
  }

  /** Propose one membership change; refused while another one is not yet applied. */
  proposeConfChange(cc: ConfChange): void {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalDroppedError(
        'confChangePending',
        `membership change at ${this.pendingConfIndex} not applied yet (applied ${this.log.applied})`,
      );
    }
    const problem = confChangeProblem(this.prs.confState(), cc);
    if (problem !== null) throw new ProposalDroppedError('invalidConfChange', problem);
    this.appendEntries([{ type: 'confChange', data: encodeConfChange(cc) }]);
    this.pendingConfIndex = this.log.lastIndex();
    this.bcastAppend();
  }

  /**
   * The driver applies a committed confChange entry: switch to the new
   * membership and return it. A leader that is no longer a voter steps down
   * (the removal is committed by then) and asks the most up-to-date voter to
   * campaign at once.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const cs = applyConfChangeToConfState(this.prs.confState(), cc);
    this.switchToConfig(cs);
    return cloneConfState(cs);
  }

  /**
   * Request a linearizable read (Raft thesis §6.4, ReadIndex). The answer is a
   * ReadState with the same context in a later Ready; contexts must be unique.
   * Followers forward the request to the leader.
   */
  readIndex(context: Uint8Array): void {
    const ctx = context.slice();
    if (this.role === 'leader') {
      this.leaderReadIndex(this.message({ type: 'readIndex', to: this.id, context: ctx }));
      return;
    }
    if (this.leader === null) throw new ProposalDroppedError('noLeader', 'no leader known to serve the read');
    this.send({ type: 'readIndex', to: this.leader, context: ctx });
  }

  /** Hand leadership to `to` (Raft thesis §3.10): bring it up to date, then send it TimeoutNow. */
  transferLeadership(to: NodeId): void {
    if (this.role === 'leader') {
      if (!this.prs.isVoter(to)) throw new ProposalDroppedError('invalidTransferee', `${to} is not a voter`);
      this.handleTransferLeader(to);
      return;
    }
    if (this.leader === null) throw new ProposalDroppedError('noLeader', 'no leader known to transfer from');
    this.send({ type: 'transferLeader', to: this.leader, context: utf8Encoder.encode(to) });
  }

  /** Start an election now (pre-vote first when enabled). Ignored on the leader and on non-voters. */
  campaign(): void {
    this.hup(this.preVote ? 'preElection' : 'election');
  }

  /**
   * Log compaction: a snapshot of the applied state up to `index` (at most the
   * applied index, beyond the current snapshot), carrying `data` and the
   * membership as of `index`. The driver persists it and installs it in its
   * LogStorage (see index.ts).
   */
  compact(index: number, data: Uint8Array): Snapshot {
    const snapIndex = this.log.firstIndex() - 1;
    if (!Number.isSafeInteger(index) || index <= snapIndex || index > this.log.applied) {
      throw new RaftUsageError(
        'compactOutOfRange',
        `compact(${index}) outside (${snapIndex}, ${this.log.applied}]`,
      );
    }
    const term = this.log.term(index);
    if (term === null) throw new RaftUsageError('compactOutOfRange', `no term for index ${index}`);
    const confState = this.confStateAt(this.log.snapshot().meta.confState, snapIndex, index);
    return { meta: { index, term, confState }, data };
  }

  // ----------------------------------------------------------------- ready

  hasReady(): boolean {
    if (this.pendingReady !== null) return false;
    const ss = this.softState();
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) return true;
    const hs = this.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) return true;
    return (
      this.log.hasPendingSnapshot() ||
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      this.log.unstable.entries.length > 0 ||
      this.log.hasNextCommittedEntries()
    );
  }

  /** What to persist, send and apply now. Call advance() when done. */
  ready(): Ready {
    if (this.pendingReady !== null)
      throw new RaftUsageError('readyPending', 'advance() the previous Ready first');
    const entries = this.log.unstableEntries();
    const committedEntries = this.log.nextCommittedEntries();
    const rd: Ready = {
      entries,
      committedEntries,
      messages: this.msgs,
      readStates: this.readStates,
    };
    const ss = this.softState();
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = this.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) {
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    const snapshot = this.log.unstable.snapshot;
    if (snapshot !== null) rd.snapshot = snapshot;
    this.msgs = [];
    this.readStates = [];

    const last = entries[entries.length - 1];
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) this.log.applying = lastCommitted.index;
    this.pendingReady = {
      lastEntry: last === undefined ? null : { index: last.index, term: last.term },
      snapshotIndex: snapshot === null ? null : snapshot.meta.index,
      appliedCursor: lastCommitted?.index ?? snapshot?.meta.index ?? 0,
    };
    return rd;
  }

  /** The last Ready was persisted, sent and applied. */
  advance(): void {
    const p = this.pendingReady;
    if (p === null) throw new RaftUsageError('noReady', 'advance() without an outstanding Ready');
    this.pendingReady = null;
    if (p.lastEntry !== null) this.log.stableTo(p.lastEntry.index, p.lastEntry.term);
    if (p.snapshotIndex !== null) this.log.stableSnapTo(p.snapshotIndex);
    if (p.appliedCursor > 0) this.log.appliedTo(p.appliedCursor);
    if (this.transferCampaignPending && !this.hasUnappliedConfChanges()) {
      this.transferCampaignPending = false;
      this.hup('transfer');
    }
  }

  /**
   * On a leader: this node itself, or a peer heard from within the last
   * election timeout (the window checkQuorum uses). False elsewhere.
   */
  heardFromRecently(id: NodeId): boolean {
    if (this.role !== 'leader') return false;
    if (id === this.id) return true;
    // A new term's progress starts every peer at "just heard" (so checkQuorum does not depose the
    // leader before the first answers): for its first election timeout, a leader knows nothing.
    if (this.ticksAsLeader < this.electionTimeout) return false;
    const pr = this.prs.progress.get(id);
    return pr !== undefined && pr.ticksSinceActive < this.electionTimeout;
  }

  status(): RaftStatus {
    const st: RaftStatus = {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      confState: this.prs.confState(),
      leadTransferee: this.leadTransferee,
    };
    if (this.role === 'leader') {
      st.progress = Object.fromEntries([...this.prs.progress].map(([id, pr]) => [id, pr.status()]));
    }
    return st;
  }

  // ------------------------------------------------------------- internals

  private softState(): SoftState {
    return { leader: this.leader, role: this.role };
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private checkCanPropose(): void {
    if (this.role !== 'leader' || !this.prs.progress.has(this.id)) {
      throw new ProposalDroppedError(
        'notLeader',
        `${this.id} is not the leader (leader: ${this.leader ?? 'none'})`,
      );
    }
    if (this.leadTransferee !== null) {
      throw new ProposalDroppedError('transferInProgress', `leadership is moving to ${this.leadTransferee}`);
    }
  }

  /** Membership after replaying confChange entries in (from, to] on top of `base`. */
  private confStateAt(base: ConfState, from: number, to: number): ConfState {
    let cs = cloneConfState(base);
    if (to <= from) return cs;
    const ents = this.log.slice(from + 1, to + 1) ?? [];
    for (const e of ents) {
      if (e.type !== 'confChange') continue;
      try {
        cs = applyConfChangeToConfState(cs, decodeConfChange(e.data));
      } catch {
        this.logger?.warn({ id: this.id, index: e.index }, 'raft: undecodable confChange entry skipped');
      }
    }
    return cs;
  }

  private message(m: Outgoing): Message {
    let term: number;
    if (m.type === 'vote' || m.type === 'preVote' || m.type === 'voteResp' || m.type === 'preVoteResp') {
      // Pre-votes are sent for a future term and answered with it.
      term = m.term ?? this.term;
    } else if (m.type === 'readIndex' || m.type === 'transferLeader') {
      term = 0;
    } else {
      term = this.term;
    }
    const out: Message = {
      type: m.type,
      from: this.id,
      to: m.to,
      term,
      logTerm: m.logTerm ?? 0,
      index: m.index ?? 0,
      entries: m.entries ?? [],
      commit: m.commit ?? 0,
      reject: m.reject ?? false,
      rejectHint: m.rejectHint ?? 0,
    };
    if (m.snapshot !== undefined) out.snapshot = m.snapshot;
    if (m.context !== undefined) out.context = m.context;
    if (m.transfer !== undefined) out.transfer = m.transfer;
    return out;
  }

  private send(m: Outgoing): void {
    this.msgs.push(this.message(m));
  }

  private promotable(): boolean {
    const pr = this.prs.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.hasPendingSnapshot();
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    const jitter = Number.isFinite(r) ? Math.min(Math.max(r, 0), 0.999999) : 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(jitter * this.electionTimeout);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.transferCampaignPending = false;
    this.prs.resetVotes();
    this.prs.resetProgress(this.log.lastIndex(), this.id);
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.leader = leader;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    // Changes neither term nor vote (Raft thesis §9.6).
    this.prs.resetVotes();
    this.leader = null;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.ticksAsLeader = 0;
    this.leader = this.id;
    this.role = 'leader';
    const self = this.prs.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Entries of earlier terms may be unapplied membership changes: no new
    // change until everything up to here is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op of the new term (Raft §8): committing it commits every
    // earlier entry and lets ReadIndex serve reads.
    this.appendEntries([{ type: 'normal', data: EMPTY }]);
    this.logger?.info({ id: this.id, term: this.term }, 'raft: became leader');
    this.bcastAppend();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? 'preElection' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.ticksAsLeader++;
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const [id, pr] of this.prs.progress) if (id !== this.id) pr.ticksSinceActive++;
    // Check quorum: a leader that has not heard from a majority for a whole
    // election timeout steps down, before any follower's lease (which lasts
    // at least as long) can let another leader be elected.
    if (this.checkQuorum && !this.prs.quorumActive(this.id, this.electionTimeout)) {
      this.logger?.warn({ id: this.id, term: this.term }, 'raft: quorum lost, stepping down');
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      for (const [id, pr] of this.prs.progress) if (id !== this.id) pr.recentActive = false;
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.leadTransferee = null;
      // A snapshot unanswered for a full election timeout is presumed lost:
      // probe again (which sends a new snapshot if still needed).
      for (const pr of this.prs.progress.values()) {
        if (pr.state !== 'snapshot') continue;
        if (pr.snapshotStale) pr.becomeProbe();
        else pr.snapshotStale = true;
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingContext());
    }
  }

  private hup(t: CampaignType): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) {
      // Our view of the membership may be stale until those are applied.
      this.logger?.debug({ id: this.id }, 'raft: not campaigning, unapplied membership change');
      return;
    }
    this.campaignNow(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const ents = this.log.slice(this.log.applied + 1, this.log.committed + 1) ?? [];
    return ents.some((e) => e.type === 'confChange');
  }

  private campaignNow(t: CampaignType): void {
    let voteType: 'vote' | 'preVote';
    let term: number;
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      // Ask for votes for the term we would move to, without moving.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    this.prs.recordVote(this.id, true);
    if (this.prs.tallyVotes() === 'won') {
      // Single voter: won at once.
      if (t === 'preElection') this.campaignNow('election');
      else this.becomeLeader();
      return;
    }
    this.logger?.debug({ id: this.id, term, type: voteType }, 'raft: campaigning');
    for (const id of this.prs.voters) {
      if (id === this.id) continue;
      const m: Outgoing = {
        type: voteType,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
      };
      if (t === 'transfer') m.transfer = true;
      this.send(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType = VOTE_RESPONSE[m.type] ?? 'voteResp';
    // We may vote again for the same candidate (a retransmission), vote when
    // we have neither voted nor know a leader in this term, and always answer
    // a pre-vote for a later term on its merits.
    const canVote =
      !this.abstaining &&
      (this.vote === m.from ||
        (this.vote === null && this.leader === null) ||
        (m.type === 'preVote' && m.term > this.term));
    // Raft §5.4.1: grant only to a candidate whose log is at least as up-to-date.
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    if (m.type === 'readIndex') {
      this.leaderReadIndex(m);
      return;
    }
    if (m.type === 'transferLeader') {
      const context = m.context ?? EMPTY;
      let transferee: string;
      try {
        transferee = utf8Decoder.decode(context);
      } catch {
        return;
      }
      if (this.prs.isVoter(transferee)) this.handleTransferLeader(transferee);
      return;
    }
    const pr = this.prs.progress.get(m.from);
    if (pr === undefined) return;
    if (m.type === 'appResp' || m.type === 'heartbeatResp') {
      pr.recentActive = true;
      pr.ticksSinceActive = 0;
    }
    if (m.type === 'appResp') {
      if (m.index > this.log.lastIndex()) return;
      if (m.reject) {
        // Fast backtracking: skip all our entries of terms newer than the
        // follower's hint term (etcd findConflictByTerm).
        let nextProbe = m.rejectHint;
        if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm)[0];
        const acknowledged = pr.match;
        if (pr.maybeDecrTo(m.index, nextProbe)) {
          if (pr.match < acknowledged)
            this.logger?.warn(
              { id: this.id, from: m.from, match: acknowledged, holds: pr.match },
              'raft: a follower no longer holds entries it acknowledged (its store was lost or restored from an older copy); replicating to it again from what it holds',
            );
          if (pr.state === 'replicate') pr.becomeProbe();
          this.sendAppend(m.from);
        }
        return;
      }
      const oldPaused = pr.isPaused();
      if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
        if (pr.state === 'probe') pr.becomeReplicate();
        else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
          // The follower restored the snapshot; replicate from there on.
          pr.becomeProbe();
          pr.becomeReplicate();
        } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

        if (this.maybeCommit()) this.bcastAppend();
        else if (oldPaused) this.sendAppend(m.from);
        // Pipeline: keep sending while the window has room.
        while (this.maybeSendAppend(m.from, false));
        if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
          this.send({ type: 'timeoutNow', to: m.from });
        }
      }
      return;
    }
    if (m.type === 'heartbeatResp') {
      pr.msgAppFlowPaused = false;
      // The follower has committed at least the snapshot (our answer to it was lost).
      if (pr.state === 'snapshot' && m.index >= pr.pendingSnapshot) pr.becomeProbe();
      // Lost appends must not pin the window shut.
      if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
      if (m.context === undefined || m.context.length === 0) return;
      const acks = this.readOnly.recvAck(m.from, m.context);
      if (acks === null || !this.prs.hasQuorum(acks)) return;
      for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs.from, rs.context, rs.index);
    }
    // Other types at our term (voteResp after winning, ...) need nothing.
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
      // A leader of this term exists.
      this.becomeFollower(m.term, m.from);
      this.stepFollower(m);
      return;
    }
    if (m.type !== myResp) return;
    this.prs.recordVote(m.from, !m.reject);
    const result = this.prs.tallyVotes();
    if (result === 'won') {
      if (this.role === 'preCandidate') this.campaignNow('election');
      else this.becomeLeader();
    } else if (result === 'lost') {
      // A rejection carrying a newer term was already handled in step().
      this.becomeFollower(this.term, null);
    }
  }

  private stepFollower(m: Message): void {
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
      this.electionElapsed = 0;
      this.leader = m.from;
      if (m.type === 'app') this.handleAppend(m);
      else if (m.type === 'snap') this.handleSnapshot(m);
      else {
        this.log.commitTo(m.commit);
        this.send(this.withContext({ type: 'heartbeatResp', to: m.from, index: this.log.committed }, m));
      }
    } else if (m.type === 'timeoutNow') {
      // Leadership transfer: campaign at once, without pre-vote, and with
      // the transfer flag so that voters ignore their leader lease.
      this.logger?.info({ id: this.id, term: this.term, from: m.from }, 'raft: timeoutNow, campaigning');
      // With a committed membership change still unapplied our view of the
      // voters may be stale: campaign right after applying it (advance()).
      if (this.hasUnappliedConfChanges()) this.transferCampaignPending = true;
      else this.hup('transfer');
    } else if (m.type === 'readIndexResp') {
      this.readStates.push({ index: m.index, context: m.context ?? EMPTY });
    }
  }

  private withContext(out: Outgoing, m: Message): Outgoing {
    if (m.context !== undefined) out.context = m.context;
    return out;
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew === 'conflictBelowCommit') {
      this.logger?.warn(
        { id: this.id, from: m.from },
        'raft: append would rewrite committed entries; dropped',
      );
      return;
    }
    if (lastNew !== null) {
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= the
    // leader's term at m.index. The leader can then skip whole terms.
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(
      Math.min(m.index, this.log.lastIndex()),
      m.logTerm,
    );
    this.send({
      type: 'appResp',
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === undefined) return;
    if (this.restore(s)) {
      this.logger?.info({ id: this.id, index: s.meta.index }, 'raft: restored snapshot');
      this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
    }
  }

  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold the snapshot's last entry: just fast-forward commit.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.prs.applyConfState(s.meta.confState, this.log.lastIndex() + 1);
    this.prs.resetProgress(this.log.lastIndex(), this.id);
    this.isLearner = this.prs.learners.includes(this.id);
    return true;
  }

  private switchToConfig(cs: ConfState): void {
    this.prs.applyConfState(cs, this.log.lastIndex() + 1);
    this.isLearner = this.prs.learners.includes(this.id);
    const isVoter = this.prs.isVoter(this.id);
    if (this.role === 'leader' && !isVoter) {
      this.stepDownOnRemoval();
      return;
    }
    if (this.role !== 'leader' || cs.voters.length === 0) return;
    // The quorum changed: maybe more is committed now; new members need the log.
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.prs.ids()) if (id !== this.id) this.maybeSendAppend(id, false);
    if (this.leadTransferee !== null && !this.prs.isVoter(this.leadTransferee)) this.leadTransferee = null;
  }

  private stepDownOnRemoval(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.prs.voters) {
      const match = this.prs.progress.get(id)?.match ?? 0;
      if (match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    const lastIndex = this.log.lastIndex();
    this.logger?.info({ id: this.id, term: this.term }, 'raft: removed from the cluster, stepping down');
    this.becomeFollower(this.term, null);
    // Hand over without waiting for an election timeout when a voter has our whole log.
    if (best !== null && bestMatch === lastIndex) this.send({ type: 'timeoutNow', to: best });
  }

  private appendEntries(es: Pick<Entry, 'type' | 'data'>[]): void {
    const li = this.log.lastIndex();
    const ents = es.map((e, i) => ({ index: li + 1 + i, term: this.term, type: e.type, data: e.data }));
    this.log.append(ents);
    // The leader's own entry counts once it is persisted, which the driver
    // does before sending the appends that could collect other acks.
    this.prs.progress.get(this.id)?.maybeUpdate(this.log.lastIndex());
    this.maybeCommit();
  }

  /**
   * Advance the commit index to the largest index stored on a majority, but
   * only through an entry of the current term (Raft §5.4.2, Figure 8).
   */
  private maybeCommit(): boolean {
    const mci = this.prs.committed();
    let changed: boolean;
    if (this.faults.commitPriorTermEntries === true) {
      // TEST-ONLY fault: count replicas of any term's entries.
      changed = mci > this.log.committed;
      if (changed) this.log.commitTo(mci);
    } else {
      changed = this.log.maybeCommit(mci, this.term);
    }
    if (changed) this.releasePendingReads();
    return changed;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private releasePendingReads(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.leaderReadIndex(m);
  }

  private leaderReadIndex(m: Message): void {
    const context = m.context ?? EMPTY;
    if (this.prs.isSingleton() && this.prs.isVoter(this.id)) {
      this.answerRead(m.from, context, this.log.committed);
      return;
    }
    // Raft thesis §6.4: the read index is only safe once this leader has
    // committed an entry of its own term (its no-op).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.readOnly.add(this.log.committed, m.from, context);
    const acks = this.readOnly.recvAck(this.id, context);
    if (acks !== null && this.prs.hasQuorum(acks)) {
      for (const rs of this.readOnly.advance(context)) this.answerRead(rs.from, rs.context, rs.index);
      return;
    }
    this.bcastHeartbeat(context);
  }

  private answerRead(from: NodeId, context: Uint8Array, index: number): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'readIndexResp', to: from, index, context });
  }

  private handleTransferLeader(transferee: NodeId): void {
    const pr = this.prs.progress.get(transferee);
    if (pr === undefined || pr.isLearner) return;
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === transferee) return;
      this.leadTransferee = null;
    }
    if (transferee === this.id) return;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    this.logger?.info({ id: this.id, term: this.term, to: transferee }, 'raft: transferring leadership');
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: transferee });
    else this.sendAppend(transferee);
  }

  private bcastAppend(): void {
    for (const id of this.prs.ids()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: Uint8Array | undefined): void {
    for (const id of this.prs.ids()) {
      if (id === this.id) continue;
      const pr = this.prs.progress.get(id);
      // Commit no further than the follower is known to match our log.
      const out: Outgoing = {
        type: 'heartbeat',
        to: id,
        commit: Math.min(pr?.match ?? 0, this.log.committed),
      };
      if (context !== undefined) out.context = context;
      this.send(out);
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Send the next batch of entries to `to` (or a snapshot if they are
   * compacted). Returns whether a message was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const ents = this.log.slice(pr.next, this.log.lastIndex() + 1, this.maxMsgBytes, this.maxMsgEntries);
    if (prevTerm !== null && ents !== null) {
      if (ents.length === 0 && !sendIfEmpty) return false;
      this.send({
        type: 'app',
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.log.committed,
      });
      pr.sentEntries(ents.length);
      return true;
    }
    // The entries are compacted: the follower needs the snapshot.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    if (snapshot.meta.index === 0) return false;
    this.send({ type: 'snap', to, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
    this.logger?.debug({ id: this.id, to, index: snapshot.meta.index }, 'raft: sent snapshot');
    return true;
  }
}

function positive(n: number, name: string): number {
  if (!(n >= 1)) throw new RaftUsageError('invalidConfig', `${name} must be at least 1`);
  return n;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
