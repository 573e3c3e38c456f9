import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ApiError, apiErrorBody, apiErrorFromBody, mapError, rejected } from '../api/errors.js';
import type { NodeMetrics } from '../api/metrics.js';
import { SUBMIT_TIMEOUT } from '../api/schemas.js';
import type {
  AdminResult,
  BalanceView,
  LedgerNodeApi,
  NodeStatus,
  ParticipantView,
  PeerProgress,
  SubmitResult,
  TransactionView,
} from '../api/node-api.js';
import { CodecError, fromHex, parseJsonStrict } from '../codec/index.js';
import {
  decodeConfChange,
  MemoryStorage,
  ProposalDroppedError,
  RaftNode,
  type ConfChange,
  type Entry,
  type Message,
  type MessageType,
  type Ready,
  type Snapshot,
} from '../consensus/index.js';
import { verify } from '../crypto/index.js';
import {
  acceptTransaction,
  ADMIN_WINDOW_MS,
  applyTransaction,
  blockSigningMessage,
  buildBlock,
  decodeBlock,
  decodeUntrustedTransaction,
  LIMITS,
  signatureOfCanonicalTx,
  signedTxBytes,
  verifyDecodedTx,
  encodeDecodedBlock,
  getConfig,
  keys,
  parseAdminRequest,
  parseBlock,
  processBlock,
  REJECTED_AT_ADMISSION,
  selectTransactions,
  StateOverlay,
  verifyAdminSignature,
  type Block,
  type DecodedBlock,
  type DecodedTx,
  type MembersRec,
  type NonceRec,
  type ParticipantRec,
  type ProcessedBlock,
  type Receipt,
  type ResultCode,
  type StateView,
} from '../ledger/index.js';
import type { RaftStore } from '../storage/raft/index.js';
import type { CheckReport, SearchRequest, SearchResult, SyncServiceStatus } from '../sync/index.js';
import type { NodeMirror } from './mirror.js';
import { LayeredState } from './layered-state.js';
import type { LedgerChain } from './ledger-chain.js';
import { Mempool } from './mempool.js';
import { DEFAULT_LIMITS } from '../network/limits.js';
import { deadline } from '../network/wait.js';
import { LogRateLimiter } from '../util/rate-limited-log.js';
import type { NodeNetwork } from './network-port.js';
import {
  decodeRaftMessage,
  decodeTxForward,
  encodeRaftMessage,
  encodeTxForward,
  isTxForward,
} from './raft-wire.js';

export interface LedgerNodeOptions {
  nodeId: string;
  secretKey: Uint8Array;
  genesis: DecodedBlock;
  chain: LedgerChain;
  raftStore: RaftStore;
  network: NodeNetwork;
  logger: Logger;
  metrics: NodeMetrics | null;
  /** wall clock for block and admission timestamps (ms) */
  now?: () => number;
  /** real milliseconds per Raft tick; election timeout is 10–20 ticks */
  tickMs?: number;
  /**
   * A follower sends again what it has held this long without seeing it
   * commit, then after twice the gap each time, up to a minute (default
   * 2000; retryPending)
   */
  forwardRetryMs?: number;
  electionTick?: number;
  random?: () => number;
  /** blocks proposed but not yet applied, at most (pipelining) */
  maxInflightBlocks?: number;
  /** transactions per block, at most (also bounded by the chain's maxBlockTxs) */
  maxBlockTxs?: number;
  /** compact the Raft log every this many applied entries */
  compactEvery?: number;
  /** entries kept below the applied index when compacting, for slightly lagging followers */
  compactKeep?: number;
  /**
   * Treat transactions gossiped by members as signature-checked (default
   * true; the member that accepted them checked). False makes a leader check
   * them again before proposing.
   */
  trustGossip?: boolean;
  /** called when the node must stop (a broken invariant or a storage failure) */
  onFatal?: (err: Error) => void;
  /** the Postgres/pgvector mirror of the committed chain (src/sync), if this node runs one; or attachMirror() later */
  mirror?: NodeMirror;
  /**
   * Node ids this node's configuration names as its peers. The network admits
   * only members, as this node's applied chain and Raft configuration know
   * them; these are admitted too while that knowledge may be out of date
   * (updateNetworkMembers): before this node is a member in its own chain (it
   * is joining, and the leader may be a member added since genesis), while
   * it has heard no leader for LEADERLESS_TRUST_TICKS, and while its leader is
   * one it does not know as a member (shouldTrustPeers).
   */
  peers?: readonly string[];
  /**
   * Found the network: with an empty Raft store, start from genesis's
   * members (bootstrapState). Default false: a node whose store is empty
   * waits for a leader to send it the log. `bitnexus start` never sets it,
   * since `bitnexus init` writes a founding node's initial Raft state; a
   * founding node whose data was lost must not found the network again, with
   * no record of the terms and votes it gave (docs/OPERATIONS.md).
   */
  bootstrap?: boolean;
  /** committed entries a node may have left to apply and still be ready (/readyz `applied`; default 1000) */
  readyLagEntries?: number;
}

interface Waiter {
  resolve: (r: SubmitResult) => void;
  reject: (e: Error) => void;
  startedAt: number;
}

interface BlockListener {
  next: number;
  live: boolean;
  /** a promise: replay waits for it (a slow client is not outrun); live blocks never wait */
  onBlock: (block: Block, hash: string) => void | Promise<void>;
}

const BLOCK_BYTES_BUDGET = 4 * 1024 * 1024;
/** what blockRange reads for one answer: the network's default cut (a smaller configured one cuts sooner) */
const BLOCK_RANGE_BYTES = DEFAULT_LIMITS.maxBlockResponseBytes;
/** ticks between a follower's questions to its leader about the leader's commit index (readiness) */
const COMMIT_PROBE_TICKS = 10;
/** how long an answer to that question stands for readiness */
const COMMIT_PROBE_FRESH_MS = 5_000;
/** ticks without a known leader after which the configured peers are admitted as members (opts.peers) */
const LEADERLESS_TRUST_TICKS = 60;
const SWEEP_EVERY_TICKS = 50;
/** Resends of what has not committed (retryPending): the first gap, the longest, and how often to look. */
const FORWARD_RETRY_MS = 2_000;
const FORWARD_RETRY_MAX_MS = 60_000;
const FORWARD_RETRY_TICKS = 5;
/** transactions per forward frame at most; a longer queue is sent at once */
const FORWARD_BATCH_TXS = 512;
/** asking the leader about a refusal (answerFromLeader): its answer comes without waiting for a block */
const ASK_LEADER_TIMEOUT_MS = 5_000;
/** questions to the leader at once; more wait their turn (the leader serves 16 streams per connection) */
const ASK_LEADER_CONCURRENCY = 8;
/** Questions that may wait for one of those; past that, a follower's own refusal stands. */
const ASK_LEADER_QUEUE = 256;
/** room over the ledger's transaction limit when splitting a forward frame (the ledger checks exactly) */
const FORWARD_SLACK_BYTES = 256;

/** What a leader sends that claims nothing about its own disk (no vote, no acknowledgement). */
const LEADER_MESSAGES: ReadonlySet<MessageType> = new Set(['app', 'heartbeat', 'snap', 'timeoutNow']);

/**
 * One ledger node: Raft over the hash-chained ledger. The driver loop takes
 * each Raft Ready and: persists hard state and entries (one fsync) and
 * installs them in the in-memory log; meanwhile applies the committed entries
 * that earlier Readies wrote (blocks to the chain, membership changes to
 * Raft) and answers waiting submitters; sends the messages once the write is
 * done (a leader sends its appends at once, overlapping its fsync with the
 * followers'); applies committed entries of this Ready's own write; then
 * acknowledges. As leader it cuts blocks from the mempool against the state
 * its log will produce (group commit: every block one fsync however many
 * transactions it holds), with a few blocks in flight.
 */
export class LedgerNode implements LedgerNodeApi {
  readonly chainId: string;
  readonly nodeId: string;
  private readonly raft: RaftNode;
  private readonly storage: MemoryStorage;
  private readonly mempool = new Mempool();
  private readonly layered: LayeredState;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly listeners = new Set<BlockListener>();
  /** blocks this node proposed, by height, so applying them needs no parse or signature check */
  private readonly proposed = new Map<
    number,
    { bytes: Uint8Array; block: DecodedBlock; processed: ProcessedBlock; at: number }
  >();
  /** transactions whose signature this node checked (they arrived through submit or gossip) */
  private readonly verified = new Set<string>();
  private readonly adminNonces = new Map<string, number>();
  private mirror: NodeMirror | undefined;
  /** (raft index, chain head) of recently applied blocks: where the log may be compacted */
  private recentHeads: { index: number; height: number; hash: string }[] = [];
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private fatal: Error | undefined;
  private isLeader = false;
  private leader: string | null = null;
  private term = 0;
  /** the term in which this follower last forwarded its mempool to a leader (forwardToNewLeader) */
  private forwardedTerm = -1;
  private appliedIndex = 0;
  /**
   * A snapshot whose blocks the chain does not hold yet: sent by the leader,
   * or found on disk because the node stopped (or died) while fetching them.
   * Raft counts it as applied; the blocks are fetched in the background
   * (startRestore) and nothing committed after it applies before they are.
   */
  private unrestored: Snapshot | undefined;
  /** a restore of `unrestored` runs (startRestore) */
  private restoring = false;
  /** committed entries waiting for that restore (applyEntry) */
  private deferred: Entry[] = [];
  private persistedHard: { term: number; vote: string | null } = { term: 0, vote: null };
  private appliedSinceCompact = 0;
  private ticks = 0;
  private leaderReady = false;
  private forwardQueue: Uint8Array[] = [];
  private forwardScheduled = false;
  private readonly maxInflightBlocks: number;
  private readonly maxBlockTxs: number;
  private readonly compactEvery: number;
  private readonly compactKeep: number;
  private readonly forwardRetryMs: number;
  private readonly tickMs: number;

  private constructor(
    private readonly opts: LedgerNodeOptions,
    persisted: Awaited<ReturnType<RaftStore['load']>>,
  ) {
    const config = getConfig(opts.chain.state);
    if (!config) throw new Error('the chain has no genesis');
    this.chainId = config.chainId;
    this.nodeId = opts.nodeId;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger.child({ module: 'node' });
    this.layered = new LayeredState(opts.chain.state);
    this.mirror = opts.mirror;
    this.maxInflightBlocks = opts.maxInflightBlocks ?? 8;
    this.maxBlockTxs = Math.min(opts.maxBlockTxs ?? 2048, config.params.maxBlockTxs);
    this.compactEvery = opts.compactEvery ?? 5000;
    this.compactKeep = opts.compactKeep ?? 1000;
    this.forwardRetryMs = opts.forwardRetryMs ?? FORWARD_RETRY_MS;
    this.tickMs = opts.tickMs ?? 100;
    this.storage = MemoryStorage.fromPersisted(persisted);
    this.appliedIndex = persisted.snapshot?.meta.index ?? 0;
    if (persisted.snapshot && snapshotHead(persisted.snapshot).height > opts.chain.height)
      this.unrestored = persisted.snapshot;
    this.persistedHard = { term: persisted.hardState.term, vote: persisted.hardState.vote };
    const emptyStore = persisted.snapshot === null && persisted.entries.length === 0;
    this.raft = new RaftNode({
      id: opts.nodeId,
      storage: this.storage,
      electionTick: opts.electionTick ?? 10,
      heartbeatTick: 1,
      random: opts.random ?? Math.random,
      preVote: true,
      checkQuorum: true,
      maxMsgBytes: 4 * 1024 * 1024,
      ...(opts.bootstrap === true ? { bootstrap: { voters: [...config.members], learners: [] } } : {}),
      // a node that lost its store may have voted before: it could vote twice in one term
      abstainUntilLeader: opts.bootstrap !== true && emptyStore,
      logger: opts.logger.child({ module: 'raft' }),
    });
    if (opts.bootstrap !== true && emptyStore) {
      const founding = config.members.includes(opts.nodeId);
      (founding ? this.log.warn.bind(this.log) : this.log.info.bind(this.log))(
        'the Raft store is empty: waiting for a leader to send the log, and voting in no election until ' +
          'one is heard (a node added with `members add` starts so; a founding node has the state ' +
          '`bitnexus init` wrote' +
          (founding
            ? ': this node is a founding member, so its store was lost; the safe course is to ' +
              'remove it and add it again with a new key (docs/OPERATIONS.md)'
            : '; see docs/OPERATIONS.md') +
          ')',
      );
    }
  }

  /**
   * Open the node over its stores: the chain must hold genesis (it is
   * committed here if the chain is empty), the Raft store whatever it
   * persisted. Nothing starts until `start()`.
   */
  static async create(opts: LedgerNodeOptions): Promise<LedgerNode> {
    if (opts.chain.height < 0) await opts.chain.commit(opts.genesis);
    const stored = await opts.chain.store.getBlock(0);
    if (
      !stored ||
      decodeBlock(parseBlock(JSON.parse(Buffer.from(stored).toString('utf8')))).hash !== opts.genesis.hash
    ) {
      throw new Error('the data directory holds another network (genesis differs)');
    }
    const persisted = await opts.raftStore.load();
    return new LedgerNode(opts, persisted);
  }

  async start(): Promise<void> {
    const net = this.opts.network;
    net.onRaftFrame((from, frame) => this.onRaftFrame(from, frame));
    net.onTx((from, bytes) => this.onGossipTx(from, bytes));
    net.handleSubmit((req, _from, signal) => this.onP2PSubmit(req, signal));
    net.handleBlockRange((from, to, signal) => this.blockRange(from, to, signal));
    this.updateNetworkMembers();
    await net.start();
    this.timer = setInterval(() => this.onTick(), this.tickMs);
    this.log.info(
      { nodeId: this.nodeId, height: this.opts.chain.height, chainId: this.chainId },
      'node started',
    );
    this.kick();
  }

  /**
   * Attach the Postgres mirror once it is open. Opening it (PGlite
   * initialisation, migrations) never delays the node's start: consensus and
   * the API do not wait on the mirror, and the sink catches up from its cursor.
   */
  async attachMirror(mirror: NodeMirror): Promise<void> {
    this.mirrorPending = undefined;
    if (this.stopped) {
      await mirror.close();
      return;
    }
    this.mirror = mirror;
    mirror.committed(this.opts.chain.height);
  }

  /**
   * Why this node has no mirror to answer with, while it has none: it is
   * still opening (`opening`), or it could not be opened (the error). Unset:
   * the node runs without one (--no-mirror), or has it.
   */
  private mirrorPending: string | undefined;

  /** The mirror is being opened (process.ts); attachMirror() or mirrorFailed() follows. */
  mirrorOpening(): void {
    this.mirrorPending = 'the mirror is still opening; retry shortly';
  }

  mirrorFailed(err: Error): void {
    this.mirrorPending = `the mirror could not be opened (${err.message}); see the node's log`;
  }

  /** NOT_READY for a mirror route without a mirror, saying why. */
  private noMirror(what: string): ApiError {
    return new ApiError('NOT_READY', this.mirrorPending ?? `this node runs without a Postgres mirror${what}`);
  }

  private async closeMirror(): Promise<void> {
    const m = this.mirror;
    this.mirror = undefined;
    if (!m) return;
    await m.close();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    if (this.timer) clearInterval(this.timer);
    while (this.running || this.restoring) await new Promise((r) => setTimeout(r, 5));
    for (const [id, ws] of this.waiters) {
      for (const w of ws) w.reject(new ApiError('NOT_READY', `node stopping; ${id} may still commit`));
    }
    this.waiters.clear();
    await this.opts.network.stop();
    await this.closeMirror();
    await this.opts.raftStore.close();
    await this.opts.chain.close();
    this.log.info({ height: this.opts.chain.height }, 'node stopped');
  }

  // ---------------------------------------------------------------- driver

  private onTick(): void {
    if (this.stopped) return;
    this.raft.tick();
    this.ticks++;
    this.leaderlessTicks = this.leader === null ? this.leaderlessTicks + 1 : 0;
    if ((this.opts.peers?.length ?? 0) > 0 && this.shouldTrustPeers() !== this.trustingPeers)
      this.updateNetworkMembers();
    if (!this.isLeader && this.leader !== null && this.ticks % COMMIT_PROBE_TICKS === 0)
      this.probeLeaderCommit();
    if (this.ticks % SWEEP_EVERY_TICKS === 0) this.sweepMempool();
    if (this.ticks % FORWARD_RETRY_TICKS === 0) this.retryPending(this.now());
    if (this.isLeader && this.ticks % 10 === 0) {
      if (this.restoringChain) this.handOverLeadership();
      else this.reconcileMembership();
    }
    // Walking libp2p's connections costs more than a whole Ready of a small block: once a tick.
    this.opts.metrics?.setPeers(this.opts.network.connectedMembers().length);
    this.kick();
  }

  private onRaftFrame(from: string, frame: Uint8Array): void {
    if (this.stopped) return;
    if (isTxForward(frame)) {
      const txs = decodeTxForward(frame, LIMITS.maxTxBytes + FORWARD_SLACK_BYTES);
      if (!txs) {
        this.warnAbout('forward', from, {}, 'dropped a malformed transaction forward');
        return;
      }
      for (const tx of txs) this.onGossipTx(from, tx);
      return;
    }
    let msg;
    try {
      msg = decodeRaftMessage(frame);
    } catch (err) {
      this.warnAbout('frame', from, { err: (err as Error).message }, 'dropped a malformed raft frame');
      return;
    }
    if (msg.from !== from || msg.to !== this.nodeId) {
      this.warnAbout(
        'address',
        from,
        { claimed: msg.from, to: msg.to },
        'dropped a raft frame with a forged or wrong address',
      );
      return;
    }
    this.raft.step(msg);
    this.kick();
  }

  /**
   * A warning a member can cause over and over (a malformed frame, a forged
   * transaction): at most one per kind and subject (`from`: the peer, or the
   * transaction) every 10 s, and 20 per kind, each line counting the ones
   * dropped before it. A peer that misbehaves must not flood the log.
   */
  private warnAbout(kind: string, subject: string, fields: object, message: string): void {
    const admitted = this.peerWarnings.admit(`${kind}:${subject}`);
    if (admitted === undefined) return;
    const field = kind === 'signature' ? 'tx' : 'from';
    this.log.warn(
      {
        [field]: subject,
        ...fields,
        ...(admitted.suppressed > 0 ? { suppressed: admitted.suppressed } : {}),
      },
      message,
    );
  }

  private readonly peerWarnings = new LogRateLimiter(10_000);

  /** signatures of the transactions of the last blocks applied (gossip arriving late is dropped) */
  private readonly recentlyCommitted = new RecentSet<string>(RECENTLY_COMMITTED);

  /** Run the driver loop unless it is running; then it runs once more. */
  private kick(): void {
    if (this.stopped || this.fatal) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop().then(
      () => {
        this.running = false;
      },
      (err: unknown) => {
        this.running = false;
        this.die(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private async loop(): Promise<void> {
    this.startRestore();
    do {
      this.again = false;
      if (!this.unrestored && this.deferred.length > 0) await this.applyDeferred();
      while (this.raft.hasReady() && !this.stopped) await this.handleReady(this.raft.ready());
      if (!this.stopped) this.cutBlocks();
    } while ((this.again || this.raft.hasReady()) && !this.stopped);
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.role === 'leader', rd.softState.leader);
    for (const rs of rd.readStates) this.leaderCommit = { index: rs.index, at: performance.now() };
    // Raft thesis §10.2.1 (etcd does the same): a leader may send its appends while it writes
    // them to its own disk, so its fsync overlaps the followers' instead of preceding them. Safe
    // because a leader's messages carry no vote and no acknowledgement, its term and vote are
    // already durable (checked here), and nothing it commits is applied or announced before this
    // Ready's write completes: the next Ready, which could carry a commit index covering these
    // entries, is handled only after it.
    // One exception: a commit index that already covers this Ready's own entries. The core counts
    // the leader's entry as matched when it is proposed, so a leader that is the only voter
    // commits it at once, and the same Ready would tell its learners so before the entry is on
    // its disk: a learner would apply a block its leader could still lose in a crash.
    const firstNew = rd.entries[0]?.index ?? Infinity;
    const early =
      this.isLeader &&
      rd.snapshot === undefined &&
      this.hardStateDurable(rd.hardState) &&
      rd.messages.every((m) => LEADER_MESSAGES.has(m.type) && m.commit < firstNew);
    if (early) this.send(rd.messages);
    // Committed entries that were on disk before this Ready are applied while its write runs
    // (etcd applies on its own goroutine for the same reason): the cycle costs the longer of the
    // two, not their sum. Entries this Ready itself writes are applied only once written, and
    // the messages of a non-leader (acknowledgements, votes) leave only once written.
    const overlap = rd.snapshot === undefined;
    const applyNow = overlap ? rd.committedEntries.filter((e) => e.index < firstNew) : [];
    const applyAfter = overlap ? rd.committedEntries.filter((e) => e.index >= firstNew) : rd.committedEntries;
    const written = this.persist(rd).then(() => {
      if (!early) this.send(rd.messages);
    });
    written.catch(() => undefined); // awaited below; handled now so a failure mid-apply is not "unhandled"
    try {
      for (const e of applyNow) await this.applyEntry(e);
    } finally {
      await written;
    }
    if (rd.snapshot && rd.snapshot.data.length > 0) {
      // Its blocks are fetched in the background (startRestore) while Raft goes on: this node
      // still answers appends and votes, so a cluster that needs it for a quorum keeps going.
      const index = rd.snapshot.meta.index;
      this.deferred = this.deferred.filter((e) => e.index > index);
      this.unrestored = rd.snapshot;
      this.startRestore();
    }
    for (const e of applyAfter) await this.applyEntry(e);
    this.raft.advance();
    this.forwardToNewLeader();
    const st = this.raft.status();
    const m = this.opts.metrics;
    if (m) {
      m.setTerm(st.term);
      m.setCommitIndex(st.commit);
      m.setAppliedIndex(this.appliedIndex);
      m.setMempool(this.mempool.size);
    }
    if (this.appliedSinceCompact >= this.compactEvery) await this.compactLog();
  }

  /** Write a Ready's hard state, entries and snapshot (fsync when they must be durable), then install them in memory. */
  private async persist(rd: Ready): Promise<void> {
    if (!rd.hardState && rd.entries.length === 0 && !rd.snapshot) return;
    const t0 = performance.now();
    // etcd's MustSync: only new entries, a snapshot, or a new term or vote need an fsync
    // before anything is sent; a commit index alone is relearned from the leader.
    const hs = rd.hardState;
    const mustSync =
      rd.entries.length > 0 ||
      rd.snapshot !== undefined ||
      (hs !== undefined && (hs.term !== this.persistedHard.term || hs.vote !== this.persistedHard.vote));
    const write: Parameters<RaftStore['save']>[0] = { entries: rd.entries, sync: mustSync };
    if (hs) write.hardState = hs;
    if (rd.snapshot) write.snapshot = rd.snapshot;
    await this.opts.raftStore.save(write);
    if (hs) this.persistedHard = { term: hs.term, vote: hs.vote };
    if (mustSync) this.opts.metrics?.observeFsync((performance.now() - t0) / 1000);
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (hs) {
      this.storage.setHardState(hs);
      this.term = hs.term;
    }
  }

  private send(messages: readonly Message[]): void {
    for (const m of messages) this.opts.network.sendRaft(m.to, encodeRaftMessage(m));
  }

  /** The term and vote in `hs` (if any) are the ones already on disk. */
  private hardStateDurable(hs: Ready['hardState']): boolean {
    return hs === undefined || (hs.term === this.persistedHard.term && hs.vote === this.persistedHard.vote);
  }

  private onSoftState(leader: boolean, leaderId: string | null): void {
    const was = this.isLeader;
    this.leader = leaderId;
    this.isLeader = leader;
    this.opts.metrics?.setIsLeader(leader);
    if (leader && !was) {
      this.log.info({ term: this.raft.status().term }, 'became leader');
      if (this.restoringChain) {
        // Its chain is below the snapshot it holds: it can neither build blocks nor judge
        // transactions or membership until the restore is done (applyDeferred rebuilds then).
        this.leaderReady = false;
        this.handOverLeadership();
      } else this.rebuildSpeculativeState();
      // What gossip brought while following, decoded and admitted now against the state this
      // leader's log will produce.
      const raw = this.mempool.takeRaw();
      for (const bytes of raw) this.onGossipTx(this.nodeId, bytes);
      if (raw.length > 0) this.log.info({ txs: raw.length }, 'decoded the gossiped mempool');
    } else if (!leader && was) {
      this.log.info({ leader: leaderId }, 'lost leadership');
      this.layered.clear();
      this.proposed.clear();
      this.mempool.releaseInflight();
      this.leaderReady = false;
    }
  }

  /**
   * A follower that learns of the leader of a new term (a new leader, or the
   * same one elected again after a restart that emptied its mempool) sends
   * it every transaction its mempool holds decoded: what its own clients
   * submitted (forwarded to a leader that may have died before proposing it,
   * or to none while there was none), and what it accepted while it led. The
   * leader drops what it already holds. The copies held raw came by gossip,
   * which reached every member. Called after each Ready.
   */
  private forwardToNewLeader(): void {
    if (this.isLeader || this.leader === null || this.leader === this.nodeId) return;
    if (this.forwardedTerm === this.term) return;
    this.forwardedTerm = this.term;
    let n = 0;
    for (const dtx of this.mempool.pending()) {
      this.forwardToLeader(signedTxBytes(dtx));
      n++;
    }
    if (n > 0) this.log.info({ leader: this.leader, txs: n }, 'forwarded the mempool to the new leader');
  }

  /**
   * A follower sends again what it holds and has not seen commit: first
   * `forwardRetryMs` after it arrived, then after twice the previous gap, up
   * to FORWARD_RETRY_MAX_MS (Mempool.dueForResend), to the leader it knows.
   * A forward frame can be dropped by a full queue, or refused by a leader
   * whose mempool was full; raw copies matter when the node that accepted
   * the transaction is gone. Its own clients' transactions also go to
   * gossip, once: gossip reaches the leader through the other members when
   * this node cannot reach it itself (a partial partition) or knows of none,
   * and gossipsub refuses the same bytes again for minutes. Normally every
   * transaction commits well within the first gap and this sends nothing.
   */
  private retryPending(now: number): void {
    if (this.isLeader) return;
    let n = 0;
    for (const e of this.mempool.dueForResend(now, this.forwardRetryMs, FORWARD_RETRY_MAX_MS)) {
      const bytes = 'tx' in e ? signedTxBytes(e.tx) : e.bytes;
      this.forwardToLeader(bytes);
      if ('tx' in e && this.mempool.markGossiped(e.tx.id)) void this.opts.network.publishTx(bytes);
      n++;
    }
    // it repeats, backing off, for as long as no leader commits them: not worth a line each time
    if (n > 0) this.log.debug({ leader: this.leader, txs: n }, 'sent again what has not committed');
  }

  /**
   * A new leader builds on the last block in its log, committed or not: the
   * no-op of its term will commit them all. Their writes become the layers of
   * the state the next block is checked against.
   */
  private rebuildSpeculativeState(): void {
    this.layered.clear();
    this.proposed.clear();
    this.mempool.releaseInflight();
    this.leaderReady = true;
    const last = this.storage.lastIndex();
    const from = Math.max(this.appliedIndex + 1, this.storage.firstIndex());
    if (from > last) return;
    for (const e of this.storage.entries(from, last + 1)) {
      if (e.type !== 'normal' || e.data.length === 0) continue;
      try {
        const block = this.decodeEntryBlock(e.data);
        if (block.block.header.height <= this.opts.chain.height) continue;
        const processed = processBlock(this.layered, block, { checkSignatures: false });
        this.layered.push(block.block.header.height, processed.writes);
        this.mempool.markInflight(block.txs.map((t) => t.id));
      } catch (err) {
        // Never build on a log we cannot follow: stay leader-but-idle, the next term will sort it out.
        this.leaderReady = false;
        this.log.error(
          { index: e.index, err: (err as Error).message },
          'cannot replay an uncommitted block; not proposing',
        );
        return;
      }
    }
  }

  private cutBlocks(): void {
    // a leader whose chain is still being fetched cannot build on it: it proposes nothing until then
    if (!this.isLeader || !this.leaderReady || this.fatal || this.restoringChain) return;
    while (this.layered.depth < this.maxInflightBlocks && this.mempool.pendingCount() > 0) {
      // Read again for each block: the one just cut may remove this leader from the voters, and a
      // block it proposed after that would not be valid (processBlock: BAD_PROPOSER).
      const members = this.layered.get(keys.members) as MembersRec;
      if (!members.voters.includes(this.nodeId)) return; // removed in the ledger: propose nothing more
      const now = this.now();
      const sel = selectTransactions(this.layered, this.boundedCandidates(), now, this.maxBlockTxs);
      for (const r of sel.rejected) this.refuse(r.tx.id, r.code);
      if (sel.included.length === 0) {
        if (sel.rejected.length === 0) return;
        continue;
      }
      const block = buildBlock(this.layered, sel.included, {
        timestamp: now,
        term: this.raft.status().term,
        proposerSecretKey: this.opts.secretKey,
      });
      const processed = processBlock(this.layered, block, { checkSignatures: false });
      const bytes = encodeDecodedBlock(block);
      block.bytes = bytes;
      try {
        this.raft.propose(bytes);
      } catch (err) {
        if (err instanceof ProposalDroppedError) return;
        throw err;
      }
      const height = block.block.header.height;
      this.layered.push(height, processed.writes);
      this.proposed.set(height, { bytes, block, processed, at: performance.now() });
      this.log.debug(
        {
          height,
          txs: sel.included.length,
          inflight: this.layered.depth,
          pending: this.mempool.pendingCount(),
        },
        'proposed a block',
      );
      this.mempool.markInflight(sel.included.map((t) => t.id));
      this.opts.metrics?.incProposals(1);
    }
  }

  /**
   * Mempool candidates, stopping at the byte budget of one block. A
   * transaction that came by gossip has its signature checked here, once,
   * before this leader signs a block that holds it; a forged one is dropped.
   */
  private *boundedCandidates(): Generator<DecodedTx> {
    let bytes = 0;
    const forged: string[] = [];
    for (const tx of this.mempool.pending()) {
      if (!this.verified.has(tx.id)) {
        if (!verifyDecodedTx(tx)) {
          forged.push(tx.id);
          continue;
        }
        this.verified.add(tx.id);
      }
      bytes += tx.unsignedBytes.length + 140;
      if (bytes > BLOCK_BYTES_BUDGET) break;
      yield tx;
    }
    for (const id of forged) {
      this.warnAbout('signature', id, {}, 'dropped a gossiped transaction with a bad signature');
      this.refuse(id, 'UNKNOWN_SIGNER');
    }
  }

  private decodeEntryBlock(data: Uint8Array): DecodedBlock {
    const block = decodeBlock(parseBlock(JSON.parse(Buffer.from(data).toString('utf8'))));
    block.bytes = data;
    return block;
  }

  /**
   * Apply a committed entry, or hold it back (in order) while a snapshot's
   * blocks are still being fetched: it applies on top of them.
   */
  private async applyEntry(e: Entry): Promise<void> {
    if (this.unrestored || this.deferred.length > 0) {
      this.deferred.push(e);
      return;
    }
    await this.applyCommitted(e);
  }

  private async applyDeferred(): Promise<void> {
    while (!this.unrestored && !this.stopped) {
      const e = this.deferred.shift();
      if (e === undefined) break;
      await this.applyCommitted(e);
    }
    // a leader elected while it restored may build on its chain now
    if (!this.restoringChain && this.isLeader && !this.leaderReady && !this.stopped)
      this.rebuildSpeculativeState();
  }

  /** Below the snapshot it holds: its blocks are being fetched, or what committed since waits (startRestore). */
  private get restoringChain(): boolean {
    return this.unrestored !== undefined || this.deferred.length > 0;
  }

  /** A leader that cannot lead yet (restoringChain) asks a connected voter to take over. */
  private handOverLeadership(): void {
    const voters = this.raft.status().confState.voters;
    const to = this.opts.network.connectedMembers().find((p) => p !== this.nodeId && voters.includes(p));
    if (to === undefined) return;
    this.log.info({ to }, 'handing leadership over: this node is still restoring a snapshot');
    try {
      this.raft.transferLeadership(to);
    } catch (err) {
      this.log.debug({ to, err: (err as Error).message }, 'could not hand leadership over yet');
    }
  }

  /**
   * Fetch the blocks of the snapshot this node holds without them
   * (`unrestored`), in the background; a newer snapshot that arrives
   * meanwhile is fetched on to. Entries committed after it wait in
   * `deferred` and are applied by the driver loop once it is done.
   */
  private startRestore(): void {
    if (this.restoring || !this.unrestored) return;
    this.restoring = true;
    void (async () => {
      while (this.unrestored && !this.stopped) {
        const snap = this.unrestored;
        await this.restoreSnapshot(snap);
        if (this.stopped) return; // still on disk: the next start fetches the rest
        if (this.unrestored === snap) this.unrestored = undefined;
      }
    })().then(
      () => {
        this.restoring = false;
        this.kick();
      },
      (err: unknown) => {
        this.restoring = false;
        this.die(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private async applyCommitted(e: Entry): Promise<void> {
    this.appliedIndex = e.index;
    this.appliedSinceCompact++;
    if (e.type === 'confChange') {
      const cc = decodeConfChange(e.data);
      const cs = this.raft.applyConfChange(cc);
      this.log.info({ change: cc, voters: cs.voters, learners: cs.learners }, 'membership changed');
      this.updateNetworkMembers();
      return;
    }
    if (e.data.length === 0) return; // a new term's no-op
    const mine = this.findProposed(e.data);
    const block = mine?.block ?? this.decodeEntryBlock(e.data);
    const height = block.block.header.height;
    const chain = this.opts.chain;
    if (height <= chain.height) {
      // applied before a restart (the chain store and the Raft store are separate batches)
      const stored = await chain.store.getBlock(height);
      if (!stored || !Buffer.from(stored).equals(Buffer.from(e.data))) {
        throw new Error(`committed block ${height} differs from the stored one`);
      }
      return;
    }
    if (height !== chain.height + 1)
      throw new Error(`committed block ${height} does not follow height ${chain.height}`);
    // A leader signs a block for the term it proposes it in: a block in another term's entry is a
    // bug or a damaged log, never something to apply.
    if (block.block.header.term !== e.term)
      throw new Error(
        `committed block ${height} names term ${block.block.header.term} in an entry of term ${e.term}`,
      );
    if (!mine) this.checkSignatures(block);
    // Our own block was processed when we cut it, against the state its log predecessors produce.
    // Those predecessors are exactly the blocks applied since (the hash chain names them), so the
    // result stands as long as the head it was built on is the head now; apply is deterministic.
    const precomputed = mine && chain.head?.hash === block.block.header.prevHash ? mine.processed : undefined;
    // Not synced: the Raft log holds the block durably and is replayed after a crash; flush() before compaction.
    const receipts = await chain.commit(block, {
      checkSignatures: false,
      sync: false,
      ...(precomputed ? { processed: precomputed } : {}),
    });
    this.recentHeads.push({ index: e.index, height, hash: block.hash });
    if (this.recentHeads.length > 4 * (this.compactEvery + this.compactKeep)) this.recentHeads.shift();
    this.afterApply(block, receipts);
  }

  private findProposed(data: Uint8Array): { block: DecodedBlock; processed: ProcessedBlock } | undefined {
    for (const [h, p] of this.proposed) {
      if (p.bytes === data || Buffer.from(p.bytes).equals(Buffer.from(data))) {
        this.proposed.delete(h);
        this.log.debug({ height: h, ms: Math.round(performance.now() - p.at) }, 'own block committed');
        return p;
      }
    }
    return undefined;
  }

  /**
   * A committed block from another leader: its proposer's signature. Raft
   * already trusts the leader not to lie (crash faults, not Byzantine ones);
   * the leader checked every transaction's signature before signing the
   * block, and auditors check them all again with `bitnexus verify`. Blocks
   * fetched from peers (catch-up) are checked in full.
   */
  private checkSignatures(block: DecodedBlock): void {
    const b = block.block;
    if (!verify(fromHex(b.signature), blockSigningMessage(b.header), fromHex(b.header.proposer))) {
      throw new Error(`committed block ${b.header.height} has a bad proposer signature`);
    }
  }

  private afterApply(block: DecodedBlock, receipts: Receipt[]): void {
    const height = block.block.header.height;
    this.layered.dropThrough(height);
    let membership = false;
    for (const t of block.txs) {
      this.mempool.removeRaw(t.tx.signature);
      this.recentlyCommitted.add(t.tx.signature);
    }
    for (const r of receipts) {
      this.mempool.remove(r.tx);
      this.verified.delete(r.tx);
      const ws = this.waiters.get(r.tx);
      if (ws) {
        this.waiters.delete(r.tx);
        const now = performance.now();
        for (const w of ws) {
          this.opts.metrics?.observeCommitLatency((now - w.startedAt) / 1000);
          w.resolve({ id: r.tx, status: 'committed', receipt: r, blockHash: block.hash });
        }
      }
    }
    for (const t of block.txs) if (t.tx.kind.startsWith('member.')) membership = true;
    this.opts.metrics?.setHeight(height);
    this.opts.metrics?.observeBlockTxs(block.txs.length);
    if (this.mirror) {
      if (block.bytes) this.mirror.committed(height, { bytes: block.bytes, receipts });
      else this.mirror.committed(height);
    }
    for (const l of this.listeners) this.deliverLive(l, block);
    if (membership) {
      this.updateNetworkMembers();
      this.reconcileMembership();
    }
  }

  private async restoreSnapshot(snap: Snapshot): Promise<void> {
    const { height, hash } = snapshotHead(snap);
    this.log.info(
      { height, index: snap.meta.index },
      'restoring from a snapshot: fetching blocks from peers',
    );
    const chain = this.opts.chain;
    while (chain.height < height) {
      const peers = this.opts.network.connectedMembers().filter((p) => p !== this.nodeId);
      let progressed = false;
      for (const peer of peers) {
        if (this.stopped) return;
        let blocks: Uint8Array[];
        try {
          const from = chain.height + 1;
          blocks = await this.opts.network.fetchBlocks(
            peer,
            from,
            Math.min(height, from + 255),
            this.abort.signal,
          );
        } catch (err) {
          this.log.warn({ peer, err: (err as Error).message }, 'block fetch failed; trying another peer');
          continue;
        }
        for (const bytes of blocks) {
          let block: DecodedBlock;
          let processed: ProcessedBlock;
          try {
            block = decodeFetchedBlock(bytes);
            processed = processBlock(chain.state, block, { checkSignatures: true });
          } catch (err) {
            this.log.warn(
              { peer, err: (err as Error).message },
              'a peer served a block that does not follow the chain; trying another peer',
            );
            break;
          }
          // Outside the peer's try: a store that fails to write is this node's fault, not the
          // peer's, and stops the node (fatal) instead of being retried every 200 ms for ever.
          const receipts = await chain.commit(block, { checkSignatures: true, processed });
          this.afterApply(block, receipts);
          progressed = true;
        }
        if (progressed) break;
      }
      if (this.stopped) return;
      if (!progressed) await new Promise((r) => setTimeout(r, 200));
    }
    if (chain.head?.hash !== hash)
      throw new Error(
        `snapshot at height ${height} names hash ${hash}, the fetched chain has ${chain.head?.hash}`,
      );
    this.appliedIndex = snap.meta.index;
  }

  /**
   * Log compaction: a snapshot at the last block entry at least `compactKeep`
   * entries below the applied index. Its data names the chain head there
   * ({height, hash}); a follower that needs it fetches the blocks from peers.
   */
  private async compactLog(): Promise<void> {
    this.appliedSinceCompact = 0;
    const target = this.appliedIndex - this.compactKeep;
    let pick: { index: number; height: number; hash: string } | undefined;
    for (const h of this.recentHeads) if (h.index <= target) pick = h;
    if (!pick || pick.index < this.storage.firstIndex()) return;
    await this.opts.chain.flush(); // the chain must be durable before the log entries that rebuild it are dropped
    const snap = this.raft.compact(
      pick.index,
      Buffer.from(JSON.stringify({ height: pick.height, hash: pick.hash })),
    );
    await this.opts.raftStore.save({ snapshot: snap });
    await this.opts.raftStore.compact(pick.index);
    this.storage.applySnapshot(snap);
    const cut = pick.index;
    this.recentHeads = this.recentHeads.filter((h) => h.index >= cut);
    this.log.debug({ index: pick.index, height: pick.height }, 'compacted the raft log');
  }

  private die(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.log.fatal({ err: err.message, stack: err.stack }, 'node stopping: a fatal error');
    for (const ws of this.waiters.values())
      for (const w of ws) w.reject(new ApiError('INTERNAL', 'the node stopped'));
    this.waiters.clear();
    (
      this.opts.onFatal ??
      ((e: Error) =>
        setImmediate(() => {
          throw e;
        }))
    )(err);
  }

  // ------------------------------------------------------------ membership

  /** The members as this node knows them: its Raft configuration and its chain's ledger. */
  private knownMembers(): Set<string> {
    const cs = this.raft.status().confState;
    const ledger = this.opts.chain.state.get(keys.members) as MembersRec | undefined;
    return new Set([...cs.voters, ...cs.learners, ...(ledger?.voters ?? []), ...(ledger?.learners ?? [])]);
  }

  private updateNetworkMembers(): void {
    const ids = this.knownMembers();
    // A node learns of members only from blocks its leader sends; one that joins after the
    // members of its genesis have handed over (or that was away while they did) would refuse
    // the very leader that could tell it. Its operator's word stands in until it knows.
    this.trustingPeers = this.shouldTrustPeers(ids);
    if (this.trustingPeers) for (const p of this.opts.peers ?? []) ids.add(p);
    this.opts.network.setMembers([...ids]);
  }

  /**
   * Whether this node's knowledge of the members may be out of date: it is not
   * a member in its own chain yet, it has heard no leader for a while, or its
   * leader is not among the members it knows (it reached it through a
   * configured peer, and the block naming it has not been applied yet).
   */
  private shouldTrustPeers(known?: ReadonlySet<string>): boolean {
    if (!this.isMember() || this.leaderlessTicks >= LEADERLESS_TRUST_TICKS) return true;
    if (this.leader === null || this.leader === this.nodeId) return false;
    const ids = known ?? this.knownMembers();
    return !ids.has(this.leader);
  }

  /**
   * A follower's own commit index cannot show that it lags: a leader's
   * heartbeat carries a commit index capped at what the follower holds. So
   * it asks the leader for its commit index (a Raft ReadIndex) now and then;
   * readiness compares what it applied with the answer.
   */
  private probeLeaderCommit(): void {
    try {
      this.raft.readIndex(Buffer.from(`ready:${this.nodeId}:${++this.commitProbes}`));
    } catch {
      // no leader known after all: nothing to ask
    }
  }

  /** the leader's commit index as its last answer to probeLeaderCommit gave it, and when */
  private leaderCommit: { index: number; at: number } | undefined;
  private commitProbes = 0;

  /** whether opts.peers are admitted now (updateNetworkMembers) */
  private trustingPeers = false;
  /** ticks since this node last knew a leader */
  private leaderlessTicks = 0;

  /** In the network's membership as this node's applied chain has it (a voter or a learner). */
  private isMember(): boolean {
    const m = this.opts.chain.state.get(keys.members) as MembersRec | undefined;
    return m !== undefined && (m.voters.includes(this.nodeId) || m.learners.includes(this.nodeId));
  }

  /** turns to ask the leader about a refusal (answerFromLeader) */
  private readonly askSlots = new Slots(ASK_LEADER_CONCURRENCY, ASK_LEADER_QUEUE);

  /** why the ledger's membership is not yet Raft's (reconcileMembership), one reason per waiting change */
  private membershipWaiting: string[] = [];

  /**
   * The leader moves Raft's configuration towards the ledger's membership,
   * one change at a time: add missing nodes as learners, promote learners the
   * ledger made voters once they have caught up, remove nodes the ledger
   * removed.
   */
  private reconcileMembership(): void {
    // the ledger's membership read from a chain still below its snapshot is an old one
    if (!this.isLeader || this.restoringChain) return;
    const desired = this.opts.chain.state.get(keys.members) as MembersRec;
    const st = this.raft.status();
    const cs = st.confState;
    const inRaft = new Set([...cs.voters, ...cs.learners]);
    let cc: ConfChange | undefined;
    for (const id of [...desired.learners, ...desired.voters]) {
      if (!inRaft.has(id)) {
        cc = { type: 'addLearner', nodeId: id };
        break;
      }
    }
    // A change that would leave the voters without a majority of live nodes waits (etcd's strict
    // reconfiguration check): applied, it could not be undone, since undoing it needs a commit.
    const live = (id: string) => this.raft.heardFromRecently(id);
    const quorumLive = (voters: string[]) => voters.filter(live).length > voters.length / 2;
    const waiting: string[] = [];
    if (!cc) {
      for (const id of desired.voters) {
        if (!cs.learners.includes(id)) continue;
        // caught up, and alive now: a learner that never connected has match 0, one that went
        // away keeps its last match
        const match = st.progress?.[id]?.match ?? 0;
        const ready = match > 0 && match + 100 >= st.commit && live(id);
        if (ready && quorumLive([...cs.voters, id])) {
          cc = { type: 'promoteLearner', nodeId: id };
          break;
        }
        waiting.push(
          `promote ${id.slice(0, 12)}: ${ready ? 'the voters would have no live majority' : 'not caught up and connected yet'}`,
        );
      }
    }
    if (!cc) {
      const wanted = new Set([...desired.voters, ...desired.learners]);
      for (const id of [...inRaft].filter((x) => !wanted.has(x))) {
        if (!cs.voters.includes(id) || quorumLive(cs.voters.filter((v) => v !== id))) {
          cc = { type: 'removeNode', nodeId: id };
          break;
        }
        waiting.push(`remove ${id.slice(0, 12)}: the other voters have no live majority`);
      }
    }
    if (waiting.join('; ') !== this.membershipWaiting.join('; ')) {
      this.membershipWaiting = waiting;
      if (waiting.length > 0) this.log.warn({ waiting }, 'a membership change waits');
    }
    if (!cc) return;
    try {
      this.raft.proposeConfChange(cc);
      this.log.info({ change: cc }, 'proposed a membership change');
      this.kick();
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
    }
  }

  // -------------------------------------------------------------- mempool

  /** Stateful admission against the applied state, as if in the next block now. */
  private admissionCode(dtx: DecodedTx): ResultCode {
    const state = this.isLeader ? this.layered : this.opts.chain.state;
    const head = this.opts.chain.head!;
    return applyTransaction(
      new StateOverlay(state),
      dtx,
      head.height + 1,
      Math.max(this.now(), head.timestamp),
    ).code;
  }

  private admit(dtx: DecodedTx, signatureChecked: boolean): void {
    const code = this.admissionCode(dtx);
    if (REJECTED_AT_ADMISSION.has(code)) {
      const existing = (
        this.opts.chain.state.get(keys.nonce(dtx.tx.signer, dtx.tx.nonce)) as { tx?: string } | undefined
      )?.tx;
      throw rejected(code as Exclude<ResultCode, 'OK'>, rejectionMessage(code), existing);
    }
    if (this.mempool.signerAtQuota(dtx.tx.signer))
      throw new ApiError(
        'NOT_READY',
        `this signer has ${this.mempool.limits.maxPerSigner} transactions waiting already; retry as they commit`,
      );
    if (!this.mempool.add(dtx, this.now()))
      throw new ApiError('NOT_READY', 'the mempool is full; retry later');
    if (signatureChecked) this.verified.add(dtx.id);
  }

  private refuse(id: string, code: ResultCode): void {
    this.mempool.remove(id);
    this.verified.delete(id);
    const ws = this.waiters.get(id);
    if (!ws) return;
    this.waiters.delete(id);
    for (const w of ws) w.reject(rejected(code as Exclude<ResultCode, 'OK'>, rejectionMessage(code)));
  }

  /**
   * A follower sends what it accepted straight to the leader it knows, over
   * the Raft stream, batched per event-loop turn: gossip takes several
   * asynchronous hops through gossipsub on both sides (~20 ms under load).
   * This node keeps it until it commits and sends it again to the leader of
   * each new term (forwardToNewLeader) and while it does not commit (retryPending), so
   * none is lost when the leader dies; one answered with 202 is gossiped
   * too, and the leader drops that copy unread.
   */
  private forwardToLeader(bytes: Uint8Array): void {
    if (this.isLeader || this.leader === null || this.leader === this.nodeId) return;
    this.forwardQueue.push(bytes);
    if (this.forwardQueue.length >= FORWARD_BATCH_TXS) this.flushForward();
    else if (!this.forwardScheduled) {
      this.forwardScheduled = true;
      setImmediate(() => this.flushForward());
    }
  }

  private flushForward(): void {
    this.forwardScheduled = false;
    const batch = this.forwardQueue;
    this.forwardQueue = [];
    const leader = this.leader;
    if (batch.length === 0 || this.stopped || this.isLeader || leader === null || leader === this.nodeId)
      return;
    this.opts.network.sendRaft(leader, encodeTxForward(batch));
  }

  private onGossipTx(from: string, bytes: Uint8Array): void {
    if (this.stopped) return;
    // The leader hears of a follower's transaction twice (forwarded, then gossiped): no second decode.
    const signature = signatureOfCanonicalTx(bytes);
    if (signature !== undefined && this.mempool.hasSignature(signature)) return;
    // gossip that arrives after its block was applied: kept, it would wait an hour in the mempool,
    // sent to the leader again and again
    if (signature !== undefined && this.recentlyCommitted.has(signature)) return;
    // A follower keeps it undecoded until it leads (Mempool): most commit long before that.
    if (!this.isLeader && signature !== undefined) {
      this.mempool.addRaw(signature, bytes, this.now(), from);
      return;
    }
    let dtx: DecodedTx;
    try {
      // The member that accepted it from a client checked its signature, and members are trusted
      // the way Raft trusts them (crash faults, not Byzantine ones): gossip is members-only and
      // authenticated. Checking every signature again on every node was the largest cost under
      // load. Auditors check every signature of the chain (bitnexus verify).
      dtx = decodeUntrustedTransaction(JSON.parse(Buffer.from(bytes).toString('utf8')), this.chainId);
    } catch (err) {
      this.warnAbout(
        'gossip',
        from,
        { err: (err as Error).message },
        'dropped an invalid gossiped transaction',
      );
      return;
    }
    if (this.mempool.has(dtx.id)) return;
    try {
      this.admit(dtx, this.opts.trustGossip !== false);
    } catch {
      return; // committed already, or refused: nothing to do
    }
    this.kick();
  }

  /** Drop what can no longer commit: nonce used (committed), or outside the time window. */
  private sweepMempool(): void {
    const state = this.opts.chain.state;
    const config = getConfig(state)!;
    const now = this.now();
    // Raw (undecoded) gossip has no timestamp to hand: it goes once it has been held as long as
    // a transaction may live. Those that commit are dropped when their block is applied.
    this.mempool.sweepRaw(now - config.params.txMaxAgeMs);
    // Gossip that arrived after its block was applied, where recentlyCommitted did not know it
    // (a restarted node remembers no recent commits, and gossipsub replays its recent messages to
    // a peer that reconnects), would wait here until txMaxAgeMs and be sent to the leader again
    // and again. Each raw entry still held a sweep after it arrived (most have committed by then)
    // is parsed once: if its nonce is used, it can never commit.
    for (const [signature, bytes] of this.mempool.uncheckedRaw(now - SWEEP_EVERY_TICKS * this.tickMs)) {
      if (nonceUsed(state, bytes)) this.mempool.removeRaw(signature);
    }
    // A waiting client is told its transaction failed only when that is certain: its nonce
    // went to another transaction, or it is too old for any block still to come (block times
    // never go back, and apply refuses what is older than a block's time by txMaxAgeMs). Old by
    // this node's clock alone, it may sit in a block not applied here yet (a lagging follower,
    // a clock ahead): it leaves the mempool, and its waiters get the receipt if that block
    // arrives, or their timeout's "may still commit".
    const headTime = this.opts.chain.head!.timestamp;
    const failed = new Map<string, { code: 'NONCE_REUSED' | 'TX_EXPIRED'; existing?: string }>();
    const dropped = this.mempool.sweep((t) => {
      const used = state.get(keys.nonce(t.tx.signer, t.tx.nonce)) as NonceRec | undefined;
      if (used) {
        // its own commit answers its waiters when the block is applied (afterApply)
        if (used.tx !== t.id) failed.set(t.id, { code: 'NONCE_REUSED', existing: used.tx });
        return false;
      }
      if (t.tx.timestamp < headTime - config.params.txMaxAgeMs) {
        failed.set(t.id, { code: 'TX_EXPIRED' });
        return false;
      }
      return t.tx.timestamp >= now - config.params.txMaxAgeMs;
    });
    for (const id of dropped) {
      this.verified.delete(id);
      const why = failed.get(id);
      const ws = why && this.waiters.get(id);
      if (!why || !ws) continue;
      this.waiters.delete(id);
      for (const w of ws) w.reject(rejected(why.code, rejectionMessage(why.code), why.existing));
    }
    const cutoff = now - ADMIN_WINDOW_MS * 2;
    for (const [n, t] of this.adminNonces) if (t < cutoff) this.adminNonces.delete(n);
  }

  // ------------------------------------------------------------ the API

  /**
   * `forwarded`: the request is a follower's, asking this node as its leader
   * (answerFromLeader); this node answers it itself and never asks on.
   */
  async submit(
    json: unknown,
    opts: { wait: boolean; timeoutMs: number; signal?: AbortSignal; forwarded?: boolean },
  ): Promise<SubmitResult> {
    if (this.stopped || this.fatal) throw new ApiError('NOT_READY', 'the node is stopping');
    // A removed node still believes in its old leader, which no longer hears it: what it accepted
    // would never commit.
    if (!this.isMember())
      throw new ApiError('NOT_READY', 'this node is not a member of the network; submit to a member');
    // its state is below the snapshot it holds: it would judge transactions by an old ledger
    if (this.restoringChain)
      throw new ApiError(
        'NOT_READY',
        'this node is restoring a snapshot (fetching blocks from peers); submit to another',
      );
    const dtx = acceptTransaction(json, this.chainId);
    const startedAt = performance.now();
    // registered before the committed check, so an apply in between is not missed
    const waiting = opts.wait ? this.waitFor(dtx.id, opts.timeoutMs, startedAt, opts.signal) : undefined;
    // Only a transaction whose signer + nonce is in the applied state can be committed: skip the store otherwise.
    const used = this.opts.chain.state.get(keys.nonce(dtx.tx.signer, dtx.tx.nonce)) as
      { tx?: string } | undefined;
    const committed = used?.tx === dtx.id ? await this.committedResult(dtx.id) : undefined;
    if (committed) {
      waiting?.cancel();
      return committed;
    }
    let bytes: Uint8Array | undefined;
    let admitted = false;
    if (!this.mempool.has(dtx.id)) {
      try {
        this.admit(dtx, true);
        admitted = true;
      } catch (err) {
        // refused as a duplicate of itself in a block not committed yet: waited for, not refused
        if (!this.inUncommittedBlock(dtx)) {
          if (opts.forwarded !== true && mayBeThisNodesLag(err)) {
            const answer = await this.answerFromLeader(json, dtx.id, waiting, opts);
            if (answer !== undefined) return answer;
          }
          waiting?.cancel();
          throw err;
        }
      }
    }
    if (admitted) {
      bytes = signedTxBytes(dtx);
      this.forwardToLeader(bytes);
      this.kick();
    }
    // A client that waits for its receipt is answered by this node, which holds the transaction
    // and sends it again to the leader of each new term (forwardToNewLeader), and while it has
    // not committed (retryPending): no other copy is needed for it to survive the leader. One
    // answered "accepted" (202) is gossiped to every mempool, even if it was held already for a
    // waiting client, so that it outlives this node too; and the answer waits until the gossip
    // is on its way (at most GOSSIP_WAIT_MS): answered at once, a node killed in the next
    // milliseconds took its only copy with it (the soak test found one).
    if (!opts.wait && this.mempool.markGossiped(dtx.id)) {
      const sent = this.opts.network.publishTx(bytes ?? signedTxBytes(dtx));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([sent, new Promise((r) => (timer = setTimeout(r, GOSSIP_WAIT_MS)))]);
      clearTimeout(timer);
    }
    if (!waiting) return { id: dtx.id, status: 'accepted' };
    return waiting.result;
  }

  /**
   * The leader's answer to a submission this follower refused for a reason
   * that may be only its own view: a signer registered, or the transaction
   * itself committed, in a block this node has not applied yet (it cannot
   * tell that it lags: heartbeats carry a commit index capped at what it
   * holds), or a time window read on its own clock. The leader decides what
   * its blocks hold, so its answer is the client's: its refusal, the receipt
   * if committed, or "accepted", after which a waiting client waits here for
   * the block (`waiting`, registered before asking, so the apply is not
   * missed). The leader is asked without waiting, so a question holds its
   * stream briefly (the leader serves 16 per connection), at most
   * ASK_LEADER_CONCURRENCY at once.
   *
   * Undefined when no leader is known or it could not be reached (the
   * request never left): this node's refusal then stands. Any other failure
   * leaves the leader's decision unknown, so the client is told what is sure:
   * it waits for the block here, or gets TIMEOUT ("may still commit").
   */
  private async answerFromLeader(
    tx: unknown,
    id: string,
    waiting: { result: Promise<SubmitResult>; cancel: () => void } | undefined,
    client: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<SubmitResult | undefined> {
    const leader = this.leader;
    if (this.isLeader || leader === null || leader === this.nodeId) return undefined;
    const request = Buffer.from(
      JSON.stringify({ tx, wait: false, timeoutMs: ASK_LEADER_TIMEOUT_MS, forwarded: true }),
    );
    const unsure = (): Promise<SubmitResult> => {
      if (waiting) return waiting.result;
      throw new ApiError('TIMEOUT', 'the leader did not answer; the transaction may still commit', {
        details: { id },
      });
    };
    // The client's own time and presence bound the question, its wait for a slot included: one
    // asked for a client that has gone, or whose time is up, is never sent.
    const budget = deadline(Math.min(ASK_LEADER_TIMEOUT_MS, client.timeoutMs), client.signal);
    if (!(await this.askSlots.acquire(budget.signal))) {
      budget.clear();
      return undefined; // not sent: this node's refusal stands
    }
    let body: Uint8Array;
    try {
      body = await this.opts.network.submitTo(leader, request, budget.signal);
    } catch (err) {
      const notSent = (err as { code?: unknown }).code === 'UNREACHABLE';
      this.log.debug({ leader, err: (err as Error).message, notSent }, 'could not ask the leader');
      if (notSent) return undefined;
      return unsure();
    } finally {
      budget.clear();
      this.askSlots.release();
    }
    let answer: SubmitResult | undefined;
    try {
      answer = submitAnswer(body);
    } catch (err) {
      waiting?.cancel(); // the leader refused it: its refusal is the answer
      throw err;
    }
    if (answer === undefined) return unsure();
    if (answer.status === 'committed' || !waiting) {
      waiting?.cancel();
      return answer;
    }
    return waiting.result; // accepted by the leader: the receipt once this node applies its block
  }

  /**
   * In a block of this leader's log that has not committed yet: proposed by
   * it, or by the leader before it (a new leader's state includes the blocks
   * its log holds beyond the commit). Not in its mempool, since a waiting
   * client's transaction is not gossiped; answered like one in the mempool,
   * with the receipt once that block commits, not as a duplicate.
   */
  private inUncommittedBlock(dtx: DecodedTx): boolean {
    if (!this.isLeader) return false;
    const key = keys.nonce(dtx.tx.signer, dtx.tx.nonce);
    const speculative = this.layered.get(key) as NonceRec | undefined;
    return speculative?.tx === dtx.id && this.opts.chain.state.get(key) === undefined;
  }

  /**
   * One client's wait for `id` to commit here. `cancel()` drops this wait
   * alone (its result is then never settled); other clients waiting for the
   * same transaction keep theirs.
   */
  private waitFor(
    id: string,
    timeoutMs: number,
    startedAt: number,
    signal?: AbortSignal,
  ): { result: Promise<SubmitResult>; cancel: () => void } {
    let cancel = () => {};
    const result = new Promise<SubmitResult>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const w: Waiter = {
        resolve: (r) => {
          finish();
          resolve(r);
        },
        reject: (e) => {
          finish();
          reject(e);
        },
        startedAt,
      };
      const drop = () => {
        const list = this.waiters.get(id)?.filter((x) => x !== w) ?? [];
        if (list.length > 0) this.waiters.set(id, list);
        else this.waiters.delete(id);
      };
      const onAbort = () => {
        drop();
        w.reject(new ApiError('TIMEOUT', 'the client went away before the transaction committed'));
      };
      const timer = setTimeout(() => {
        drop();
        w.reject(
          new ApiError('TIMEOUT', `not committed within ${timeoutMs} ms; it may still commit`, {
            details: { id },
          }),
        );
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const list = this.waiters.get(id);
      if (list) list.push(w);
      else this.waiters.set(id, [w]);
      cancel = () => {
        drop();
        finish();
      };
    });
    // handled: a wait that times out while its submit is still reading the store must not be an
    // unhandled rejection; the caller still sees it through `result`
    result.catch(() => undefined);
    return { result, cancel };
  }

  private async committedResult(id: string): Promise<SubmitResult | undefined> {
    const view = await this.getTransaction(id);
    return view && { id, status: 'committed', receipt: view.receipt, blockHash: view.blockHash };
  }

  private async onP2PSubmit(request: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    let json: unknown;
    try {
      json = parseJsonStrict(Buffer.from(request).toString('utf8'));
    } catch (err) {
      const why =
        err instanceof CodecError
          ? 'the request names the same key twice in one object'
          : 'the request is not JSON';
      return Buffer.from(JSON.stringify(apiErrorBody('MALFORMED_JSON', why).body));
    }
    // a bare transaction, or the envelope { tx, wait?: boolean, timeoutMs?: integer, forwarded?: boolean }
    // (NETWORK.md)
    const envelope = json !== null && typeof json === 'object' && 'tx' in json;
    const { tx, wait, timeoutMs, forwarded } = envelope
      ? (json as { tx: unknown; wait?: unknown; timeoutMs?: unknown; forwarded?: unknown })
      : { tx: json, wait: undefined, timeoutMs: undefined, forwarded: undefined };
    const invalid = (field: string, message: string) =>
      Buffer.from(JSON.stringify(apiErrorBody('INVALID_FIELD', message, field).body));
    if (wait !== undefined && typeof wait !== 'boolean') return invalid('wait', 'wait must be true or false');
    if (timeoutMs !== undefined && !Number.isSafeInteger(timeoutMs))
      return invalid('timeoutMs', 'timeoutMs must be an integer number of milliseconds');
    if (forwarded !== undefined && typeof forwarded !== 'boolean')
      return invalid('forwarded', 'forwarded must be true or false');
    try {
      const r = await this.submit(tx, {
        wait: wait !== false,
        timeoutMs: Math.min(
          Math.max((timeoutMs as number | undefined) ?? SUBMIT_TIMEOUT.default, SUBMIT_TIMEOUT.min),
          SUBMIT_TIMEOUT.max,
        ),
        forwarded: forwarded === true,
        ...(signal ? { signal } : {}),
      });
      return Buffer.from(JSON.stringify(r));
    } catch (err) {
      // The same error shape and codes as HTTP (api/errors.ts), never a stack.
      const mapped = mapError(err);
      if (mapped.internal) this.log.error({ err }, 'a P2P submission failed');
      return Buffer.from(JSON.stringify(mapped.body));
    }
  }

  /**
   * Blocks from..to for a peer catching up, read only as far as one answer
   * carries: the network cuts an answer at its byte limit and the peer asks
   * again from there, so reading a whole range of large blocks first would
   * hold up to 512 of them in memory for nothing. Stops when the request is
   * given up.
   */
  private async blockRange(from: number, to: number, signal?: AbortSignal): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    let bytes = 0;
    const last = Math.min(to, this.opts.chain.height);
    for (
      let h = Math.max(0, from);
      h <= last && bytes <= BLOCK_RANGE_BYTES && signal?.aborted !== true;
      h++
    ) {
      const b = await this.opts.chain.store.getBlock(h);
      if (!b) break;
      out.push(b);
      bytes += b.byteLength;
    }
    return out;
  }

  async getTransaction(id: string): Promise<TransactionView | undefined> {
    const store = this.opts.chain.store;
    const loc = await store.getTxLocation(id);
    if (!loc) return undefined;
    const [blockBytes, receiptBytes] = await Promise.all([
      store.getBlock(loc.height),
      store.getReceipt(loc.height, loc.index),
    ]);
    if (!blockBytes || !receiptBytes) return undefined;
    const block = JSON.parse(Buffer.from(blockBytes).toString('utf8')) as Block;
    const tx = block.txs[loc.index];
    if (!tx) return undefined;
    const receipt = JSON.parse(Buffer.from(receiptBytes).toString('utf8')) as Receipt;
    return { id, tx, receipt, blockHash: decodeBlock(parseBlock(block)).hash };
  }

  async getBlock(height: number): Promise<Block | undefined> {
    const bytes = await this.opts.chain.store.getBlock(height);
    return bytes && (JSON.parse(Buffer.from(bytes).toString('utf8')) as Block);
  }

  getParticipant(key: string): ParticipantView | undefined {
    const p = this.opts.chain.state.get(keys.participant(key)) as ParticipantRec | undefined;
    return p && { key: p.key, role: p.role, name: p.name, since: p.since };
  }

  getAffiliateBalances(key: string): BalanceView[] | undefined {
    const p = this.opts.chain.state.get(keys.participant(key)) as ParticipantRec | undefined;
    if (!p || p.role !== 'affiliate') return undefined;
    const prefix = `aa/${key}/`;
    const out: BalanceView[] = [];
    for (const [k, rec] of this.opts.chain.state.records) {
      if (!k.startsWith(prefix) || rec.t !== 'account') continue;
      out.push({
        currency: k.slice(prefix.length),
        pending: rec.pending.toString(),
        payable: rec.balance.toString(),
        paid: rec.paid.toString(),
      });
    }
    return out.sort((a, b) => a.currency.localeCompare(b.currency));
  }

  status(): NodeStatus {
    const st = this.raft.status();
    const connected = new Set(this.opts.network.connectedMembers());
    const members: PeerProgress[] = [
      ...st.confState.voters.map((id) => ({ id, role: 'voter' as const })),
      ...st.confState.learners.map((id) => ({ id, role: 'learner' as const })),
    ].map(({ id, role }) => {
      const p: PeerProgress = { nodeId: id, role, connected: id === this.nodeId || connected.has(id) };
      const pr = st.progress?.[id];
      if (pr) {
        p.match = pr.match;
        p.next = pr.next;
        p.state = pr.state;
      }
      return p;
    });
    const isLearner = st.confState.learners.includes(this.nodeId);
    const head = this.opts.chain.head!;
    return {
      nodeId: this.nodeId,
      chainId: this.chainId,
      role: isLearner ? 'learner' : st.role,
      term: st.term,
      leader: st.leader,
      commitIndex: st.commit,
      appliedIndex: this.appliedIndex,
      height: head.height,
      headHash: head.hash,
      mempool: this.mempool.size,
      members,
      // kept by the leader's reconciliation; a node that lost leadership keeps its last reasons
      ...(this.isLeader && this.membershipWaiting.length > 0
        ? { membershipWaiting: [...this.membershipWaiting] }
        : {}),
    };
  }

  subscribeBlocks(after: number, onBlock: (block: Block, hash: string) => void | Promise<void>): () => void {
    const l: BlockListener = { next: Math.max(0, after + 1), live: false, onBlock };
    this.listeners.add(l);
    this.pumpBlocks(l);
    return () => this.listeners.delete(l);
  }

  /** pump(), its failure (the store closed under it at a stop, say) ending that listener */
  private pumpBlocks(l: BlockListener): void {
    this.pump(l).catch((err: unknown) => {
      this.listeners.delete(l);
      if (!this.stopped) this.log.warn({ err: (err as Error).message }, 'block stream replay failed');
    });
  }

  /** Replay stored blocks to a listener until it reaches the head, then go live. */
  private async pump(l: BlockListener): Promise<void> {
    while (this.listeners.has(l) && l.next <= this.opts.chain.height) {
      const bytes = await this.opts.chain.store.getBlock(l.next);
      if (!bytes || !this.listeners.has(l)) break;
      const block = JSON.parse(Buffer.from(bytes).toString('utf8')) as Block;
      l.next++;
      await l.onBlock(block, decodeBlock(parseBlock(block)).hash);
    }
    l.live = true;
  }

  private deliverLive(l: BlockListener, block: DecodedBlock): void {
    if (!l.live) return;
    const h = block.block.header.height;
    if (h === l.next) {
      l.next++;
      void l.onBlock(block.block, block.hash);
    } else if (h > l.next) {
      l.live = false;
      this.pumpBlocks(l);
    }
  }

  health(): { ok: boolean } {
    return { ok: !this.fatal && !this.stopped };
  }

  readiness(): { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } {
    const st = this.raft.status();
    const checks: Record<string, { ok: boolean; detail?: string }> = {
      running: { ok: !this.fatal && !this.stopped, ...(this.fatal ? { detail: this.fatal.message } : {}) },
      leader: st.leader
        ? { ok: true, detail: st.leader }
        : {
            ok: false,
            detail:
              st.term === 0
                ? 'no leader known: the Raft store is empty and this node waits to be sent the log (docs/OPERATIONS.md)'
                : 'no leader known (election in progress?)',
          },
      applied: this.appliedCheck(st.commit),
      member: this.isMember()
        ? { ok: true }
        : {
            ok: false,
            detail: 'not a member of the network (removed, or not yet added as of this node’s chain)',
          },
    };
    const ready = Object.values(checks).every((c) => c.ok);
    const mirror = this.mirror?.status();
    if (!this.mirror && this.mirrorPending !== undefined)
      checks.sync = { ok: false, detail: this.mirrorPending };
    if (mirror) {
      // Reported, but not part of `ready`: consensus and writes do not depend on the mirror.
      checks.sync = {
        ok: mirror.state === 'ok',
        detail:
          mirror.state === 'ok'
            ? `mirrored to height ${mirror.height}, ${mirror.lagBlocks} behind`
            : `${mirror.state}: ${mirror.lastError ?? 'not writing'}; ${mirror.lagBlocks} blocks behind`,
      };
    }
    return { ready, checks };
  }

  /** readiness: how far behind the committed log this node's applied state is, as far as it can know */
  private appliedCheck(ownCommit: number): { ok: boolean; detail: string } {
    if (this.restoringChain)
      return { ok: false, detail: 'restoring a snapshot: fetching its blocks from peers' };
    const limit = this.opts.readyLagEntries ?? 1000;
    const lc = this.leaderCommit;
    // a follower's own commit index is capped at what it holds; the leader's answer is not
    if (!this.isLeader && lc !== undefined && performance.now() - lc.at < COMMIT_PROBE_FRESH_MS) {
      const commit = Math.max(lc.index, ownCommit);
      return {
        ok: commit - this.appliedIndex < limit,
        detail: `applied ${this.appliedIndex} of ${commit} committed (the leader's commit index)`,
      };
    }
    return {
      ok: ownCommit - this.appliedIndex < limit,
      detail: `applied ${this.appliedIndex} of ${ownCommit} committed`,
    };
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    const m = this.mirror;
    if (!m) throw this.noMirror('; search needs one');
    try {
      return await m.search(request);
    } catch (err) {
      this.log.debug({ err }, 'a search failed');
      throw mirrorCallError(err);
    }
  }

  syncStatus(): SyncServiceStatus | undefined {
    // undefined: runs without a mirror (the API says so); opening or failed: says which
    if (!this.mirror && this.mirrorPending !== undefined) throw this.noMirror('');
    return this.mirror?.status();
  }

  async syncCheck(): Promise<CheckReport> {
    const m = this.mirror;
    if (!m) throw this.noMirror('');
    try {
      return await m.check();
    } catch (err) {
      this.log.debug({ err }, 'a sync check failed');
      throw mirrorCallError(err);
    }
  }

  admin(request: unknown): Promise<AdminResult> {
    try {
      return Promise.resolve(this.adminNow(request));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private adminNow(request: unknown): AdminResult {
    const req = parseAdminRequest(request, this.chainId);
    const signer = this.opts.chain.state.get(keys.participant(req.signer)) as ParticipantRec | undefined;
    if (!signer || signer.role !== 'operator')
      throw new ApiError('UNAUTHORIZED', 'admin requests must be signed by an operator');
    if (!verifyAdminSignature(req))
      throw new ApiError('UNAUTHORIZED', 'the admin signature does not verify', { field: '$.signature' });
    if (Math.abs(req.timestamp - this.now()) > ADMIN_WINDOW_MS) {
      throw new ApiError(
        'UNAUTHORIZED',
        `the request timestamp is more than ${ADMIN_WINDOW_MS / 1000} s from this node's clock`,
      );
    }
    const nonceKey = `${req.signer}/${req.nonce}`;
    if (this.adminNonces.has(nonceKey))
      throw new ApiError('UNAUTHORIZED', 'this admin request was already used');
    switch (req.kind) {
      case 'leader.transfer': {
        // a removed node still believes in its old leader, which no longer hears it
        if (!this.isMember())
          throw new ApiError(
            'NOT_READY',
            'this node is not a member of the network; send admin requests to a member',
          );
        const to = req.payload.to;
        const st = this.raft.status();
        if (!st.confState.voters.includes(to)) {
          throw new ApiError('BAD_REQUEST', `${to} is not a voting member`, { field: '$.payload.to' });
        }
        if (st.leader === null) throw new ApiError('NO_LEADER', 'no leader known (election in progress?)');
        // the nonce counts as used once the request is acted on, so a refused one can be retried
        this.adminNonces.set(nonceKey, this.now());
        if (st.leader === to)
          return { ok: true, action: 'leader.transfer', detail: `${to} already leads: nothing to do` };
        try {
          this.raft.transferLeadership(to);
        } catch (err) {
          this.adminNonces.delete(nonceKey);
          if (err instanceof ProposalDroppedError) throw new ApiError('NO_LEADER', err.message);
          throw err;
        }
        this.kick();
        // a follower passes the request to its leader, which does not answer it: not confirmed
        const detail = this.isLeader
          ? `leadership transfer to ${to} started`
          : `asked the leader ${st.leader} to transfer leadership to ${to}; watch /v1/status for the outcome`;
        return { ok: true, action: 'leader.transfer', detail };
      }
    }
  }

  /** test and operations hooks */
  get raftStatus() {
    return this.raft.status();
  }

  get mempoolSize(): number {
    return this.mempool.size;
  }

  get fatalError(): Error | undefined {
    return this.fatal;
  }
}

/**
 * A block a peer served (catch-up), to be stored in its canonical encoding,
 * whatever formatting the peer sent: its hash and signatures do not depend
 * on the formatting, so a peer that re-formats a valid block is not caught by
 * them, and storing its bytes would leave this honest node with a chain that
 * `bitnexus verify` refuses and that no longer matches its Raft log.
 */
function decodeFetchedBlock(bytes: Uint8Array): DecodedBlock {
  const block = decodeBlock(parseBlock(JSON.parse(Buffer.from(bytes).toString('utf8'))));
  block.bytes = encodeDecodedBlock(block);
  return block;
}

/** At most `n` holders at once; at most `maxWaiting` others wait, in order, each until its signal aborts. */
class Slots {
  private free: number;
  private readonly queue = new Set<() => void>(); // insertion order: first come, first served
  constructor(
    n: number,
    private readonly maxWaiting: number,
  ) {
    this.free = n;
  }
  /** True once a slot is held (release it); false, holding none, if `signal` aborts first or the queue is full. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free--;
      return Promise.resolve(true);
    }
    if (this.queue.size >= this.maxWaiting) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.queue.delete(grant);
        resolve(false);
      };
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      this.queue.add(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  release(): void {
    const next = this.queue.values().next();
    if (next.done === true) this.free++;
    else {
      this.queue.delete(next.value);
      next.value();
    }
  }
}

/**
 * What a client is told when a call into the mirror fails (SyncError codes,
 * src/sync/errors.ts; told apart by name so this module does not load the
 * sync layer): its own query's fault (400), the database or the mirror
 * thread out of reach, or another check running (503, worth a retry), or
 * anything else (500, logged; the database's own words stay in the log).
 */
export function mirrorCallError(err: unknown): Error {
  const e = err as { name?: unknown; code?: unknown; message?: unknown };
  if (e.name === 'SyncError' && e.code === 'INVALID_QUERY') return err as Error;
  // the database's own words (hosts, ports) stay in the node's log; the node's own are kept
  if (e.name === 'SyncError' && e.code === 'MIRROR_UNAVAILABLE') {
    const own = (err as { ownWords?: unknown }).ownWords;
    return new ApiError(
      'NOT_READY',
      typeof own === 'string' ? own : 'the mirror database is unavailable; retry later',
      { cause: err },
    );
  }
  // the schema is gone and being made again (docs/SYNC.md, rebuilding the mirror)
  if (e.name === 'SyncError' && e.code === 'MIRROR_REBUILDING')
    return new ApiError('NOT_READY', 'the mirror is being rebuilt; retry later', { cause: err });
  if (e.name === 'SyncError' && e.code === 'CHECK_IN_PROGRESS')
    return new ApiError('NOT_READY', 'a check is already running on this node; retry when it has answered', {
      cause: err,
    });
  return new ApiError('INTERNAL', 'the mirror failed', { cause: err });
}

/** The chain head a snapshot names (compactLog), or height -1 for one without data. */
function snapshotHead(snap: Snapshot): { height: number; hash: string } {
  if (snap.data.length === 0) return { height: -1, hash: '' };
  return JSON.parse(Buffer.from(snap.data).toString('utf8')) as { height: number; hash: string };
}

/**
 * Refusals a follower can give only because of its own view, which its
 * leader may not share (answerFromLeader): a signer registered in a block
 * this node has not applied, the transaction's own block not applied yet
 * (TX_EXPIRED), a time window read on this node's clock. A used nonce or a
 * committed duplicate is in the applied state and true everywhere.
 */
const VIEW_DEPENDENT: ReadonlySet<unknown> = new Set<ResultCode>([
  'TX_EXPIRED',
  'TX_FROM_FUTURE',
  'UNKNOWN_SIGNER',
]);

function mayBeThisNodesLag(err: unknown): boolean {
  return err instanceof ApiError && err.code === 'REJECTED' && VIEW_DEPENDENT.has(err.details?.receiptCode);
}

/** A submit answer's body (NETWORK.md): the result, or the error it holds thrown; undefined if neither. */
function submitAnswer(body: Uint8Array): SubmitResult | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
  const error = apiErrorFromBody(json);
  if (error) throw error;
  const r = json as Partial<SubmitResult> | null;
  if (typeof r?.id === 'string' && (r.status === 'committed' || r.status === 'accepted'))
    return r as SubmitResult;
  return undefined;
}

function rejectionMessage(code: ResultCode): string {
  // eslint-disable-next-line @typescript-eslint/switch-exhaustiveness-check -- only admission codes have their own words
  switch (code) {
    case 'DUPLICATE_TX':
      return 'this transaction was already committed';
    case 'NONCE_REUSED':
      return 'the signer already used this nonce for another transaction';
    case 'TX_EXPIRED':
      return 'the transaction timestamp is too old';
    case 'TX_FROM_FUTURE':
      return 'the transaction timestamp is too far in the future';
    case 'UNKNOWN_SIGNER':
      return 'the signer is not a registered participant';
    default:
      return `the ledger would record ${code}`;
  }
}

export function randomSeed(): () => number {
  // Production randomness for election timeouts; the simulator injects a seeded one.
  return () => randomBytes(4).readUInt32BE(0) / 2 ** 32;
}

/** How long a `wait=none` answer waits for its transaction's gossip to be on its way. */
const GOSSIP_WAIT_MS = 1_000;

/** How many committed transactions' signatures a node remembers to drop late gossip. */
const RECENTLY_COMMITTED = 50_000;

/**
 * Whether the nonce of a raw (undecoded) transaction is used in `state`. A
 * raw transaction that does not parse that far is left to the mempool's age
 * limit.
 */
function nonceUsed(state: StateView, bytes: Uint8Array): boolean {
  let tx: { signer?: unknown; nonce?: unknown };
  try {
    tx = JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    ) as typeof tx;
  } catch {
    return false;
  }
  if (typeof tx !== 'object' || tx === null || typeof tx.signer !== 'string' || typeof tx.nonce !== 'string')
    return false;
  return state.get(keys.nonce(tx.signer, tx.nonce)) !== undefined;
}

/** A set of at most `capacity` values, the oldest added forgotten first. */
class RecentSet<T> {
  private readonly values = new Set<T>();
  constructor(private readonly capacity: number) {}

  add(v: T): void {
    if (this.values.has(v)) return;
    this.values.add(v);
    // a Set iterates in insertion order: its first value is the oldest
    if (this.values.size > this.capacity) this.values.delete(this.values.values().next().value as T);
  }

  has(v: T): boolean {
    return this.values.has(v);
  }
}
