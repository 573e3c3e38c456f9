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
});
