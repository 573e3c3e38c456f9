import { afterEach, describe, expect, it } from 'vitest';
import { signAdminRequest } from '../../../src/ledger/index.js';
import { TestCluster } from '../../support/cluster.js';
import { keyFor, pub, tx } from '../../support/ledger-fixture.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

const now = () => ({ timestamp: Date.now() });

describe('membership and leadership', () => {
  it('adds a fourth node as a learner, promotes it, removes an old member, while transactions flow', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const n4 = keyFor('node-4');
    const id4 = pub(n4);
    const op = cluster.operator;
    await leader.submit(tx('member.add', op, { node: id4 }, now()).tx, { wait: true, timeoutMs: 5000 });
    const node4 = await cluster.start(id4, n4);
    await cluster.waitFor('node 4 to be a raft learner', () =>
      cluster!.leader()?.raftStatus.confState.learners.includes(id4),
    );
    await cluster.waitFor(
      'node 4 to catch up',
      () => node4.status().height === cluster!.leader()!.status().height,
    );
    expect(node4.status().role).toBe('learner');
    await cluster
      .leader()!
      .submit(tx('member.promote', op, { node: id4 }, now()).tx, { wait: true, timeoutMs: 5000 });
    await cluster.waitFor('node 4 to be a voter', () =>
      cluster!.leader()?.raftStatus.confState.voters.includes(id4),
    );
    const old = cluster.ids[0]!;
    await cluster
      .leader()!
      .submit(tx('member.remove', op, { node: old }, now()).tx, { wait: true, timeoutMs: 5000 });
    await cluster.waitFor('the old member to leave raft', () => {
      const l = cluster!.leader();
      return l && l.nodeId !== old && !l.raftStatus.confState.voters.includes(old);
    });
    // the network keeps committing with the new membership
    const l = await cluster.waitForLeader();
    const r = await l.submit(
      tx('participant.register', op, { participant: pub(keyFor('m')), role: 'merchant', name: 'm' }, now())
        .tx,
      { wait: true, timeoutMs: 5000 },
    );
    expect(r.receipt?.code).toBe('OK');
    await cluster.waitFor('node 4 to apply it', () => node4.status().height === l.status().height);
    expect(cluster.fatal).toEqual([]);
  });

  it('transfers leadership on an operator-signed admin request and refuses an unsigned one', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const target = cluster.ids.find((id) => id !== leader.nodeId)!;
    const req = signAdminRequest(
      {
        v: 1,
        kind: 'leader.transfer',
        chainId: 'bitnexus-test',
        signer: pub(cluster.operator),
        nonce: 'n1',
        timestamp: Date.now(),
        payload: { to: target },
      },
      cluster.operator.secretKey,
    );
    const bogus = signAdminRequest(
      { ...req, nonce: 'n2', signer: pub(keyFor('intruder')) },
      keyFor('intruder').secretKey,
    );
    await expect(leader.admin(bogus)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await expect(leader.admin({ ...req, signature: 'ab'.repeat(64) })).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
    expect(await leader.admin(req)).toMatchObject({ ok: true, action: 'leader.transfer' });
    await expect(leader.admin(req)).rejects.toMatchObject({ code: 'UNAUTHORIZED' }); // replay
    await cluster.waitFor('the target to lead', () => cluster!.leader()?.nodeId === target);
  });

  it('brings a node behind the compaction point back through a snapshot and block fetch', async () => {
    cluster = new TestCluster(3);
    cluster.nodeOptions = { compactEvery: 5, compactKeep: 2 };
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const lagging = cluster.ids.find((id) => id !== leader.nodeId)!;
    await cluster.stop(lagging);
    for (let i = 0; i < 20; i++) {
      await leader.submit(
        tx(
          'participant.register',
          cluster.operator,
          { participant: pub(keyFor(`p${i}`)), role: 'affiliate', name: `p${i}` },
          now(),
        ).tx,
        { wait: true, timeoutMs: 5000 },
      );
    }
    expect(leader.raftStatus.firstIndex).toBeGreaterThan(5);
    const back = await cluster.start(lagging);
    await cluster.waitFor(
      'the lagging node to catch up',
      () => back.status().height === leader.status().height,
    );
    expect(back.status().headHash).toBe(leader.status().headHash);
    expect(cluster.fatal).toEqual([]);
  });

  it('does not promote a learner that is not connected, nor remove a voter when the rest have no live majority', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const op = cluster.operator;
    // a learner that never connected: promoted in the ledger, not in Raft (it would be a dead voter)
    const ghost = pub(keyFor('node-ghost'));
    for (const kind of ['member.add', 'member.promote'] as const)
      await leader.submit(tx(kind, op, { node: ghost }, now()).tx, { wait: true, timeoutMs: 5000 });
    await cluster.waitFor('the ghost a learner', () => leader.raftStatus.confState.learners.includes(ghost));
    await new Promise((r) => setTimeout(r, 500)); // several reconciliations (every 10 ticks)
    expect(leader.raftStatus.confState.voters).not.toContain(ghost);
    // one voter down, then the other follower removed in the ledger: that would leave {leader, down}
    const [b, c] = cluster.ids.filter((id) => id !== leader.nodeId) as [string, string];
    await cluster.stop(c);
    // live means heard from within an election timeout (checkQuorum's window): let it pass
    await cluster.waitFor(
      'c no longer recently active',
      () => !leader.raftStatus.progress?.[c]?.recentActive,
    );
    await new Promise((r) => setTimeout(r, 300)); // and a whole window (10 ticks of 10 ms) since
    await leader.submit(tx('member.remove', op, { node: b }, now()).tx, { wait: true, timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 500));
    expect(leader.raftStatus.confState.voters).toContain(b);
    // so the network still commits
    const t = tx(
      'participant.register',
      op,
      { participant: pub(keyFor('still')), role: 'merchant', name: 'still' },
      now(),
    );
    await expect(leader.submit(t.tx, { wait: true, timeoutMs: 5000 })).resolves.toMatchObject({
      status: 'committed',
    });
    // a new leader does not take every voter for live in its first moments (its fresh progress
    // says "just heard" of all): b leads, c is still down, and b is still not removed
    await leader.admin(
      signAdminRequest(
        {
          v: 1,
          kind: 'leader.transfer',
          chainId: 'bitnexus-test',
          signer: pub(op),
          nonce: 'to-b',
          timestamp: Date.now(),
          payload: { to: b },
        },
        op.secretKey,
      ),
    );
    const nb = cluster.nodes.get(b)!;
    await cluster.waitFor('b leads', () => nb.raftStatus.role === 'leader');
    await new Promise((r) => setTimeout(r, 400));
    expect(nb.raftStatus.confState.voters).toContain(b);
    expect(nb.raftStatus.role).toBe('leader');
    // once c is back, the removal goes ahead
    await cluster.start(c);
    await cluster.waitFor(
      'b removed from Raft',
      () => !cluster!.leader()?.raftStatus.confState.voters.includes(b),
    );
  });

  it("the leader's status lists why a membership change waits, and nothing when none does", async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const [b, c] = cluster.ids.filter((id) => id !== leader.nodeId) as [string, string];
    const field = (id: string) => Object.hasOwn(cluster!.nodes.get(id)!.status(), 'membershipWaiting');
    await new Promise((r) => setTimeout(r, 200)); // reconciliations with nothing to do
    for (const id of cluster.ids) expect(field(id), id).toBe(false);
    // c down, then b removed in the ledger: Raft would be left with {leader, c}, one of two live
    await cluster.stop(c);
    await cluster.waitFor(
      'c no longer recently active',
      () => !leader.raftStatus.progress?.[c]?.recentActive,
    );
    await new Promise((r) => setTimeout(r, 300)); // and a whole checkQuorum window since
    await leader.submit(tx('member.remove', cluster.operator, { node: b }, now()).tx, {
      wait: true,
      timeoutMs: 5000,
    });
    const reason = `remove ${b.slice(0, 12)}: the other voters have no live majority`;
    await cluster.waitFor('the leader to say why the removal waits', () =>
      leader.status().membershipWaiting?.includes(reason),
    );
    expect(leader.status().membershipWaiting).toEqual([reason]);
    expect(leader.status().members.map((m) => m.nodeId)).toContain(b);
    expect(field(b)).toBe(false); // a follower does not know why
    // c back: the removal goes ahead and nothing waits any more
    await cluster.start(c);
    await cluster.waitFor('b removed from Raft', () => {
      const l = cluster!.leader();
      return l && !l.status().members.some((m) => m.nodeId === b) ? l : undefined;
    });
    const l = await cluster.waitFor('a leader with nothing waiting', () => {
      const x = cluster!.leader();
      return x && x.status().membershipWaiting === undefined ? x : undefined;
    });
    expect(Object.hasOwn(l.status(), 'membershipWaiting')).toBe(false);
  });

  it('a removed node refuses writes and reports not ready', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const victim = cluster.ids.find((id) => id !== leader.nodeId)!;
    const v = cluster.nodes.get(victim)!;
    expect(v.readiness().checks.member).toEqual({ ok: true });
    await leader.submit(tx('member.remove', cluster.operator, { node: victim }, now()).tx, {
      wait: true,
      timeoutMs: 5000,
    });
    await cluster.waitFor('the victim applied its removal', () => !v.readiness().checks.member?.ok);
    expect(v.readiness().ready).toBe(false);
    const t = tx(
      'participant.register',
      cluster.operator,
      { participant: pub(keyFor('zz')), role: 'merchant', name: 'zz' },
      now(),
    );
    await expect(v.submit(t.tx, { wait: false, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'NOT_READY',
    });
    // an admin request too: it was answered NO_LEADER, as if an election would end it
    const transfer = signAdminRequest(
      {
        v: 1,
        kind: 'leader.transfer',
        chainId: 'bitnexus-test',
        signer: pub(cluster.operator),
        nonce: 'removed-1',
        timestamp: Date.now(),
        payload: { to: leader.nodeId },
      },
      cluster.operator.secretKey,
    );
    await expect(v.admin(transfer)).rejects.toMatchObject({
      code: 'NOT_READY',
      message: expect.stringMatching(/not a member/) as unknown,
    });
  });

  it('a leader transfer answers what happens: no-op, not confirmed, and a refused request can be retried', async () => {
    cluster = new TestCluster(3);
    await cluster.startAll();
    const leader = await cluster.waitForLeader();
    const f = [...cluster.nodes.values()].find((n) => n !== leader)!;
    await cluster.waitFor('f knows the leader', () => f.raftStatus.leader === leader.nodeId);
    const transfer = (to: string, nonce: string) =>
      signAdminRequest(
        {
          v: 1,
          kind: 'leader.transfer',
          chainId: 'bitnexus-test',
          signer: pub(cluster!.operator),
          nonce,
          timestamp: Date.now(),
          payload: { to },
        },
        cluster!.operator.secretKey,
      );
    expect(await leader.admin(transfer(leader.nodeId, 'self'))).toMatchObject({
      ok: true,
      detail: expect.stringContaining('already leads') as unknown,
    });
    expect(await f.admin(transfer(f.nodeId, 'via-f'))).toMatchObject({
      ok: true,
      detail: expect.stringContaining('asked the leader') as unknown,
    });
    await cluster.waitFor('f leads', () => cluster!.leader()?.nodeId === f.nodeId);
    // a node that knows no leader refuses with NO_LEADER, and the same request works once it does
    const lonely = [...cluster.nodes.values()].find((n) => n !== f)!;
    cluster.hub.isolate(lonely.nodeId);
    await cluster.waitFor('no leader known', () => lonely.raftStatus.leader === null);
    const req = transfer(lonely.nodeId, 'retry');
    await expect(lonely.admin(req)).rejects.toMatchObject({ code: 'NO_LEADER' });
    cluster.hub.heal();
    await cluster.waitFor('a leader known', () => lonely.raftStatus.leader !== null);
    await expect(lonely.admin(req)).resolves.toMatchObject({ ok: true });
  });
});
