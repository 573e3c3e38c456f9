import type { Libp2p, PeerId } from '@libp2p/interface';
import { nodeIdFromPeerId } from './identity.js';
import type { Listeners } from './listeners.js';
import type { MembershipGate } from './membership.js';

export type MemberConnectionHandler = (nodeId: string, connected: boolean) => void;

export interface MemberPresenceComponents {
  host: Pick<Libp2p, 'getPeers' | 'addEventListener' | 'removeEventListener'>;
  gate: MembershipGate;
  listeners: Listeners<[nodeId: string, connected: boolean]>;
}

/**
 * Which members have an open connection, and a callback when that changes.
 * libp2p reports a peer connected on its first connection and disconnected
 * when its last one closes; non-members are not reported. Membership changes
 * count too: a connected peer that joins is reported connected, one that
 * leaves is reported disconnected.
 */
export class MemberPresence {
  constructor(private readonly components: MemberPresenceComponents) {}

  readonly #onConnect = (evt: CustomEvent<PeerId>): void => this.#report(evt.detail, true);
  readonly #onDisconnect = (evt: CustomEvent<PeerId>): void => this.#report(evt.detail, false);

  start(): void {
    this.components.host.addEventListener('peer:connect', this.#onConnect);
    this.components.host.addEventListener('peer:disconnect', this.#onDisconnect);
  }

  stop(): void {
    this.components.host.removeEventListener('peer:connect', this.#onConnect);
    this.components.host.removeEventListener('peer:disconnect', this.#onDisconnect);
  }

  connected(): string[] {
    return this.#connectedNodeIds()
      .filter((id) => this.components.gate.has(id))
      .sort();
  }

  /** Call after the membership changed from `before` to the gate's current list. */
  membershipChanged(before: ReadonlySet<string>): void {
    const { gate, listeners } = this.components;
    for (const nodeId of this.#connectedNodeIds()) {
      const was = before.has(nodeId);
      const is = gate.has(nodeId);
      if (was !== is) listeners.emit(nodeId, is);
    }
  }

  #connectedNodeIds(): string[] {
    return this.components.host.getPeers().flatMap((peer) => nodeIdFromPeerId(peer) ?? []);
  }

  #report(peer: PeerId, connected: boolean): void {
    const nodeId = nodeIdFromPeerId(peer);
    if (nodeId !== undefined && this.components.gate.has(nodeId)) {
      this.components.listeners.emit(nodeId, connected);
    }
  }
}
