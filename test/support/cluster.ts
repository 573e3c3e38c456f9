import pino from 'pino';
import { toHex } from '../../src/codec/index.js';
import {
  createGenesisBlock,
  decodeBlock,
  DEFAULT_PARAMS,
  type DecodedBlock,
  type DecodedTx,
  type GenesisConfig,
} from '../../src/ledger/index.js';
import { LedgerChain } from '../../src/node/ledger-chain.js';
import { LedgerNode } from '../../src/node/ledger-node.js';
import { MemoryStore } from '../../src/storage/index.js';
import { MemoryRaftStore } from '../../src/storage/raft/index.js';
import type { KeyPair } from '../../src/crypto/index.js';
import { keyFor, pub, tx } from './ledger-fixture.js';
import { MemoryHub } from './memory-network.js';

/**
 * N ledger nodes in one process over an in-memory network, each with its own
 * in-memory chain and Raft stores (kept across restart, so a restart loses
 * only what a crash would). Ticks are 10 ms so elections take ~100–200 ms.
 */
export class TestCluster {
  readonly hub = new MemoryHub();
  readonly nodes = new Map<string, LedgerNode>();
  readonly disks = new Map<string, { chain: MemoryStore; raft: MemoryRaftStore }>();
  readonly fatal: Error[] = [];
  readonly keys: KeyPair[];
  readonly operator = keyFor('operator');
  readonly genesis: DecodedBlock;
  readonly config: GenesisConfig;
  /** options every node gets (e.g. small compaction intervals) */
  nodeOptions: Partial<Parameters<typeof LedgerNode.create>[0]> = {};

  constructor(n: number, labels = Array.from({ length: n }, (_, i) => `node-${i + 1}`)) {
    this.keys = labels.map(keyFor);
    this.config = {
      chainId: 'bitnexus-test',
      createdAt: Date.now() - 1000,
      operators: [pub(this.operator)],
      members: this.keys.map(pub),
      params: { ...DEFAULT_PARAMS },
    };
    this.genesis = decodeBlock(createGenesisBlock(this.config, this.operator.secretKey));
  }

  get ids(): string[] {
    return this.keys.map(pub);
  }

  async startAll(): Promise<void> {
    for (const k of this.keys) await this.start(pub(k));
  }

  async start(
    id: string,
    key?: KeyPair,
    extra: Partial<Parameters<typeof LedgerNode.create>[0]> = {},
  ): Promise<LedgerNode> {
    const k = key ?? this.keys.find((x) => pub(x) === id)!;
    let disk = this.disks.get(id);
    if (!disk) {
      disk = { chain: new MemoryStore(), raft: new MemoryRaftStore() };
      this.disks.set(id, disk);
    } else {
      disk.raft.reopen();
    }
    const node = await LedgerNode.create({
      nodeId: id,
      secretKey: k.secretKey,
      genesis: this.genesis,
      chain: await LedgerChain.open(disk.chain),
      raftStore: disk.raft,
      network: this.hub.connect(id),
      logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
      metrics: null,
      tickMs: 10,
      onFatal: (err) => this.fatal.push(err),
      bootstrap: key === undefined, // a founding member (init would have written its Raft state)
      ...this.nodeOptions,
      ...extra,
    });
    await node.start();
    this.nodes.set(id, node);
    return node;
  }

  async stop(id: string): Promise<void> {
    const n = this.nodes.get(id);
    this.nodes.delete(id);
    await n?.stop();
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
  }

  leader(): LedgerNode | undefined {
    return [...this.nodes.values()].find((n) => n.raftStatus.role === 'leader');
  }

  /** Poll `f` (awaited: a condition may need to read a store) until it gives a value. */
  async waitFor<T>(
    what: string,
    f: () => T | undefined | false | Promise<T | undefined | false>,
    timeoutMs = 10_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const v = await f();
      if (v !== undefined && v !== false) return v;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** A merchant's registration signed by the operator now; its key is keyFor(label). */
  registration(label: string, name = label): DecodedTx {
    return tx(
      'participant.register',
      this.operator,
      { participant: pub(keyFor(label)), role: 'merchant', name },
      { timestamp: Date.now() },
    );
  }

  async waitForLeader(): Promise<LedgerNode> {
    return this.waitFor('a leader', () => this.leader());
  }

  /**
   * Start all nodes, wait for a leader, stop one follower (`lagging`), then commit `count`
   * registrations (labels `${prefix}0`, `${prefix}1`, ...) on the leader, each waited for.
   * Set `nodeOptions` first: with small compaction intervals the leader compacts past what
   * `lagging` holds, so it must be sent a snapshot when it comes back.
   */
  async stopAFollowerAndCommit(
    count: number,
    prefix: string,
  ): Promise<{ leader: LedgerNode; lagging: string }> {
    await this.startAll();
    const leader = await this.waitForLeader();
    const lagging = this.ids.find((id) => id !== leader.nodeId)!;
    await this.stop(lagging);
    for (let i = 0; i < count; i++)
      await leader.submit(this.registration(`${prefix}${i}`).tx, { wait: true, timeoutMs: 5000 });
    return { leader, lagging };
  }
}

export { toHex };
