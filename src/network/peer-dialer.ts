import type { Libp2p, PeerId } from '@libp2p/interface';
import type { Logger } from 'pino';
import type { DialablePeer } from './config.js';
import { peerIdFromNodeId } from './identity.js';
import { backoffDelay, type NetworkLimits } from './limits.js';
import { LogRateLimiter } from './rate-limited-log.js';
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
const KEEP_TAG = 'bitnexus-keep';

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
 * configured addresses; other members at whatever addresses the peer store
 * learned (identify). libp2p's own KEEP_ALIVE redial gives up after a few
 * tries, which a validator must not do.
 */
export class PeerDialer {
  readonly #targets = new Map<string, Target>();
  readonly #unreachable = new LogRateLimiter(UNREACHABLE_LOG_INTERVAL_MS);
  readonly #static: ReadonlyMap<string, DialablePeer>;
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

  async start(members: readonly string[]): Promise<void> {
    const { host } = this.components;
    for (const peer of this.#static.values()) {
      await host.peerStore.merge(peer.peerId, {
        multiaddrs: peer.addrs,
        tags: { [KEEP_TAG]: { value: 100 } },
      });
    }
    host.addEventListener('peer:disconnect', this.#onDisconnect);
    this.#started = true;
    this.sync(members);
  }

  /** Dials static peers and `members`; stops dialing peers that are neither. */
  sync(members: readonly string[]): void {
    if (!this.#started || this.components.signal.aborted) return;
    const wanted = new Set([...this.#static.keys(), ...members]);
    wanted.delete(this.components.selfNodeId);
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
    const targets = [...this.#targets.values()];
    this.#targets.clear();
    for (const target of targets) target.controller.abort();
    await Promise.all(targets.map((t) => t.loop));
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
        await host.dial(peer.addrs.length > 0 ? peer.addrs : peer.peerId, { signal: dial.signal });
        if (failures > 0) logger.info({ nodeId: peer.nodeId, failures }, 'reconnected to peer');
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures += 1;
        if (this.#unreachable.admit(peer.nodeId) !== undefined) {
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
