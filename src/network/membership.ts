import type { PeerId } from '@libp2p/interface';
import type { Logger } from 'pino';
import { assertNodeId, nodeIdFromPeerId } from './identity.js';
import type { LogRateLimiter } from '../util/rate-limited-log.js';

/**
 * Who may speak Raft, serve and fetch blocks, and gossip transactions. Gating
 * is per protocol, not per connection: the submit protocol stays open to any
 * peer. Every refusal is logged with the peer id, rate-limited per peer and
 * protocol.
 */
export class MembershipGate {
  #members: ReadonlySet<string>;

  constructor(
    members: readonly string[],
    private readonly logger: Logger,
    private readonly refusals: LogRateLimiter,
  ) {
    this.#members = MembershipGate.#validate(members);
  }

  /** Replaces the membership; returns the node ids that left it. */
  set(members: readonly string[]): string[] {
    const next = MembershipGate.#validate(members);
    const removed = [...this.#members].filter((id) => !next.has(id));
    this.#members = next;
    return removed;
  }

  list(): string[] {
    return [...this.#members].sort();
  }

  has(nodeId: string | undefined): boolean {
    return nodeId !== undefined && this.#members.has(nodeId);
  }

  hasPeer(peerId: PeerId): boolean {
    return this.has(nodeIdFromPeerId(peerId));
  }

  /** True when `peerId` is a member; otherwise logs the refusal (rate-limited) and returns false. */
  admit(peerId: PeerId, protocol: string): boolean {
    if (this.hasPeer(peerId)) return true;
    this.logRefusal(peerId, protocol, 'not a member');
    return false;
  }

  logRefusal(peerId: PeerId, protocol: string, reason: string): void {
    const peer = peerId.toString();
    const admitted = this.refusals.admit(`refuse:${peer}:${protocol}`);
    if (admitted === undefined) return;
    this.logger.warn(
      { peer, nodeId: nodeIdFromPeerId(peerId), protocol, suppressed: admitted.suppressed },
      `refused peer: ${reason}`,
    );
  }

  static #validate(members: readonly string[]): ReadonlySet<string> {
    for (const id of members) assertNodeId(id, 'member');
    return new Set(members);
  }
}
