import type { IdentifyResult, Libp2p, PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from 'pino';
import { peerIdStringOf, type DialablePeer } from './config.js';
import { nodeIdFromPeerId, peerIdFromNodeId } from './identity.js';
import { backoffDelay, type NetworkLimits } from './limits.js';
import { LogRateLimiter } from '../util/rate-limited-log.js';
import { deadline, pause, Wakeup } from './wait.js';

export interface PeerDialerComponents {
  host: Pick<Libp2p, 'dial' | 'getConnections' | 'addEventListener' | 'removeEventListener' | 'peerStore'>;
  logger: Logger;
  limits: NetworkLimits;
  signal: AbortSignal;
  selfNodeId: string;
}

/** How often a connected peer is re-checked even without a disconnect event. */
const CONNECTED_RECHECK_MS = 5_000;

/** Unreachable-peer lines are logged at most this often per peer. */
const UNREACHABLE_LOG_INTERVAL_MS = 60_000;

/** Tag that keeps static peers and members out of the connection manager's pruning. */
export const KEEP_TAG = 'bitnexus-keep';

/** Addresses kept per member: what it announced, capped so a member cannot make us dial a long list. */
const MAX_BOOK_ADDRS = 16;

interface Target {
  peer: DialablePeer;
  wakeup: Wakeup;
  controller: AbortController;
  loop: Promise<void>;
}

/**
 * Keeps a connection open to every peer of the static bootstrap list and to
 * every member. One loop per peer: while connected it sleeps until a
 * disconnect; otherwise it dials with exponential backoff and jitter
 * (redialMinMs doubling up to redialMaxMs), forever, until shutdown or until
 * the peer is neither static nor a member. Static peers are dialed at their
 * configured addresses; other members at the listen addresses they announced
 * in their latest identify, kept here in the dialer's own address book. (The
 * peer store forgets an address `peerAddressAgeMs` after it first saw it,
 * however often it is announced again, so a member that has been connected
 * for over an hour could not be redialed from there.) libp2p's own KEEP_ALIVE
 * redial gives up after a few tries, which a validator must not do. Every
 * static peer and every member is tagged, so that libp2p's connection pruning
 * keeps them.
 */
export class PeerDialer {
  readonly #targets = new Map<string, Target>();
  readonly #unreachable = new LogRateLimiter(UNREACHABLE_LOG_INTERVAL_MS);
  readonly #static: ReadonlyMap<string, DialablePeer>;
  /** current members (not only those that are not static) */
  #members: ReadonlySet<string> = new Set();
  /** listen addresses each non-static member announced in its latest identify */
  readonly #book = new Map<string, Multiaddr[]>();
  /** members tagged KEEP_TAG by this dialer (static peers are tagged once, at start) */
  readonly #tagged = new Set<string>();
  /** peer-store tag updates, in order, so an add and a quick removal cannot land reversed */
  #tagging: Promise<void> = Promise.resolve();
  #started = false;

  constructor(
    private readonly components: PeerDialerComponents,
    staticPeers: readonly DialablePeer[],
  ) {
    this.#static = new Map(staticPeers.map((p) => [p.nodeId, p]));
  }

  readonly #onDisconnect = (evt: CustomEvent<PeerId>): void => {
    for (const target of this.#targets.values()) {
      if (target.peer.peerId.equals(evt.detail)) target.wakeup.notify();
    }
  };

  readonly #onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const nodeId = nodeIdFromPeerId(evt.detail.peerId);
    if (nodeId === undefined || !this.#members.has(nodeId) || this.#static.has(nodeId)) return;
    const addrs = announcedAddrs(evt.detail);
    if (addrs.length > 0) this.#book.set(nodeId, addrs);
  };

  async start(members: readonly string[]): Promise<void> {
    const { host } = this.components;
    for (const peer of this.#static.values()) {
      await host.peerStore.merge(peer.peerId, {
        multiaddrs: peer.addrs,
        tags: { [KEEP_TAG]: { value: 100 } },
      });
    }
    host.addEventListener('peer:disconnect', this.#onDisconnect);
    host.addEventListener('peer:identify', this.#onIdentify);
    this.#started = true;
    this.sync(members);
    await this.#tagging;
  }

  /**
   * Dials static peers and `members`; stops dialing peers that are neither.
   * Tags every member against pruning and untags those that left.
   */
  sync(members: readonly string[]): void {
    if (!this.#started || this.components.signal.aborted) return;
    const self = this.components.selfNodeId;
    this.#members = new Set(members.filter((id) => id !== self));
    for (const nodeId of this.#book.keys()) {
      if (!this.#members.has(nodeId)) this.#book.delete(nodeId);
    }
    this.#retag();
    const wanted = new Set([...this.#static.keys(), ...this.#members]);
    wanted.delete(self);
    for (const [nodeId, target] of this.#targets) {
      if (!wanted.has(nodeId)) {
        target.controller.abort();
        this.#targets.delete(nodeId);
      }
    }
    for (const nodeId of wanted) {
      if (this.#targets.has(nodeId)) continue;
      const peer = this.#static.get(nodeId) ?? { nodeId, peerId: peerIdFromNodeId(nodeId), addrs: [] };
      const controller = new AbortController();
      const wakeup = new Wakeup();
      const signal = AbortSignal.any([this.components.signal, controller.signal]);
      const loop = this.#keepConnected(peer, wakeup, signal).catch((err: unknown) => {
        this.components.logger.error({ nodeId, err: (err as Error).message }, 'redial loop failed');
      });
      this.#targets.set(nodeId, { peer, wakeup, controller, loop });
    }
  }

  /** Resolves once every loop has seen the shutdown signal. */
  async stop(): Promise<void> {
    this.#started = false;
    this.components.host.removeEventListener('peer:disconnect', this.#onDisconnect);
    this.components.host.removeEventListener('peer:identify', this.#onIdentify);
    const targets = [...this.#targets.values()];
    this.#targets.clear();
    for (const target of targets) target.controller.abort();
    await Promise.all(targets.map((t) => t.loop));
    await this.#tagging;
  }

  /** Brings the KEEP_TAG of members in line with the membership; static peers keep theirs. */
  #retag(): void {
    const { host, logger } = this.components;
    const add = [...this.#members].filter((id) => !this.#tagged.has(id) && !this.#static.has(id));
    const remove = [...this.#tagged].filter((id) => !this.#members.has(id));
    for (const id of add) this.#tagged.add(id);
    for (const id of remove) this.#tagged.delete(id);
    if (add.length === 0 && remove.length === 0) return;
    this.#tagging = this.#tagging.then(async () => {
      for (const [nodeId, keep] of [
        ...add.map((id) => [id, true] as const),
        ...remove.map((id) => [id, false] as const),
      ]) {
        const peerId = peerIdFromNodeId(nodeId);
        try {
          await host.peerStore.merge(peerId, { tags: { [KEEP_TAG]: keep ? { value: 100 } : undefined } });
          if (keep && !this.#book.has(nodeId)) {
            // A member that joined while connected was identified before it was a member.
            const addrs = (await host.peerStore.get(peerId)).addresses.map((a) => a.multiaddr);
            const dialable = withPeerId(addrs, peerId);
            if (dialable.length > 0 && this.#members.has(nodeId)) this.#book.set(nodeId, dialable);
          }
        } catch (err) {
          logger.debug({ nodeId, err: (err as Error).message }, 'could not update the peer store');
        }
      }
    });
  }

  async #keepConnected(peer: DialablePeer, wakeup: Wakeup, signal: AbortSignal): Promise<void> {
    const { host, limits, logger } = this.components;
    let failures = 0;
    while (!signal.aborted) {
      if (host.getConnections(peer.peerId).length > 0) {
        failures = 0;
        await wakeup.wait(CONNECTED_RECHECK_MS, signal);
        continue;
      }
      const dial = deadline(limits.dialTimeoutMs, signal);
      try {
        const addrs = peer.addrs.length > 0 ? peer.addrs : (this.#book.get(peer.nodeId) ?? []);
        await host.dial(addrs.length > 0 ? addrs : peer.peerId, { signal: dial.signal });
        if (failures > 0) logger.info({ nodeId: peer.nodeId, failures }, 'reconnected to peer');
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        if (this.#unreachable.admit(`unreachable:${peer.nodeId}`) !== undefined) {
          logger.info(
            { nodeId: peer.nodeId, failures, err: (err as Error).message },
            'peer unreachable; redialing with backoff',
          );
        }
        await pause(backoffDelay(failures, limits.redialMinMs, limits.redialMaxMs), signal);
      } finally {
        dial.clear();
      }
    }
  }
}

/**
 * The addresses a peer announced in identify, each ending in its /p2p/ id:
 * those of its signed peer record if it sent one, else its listen addresses.
 */
function announcedAddrs(result: IdentifyResult): Multiaddr[] {
  const signed = result.signedPeerRecord?.addresses ?? [];
  return withPeerId(signed.length > 0 ? signed : result.listenAddrs, result.peerId);
}

function withPeerId(addrs: readonly Multiaddr[], peerId: PeerId): Multiaddr[] {
  const id = peerId.toString();
  const out: Multiaddr[] = [];
  for (const addr of addrs) {
    const named = peerIdStringOf(addr);
    if (named === undefined) out.push(addr.encapsulate(`/p2p/${id}`));
    else if (named === id) out.push(addr);
    if (out.length >= MAX_BOOK_ADDRS) break;
  }
  return out;
}
