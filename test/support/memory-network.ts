import { raceAbort } from '../../src/network/wait.js';
import type { NodeNetwork } from '../../src/node/network-port.js';

/**
 * An in-process network for multi-node tests: every node's NodeNetwork talks
 * to the others through the hub, asynchronously (next macrotask), with
 * partitions that drop traffic between groups.
 */
export class MemoryHub {
  readonly nodes = new Map<string, MemoryNetwork>();
  private blocked = new Set<string>();
  /** false: transaction gossip is dropped (Raft frames still flow) */
  gossip = true;
  /** true: a node passes gossip on to the peers it reaches that have not had it (as gossipsub's mesh does) */
  relay = false;
  /** the node ids asked through submitTo, in order (a follower asking its leader) */
  readonly submitsTo: string[] = [];
  /** true: this Raft-stream frame is lost on its way, as a full send queue drops it */
  dropRaft: ((from: string, to: string, frame: Uint8Array) => boolean) | undefined;

  connect(nodeId: string): MemoryNetwork {
    const n = new MemoryNetwork(nodeId, this);
    this.nodes.set(nodeId, n);
    return n;
  }

  /** drop all traffic between `a` and everyone else */
  isolate(a: string): void {
    for (const b of this.nodes.keys()) if (b !== a) this.block(a, b);
  }

  block(a: string, b: string): void {
    this.blocked.add(`${a}>${b}`).add(`${b}>${a}`);
  }

  heal(): void {
    this.blocked.clear();
  }

  reachable(from: string, to: string): boolean {
    const n = this.nodes.get(to);
    return n !== undefined && n.up && !this.blocked.has(`${from}>${to}`);
  }
}

type Handler<A extends unknown[], R = void> = ((...args: A) => R) | undefined;

export class MemoryNetwork implements NodeNetwork {
  up = false;
  members: string[] = [];
  private raft: Handler<[string, Uint8Array]>;
  private tx: Handler<[string, Uint8Array]>;
  private submit: Handler<[Uint8Array, string], Promise<Uint8Array>>;
  private blocks: Handler<[number, number], Promise<Uint8Array[]>>;

  constructor(
    readonly nodeId: string,
    private readonly hub: MemoryHub,
  ) {}

  start(): Promise<void> {
    this.up = true;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.up = false;
    return Promise.resolve();
  }
  setMembers(nodeIds: string[]): void {
    this.members = nodeIds;
  }
  sendRaft(to: string, frame: Uint8Array): void {
    if (!this.up || !this.hub.reachable(this.nodeId, to)) return;
    if (this.hub.dropRaft?.(this.nodeId, to, frame)) return;
    const copy = Uint8Array.from(frame);
    setImmediate(() => {
      const peer = this.hub.nodes.get(to);
      if (peer?.up && this.hub.reachable(this.nodeId, to) && peer.members.includes(this.nodeId))
        peer.raft?.(this.nodeId, copy);
    });
  }
  onRaftFrame(handler: (from: string, frame: Uint8Array) => void): void {
    this.raft = handler;
  }
  /** how many times this node published a transaction batch to gossip */
  published = 0;
  publishTx(bytes: Uint8Array): Promise<number> {
    this.published++;
    if (!this.hub.gossip) return Promise.resolve(0);
    const reached = new Set([this.nodeId]);
    this.spread(bytes, reached);
    return Promise.resolve(reached.size - 1);
  }
  /** to every reachable peer that has not had it, each told who passed it on (as gossipsub's relaying peer) */
  private spread(bytes: Uint8Array, reached: Set<string>): void {
    for (const peer of this.hub.nodes.values()) {
      if (reached.has(peer.nodeId) || !this.hub.reachable(this.nodeId, peer.nodeId)) continue;
      reached.add(peer.nodeId);
      setImmediate(() => {
        if (!peer.up) return;
        peer.tx?.(this.nodeId, bytes);
        if (this.hub.relay) peer.spread(bytes, reached);
      });
    }
  }
  onTx(handler: (from: string, bytes: Uint8Array) => void): void {
    this.tx = handler;
  }
  handleSubmit(handler: (request: Uint8Array, from: string) => Promise<Uint8Array>): void {
    this.submit = handler;
  }
  handleBlockRange(handler: (from: number, to: number) => Promise<Uint8Array[]>): void {
    this.blocks = handler;
  }
  async fetchBlocks(nodeId: string, from: number, to: number): Promise<Uint8Array[]> {
    const peer = this.hub.nodes.get(nodeId);
    if (!peer?.blocks || !this.hub.reachable(this.nodeId, nodeId)) throw new Error(`${nodeId} unreachable`);
    return peer.blocks(from, to);
  }
  connectedMembers(): string[] {
    return this.members.filter((m) => m !== this.nodeId && this.hub.reachable(this.nodeId, m));
  }
  async submitTo(nodeId: string, request: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
    const peer = this.hub.nodes.get(nodeId);
    if (!this.up || !peer?.submit || !this.hub.reachable(this.nodeId, nodeId))
      throw Object.assign(new Error(`${nodeId} unreachable`), { code: 'UNREACHABLE' });
    this.hub.submitsTo.push(nodeId);
    signal?.throwIfAborted();
    const answer = peer.submit(Uint8Array.from(request), this.nodeId);
    return signal ? raceAbort(answer, signal) : answer;
  }
  /** for tests: what a P2P client would send */
  clientSubmit(request: Uint8Array): Promise<Uint8Array> {
    if (!this.submit) throw new Error('no submit handler');
    return this.submit(request, 'test-client');
  }
}
