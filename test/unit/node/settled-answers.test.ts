import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/api/errors.js';
import { canonicalize } from '../../../src/codec/index.js';
import { DEFAULT_PARAMS } from '../../../src/ledger/index.js';
import { ChainStore } from '../../../src/storage/index.js';
import { decodeRaftMessage, isTxForward } from '../../../src/node/raft-wire.js';
import { TestCluster } from '../../support/cluster.js';
import { keyFor, pub, tx } from '../../support/ledger-fixture.js';

/**
 * A node answers a client with a failure only when the failure is certain,
 * and comes back from any point of its own recovery. Each case here was a
 * wrong answer or a node that could not restart (a review, 2026-12-05).
 */

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  cluster = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A 3-node cluster, its leader, and a follower `f` that knows it. */
async function withFollower(nodeOptions: TestCluster['nodeOptions'] = {}) {
  const c = (cluster = new TestCluster(3));
  c.nodeOptions = nodeOptions;
  await c.startAll();
  const leader = await c.waitForLeader();
  const fId = c.ids.find((id) => id !== leader.nodeId)!;
  const f = c.nodes.get(fId)!;
  await c.waitFor('the follower knows the leader', () => f.status().leader === leader.nodeId);
  return { c, leader, fId, f };
}

/** `f` hears the leader's heartbeats, not its appends: it lags and cannot tell. */
function lagAppends(c: TestCluster, leaderId: string, fId: string): void {
  c.hub.dropRaft = (from, to, frame) =>
    from === leaderId && to === fId && decodeRaftMessage(frame).type === 'app';
}

/** A cluster whose follower `lagging` was stopped while the leader committed `count` blocks and compacted its log. */
async function withStoppedFollower(count: number, prefix: string) {
  const c = (cluster = new TestCluster(3));
  c.nodeOptions = { compactEvery: 5, compactKeep: 2 };
  const { leader, lagging } = await c.stopAFollowerAndCommit(count, prefix);
  return { c, leader, lagging };
}

function register(name: string, timestamp = Date.now(), nonce?: string) {
  return tx(
    'participant.register',
    cluster!.operator,
    { participant: pub(keyFor(name)), role: 'affiliate', name },
    { timestamp, ...(nonce === undefined ? {} : { nonce }) },
  );
}

describe('answers and recovery that hold', () => {
  it('a node stopped while it fetches a snapshot’s blocks restarts and catches up', async () => {
    const { c, leader, lagging } = await withStoppedFollower(20, 'p');
    // back with a block fetch that never answers (a slow peer); it is stopped once the
    // leader's snapshot is on its disk, before it holds the snapshot's blocks
    const net = c.hub.connect(lagging);
    net.fetchBlocks = (_peer: string, _from: number, _to: number, signal?: AbortSignal) =>
      new Promise<Uint8Array[]>((_resolve, reject) => {
        if (signal?.aborted) reject(new Error('aborted'));
        signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      });
    const n = await c.start(lagging, undefined, { network: net });
    c.hub.nodes.set(lagging, net); // start() registered a network of its own for the id
    const disk = c.disks.get(lagging)!;
    // a compaction snapshot names a block (one made at bootstrap holds no data)
    await c.waitFor(
      'the snapshot on disk',
      async () => ((await disk.raft.load()).snapshot?.data.length ?? 0) > 0,
    );
    expect(n.status().height).toBe(0);
    await c.stop(lagging);
    // no second snapshot from the leader: the one on its disk is all it has to go on
    c.hub.dropRaft = (_from, to, frame) => to === lagging && decodeRaftMessage(frame).type === 'snap';
    const back = await c.start(lagging);
    await leader.submit(register('after').tx, { wait: true, timeoutMs: 5000 });
    await c.waitFor('caught up', () => back.status().height === leader.status().height);
    expect(c.fatal).toEqual([]);
  });

  it('a node catching up stores the canonical bytes of blocks a peer served re-formatted', async () => {
    const { c, leader, lagging } = await withStoppedFollower(12, 'f');
    // its peers serve valid blocks, pretty-printed: the same hashes and signatures, other bytes
    const net = c.hub.connect(lagging);
    const fetch = net.fetchBlocks.bind(net);
    let served = 0;
    net.fetchBlocks = async (peer: string, from: number, to: number) =>
      (await fetch(peer, from, to)).map((b) => {
        served++;
        return Buffer.from(JSON.stringify(JSON.parse(Buffer.from(b).toString('utf8')), null, 2));
      });
    const back = await c.start(lagging, undefined, { network: net });
    c.hub.nodes.set(lagging, net);
    await c.waitFor('caught up', () => back.status().height === leader.status().height);
    expect(served).toBeGreaterThan(0);
    const store = c.disks.get(lagging)!.chain;
    for (let h = 1; h <= leader.status().height; h++) {
      const mine = await new ChainStore(store).getBlock(h);
      const theirs = await leader.getBlock(h);
      expect(Buffer.from(mine!).toString('utf8')).toBe(canonicalize(theirs));
    }
    expect(c.fatal).toEqual([]);
  });

  it('a waiting client is not told TX_EXPIRED for a transaction that commits', async () => {
    const { c, leader, fId, f } = await withFollower();
    // old enough to expire by the clocks within a second, not before its block
    const x = register('late', Date.now() - DEFAULT_PARAMS.txMaxAgeMs + 1000);
    c.hub.dropRaft = (from, to) => from === leader.nodeId && to === fId; // f hears nothing of the block
    let settled: unknown;
    const answer = f.submit(x.tx, { wait: true, timeoutMs: 20_000 }).then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    await c.waitFor('the leader commits it', async () => (await leader.getTransaction(x.id)) !== undefined);
    // past its age by every clock, and several mempool sweeps later (every 50 ticks of 10 ms)
    await sleep(2000);
    expect(settled).toBeUndefined();
    c.hub.dropRaft = undefined;
    await answer;
    expect(settled).toMatchObject({ id: x.id, status: 'committed', receipt: { code: 'OK' } });
  });

  it('a retry at a new leader of a transaction in its uncommitted log is answered by the commit', async () => {
    const c = (cluster = new TestCluster(3));
    await c.startAll();
    const a = await c.waitForLeader();
    const others = c.ids.filter((id) => id !== a.nodeId);
    // the followers store a's block but their acknowledgements are lost: it cannot commit
    c.hub.dropRaft = (_from, _to, frame) => decodeRaftMessage(frame).type === 'appResp';
    const x = register('dup');
    void a.submit(x.tx, { wait: false, timeoutMs: 1000 });
    await sleep(100);
    const last = a.raftStatus.lastIndex;
    await c.waitFor('the followers hold the block', () =>
      others.every((id) => c.nodes.get(id)!.raftStatus.lastIndex >= last),
    );
    await c.stop(a.nodeId);
    const b = await c.waitFor('a new leader', () => c.leader());
    // the same bytes again, while b cannot commit either
    const retry = b.submit(x.tx, { wait: true, timeoutMs: 10_000 });
    let settled: unknown;
    void retry.then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    await sleep(300);
    expect(settled).toBeUndefined(); // not 409 DUPLICATE_TX "already committed"
    c.hub.dropRaft = undefined;
    await expect(retry).resolves.toMatchObject({ id: x.id, status: 'committed', receipt: { code: 'OK' } });
    // and without waiting: accepted, not refused
    await expect(b.submit(x.tx, { wait: false, timeoutMs: 1000 })).resolves.toMatchObject({ id: x.id });
    expect(settled).not.toBeInstanceOf(ApiError);
  });

  it('a waiting client whose nonce another transaction took is told NONCE_REUSED, with that one', async () => {
    // no resend (nor its gossip) within the test
    const { c, leader, fId, f } = await withFollower({ forwardRetryMs: 60_000 });
    c.hub.dropRaft = (from, _to, frame) => from === fId && isTxForward(frame); // x stays on f
    const x = register('first', Date.now(), 'shared-nonce');
    const y = register('second', Date.now(), 'shared-nonce');
    const answer = f.submit(x.tx, { wait: true, timeoutMs: 20_000 });
    await expect(leader.submit(y.tx, { wait: true, timeoutMs: 5000 })).resolves.toMatchObject({
      status: 'committed',
    });
    // the next mempool sweep on f (every 50 ticks of 10 ms), not its 20 s timeout
    await expect(answer).rejects.toMatchObject({
      code: 'REJECTED',
      details: { receiptCode: 'NONCE_REUSED', existing: y.id },
    });
  });

  it('a follower that has not applied a signer’s registration asks the leader instead of refusing', async () => {
    const { c, leader, fId, f } = await withFollower();
    lagAppends(c, leader.nodeId, fId);
    const shop = keyFor('late-shop');
    const reg = tx(
      'participant.register',
      c.operator,
      { participant: pub(shop), role: 'merchant', name: 'late-shop' },
      { timestamp: Date.now() },
    );
    await expect(leader.submit(reg.tx, { wait: true, timeoutMs: 5000 })).resolves.toMatchObject({
      status: 'committed',
    });
    expect(f.getParticipant(pub(shop))).toBeUndefined();
    const rec = tx(
      'commission.record',
      shop,
      {
        merchant: pub(shop),
        affiliate: pub(shop),
        amount: '100',
        currency: 'EUR',
        orderId: 'o-late',
        description: 'after its registration',
      },
      { timestamp: Date.now() },
    );
    // f's own view says UNKNOWN_SIGNER; the leader takes it, and f answers once it holds the block
    let settled: unknown;
    const pending = f.submit(rec.tx, { wait: true, timeoutMs: 10_000 }).then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    await c.waitFor('the leader commits it', async () => (await leader.getTransaction(rec.id)) !== undefined);
    expect(c.hub.submitsTo).toEqual([leader.nodeId]);
    expect(settled).toBeUndefined(); // not refused
    c.hub.dropRaft = undefined;
    await pending;
    expect(settled).toMatchObject({ id: rec.id, status: 'committed', receipt: { tx: rec.id } }); // its code is the ledger's (WRONG_ROLE: no affiliate)
    // asked without waiting, the leader's "accepted" is the answer
    lagAppends(c, leader.nodeId, fId);
    const shopLate = keyFor('later-shop');
    const reg2 = tx(
      'participant.register',
      c.operator,
      { participant: pub(shopLate), role: 'merchant', name: 'later-shop' },
      { timestamp: Date.now() },
    );
    await leader.submit(reg2.tx, { wait: true, timeoutMs: 5000 });
    const rec3 = tx(
      'commission.record',
      shopLate,
      {
        merchant: pub(shopLate),
        affiliate: pub(shop),
        amount: '300',
        currency: 'EUR',
        orderId: 'o-later',
        description: 'not waited for',
      },
      { timestamp: Date.now() },
    );
    await expect(f.submit(rec3.tx, { wait: false, timeoutMs: 5000 })).resolves.toEqual({
      id: rec3.id,
      status: 'accepted',
    });
    expect(c.hub.submitsTo).toEqual([leader.nodeId, leader.nodeId]);
    // asked as a leader (forwarded), a node answers from its own view and asks no one
    const net = c.hub.nodes.get(fId)!;
    const other = tx(
      'participant.register',
      keyFor('stranger'),
      { participant: pub(keyFor('nobody')), role: 'affiliate', name: 'nobody' },
      { timestamp: Date.now() },
    );
    const forwarded = JSON.parse(
      Buffer.from(
        await net.clientSubmit(Buffer.from(JSON.stringify({ tx: other.tx, forwarded: true }))),
      ).toString('utf8'),
    ) as unknown;
    expect(forwarded).toMatchObject({
      error: { code: 'REJECTED', details: { receiptCode: 'UNKNOWN_SIGNER' } },
    });
    expect(c.hub.submitsTo).toHaveLength(2); // no new question;
    const bad = JSON.parse(
      Buffer.from(
        await net.clientSubmit(Buffer.from(JSON.stringify({ tx: other.tx, forwarded: 1 }))),
      ).toString('utf8'),
    ) as unknown;
    expect(bad).toMatchObject({ error: { code: 'INVALID_FIELD', field: 'forwarded' } });
  });

  it('a follower that cannot ask its leader keeps its refusal only if nothing was sent', async () => {
    const { c, fId, f } = await withFollower();
    const stranger = keyFor('never-registered');
    const signed = (n: string) =>
      tx(
        'participant.register',
        stranger,
        { participant: pub(keyFor(n)), role: 'affiliate', name: n },
        { timestamp: Date.now() },
      );
    const net = c.hub.nodes.get(fId)!;
    // the stream could not be opened: nothing reached the leader, f's refusal stands
    net.submitTo = () => Promise.reject(Object.assign(new Error('no route'), { code: 'UNREACHABLE' }));
    await expect(f.submit(signed('a').tx, { wait: false, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'REJECTED',
      details: { receiptCode: 'UNKNOWN_SIGNER' },
    });
    // the exchange broke after the request left: the leader may have taken it, so no refusal
    net.submitTo = () => Promise.reject(new Error('stream reset'));
    await expect(f.submit(signed('b').tx, { wait: false, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    await expect(f.submit(signed('c').tx, { wait: true, timeoutMs: 300 })).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
  });

  it('a retry at a lagging follower of a committed transaction past its age gets the receipt, and other waits stand', async () => {
    const { c, leader, fId, f } = await withFollower();
    const x = register('retried', Date.now() - DEFAULT_PARAMS.txMaxAgeMs + 800);
    lagAppends(c, leader.nodeId, fId);
    let first: unknown;
    const firstAnswer = f.submit(x.tx, { wait: true, timeoutMs: 20_000 }).then(
      (r) => (first = r),
      (e: unknown) => (first = e),
    );
    await c.waitFor('the leader commits it', async () => (await leader.getTransaction(x.id)) !== undefined);
    // past its age by f's clock, and swept out of f's mempool (every 50 ticks of 10 ms)
    await sleep(1500);
    expect(f.status().leader).toBe(leader.nodeId);
    // the client retries at f: once TX_EXPIRED (f's clock), now the leader's receipt
    await expect(f.submit(x.tx, { wait: true, timeoutMs: 5000 })).resolves.toMatchObject({
      id: x.id,
      status: 'committed',
      receipt: { code: 'OK' },
    });
    // the first client's wait was not failed by the second's (it was a 500 "superseded")
    expect(first).toBeUndefined();
    c.hub.dropRaft = undefined;
    await firstAnswer;
    expect(first).toMatchObject({ id: x.id, status: 'committed', receipt: { code: 'OK' } });
  });

  it('a libp2p submission with a wait or timeoutMs of the wrong type is refused, not read as another value', async () => {
    const c = (cluster = new TestCluster(3));
    await c.startAll();
    const leader = await c.waitForLeader();
    const net = c.hub.nodes.get(leader.nodeId)!;
    const ask = async (envelope: unknown) =>
      JSON.parse(
        Buffer.from(await net.clientSubmit(Buffer.from(JSON.stringify(envelope)))).toString('utf8'),
      ) as {
        error?: { code: string; field?: string };
        status?: string;
      };
    const x = register('p2p');
    // "false" as a string used to mean wait, a NaN timeout an immediate 504
    expect(await ask({ tx: x.tx, wait: 'false' })).toMatchObject({
      error: { code: 'INVALID_FIELD', field: 'wait' },
    });
    expect(await ask({ tx: x.tx, timeoutMs: 'soon' })).toMatchObject({
      error: { code: 'INVALID_FIELD', field: 'timeoutMs' },
    });
    expect(await ask({ tx: x.tx, wait: true, timeoutMs: 5000 })).toMatchObject({ status: 'committed' });
  });
});

/**
 * withStoppedFollower, the follower back with a block fetch that does not
 * answer until `release()` (a slow peer, a long chain), once the leader's
 * snapshot is on its disk: it restores in the background.
 */
async function restoringFollower(prefix: string) {
  const { c, leader, lagging } = await withStoppedFollower(20, prefix);
  const net = c.hub.connect(lagging);
  const fetch = net.fetchBlocks.bind(net);
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  net.fetchBlocks = async (peer: string, from: number, to: number) => {
    await held;
    return fetch(peer, from, to);
  };
  const back = await c.start(lagging, undefined, { network: net });
  c.hub.nodes.set(lagging, net);
  const disk = c.disks.get(lagging)!;
  await c.waitFor(
    'the snapshot on disk',
    async () => ((await disk.raft.load()).snapshot?.data.length ?? 0) > 0,
  );
  return { c, leader, lagging, back, release };
}

describe('a node restoring a snapshot', () => {
  it('keeps answering Raft while it fetches the blocks, so a quorum that needs it still commits', async () => {
    const { c, leader, lagging, back, release } = await restoringFollower('r');
    // the third node goes: the leader's quorum is now itself and the restoring node
    const third = c.ids.find((id) => id !== leader.nodeId && id !== lagging)!;
    await c.stop(third);
    // before, the restoring node's driver waited for the fetch and sent nothing: no commit
    const during = await leader.submit(register('during').tx, { wait: true, timeoutMs: 5000 });
    expect(during.status).toBe('committed');
    expect(back.status().height).toBe(0);
    release();
    await c.waitFor(
      'caught up, the held-back entries applied on top',
      () => back.status().height === leader.status().height,
    );
    expect(c.fatal).toEqual([]);
  });
});

describe('a node elected while it restores a snapshot', () => {
  it('hands leadership over instead of leading from an old chain, and the cluster keeps committing', async () => {
    const { c, leader, lagging, back, release } = await restoringFollower('s');
    // the third node cannot campaign, so the restoring node is the one elected
    const third = c.ids.find((id) => id !== leader.nodeId && id !== lagging)!;
    c.hub.dropRaft = (from, _to, frame) =>
      from === third && ['vote', 'preVote'].includes(decodeRaftMessage(frame).type);
    // The third node votes only for a log as long as its own: the restoring node must hold every
    // entry the leader sent before the leader goes (on a busy machine the last append may still
    // be on its way when the snapshot is on disk, and no one could be elected).
    const thirdNode = c.nodes.get(third)!;
    await c.waitFor(
      'the restoring node to hold the whole log',
      () =>
        back.raftStatus.lastIndex === leader.raftStatus.lastIndex &&
        thirdNode.raftStatus.lastIndex === leader.raftStatus.lastIndex,
    );
    await c.stop(leader.nodeId);
    await c.waitFor('the restoring node to be elected', () => back.raftStatus.role === 'leader', 15_000);
    // it answers no writes from its old state meanwhile
    await expect(
      back.submit(register('while-restoring').tx, { wait: false, timeoutMs: 1000 }),
    ).rejects.toMatchObject({
      code: 'NOT_READY',
    });
    c.hub.dropRaft = undefined;
    const other = c.nodes.get(third)!;
    await c.waitFor('the other node to lead', () => other.raftStatus.role === 'leader', 15_000);
    const r = await other.submit(register('after-handover').tx, { wait: true, timeoutMs: 5000 });
    expect(r.status).toBe('committed');
    release();
    await c.waitFor('caught up', () => back.status().height === other.status().height);
    expect(c.fatal).toEqual([]);
  });
});

describe('readiness of a follower that lags', () => {
  it('fails /readyz applied once it is behind the leader’s commit index, which its own cannot show', async () => {
    const { c, leader, fId, f } = await withFollower({ readyLagEntries: 5 });
    lagAppends(c, leader.nodeId, fId);
    for (let i = 0; i < 8; i++) await leader.submit(register(`lag-${i}`).tx, { wait: true, timeoutMs: 5000 });
    // before: its commit index was capped at what it held, so it called itself ready
    const check = await c.waitFor('the follower to see that it lags', () => {
      const a = f.readiness().checks.applied!;
      return a.ok ? undefined : a;
    });
    expect(check.detail).toContain("the leader's commit index");
    expect(f.readiness().ready).toBe(false);
    c.hub.dropRaft = undefined;
    await c.waitFor('ready again once caught up', () => f.readiness().ready);
  });
});

describe('gossip that arrives after its block', () => {
  // A restarted node remembers no recent commits, and gossipsub replays its recent messages to a
  // peer that reconnects: the follower kept such a transaction undecoded for txMaxAgeMs (an hour),
  // counted it in its mempool and sent it to the leader again and again (the soak's note
  // "mempool holds 1 after everything committed").
  it('leaves a follower’s mempool at its next sweeps once its nonce is used, not an hour later', async () => {
    const c = (cluster = new TestCluster(3));
    // compaction flushes the chain, so the restart below replays none of these blocks
    c.nodeOptions = { compactEvery: 3, compactKeep: 1 };
    await c.startAll();
    const leader = await c.waitForLeader();
    const t = c.registration('late-gossip');
    await leader.submit(t.tx, { wait: true, timeoutMs: 5000 });
    for (let i = 0; i < 8; i++)
      await leader.submit(c.registration(`after-${i}`).tx, { wait: true, timeoutMs: 5000 });
    const f = c.ids.find((id) => id !== leader.nodeId)!;
    await c.stop(f);
    const back = await c.start(f);
    await c.waitFor(
      'the restarted follower at the head',
      () => back.status().height === leader.status().height,
    );
    const net = c.hub.nodes.get(f) as unknown as { tx?: (from: string, bytes: Uint8Array) => void };
    net.tx!(leader.nodeId, new TextEncoder().encode(canonicalize(t.tx)));
    expect(back.status().mempool).toBe(1);
    await c.waitFor('the mempool to let it go', () => back.status().mempool === 0, 5000);
    // one not committed is kept as before, however long it waits for a leader
    c.hub.isolate(f);
    const pending = c.registration('not-yet');
    net.tx!(leader.nodeId, new TextEncoder().encode(canonicalize(pending.tx)));
    await sleep(2000); // four sweeps
    expect(back.status().mempool).toBe(1);
    c.hub.heal();
    await c.waitFor('it to commit', () => back.status().mempool === 0, 10_000);
    expect(await leader.getTransaction(pending.id)).toBeDefined();
  });
});
