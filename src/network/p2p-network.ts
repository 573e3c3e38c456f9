import type { ConnectionGater, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Logger } from 'pino';
import { BlockSync, type BlockRangeHandler } from './block-sync.js';
import { ConnectionGuard, type ConnectionGuardStats } from './connection-guard.js';
import { parseMultiaddr, resolveStaticPeers, type DialablePeer, type NetworkConfig } from './config.js';
import { FrameTooLargeError, NetworkConfigError, NetworkStateError, PeerUnreachableError } from './errors.js';
import { createHost, memberGossipScore, type Host } from './host.js';
import { nodeIdFromPeerId, nodeIdFromSeed, peerIdFromNodeId, privateKeyFromSeed } from './identity.js';
import { resolveLimits, type NetworkLimits } from './limits.js';
import { Listeners } from './listeners.js';
import { MemberPresence, type MemberConnectionHandler } from './member-presence.js';
import { MembershipGate } from './membership.js';
import { PeerDialer } from './peer-dialer.js';
import { RaftTransport, type RaftFrameHandler, type RaftTransportStats } from './raft-transport.js';
import { LogRateLimiter } from '../util/rate-limited-log.js';
import { exchangeSubmit } from './submit-client.js';
import { SubmitService, type SubmitHandler, type SubmitServiceStats } from './submit-service.js';
import { SUBMIT_PROTOCOL } from './protocols.js';
import { TxGossip, type TxGossipStats, type TxHandler } from './tx-gossip.js';
import { deadline, toError } from './wait.js';

export interface NetworkStats {
  connections: number;
  connectedMembers: number;
  raft: RaftTransportStats & { queued: Record<string, number> };
  gossip: TxGossipStats;
  submit: SubmitServiceStats;
  /** connections of peers that are neither members nor static peers */
  nonMembers: ConnectionGuardStats & { connections: number };
}

/** The parts that exist only between start() and stop(). */
interface Running {
  host: Host;
  raft: RaftTransport;
  gossip: TxGossip;
  submit: SubmitService;
  blocks: BlockSync;
  dialer: PeerDialer;
  presence: MemberPresence;
  guard: ConnectionGuard;
}

const CHAIN_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * A ledger node's view of the network: one libp2p host (TCP + Noise + Yamux,
 * identify, ping, gossipsub) and the BitNexus protocols on top of it — Raft
 * transport, transaction gossip, submit, block sync — behind a membership
 * gate. Everything above this class speaks node ids (hex Ed25519 public
 * keys); PeerIds stay inside. Lifecycle: construct, register handlers (any
 * time), `start()`, `stop()`. One instance runs once; a restart is a new
 * instance with the same seed.
 */
export class P2PNetwork {
  /** this node's id: hex of its Ed25519 public key, the same key libp2p uses */
  readonly nodeId: string;
  /** this node's libp2p peer id (derived from the same key) */
  readonly peerId: string;
  readonly limits: NetworkLimits;

  readonly #config: NetworkConfig;
  readonly #logger: Logger;
  readonly #gate: MembershipGate;
  readonly #staticPeers: DialablePeer[];
  readonly #staticIds: ReadonlySet<string>;
  readonly #controller = new AbortController();
  readonly #raftListeners: Listeners<[from: string, frame: Uint8Array]>;
  readonly #txListeners: Listeners<[from: string, tx: Uint8Array]>;
  readonly #memberListeners: Listeners<[nodeId: string, connected: boolean]>;
  #submitHandler: SubmitHandler | undefined;
  #blockHandler: BlockRangeHandler | undefined;
  #state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new';
  #running: Running | undefined;
  #startup: Promise<void> | undefined;
  #droppedBeforeStart = 0;

  constructor(config: NetworkConfig) {
    this.#config = config;
    this.#logger = config.logger.child({ module: 'network' });
    this.limits = resolveLimits(config.limits);
    this.nodeId = nodeIdFromSeed(config.seed);
    this.peerId = peerIdFromNodeId(this.nodeId).toString();
    if (!CHAIN_ID.test(config.chainId)) {
      throw new NetworkConfigError('BAD_LIMIT', 'chainId must be 1-64 characters of [A-Za-z0-9._-]');
    }
    for (const address of config.listen) parseMultiaddr(address);
    this.#staticPeers = resolveStaticPeers(config.peers, this.nodeId);
    this.#staticIds = new Set(this.#staticPeers.map((p) => p.nodeId));
    const warnings = new LogRateLimiter(this.limits.logIntervalMs);
    this.#gate = new MembershipGate(config.members, this.#logger, warnings);
    this.#raftListeners = new Listeners(this.#logger, 'Raft frame');
    this.#txListeners = new Listeners(this.#logger, 'transaction');
    this.#memberListeners = new Listeners(this.#logger, 'member connection');
    config.signal?.addEventListener('abort', () => void this.stop(), { once: true });
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') {
      throw new NetworkStateError('ALREADY_STARTED', `the network was already ${this.#state}`);
    }
    if (this.#config.signal?.aborted === true) {
      this.#state = 'stopped';
      throw new NetworkStateError('STOPPED', 'the shutdown signal has already fired');
    }
    this.#state = 'starting';
    this.#startup = this.#startUp();
    return this.#startup;
  }

  async #startUp(): Promise<void> {
    try {
      this.#running = await this.#build();
      const { host, raft, submit, blocks, gossip, dialer, presence } = this.#running;
      // Handlers first, so a peer that connects at once finds every protocol.
      await raft.start();
      await submit.start();
      await blocks.start();
      presence.start();
      await host.start();
      gossip.start();
      await dialer.start(this.#gate.list());
      this.#state = 'started';
      this.#logger.info(
        { peerId: this.peerId, addrs: this.addresses(), members: this.#gate.list().length },
        'network started',
      );
    } catch (err) {
      this.#state = 'stopping';
      await this.#teardown();
      throw err;
    }
  }

  /** Stops every loop, aborts every stream, closes every connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === 'starting') await this.#startup?.catch(() => undefined);
    if (this.#state === 'stopped' || this.#state === 'stopping') return;
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    await this.#teardown();
    this.#logger.info('network stopped');
  }

  /** The multiaddrs this node listens on, each ending in /p2p/<peer id>. */
  addresses(): string[] {
    return this.#running?.host.getMultiaddrs().map((ma) => ma.toString()) ?? [];
  }

  /**
   * Replaces the membership. Peers that left lose their Raft streams at once;
   * peers that joined are dialed (at addresses the peer store knows).
   */
  setMembers(nodeIds: readonly string[]): void {
    const before = new Set(this.#gate.list());
    const removed = this.#gate.set(nodeIds);
    this.#running?.raft.forget(removed);
    this.#running?.guard.membershipChanged();
    this.#running?.presence.membershipChanged(before);
    this.#running?.dialer.sync(this.#gate.list());
    this.#logger.info({ members: this.#gate.list().length, removed: removed.length }, 'membership updated');
  }

  members(): string[] {
    return this.#gate.list();
  }

  /**
   * Queues a Raft frame for member `to`. Never blocks and never throws: a full
   * queue drops its oldest frame; a frame over maxRaftFrameBytes, a non-member
   * destination or a stopped network drops this one. Drops are counted in
   * `stats().raft`.
   */
  sendRaft(to: string, frame: Uint8Array): void {
    const running = this.#running;
    if (running === undefined || this.#state !== 'started') {
      this.#droppedBeforeStart += 1;
      return;
    }
    running.raft.send(to, frame);
  }

  onRaftFrame(handler: RaftFrameHandler): () => void {
    return this.#raftListeners.add(handler);
  }

  /**
   * Gossips a transaction to every connected member; resolves with how many
   * it was handed to, once its batch has been written to their streams. A
   * failure (too large, not started, no member subscribed) is logged and
   * counted in `stats().gossip` and resolves 0, never rejects, so a caller on
   * the submit path cannot be broken by gossip; a caller that need not know
   * may leave it unawaited.
   */
  publishTx(tx: Uint8Array): Promise<number> {
    const running = this.#running;
    if (running === undefined || this.#state !== 'started') {
      this.#logger.debug('transaction not gossiped: network not running');
      return Promise.resolve(0);
    }
    return running.gossip.publish(tx).catch((err: unknown) => {
      this.#logger.warn({ err: (err as Error).message, size: tx.byteLength }, 'transaction gossip failed');
      return 0;
    });
  }

  onTx(handler: TxHandler): () => void {
    return this.#txListeners.add(handler);
  }

  /** Members subscribed to the transaction topic (a publish reaches these). */
  txGossipPeers(): string[] {
    return this.#running?.gossip.subscribers().sort() ?? [];
  }

  /** Serves `/bitnexus/submit/1.0.0` with `handler` (replacing any earlier one). */
  handleSubmit(handler: SubmitHandler): void {
    this.#submitHandler = handler;
    this.#running?.submit.setHandler(handler);
  }

  /**
   * Sends `request` to member `nodeId` over `/bitnexus/submit/1.0.0` and
   * returns the answer's body (a follower asking its leader). Throws
   * PeerUnreachableError (code UNREACHABLE) when the stream could not be
   * opened, so nothing was sent; a RemoteError for an error status,
   * FrameTooLargeError for a request over maxSubmitRequestBytes, and the abort
   * reason when `signal` fires, the network stops, or the handler's time and
   * the exchange's run out.
   */
  async submitTo(nodeId: string, request: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    const running = this.#started();
    const limits = this.limits;
    if (request.byteLength > limits.maxSubmitRequestBytes) {
      throw new FrameTooLargeError(request.byteLength, limits.maxSubmitRequestBytes, 'submit request');
    }
    const budget = deadline(
      limits.submitHandlerTimeoutMs + limits.submitIoTimeoutMs,
      this.#controller.signal,
      signal,
    );
    try {
      let stream;
      try {
        stream = await running.host.dialProtocol(peerIdFromNodeId(nodeId), SUBMIT_PROTOCOL, {
          signal: budget.signal,
        });
      } catch (err) {
        throw new PeerUnreachableError(`cannot open a submit stream to ${nodeId}: ${toError(err).message}`, {
          cause: err,
        });
      }
      return await exchangeSubmit(stream, request, limits.maxSubmitResponseBytes, budget.signal);
    } catch (err) {
      throw budget.signal.aborted ? toError(budget.signal.reason) : err;
    } finally {
      budget.clear();
    }
  }

  /** Serves `/bitnexus/blocks/1.0.0` to members with `handler` (replacing any earlier one). */
  handleBlockRange(handler: BlockRangeHandler): void {
    this.#blockHandler = handler;
    this.#running?.blocks.setHandler(handler);
  }

  /** Fetches blocks `from..to` (inclusive, at most 512) from member `nodeId`; may return fewer. */
  async fetchBlocks(nodeId: string, from: number, to: number, signal?: AbortSignal): Promise<Uint8Array[]> {
    return this.#started().blocks.fetch(nodeId, from, to, signal);
  }

  /** Node ids of members with an open connection to this node. */
  connectedMembers(): string[] {
    return this.#running?.presence.connected() ?? [];
  }

  /** Called with (nodeId, true) when a member connects and (nodeId, false) when it disconnects. */
  onMemberConnection(handler: MemberConnectionHandler): () => void {
    return this.#memberListeners.add(handler);
  }

  stats(): NetworkStats {
    const running = this.#running;
    const raft = running?.raft.stats ?? {
      framesSent: 0,
      framesReceived: 0,
      droppedQueueFull: 0,
      droppedTooLarge: 0,
      droppedNotMember: 0,
      droppedStreamFailed: 0,
      badInboundFrames: 0,
      refusedInbound: 0,
    };
    return {
      connections: running?.host.getConnections().length ?? 0,
      connectedMembers: this.connectedMembers().length,
      raft: {
        ...raft,
        droppedStreamFailed: raft.droppedStreamFailed + this.#droppedBeforeStart,
        queued: running?.raft.queued() ?? {},
      },
      gossip: { ...(running?.gossip.stats ?? { published: 0, failed: 0, accepted: 0, rejected: 0 }) },
      submit: {
        ...(running?.submit.stats ?? {
          answered: 0,
          failed: 0,
          badRequests: 0,
          refusedStreams: 0,
          refusedBusy: 0,
        }),
      },
      nonMembers: {
        connections:
          running?.host.getConnections().filter((c) => !this.#isPrivileged(c.remotePeer)).length ?? 0,
        ...(running?.guard.stats ?? { refusedTotalCap: 0, refusedIpCap: 0, closedIdle: 0 }),
      },
    };
  }

  async #build(): Promise<Running> {
    const config = this.#config;
    const limits = this.limits;
    const logger = this.#logger;
    const gate = this.#gate;
    const signal = this.#controller.signal;
    const warnings = new LogRateLimiter(limits.logIntervalMs);
    const guard = new ConnectionGuard({
      logger,
      limits,
      warnings,
      isPrivileged: (peer) => this.#isPrivileged(peer),
    });
    const host = await createHost({
      privateKey: await privateKeyFromSeed(config.seed),
      listen: config.listen,
      gater: { ...this.#gater(), ...guard.gater },
      limits,
      gossipPeerScore: memberGossipScore((peer) => gate.has(nodeIdOfPeerString(peer))),
    });
    guard.attach(host);
    const submit = new SubmitService({
      host,
      logger,
      limits,
      signal,
      warnings,
      exchanges: guard,
      isPrivileged: (peer) => this.#isPrivileged(peer),
    });
    submit.setHandler(this.#submitHandler);
    const blocks = new BlockSync({ host, gate, logger, limits, signal, warnings });
    blocks.setHandler(this.#blockHandler);
    return {
      host,
      raft: new RaftTransport({
        host,
        gate,
        logger,
        limits,
        signal,
        warnings,
        deliver: (from, frame) => this.#raftListeners.emit(from, frame),
      }),
      gossip: new TxGossip({
        pubsub: host.services.pubsub,
        gate,
        logger,
        limits,
        warnings,
        chainId: config.chainId,
        deliver: (from, tx) => this.#txListeners.emit(from, tx),
      }),
      submit,
      blocks,
      dialer: new PeerDialer({ host, logger, limits, signal, selfNodeId: this.nodeId }, this.#staticPeers),
      presence: new MemberPresence({ host, gate, listeners: this.#memberListeners }),
      guard,
    };
  }

  /** Members and static peers: dialed and kept, never capped or closed as idle non-members. */
  #isPrivileged(peer: PeerId): boolean {
    const nodeId = nodeIdFromPeerId(peer);
    return nodeId !== undefined && (this.#gate.has(nodeId) || this.#staticIds.has(nodeId));
  }

  /**
   * Outbound, this node dials members and static peers, nobody else.
   * Inbound connections are open to anyone, because the submit protocol must
   * be, within the non-member caps of the ConnectionGuard; members-only
   * protocols are gated per stream.
   */
  #gater(): ConnectionGater {
    return { denyDialPeer: (peerId: PeerId) => !this.#isPrivileged(peerId) };
  }

  async #teardown(): Promise<void> {
    this.#controller.abort();
    const running = this.#running;
    this.#running = undefined;
    if (running !== undefined) {
      const step = async (what: string, work: () => unknown): Promise<void> => {
        try {
          await work();
        } catch (err) {
          this.#logger.warn({ err: (err as Error).message }, `error while stopping ${what}`);
        }
      };
      await step('dialer', () => running.dialer.stop());
      await step('presence', () => running.presence.stop());
      await step('connection guard', () => running.guard.stop());
      await step('gossip', () => running.gossip.stop());
      await step('raft', () => running.raft.stop());
      await step('submit', () => running.submit.stop());
      await step('blocks', () => running.blocks.stop());
      await step('host', () => running.host.stop());
    }
    this.#state = 'stopped';
  }

  #started(): Running {
    if (this.#running === undefined || this.#state !== 'started') {
      throw new NetworkStateError(
        this.#state === 'new' ? 'NOT_STARTED' : 'STOPPED',
        `the network is ${this.#state}`,
      );
    }
    return this.#running;
  }
}

function nodeIdOfPeerString(peer: string): string | undefined {
  try {
    return nodeIdFromPeerId(peerIdFromString(peer));
  } catch {
    return undefined;
  }
}
