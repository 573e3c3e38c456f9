// Three members over loopback TCP: Raft frames in order between every pair,
// frame limits on both ends, transaction gossip, block sync, and reconnection
// after a node restarts on the same port with the same key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NetworkConfigError,
  RAFT_PROTOCOL,
  RemoteError,
  privateKeyFromSeed,
} from '../../../src/network/index.js';
import { nodeIdOf, rawClient, startNode, text, utf8, waitFor, type TestNode } from './helpers.js';
import { multiaddr } from '@multiformats/multiaddr';

const A = 1;
const B = 2;
const C = 3;
/** a member whose key only a raw test client holds */
const M = 9;
const MEMBERS = [A, B, C, M].map(nodeIdOf);
const SMALL_FRAME = 64 * 1024;

describe('a three-member network', () => {
  const nodes = new Map<number, TestNode>();
  const node = (n: number): TestNode => {
    const found = nodes.get(n);
    if (found === undefined) throw new Error(`node ${n} is not running`);
    return found;
  };
  const id = nodeIdOf;

  beforeAll(async () => {
    nodes.set(A, await startNode(A, { members: MEMBERS }));
    const addrA = node(A).net.addresses();
    nodes.set(B, await startNode(B, { members: MEMBERS, peers: [{ nodeId: id(A), addrs: addrA }] }));
    const addrB = node(B).net.addresses();
    nodes.set(
      C,
      await startNode(C, {
        members: MEMBERS,
        peers: [
          { nodeId: id(A), addrs: addrA },
          { nodeId: id(B), addrs: addrB },
        ],
        // C takes smaller Raft frames than A sends, to see an oversized frame refused.
        limits: { maxRaftFrameBytes: SMALL_FRAME },
      }),
    );
    for (const n of [A, B, C]) {
      const others = [A, B, C].filter((o) => o !== n).map(id);
      await waitFor(
        () => others.every((o) => node(n).net.connectedMembers().includes(o)),
        `node ${n} connected to both others`,
      );
    }
  });

  afterAll(async () => {
    await Promise.all([...nodes.values()].map((n) => n.net.stop()));
  });

  it('names each node by its Ed25519 public key, in hex and as a peer id', () => {
    expect(node(A).net.nodeId).toBe(id(A));
    expect(node(A).net.addresses()[0]).toMatch(new RegExp(`/p2p/${node(A).net.peerId}$`));
  });

  it('carries Raft frames both ways between every pair, in order', async () => {
    const COUNT = 40;
    const pairs = [A, B, C].flatMap((from) =>
      [A, B, C].filter((to) => to !== from).map((to) => [from, to] as const),
    );
    for (let i = 0; i < COUNT; i++) {
      for (const [from, to] of pairs) node(from).net.sendRaft(id(to), utf8(`${from}->${to}#${i}`));
    }
    for (const [from, to] of pairs) {
      await waitFor(
        () => (node(to).raft.get(id(from))?.length ?? 0) >= COUNT,
        `${COUNT} frames ${from}->${to}`,
      );
      expect(node(to).raft.get(id(from))).toEqual(
        Array.from({ length: COUNT }, (_, i) => `${from}->${to}#${i}`),
      );
    }
    expect(node(A).net.stats().raft.framesSent).toBeGreaterThanOrEqual(2 * COUNT);
  });

  it('carries a frame of several MiB intact', async () => {
    const big = new Uint8Array(12 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const received: Uint8Array[] = [];
    const unsubscribe = node(B).net.onRaftFrame((from, frame) => {
      if (from === id(A) && frame.byteLength === big.byteLength) received.push(frame);
    });
    try {
      node(A).net.sendRaft(id(B), big);
      await waitFor(() => received.length === 1, 'the 12 MiB frame');
      expect(Buffer.compare(Buffer.from(received[0] ?? []), Buffer.from(big))).toBe(0);
    } finally {
      unsubscribe();
    }
  });

  it('never blocks the sender: a burst beyond the queue drops the oldest frames, keeps order', async () => {
    const BURST = 3000;
    const queueFrames = node(A).net.limits.raftQueueFrames;
    const before = node(A).net.stats().raft.droppedQueueFull;
    for (let i = 0; i < BURST; i++) node(A).net.sendRaft(id(B), utf8(`burst#${i}`));
    expect(node(A).net.stats().raft.droppedQueueFull - before).toBeGreaterThanOrEqual(
      BURST - queueFrames - 1,
    );
    const burst = (): number[] =>
      (node(B).raft.get(id(A)) ?? []).filter((f) => f.startsWith('burst#')).map((f) => Number(f.slice(6)));
    await waitFor(() => burst().includes(BURST - 1), 'the newest frame of the burst');
    const got = burst();
    expect(got.length).toBeLessThanOrEqual(queueFrames + 1);
    expect([...got].sort((x, y) => x - y)).toEqual(got);
  });

  it('drops a frame over its own limit without sending or throwing', () => {
    const before = node(A).net.stats().raft.droppedTooLarge;
    node(A).net.sendRaft(id(B), new Uint8Array(node(A).net.limits.maxRaftFrameBytes + 1));
    expect(node(A).net.stats().raft.droppedTooLarge).toBe(before + 1);
  });

  it('aborts an inbound stream that carries an oversized frame, logs it, and recovers', async () => {
    node(A).net.sendRaft(id(C), new Uint8Array(SMALL_FRAME + 1));
    await waitFor(() => node(C).net.stats().raft.badInboundFrames >= 1, 'C to refuse the oversized frame');
    expect(
      node(C).lines.some((l) => l.msg.includes('bad inbound Raft frame') && l.peer === node(A).net.peerId),
    ).toBe(true);
    // Raft retransmits; so does this probe until the reopened stream delivers it.
    await resendUntil(
      () => node(A).net.sendRaft(id(C), utf8('after-oversize')),
      () => node(C).raft.get(id(A))?.includes('after-oversize') === true,
      'a frame after the oversized one',
    );
  });

  it('aborts a member stream that sends garbage, logs it, and keeps serving', async () => {
    const client = await rawClient(await privateKeyFromSeed(new Uint8Array(32).fill(M)));
    try {
      const stream = await client.dialProtocol(multiaddr(node(A).net.addresses()[0]), RAFT_PROTOCOL);
      // A varint that never ends: no valid length prefix.
      stream.send(new Uint8Array(16).fill(0xff));
      await waitFor(() => stream.status !== 'open', 'the garbage stream to be aborted');
    } finally {
      await client.stop();
    }
    expect(node(A).lines.some((l) => l.msg.includes('bad inbound Raft frame') && l.nodeId === id(M))).toBe(
      true,
    );
    await resendUntil(
      () => node(B).net.sendRaft(id(A), utf8('still-serving')),
      () => node(A).raft.get(id(B))?.includes('still-serving') === true,
      'B->A after the garbage stream',
    );
  });

  it('gossips a transaction from one member to all others', async () => {
    await waitFor(
      () => [B, C].every((n) => node(A).net.txGossipPeers().includes(id(n))),
      'A to see B and C on the transaction topic',
    );
    void node(A).net.publishTx(utf8('{"tx":"from-A"}'));
    for (const n of [B, C]) {
      await waitFor(() => node(n).txs.some((t) => t.tx === '{"tx":"from-A"}'), `node ${n} to receive the tx`);
      expect(node(n).txs.find((t) => t.tx === '{"tx":"from-A"}')?.from).toBe(id(A));
    }
  });

  it('fetches a block range from a member', async () => {
    const TIP = 10;
    node(B).net.handleBlockRange((from, to) => {
      if (from === 99)
        return Promise.reject(Object.assign(new Error('store offline'), { code: 'STORE_DOWN' }));
      const blocks: Uint8Array[] = [];
      for (let h = from; h <= Math.min(to, TIP); h++) blocks.push(utf8(`block-${h}`));
      return Promise.resolve(blocks);
    });
    const blocks = await node(A).net.fetchBlocks(id(B), 3, 7);
    expect(blocks.map(text)).toEqual(['block-3', 'block-4', 'block-5', 'block-6', 'block-7']);
    expect((await node(A).net.fetchBlocks(id(B), 8, 20)).map(text)).toEqual([
      'block-8',
      'block-9',
      'block-10',
    ]);
    expect(await node(A).net.fetchBlocks(id(B), 11, 11)).toEqual([]);
    await expect(node(A).net.fetchBlocks(id(B), 0, 512)).rejects.toBeInstanceOf(NetworkConfigError);
    await expect(node(A).net.fetchBlocks(id(B), 99, 100)).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'STORE_DOWN',
    });
    await expect(node(A).net.fetchBlocks(id(B), 99, 100)).rejects.toBeInstanceOf(RemoteError);
  });

  it('reconnects after a node restarts with the same key and port', async () => {
    const old = node(B);
    const port = multiaddr(old.net.addresses()[0])
      .getComponents()
      .find((c) => c.name === 'tcp')?.value;
    expect(port).toBeDefined();
    const events: [string, boolean][] = [];
    const unsubscribe = node(A).net.onMemberConnection((nodeId, connected) =>
      events.push([nodeId, connected]),
    );
    await old.net.stop();
    nodes.delete(B);
    await waitFor(() => !node(A).net.connectedMembers().includes(id(B)), 'A to see B gone');

    const restarted = await startNode(B, {
      members: MEMBERS,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      peers: [
        { nodeId: id(A), addrs: node(A).net.addresses() },
        { nodeId: id(C), addrs: node(C).net.addresses() },
      ],
    });
    nodes.set(B, restarted);
    await waitFor(() => node(A).net.connectedMembers().includes(id(B)), 'A to see B back');
    unsubscribe();
    expect(events).toContainEqual([id(B), false]);
    expect(events).toContainEqual([id(B), true]);

    await resendUntil(
      () => node(A).net.sendRaft(id(B), utf8('welcome-back')),
      () => restarted.raft.get(id(A))?.includes('welcome-back') === true,
      'A->B after the restart',
    );
    await resendUntil(
      () => restarted.net.sendRaft(id(C), utf8('hello-again')),
      () => node(C).raft.get(id(B))?.includes('hello-again') === true,
      'B->C after the restart',
    );
  });
});

/** Sends every 100 ms until `delivered` holds (Raft-style retransmission). */
async function resendUntil(send: () => void, delivered: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 10_000;
  while (!delivered()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    send();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a transaction published while the network stops', () => {
  it('resolves its publisher with 0 (reached no one), instead of leaving it waiting for ever', async () => {
    const lone = await startNode(91, { members: [nodeIdOf(91), nodeIdOf(92)] });
    const published = lone.net.publishTx(utf8('{"tx":"at-stop"}')); // its batch waits 2 ms
    await lone.net.stop();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((r) => (timer = setTimeout(() => r('still waiting'), 2_000)));
    expect(await Promise.race([published, late])).toBe(0);
    clearTimeout(timer);
  });
});
