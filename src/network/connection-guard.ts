import type { Connection, ConnectionGater, Libp2p, MultiaddrConnection, PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { Logger } from 'pino';
import type { NetworkLimits } from './limits.js';
import type { LogRateLimiter } from '../util/rate-limited-log.js';
import { toError } from './wait.js';
import { ipSource } from '../util/ip-source.js';

export interface ConnectionGuardComponents {
  logger: Logger;
  limits: NetworkLimits;
  warnings: LogRateLimiter;
  /** members and static peers: never capped, never closed for idleness */
  isPrivileged: (peer: PeerId) => boolean;
}

export interface ConnectionGuardStats {
  /** non-member connections refused or closed at once: the cap of all non-members was reached */
  refusedTotalCap: number;
  /** non-member connections refused or closed at once: the cap of their IP address was reached */
  refusedIpCap: number;
  /** non-member connections closed after `nonMemberIdleMs` without a submit exchange */
  closedIdle: number;
}

/** A graceful close of an idle connection that takes longer than this is cut short. */
const CLOSE_TIMEOUT_MS = 1_000;

interface Watch {
  connection: Connection;
  /** submit exchanges in progress on the connection */
  active: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Keeps connections of peers that are neither members nor static peers
 * ("non-members": submit clients, and anyone else) from crowding out members.
 *
 * libp2p refuses every inbound connection once `maxConnections` are open,
 * whoever they come from, and its connection monitor keeps any connection
 * that answers pings. So without this one host could hold every slot with idle
 * connections. Here:
 *
 * - non-members together hold at most `maxNonMemberConnections`, and those
 *   from one IPv4 address or one IPv6 /64 at most
 *   `maxNonMemberConnectionsPerIp`; libp2p's `maxConnections` is above the
 *   first cap, so there is always room for members. A connection past a cap
 *   is refused by the gater once Noise has named the peer (a member from the
 *   same address is still let in), and checked again when it opens, since
 *   several can pass the gater at once;
 * - a non-member connection is for submitting: it is closed once it has had
 *   no submit exchange in progress for `nonMemberIdleMs`, counted from when it
 *   opened or from the end of its last exchange.
 *
 * Membership is read at every decision: a peer that joins is left alone from
 * then on, and call `membershipChanged()` so that connections of a peer that
 * left are watched like any other non-member's.
 */
export class ConnectionGuard {
  readonly stats: ConnectionGuardStats = { refusedTotalCap: 0, refusedIpCap: 0, closedIdle: 0 };
  readonly #watched = new Map<string, Watch>();
  #host: Pick<Libp2p, 'getConnections' | 'addEventListener' | 'removeEventListener'> | undefined;

  constructor(private readonly components: ConnectionGuardComponents) {}

  /** Gater hooks; merge them into the host's connection gater. */
  readonly gater: Pick<ConnectionGater, 'denyInboundEncryptedConnection'> = {
    denyInboundEncryptedConnection: (peer: PeerId, maConn: MultiaddrConnection) =>
      this.#overCap(peer, maConn.remoteAddr, undefined),
  };

  readonly #onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail;
    if (this.components.isPrivileged(connection.remotePeer)) return;
    if (this.#overCap(connection.remotePeer, connection.remoteAddr, connection)) {
      connection.abort(new Error('too many connections from non-members'));
      return;
    }
    this.#watch(connection);
  };

  readonly #onClose = (evt: CustomEvent<Connection>): void => {
    this.#unwatch(evt.detail.id);
  };

  /** Starts watching the host's connections (call before the host starts). */
  attach(host: Pick<Libp2p, 'getConnections' | 'addEventListener' | 'removeEventListener'>): void {
    this.#host = host;
    host.addEventListener('connection:open', this.#onOpen);
    host.addEventListener('connection:close', this.#onClose);
  }

  stop(): void {
    this.#host?.removeEventListener('connection:open', this.#onOpen);
    this.#host?.removeEventListener('connection:close', this.#onClose);
    for (const id of [...this.#watched.keys()]) this.#unwatch(id);
  }

  /** Call after the membership changed: connections of peers that left are now watched. */
  membershipChanged(): void {
    for (const connection of this.#host?.getConnections() ?? []) {
      if (connection.status !== 'open' || this.#watched.has(connection.id)) continue;
      if (!this.components.isPrivileged(connection.remotePeer)) this.#watch(connection);
    }
  }

  /** A submit exchange started on `connection`: it is not idle until the exchange ends. */
  exchangeStarted(connection: Connection): void {
    const watch = this.#watched.get(connection.id);
    if (watch === undefined) return;
    watch.active += 1;
    clearTimeout(watch.timer);
    watch.timer = undefined;
  }

  /** A submit exchange ended on `connection`: once none is left, it has `nonMemberIdleMs` for the next. */
  exchangeEnded(connection: Connection): void {
    const watch = this.#watched.get(connection.id);
    if (watch === undefined) return;
    watch.active = Math.max(0, watch.active - 1);
    if (watch.active === 0) this.#arm(watch);
  }

  /** Open non-member connections: all of them, and those from the IP (or /64) of `addr`. */
  #count(addr: Multiaddr, except: Connection | undefined): { total: number; sameIp: number } {
    const ip = ipKey(addr);
    let total = 0;
    let sameIp = 0;
    for (const connection of this.#host?.getConnections() ?? []) {
      if (connection === except || connection.status !== 'open') continue;
      if (this.components.isPrivileged(connection.remotePeer)) continue;
      total += 1;
      if (ip !== undefined && ipKey(connection.remoteAddr) === ip) sameIp += 1;
    }
    return { total, sameIp };
  }

  #overCap(peer: PeerId, addr: Multiaddr, connection: Connection | undefined): boolean {
    if (this.components.isPrivileged(peer)) return false;
    const { limits } = this.components;
    const { total, sameIp } = this.#count(addr, connection);
    let reason: string;
    if (total >= limits.maxNonMemberConnections) {
      this.stats.refusedTotalCap += 1;
      reason = `${total} non-member connections open (maxNonMemberConnections)`;
    } else if (sameIp >= limits.maxNonMemberConnectionsPerIp) {
      this.stats.refusedIpCap += 1;
      reason = `${sameIp} non-member connections open from this address (maxNonMemberConnectionsPerIp)`;
    } else {
      return false;
    }
    const admitted = this.components.warnings.admit(`conn-cap:${ipKey(addr) ?? addr.toString()}`);
    if (admitted !== undefined) {
      this.components.logger.warn(
        { peer: peer.toString(), addr: addr.toString(), suppressed: admitted.suppressed },
        `refused non-member connection: ${reason}`,
      );
    }
    return true;
  }

  #watch(connection: Connection): void {
    const watch: Watch = { connection, active: 0, timer: undefined };
    this.#watched.set(connection.id, watch);
    this.#arm(watch);
  }

  #unwatch(id: string): void {
    const watch = this.#watched.get(id);
    if (watch === undefined) return;
    clearTimeout(watch.timer);
    this.#watched.delete(id);
  }

  #arm(watch: Watch): void {
    clearTimeout(watch.timer);
    watch.timer = setTimeout(() => this.#expire(watch), this.components.limits.nonMemberIdleMs);
    watch.timer.unref();
  }

  #expire(watch: Watch): void {
    watch.timer = undefined;
    const { connection } = watch;
    if (this.#watched.get(connection.id) !== watch) return;
    if (connection.status !== 'open' || this.components.isPrivileged(connection.remotePeer)) {
      // Closed already, or the peer became a member: membershipChanged() watches it again if it leaves.
      this.#unwatch(connection.id);
      return;
    }
    if (watch.active > 0) return; // exchangeEnded() re-arms
    this.#unwatch(connection.id);
    this.stats.closedIdle += 1;
    this.components.logger.debug(
      { peer: connection.remotePeer.toString(), addr: connection.remoteAddr.toString() },
      'closed an idle non-member connection',
    );
    connection.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) }).catch((err: unknown) => {
      connection.abort(toError(err));
    });
  }
}

/**
 * The address a per-IP cap counts by: the IPv4 address, or the /64 prefix of
 * an IPv6 address (one host commonly holds a whole /64). Undefined for an
 * address without an IP (none with TCP).
 */
export function ipKey(addr: Multiaddr): string | undefined {
  for (const component of addr.getComponents()) {
    if (component.name === 'ip4' && component.value !== undefined) return component.value;
    if (component.name === 'ip6' && component.value !== undefined) return ipSource(component.value);
  }
  return undefined;
}
