import { afterEach, describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../../src/codec/index.js';
import { keyFor, pub, tx } from '../../support/ledger-fixture.js';
import { TestCluster } from '../../support/cluster.js';
import type { LedgerNode } from '../../../src/node/ledger-node.js';
import { isTxForward } from '../../../src/node/raft-wire.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

function registration(c: TestCluster, label: string, role: 'merchant' | 'affiliate') {
  return tx(
    'participant.register',
    c.operator,
    { participant: pub(keyFor(label)), role, name: label },
    { timestamp: Date.now() },
  );
}

describe('an in-process 3-node network', () => {
  it('elects a leader, commits transactions submitted to any node, and all nodes hold the same chain', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    await cluster.waitForLeader();
    const nodes = [...cluster.nodes.values()];
    const m = registration(cluster, 'shop', 'merchant');
    const a = registration(cluster, 'blog', 'affiliate');
    const r1 = await nodes[1]!.submit(m.tx, { wait: true, timeoutMs: 5000 });
    const r2 = await nodes[2]!.submit(a.tx, { wait: true, timeoutMs: 5000 });
    expect(r1).toMatchObject({ status: 'committed', receipt: { code: 'OK', tx: m.id } });
    expect(r2.receipt?.code).toBe('OK');
    const shop = keyFor('shop');
    const recs = Array.from({ length: 30 }, (_, i) =>
      tx(
        'commission.record',
        shop,
        {
          merchant: pub(shop),
          affiliate: pub(keyFor('blog')),
          amount: String(100 + i),
          currency: 'EUR',
          orderId: `o-${i}`,
          description: `order ${i}`,
        },
        { timestamp: Date.now() },
      ),
    );
    const results = await Promise.all(
      recs.map((t, i) => nodes[i % 3]!.submit(t.tx, { wait: true, timeoutMs: 5000 })),
    );
    expect(results.every((r) => r.receipt?.code === 'OK')).toBe(true);
    // resubmitting returns the same receipt
    const again = await nodes[0]!.submit(recs[3]!.tx, { wait: true, timeoutMs: 5000 });
    expect(again.receipt).toEqual(results[3]!.receipt);
    const height = Math.max(...nodes.map((n) => n.status().height));
    await cluster.waitFor('all nodes at the same height', () =>
      nodes.every((n) => n.status().height === height),
    );
    const heads = nodes.map((n) => n.status().headHash);
    expect(new Set(heads).size).toBe(1);
    expect(cluster.fatal).toEqual([]);
  });

  it('refuses at admission what the ledger would refuse, with the receipt code', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const stranger = keyFor('stranger');
    const t = tx(
      'participant.register',
      stranger,
      { participant: pub(keyFor('x')), role: 'merchant', name: 'x' },
      { timestamp: Date.now() },
    );
    await expect(leader.submit(t.tx, { wait: true, timeoutMs: 2000 })).rejects.toMatchObject({
      code: 'REJECTED',
      details: { receiptCode: 'UNKNOWN_SIGNER' },
    });
    const old = registration(cluster, 'late', 'merchant');
    const stale = tx(
      'participant.register',
      cluster.operator,
      { participant: pub(keyFor('y')), role: 'merchant', name: 'y' },
      { timestamp: Date.now() - 2 * 3600_000 },
    );
    await expect(leader.submit(stale.tx, { wait: false, timeoutMs: 1000 })).rejects.toMatchObject({
      details: { receiptCode: 'TX_EXPIRED' },
    });
    const accepted = await leader.submit(old.tx, { wait: false, timeoutMs: 1000 });
    expect(accepted).toEqual({ id: old.id, status: 'accepted' });
  });

  it('keeps committing after the leader stops, and a restarted node catches up', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const first = await cluster.waitForLeader();
    const firstId = first.nodeId;
    await first.submit(registration(cluster, 'shop', 'merchant').tx, { wait: true, timeoutMs: 5000 });
    await cluster.stop(firstId);
    const second = await cluster.waitFor('a new leader', () => {
      const l = cluster!.leader();
      return l && l.nodeId !== firstId ? l : undefined;
    });
    const r = await second.submit(registration(cluster, 'blog', 'affiliate').tx, {
      wait: true,
      timeoutMs: 5000,
    });
    expect(r.receipt?.code).toBe('OK');
    const restarted = await cluster.start(firstId);
    await cluster.waitFor(
      'the restarted node to catch up',
      () => restarted.status().height === second.status().height,
    );
    expect(restarted.status().headHash).toBe(second.status().headHash);
    expect(cluster.fatal).toEqual([]);
  });

  it('replays stored blocks to a subscriber at its pace, then goes live', async () => {
    cluster = new TestCluster(1);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    for (const label of ['s1', 's2', 's3'])
      await leader.submit(registration(cluster, label, 'merchant').tx, { wait: true, timeoutMs: 5000 });
    const head = leader.status().height;
    const seen: number[] = [];
    let release = () => {};
    const unsubscribe = leader.subscribeBlocks(-1, (block) => {
      seen.push(block.header.height);
      // the first block is read slowly: nothing more arrives until it has been
      if (seen.length === 1) return new Promise<void>((r) => (release = r));
      return undefined;
    });
    await cluster.waitFor('the first block', () => seen.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([0]);
    release();
    await cluster.waitFor('the replay', () => seen.length === head + 1);
    await leader.submit(registration(cluster, 's4', 'merchant').tx, { wait: true, timeoutMs: 5000 });
    await cluster.waitFor('the live block', () => seen.length === head + 2);
    expect(seen).toEqual(Array.from({ length: head + 2 }, (_, i) => i));
    unsubscribe();
  });

  it('says why it has no mirror: none configured, still opening, or failed to open', async () => {
    cluster = new TestCluster(1);
    await cluster.startAll();
    const n = await cluster.waitForLeader();
    const refusal = async () =>
      (await n.search({ q: 'x', k: 1 }).catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(await refusal()).toMatchObject({
      code: 'NOT_READY',
      message: expect.stringContaining('without') as unknown,
    });
    expect(n.syncStatus()).toBeUndefined();
    n.mirrorOpening();
    expect(await refusal()).toMatchObject({
      code: 'NOT_READY',
      message: expect.stringContaining('still opening') as unknown,
    });
    expect(() => n.syncStatus()).toThrow(/still opening/);
    expect(n.readiness().checks.sync).toMatchObject({ ok: false });
    expect(n.readiness().ready).toBe(true); // the mirror never decides readiness
    n.mirrorFailed(new Error('disk full'));
    await expect(n.syncCheck()).rejects.toMatchObject({
      message: expect.stringContaining('disk full') as unknown,
    });
  });

  it('accepts a transaction over the P2P submit handler', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    await cluster.waitForLeader();
    const net = cluster.hub.nodes.get(cluster.ids[0]!)!;
    const t = registration(cluster, 'p2p-shop', 'merchant');
    const resp = JSON.parse(Buffer.from(await net.clientSubmit(canonicalBytes(t.tx))).toString('utf8')) as {
      status: string;
    };
    expect(resp.status).toBe('committed');
    const bad = JSON.parse(Buffer.from(await net.clientSubmit(Buffer.from('{nope'))).toString('utf8')) as {
      error: { code: string };
    };
    expect(bad.error.code).toBe('MALFORMED_JSON');
    const twice = Buffer.from(JSON.stringify(t.tx).replace('{', '{"nonce":"other",'));
    const dup = JSON.parse(Buffer.from(await net.clientSubmit(twice)).toString('utf8')) as {
      error: { code: string; message: string };
    };
    expect(dup.error).toMatchObject({
      code: 'MALFORMED_JSON',
      message: expect.stringContaining('twice') as unknown,
    });
  });

  it('a leader sends its appends while its own log write runs, and applies nothing before it completes', async () => {
    cluster = new TestCluster(3);
    // A leader waiting on its disk sends no heartbeats either: keep the others from electing a new
    // leader (which would commit the entry) while the write is held.
    cluster.nodeOptions = { electionTick: 300 };
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const first = await leader.submit(registration(cluster, 'shop', 'merchant').tx, {
      wait: true,
      timeoutMs: 5000,
    });
    expect(first.receipt?.code).toBe('OK');
    const leaderId = leader.status().nodeId;
    const followers = [...cluster.nodes.entries()].filter(([id]) => id !== leaderId).map(([, n]) => n);
    await cluster.waitFor('followers at the same height', () =>
      followers.every((f) => f.status().height === leader.status().height),
    );
    const height = leader.status().height;

    // Hold the leader's next log write.
    const disk = cluster.disks.get(leaderId)!.raft;
    const save = disk.save.bind(disk);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding = 0;
    disk.save = async (w) => {
      if (w.entries && w.entries.length > 0) {
        holding++;
        await held;
      }
      return save(w);
    };
    const lastIndex = leader.raftStatus.lastIndex;
    const pending = leader.submit(registration(cluster, 'blog', 'affiliate').tx, {
      wait: true,
      timeoutMs: 5000,
    });
    // The followers receive (and acknowledge) the block while the leader's write is held...
    await cluster.waitFor('followers to hold the new entry', () =>
      followers.every((f) => f.raftStatus.lastIndex > lastIndex),
    );
    expect(holding).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 100));
    // ...but nobody applies it: the leader has not written it, so it is not yet committed anywhere.
    for (const n of cluster.nodes.values()) expect(n.status().height).toBe(height);
    release();
    disk.save = save;
    const r = await pending;
    expect(r.receipt?.code).toBe('OK');
    expect(r.receipt?.height).toBe(height + 1);
    expect(cluster.fatal).toEqual([]);
  });

  /** the transaction as `node` serves it once committed there (polled for up to 10 s), or undefined */
  async function committedOn(node: LedgerNode, id: string) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const v = await node.getTransaction(id);
      if (v || Date.now() > deadline) return v;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** three nodes that all know the leader, with or without transaction gossip; and one follower */
  async function threeNodes(c3: TestCluster, gossip: boolean) {
    await c3.startAll();
    const leader = await c3.waitForLeader();
    await c3.waitFor('every node to know the leader', () =>
      [...c3.nodes.values()].every((n) => n.status().leader === leader.status().nodeId),
    );
    c3.hub.gossip = gossip;
    const follower = [...c3.nodes.values()].find((n) => n !== leader)!;
    return { leader, follower, fid: follower.status().nodeId };
  }

  it('a follower forwards what it accepts straight to the leader, so it commits without gossip', async () => {
    cluster = new TestCluster(3);
    const { leader, follower } = await threeNodes(cluster, false);
    const r = await follower.submit(registration(cluster, 'forwarded', 'merchant').tx, {
      wait: true,
      timeoutMs: 5000,
    });
    expect(r.receipt?.code).toBe('OK');
    expect(leader.mempoolSize).toBe(0);
    expect(cluster.fatal).toEqual([]);
  });

  it('a transaction held for a waiting client is gossiped when it is resubmitted with wait=none', async () => {
    cluster = new TestCluster(3);
    const { leader, follower, fid } = await threeNodes(cluster, true);
    cluster.hub.dropRaft = (from, _to, frame) => from === fid && isTxForward(frame); // no forwards
    const t = registration(cluster, 'resubmitted', 'merchant');
    await expect(follower.submit(t.tx, { wait: true, timeoutMs: 50 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    const net = cluster.hub.nodes.get(fid)!;
    expect(net.published).toBe(0);
    expect(await follower.submit(t.tx, { wait: false, timeoutMs: 1000 })).toMatchObject({
      status: 'accepted',
    });
    expect(net.published).toBe(1); // a 202 promises it outlives this node: gossiped now
    expect((await committedOn(leader, t.id))?.receipt.code).toBe('OK'); // by gossip: no forward got through
    expect(cluster.fatal).toEqual([]);
  });

  it('a follower that cannot reach the leader gets what its client waits on committed through gossip', async () => {
    cluster = new TestCluster(3);
    const { leader, follower, fid } = await threeNodes(cluster, true);
    cluster.hub.relay = true;
    cluster.hub.block(fid, leader.status().nodeId); // the other follower still reaches both
    const t = registration(cluster, 'relayed', 'merchant');
    // the follower cannot hear of the commit (the leader's appends do not reach it): its client
    // times out, told the transaction may still commit; it does, through the other follower
    await expect(follower.submit(t.tx, { wait: true, timeoutMs: 4_000 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    expect(cluster.hub.nodes.get(fid)!.published).toBeGreaterThanOrEqual(1);
    expect((await committedOn(leader, t.id))?.receipt.code).toBe('OK');
    expect(cluster.fatal).toEqual([]);
  });

  /**
   * a leads first; b (the node the client talks to) never campaigns in time, so c takes over
   * once a is cut off. b grants no vote while its leader lease lasts (check-quorum: 1000 of its
   * ticks since it last heard from a, ~10 s), and campaigns itself at a random point of the
   * following 1000 ticks; c asks again every 3-6 ticks, so it is first but for a chance of
   * ~0.6 % (with 30 ticks, as before, ~5 %). c starts once a leads, so that the first election
   * is a's, and a is cut off only once c holds a's whole log (else b, whose log would be longer,
   * refuses c its vote for good).
   */
  async function cutOffTheFirstLeader(c3: TestCluster, optsB: { forwardRetryMs?: number } = {}) {
    const [a, b, c] = c3.ids as [string, string, string];
    await c3.start(a, undefined, { electionTick: 5 });
    await c3.start(b, undefined, { electionTick: 1000, ...optsB });
    const leader = await c3.waitForLeader();
    expect(leader.status().nodeId).toBe(a);
    await c3.start(c, undefined, { electionTick: 3 });
    const nodeB = c3.nodes.get(b)!;
    const nodeC = c3.nodes.get(c)!;
    await c3.waitFor(
      'b and c to follow a, with its whole log',
      () =>
        nodeB.status().leader === a &&
        nodeC.status().leader === a &&
        nodeC.raftStatus.lastIndex === leader.raftStatus.lastIndex &&
        nodeB.raftStatus.lastIndex === leader.raftStatus.lastIndex,
    );
    c3.hub.isolate(a);
    return { nodeB, nodeC, netB: c3.hub.nodes.get(b)! };
  }

  it('a follower forwards again what has not committed after a while (its forward was lost)', async () => {
    cluster = new TestCluster(3);
    const { follower, fid } = await threeNodes(cluster, false);
    let forwards = 0;
    cluster.hub.dropRaft = (from, _to, frame) => from === fid && isTxForward(frame) && ++forwards === 1;
    const started = Date.now();
    const r = await follower.submit(registration(cluster, 'retried', 'merchant').tx, {
      wait: true,
      timeoutMs: 10_000,
    });
    expect(r.receipt?.code).toBe('OK');
    expect(forwards).toBeGreaterThanOrEqual(2); // the first was lost; one ~2 s later went through
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(cluster.hub.nodes.get(fid)!.published).toBeGreaterThanOrEqual(1); // and to gossip with it
    expect(cluster.fatal).toEqual([]);
  });

  it('a transaction accepted while the leader is cut off is proposed by the next leader, from gossip', async () => {
    cluster = new TestCluster(3);
    const { nodeB, nodeC, netB } = await cutOffTheFirstLeader(cluster);
    // b's own forwards are lost: only gossip can bring it to c
    cluster.hub.dropRaft = (from, _to, frame) => from === netB.nodeId && isTxForward(frame);
    const t = registration(cluster, 'survivor', 'merchant');
    const accepted = await nodeB.submit(t.tx, { wait: false, timeoutMs: 1000 });
    expect(accepted.status).toBe('accepted');
    expect(netB.published).toBe(1); // answered "accepted": gossiped, so it outlives b too
    // b's lease is counted in ticks: on a loaded machine its ~10 s can stretch well past 15 s
    await cluster.waitFor('c to lead', () => nodeC.raftStatus.role === 'leader', 60_000);
    const r = await nodeB.submit(t.tx, { wait: true, timeoutMs: 10_000 });
    expect(r.receipt?.code).toBe('OK');
    expect(r.receipt?.tx).toBe(t.id);
    expect(cluster.fatal).toEqual([]);
  }, 90_000);

  it('a transaction whose client waits, forwarded to a leader that is cut off, is forwarded again to the next leader', async () => {
    cluster = new TestCluster(3);
    // no resends within the test: only b's forward to the leader of the new term can carry it
    const { nodeB, nodeC, netB } = await cutOffTheFirstLeader(cluster, { forwardRetryMs: 600_000 });
    cluster.hub.gossip = false; // no other copy anywhere: b's own forward must carry it
    const t = registration(cluster, 'waited', 'merchant');
    const receipt = nodeB.submit(t.tx, { wait: true, timeoutMs: 80_000 });
    expect(netB.published).toBe(0); // a waiting client's transaction is not gossiped when accepted
    // c leads but for the ~0.6 % chance that b campaigns first (then b proposes it itself)
    await cluster.waitFor(
      'b or c to lead',
      () => nodeC.raftStatus.role === 'leader' || nodeB.raftStatus.role === 'leader',
      60_000,
    );
    const r = await receipt;
    expect(r.receipt?.code).toBe('OK');
    expect(r.receipt?.tx).toBe(t.id);
    expect(nodeC.mempoolSize).toBe(0);
    expect(netB.published).toBe(0);
    expect(cluster.fatal).toEqual([]);
  }, 90_000);
});
