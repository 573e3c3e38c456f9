// Scripted scenarios that read like a transcript (etcd testdata/*.txt style):
// build a cluster, campaign, deliver, drop, partition, tick, stabilize, and
// check the outcome. Every scenario ends with the State Machine Safety check.
import { describe, expect, it } from 'vitest';
import { Cluster, utf8 } from './harness.js';

const abc = ['a', 'b', 'c'];

describe('Figure 8: a leader never commits an entry of an earlier term by counting replicas', () => {
  // s1 led term 2 and replicated index 2 only to s2; s5 led term 3 and wrote
  // its own index 2 alone. Everyone has seen term 3.
  const logs = {
    s1: { term: 3, entryTerms: [2] },
    s2: { term: 3, entryTerms: [2] },
    s3: { term: 3, entryTerms: [] },
    s4: { term: 3, entryTerms: [] },
    s5: { term: 3, entryTerms: [3] },
  };
  const voters = ['s1', 's2', 's3', 's4', 's5'];

  function play(faulty: boolean): Cluster {
    const c = new Cluster({
      voters,
      logs,
      maxMsgEntries: 1,
      checkQuorum: false,
      ...(faulty ? { faults: { commitPriorTermEntries: true } } : {}),
    });
    // (c) s1 is elected in term 4 (s5 cut off) and replicates the term-2
    // entry at index 2 to a majority, but none of its term-4 entries.
    c.partition(['s1', 's2', 's3', 's4'], ['s5']);
    // Term-4 entries never get accepted anywhere: a probe that the receiver
    // must reject (it lacks the previous entry) may pass, nothing else.
    c.setFilter(
      (m) =>
        m.type === 'app' && m.entries.some((e) => e.term === 4) && c.raft(m.to).status().lastIndex >= m.index,
    );
    c.elect('s1');
    expect(c.raft('s1').status().term).toBe(4);
    for (const id of ['s1', 's2', 's3', 's4']) expect(c.logTerms(id).slice(0, 1)).toEqual([2]);
    // s1 crashes before any term-4 entry leaves it.
    c.crash('s1');
    c.heal();
    // (d) s5 (last log term 3 beats 2) is elected and overwrites index 2 everywhere.
    for (let i = 0; i < 3 && c.raft('s5').status().role !== 'leader'; i++) {
      c.raft('s5').campaign();
      c.stabilize();
    }
    expect(c.raft('s5').status().role).toBe('leader');
    c.propose('s5', 'after');
    c.stabilize();
    return c;
  }

  it('a correct leader does not commit the term-2 entry, so overwriting it is safe', () => {
    const c = play(false);
    expect(c.node('s1').applied.map((e) => e.index)).toEqual([]);
    expect(c.raft('s1').status().commit).toBe(1);
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(c.node(id).applied.find((e) => e.index === 2)?.data).toBe('t3i2');
      expect(c.appliedData(id)).toEqual(['t3i2', 'after']);
    }
    c.checkSafety();
  });

  it('with the commitPriorTermEntries fault, the leader commits it and State Machine Safety breaks', () => {
    const c = play(true);
    expect(c.node('s1').applied.find((e) => e.index === 2)?.data).toBe('t2i2');
    expect(() => c.checkSafety()).toThrow(/state machine safety violated at 2/);
  });
});

describe('log consistency', () => {
  it('a new leader overwrites a follower’s conflicting uncommitted suffix', () => {
    // c led term 2 and appended three entries nobody else has.
    const c = new Cluster({
      voters: abc,
      logs: {
        a: { term: 3, entryTerms: [2, 3] },
        b: { term: 3, entryTerms: [2, 3] },
        c: { term: 3, entryTerms: [2, 2, 2, 2] },
      },
    });
    c.elect('a');
    c.propose('a', 'x');
    c.stabilize();
    expect(c.logTerms('c')).toEqual(c.logTerms('a'));
    expect(c.logTerms('c')).toEqual([2, 3, 4, 4]);
    expect(c.appliedData('c')).toEqual(['t2i2', 't3i3', 'x']);
    c.checkSafety();
  });

  it('a voter rejects a less up-to-date candidate, which therefore cannot win', () => {
    const c = new Cluster({
      voters: abc,
      preVote: false,
      logs: {
        a: { term: 2, entryTerms: [2] },
        b: { term: 2, entryTerms: [2, 2] },
        c: { term: 2, entryTerms: [2, 2] },
      },
    });
    c.raft('a').campaign();
    c.stabilize();
    const answers = c.delivered.filter((m) => m.type === 'voteResp' && m.to === 'a');
    expect(answers.map((m) => [m.from, m.reject])).toEqual([
      ['b', true],
      ['c', true],
    ]);
    expect(c.raft('a').status().role).toBe('follower');
    // a's failed campaign moved everyone to term 3, so b leads term 4.
    c.elect('b');
    expect(c.logTerms('a')).toEqual([2, 2, 4]);
    c.checkSafety();
  });

  it('reordered and duplicated append messages leave every log identical and apply each entry once', () => {
    const c = new Cluster({ voters: abc, maxMsgEntries: 2, seed: 3 });
    c.elect('a');
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3; i++) c.propose('a', `r${round}-${i}`);
      // Deliver each round's messages duplicated and in reverse order.
      for (let step = 0; step < 50 && c.network.length > 0; step++) {
        const batch = c.drop();
        c.network = [...batch, ...batch.filter((m) => m.type === 'app')].reverse();
        c.deliverRound();
      }
      c.tick(1);
    }
    c.stabilize();
    c.run(3);
    const want = Array.from({ length: 5 }, (_, r) => [0, 1, 2].map((i) => `r${r}-${i}`)).flat();
    for (const id of abc) {
      expect(c.appliedData(id)).toEqual(want);
      expect(c.logTerms(id)).toEqual(c.logTerms('a'));
    }
    c.checkSafety();
  });
});

describe('elections', () => {
  it('split votes converge to a single leader thanks to randomized timeouts', () => {
    const c = new Cluster({ voters: ['a', 'b', 'c', 'd', 'e'], preVote: false, seed: 11 });
    c.isolate('e');
    c.raft('a').campaign();
    c.raft('b').campaign();
    c.flush();
    // a's request reaches c first, b's reaches d first: 2 votes each, no majority.
    c.drop(
      (m) => m.type === 'vote' && ((m.from === 'a' && m.to === 'd') || (m.from === 'b' && m.to === 'c')),
    );
    c.stabilize();
    expect(c.raft('a').status()).toMatchObject({ role: 'candidate', term: 2 });
    expect(c.raft('b').status()).toMatchObject({ role: 'candidate', term: 2 });
    expect(c.leaders()).toEqual([]);
    c.heal();
    let ticks = 0;
    while (c.leaders().length !== 1 && ticks < 200) {
      c.run(1);
      ticks++;
    }
    expect(c.leaders()).toHaveLength(1);
    expect(c.raft(c.leader() ?? '').status().term).toBeGreaterThan(2);
    c.propose(c.leader() ?? '', 'x');
    c.stabilize();
    for (const id of ['a', 'b', 'c', 'd', 'e']) expect(c.appliedData(id)).toEqual(['x']);
    c.checkSafety();
  });

  it('a partitioned leader steps down under check-quorum within one election timeout', () => {
    const c = new Cluster({ voters: abc, electionTick: 10 });
    c.elect('a');
    c.isolate('a');
    c.run(9);
    expect(c.raft('a').status().role).toBe('leader');
    c.run(1);
    expect(c.raft('a').status()).toMatchObject({ role: 'follower', leader: null });
    // Meanwhile the majority elects a new leader.
    c.run(30);
    const l = c.leader();
    expect(l === 'b' || l === 'c').toBe(true);
    expect(() => c.raft('a').propose(utf8('lost'))).toThrow(expect.objectContaining({ code: 'notLeader' }));
    c.heal();
    c.propose(l ?? '', 'y');
    c.run(3);
    expect(c.appliedData('a')).toEqual(['y']);
    c.checkSafety();
  });

  it('a partitioned follower rejoins without disrupting the leader (pre-vote)', () => {
    const c = new Cluster({ voters: abc, seed: 5 });
    c.elect('a');
    const term = c.raft('a').status().term;
    c.isolate('c');
    c.run(100);
    // c kept pre-campaigning but never raised its term.
    expect(c.raft('c').status().term).toBe(term);
    expect(c.delivered.some((m) => m.from === 'c' && m.type === 'vote')).toBe(false);
    c.heal();
    c.run(5);
    expect(c.leader()).toBe('a');
    expect(c.raft('a').status().term).toBe(term);
    expect(c.raft('c').status()).toMatchObject({ role: 'follower', leader: 'a', term });
    c.checkSafety();
  });

  it('without pre-vote or check-quorum the same rejoin disrupts the leader (why pre-vote exists)', () => {
    const c = new Cluster({ voters: abc, seed: 5, preVote: false, checkQuorum: false });
    c.elect('a');
    const term = c.raft('a').status().term;
    c.isolate('c');
    c.run(100);
    expect(c.raft('c').status().term).toBeGreaterThan(term + 3);
    c.heal();
    c.run(40);
    expect(c.raft(c.leader() ?? 'a').status().term).toBeGreaterThan(term);
    c.checkSafety();
  });

  it('a follower that heard from the leader within the election timeout ignores vote requests (leader lease)', () => {
    const c = new Cluster({ voters: abc, preVote: false, electionTick: 10 });
    c.elect('a');
    // c is cut off from a only; it campaigns while b still hears from a.
    c.partition(['a', 'b'], ['b', 'c']);
    c.raft('c').campaign();
    c.stabilize();
    expect(c.raft('b').status()).toMatchObject({ leader: 'a', term: 2 });
    expect(c.raft('c').status().role).toBe('candidate');
    expect(c.leader()).toBe('a');
  });
});

describe('linearizable reads (ReadIndex)', () => {
  it('a new leader serves a read only after committing an entry of its term; the read sees every earlier write', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.propose('a', 'w1');
    c.stabilize();
    // b takes over, but its no-op does not reach anyone yet.
    c.setFilter((m) => m.type === 'app' && m.from === 'b');
    c.raft('a').transferLeadership('b');
    c.stabilize();
    expect(c.leader()).toBe('b');
    c.raft('b').readIndex(utf8('r1'));
    c.stabilize();
    c.run(3);
    expect(c.node('b').readStates).toEqual([]);
    c.heal();
    c.run(2);
    expect(c.node('b').readStates).toHaveLength(1);
    const rs = c.node('b').readStates[0];
    const w1 = c.node('b').applied.find((e) => e.data === 'w1');
    expect(rs?.index).toBeGreaterThanOrEqual((w1?.index ?? Infinity) + 1);
    expect(rs?.context).toEqual(utf8('r1'));
  });

  it('a follower’s read is forwarded to the leader and answered with the leader’s commit index', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.propose('a', 'w');
    c.stabilize();
    c.raft('c').readIndex(utf8('fr'));
    c.stabilize();
    expect(c.node('c').readStates).toEqual([{ index: c.raft('a').status().commit, context: utf8('fr') }]);
  });

  it('a stale leader, cut off from the majority, cannot serve a linearizable read', () => {
    const c = new Cluster({ voters: abc, checkQuorum: false, seed: 2 });
    c.elect('a');
    c.isolate('a');
    c.run(40);
    const fresh = c.leader();
    expect(fresh === 'b' || fresh === 'c').toBe(true);
    c.propose(fresh ?? '', 'newer');
    c.stabilize();
    // a still believes it leads, but its confirmation round never succeeds.
    expect(c.raft('a').status().role).toBe('leader');
    c.raft('a').readIndex(utf8('stale'));
    c.run(20);
    expect(c.node('a').readStates).toEqual([]);
    // Once healed, a learns the newer term and steps down, still without answering.
    c.heal();
    c.run(3);
    expect(c.raft('a').status().role).toBe('follower');
    expect(c.node('a').readStates).toEqual([]);
    c.raft('a').readIndex(utf8('now'));
    c.stabilize();
    const rs = c.node('a').readStates[0];
    const newer = c.node(fresh ?? '').applied.find((e) => e.data === 'newer');
    expect(rs?.index).toBeGreaterThanOrEqual(newer?.index ?? Infinity);
  });
});

describe('log compaction', () => {
  it('a follower behind the compaction point recovers through a snapshot', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 10; i++) c.propose('a', `e${i}`);
    c.stabilize();
    const applied = c.raft('a').status().applied;
    const snap = c.compact('a', applied);
    expect(c.raft('a').status().firstIndex).toBe(applied + 1);
    c.propose('a', 'tail');
    c.stabilize();
    c.heal();
    c.run(3);
    expect(
      c.delivered.some((m) => m.type === 'snap' && m.to === 'c' && m.snapshot?.meta.index === applied),
    ).toBe(true);
    expect(c.node('c').storage.snapshot().meta).toEqual(snap.meta);
    expect(c.appliedData('c')).toEqual(c.appliedData('a'));
    expect(c.appliedData('c')).toHaveLength(11);
    expect(c.raft('a').status().progress?.['c']).toMatchObject({
      state: 'replicate',
      match: c.raft('a').status().lastIndex,
    });
    c.checkSafety();
  });

  it('a lost snapshot message is sent again', () => {
    const c = new Cluster({ voters: abc, electionTick: 10 });
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 3; i++) c.propose('a', `e${i}`);
    c.stabilize();
    c.compact('a', c.raft('a').status().applied);
    c.heal();
    c.setFilter((m) => m.type === 'snap');
    c.run(5);
    expect(c.raft('a').status().progress?.['c']?.state).toBe('snapshot');
    c.heal();
    c.run(25);
    expect(c.appliedData('c')).toEqual(['e0', 'e1', 'e2']);
    c.checkSafety();
  });

  it('compaction is refused beyond the applied index', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    const st = c.raft('a').status();
    expect(() => c.raft('a').compact(st.applied + 1, new Uint8Array())).toThrow(
      expect.objectContaining({ code: 'compactOutOfRange' }),
    );
  });
});

describe('leadership transfer', () => {
  it('transfers to a slow follower: catch it up, then TimeoutNow; proposals are refused meanwhile', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 5; i++) c.propose('a', `p${i}`);
    c.stabilize();
    c.heal();
    c.raft('a').transferLeadership('c');
    expect(() => c.raft('a').propose(utf8('no'))).toThrow(
      expect.objectContaining({ code: 'transferInProgress' }),
    );
    c.stabilize();
    expect(c.leader()).toBe('c');
    expect(c.raft('c').status().term).toBe(3);
    expect(c.delivered.some((m) => m.type === 'timeoutNow' && m.to === 'c')).toBe(true);
    c.propose('c', 'after');
    c.stabilize();
    for (const id of abc) expect(c.appliedData(id)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'after']);
    c.checkSafety();
  });

  it('a transfer that cannot finish is aborted after an election timeout', () => {
    const c = new Cluster({ voters: abc, electionTick: 10 });
    c.elect('a');
    c.isolate('c');
    c.propose('a', 'x');
    c.stabilize();
    c.raft('a').transferLeadership('c');
    expect(c.raft('a').status().leadTransferee).toBe('c');
    c.run(10);
    expect(c.raft('a').status()).toMatchObject({ role: 'leader', leadTransferee: null });
    c.propose('a', 'y');
    c.stabilize();
    expect(c.appliedData('b')).toEqual(['x', 'y']);
  });

  it('a follower forwards a transfer request to the leader; non-voters are refused', () => {
    const c = new Cluster({ voters: abc, learners: ['l'] });
    c.elect('a');
    c.raft('b').transferLeadership('b');
    c.stabilize();
    expect(c.leader()).toBe('b');
    expect(() => c.raft('b').transferLeadership('l')).toThrow(
      expect.objectContaining({ code: 'invalidTransferee' }),
    );
  });
});

describe('membership changes', () => {
  it('removing the leader: it steps down once the removal commits and hands over at once', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.propose('a', 'before');
    c.raft('a').proposeConfChange({ type: 'removeNode', nodeId: 'a' });
    c.stabilize();
    expect(c.raft('a').status().role).toBe('follower');
    // It asked the most up-to-date voter to campaign: no election timeout needed.
    expect(c.delivered.some((m) => m.type === 'timeoutNow' && m.from === 'a')).toBe(true);
    const l = c.leader();
    expect(l === 'b' || l === 'c').toBe(true);
    expect(c.raft(l ?? '').status().confState).toEqual({ voters: ['b', 'c'], learners: [] });
    c.propose(l ?? '', 'after');
    c.run(30);
    expect(c.leader()).toBe(l);
    expect(c.raft('a').status().role).toBe('follower');
    expect(c.appliedData('b')).toEqual(['before', 'after']);
    c.checkSafety();
  });

  it('a learner receives the log but never campaigns, and its vote and acks never count', () => {
    const c = new Cluster({ voters: abc, learners: ['l'] });
    c.elect('a');
    c.propose('a', 'x');
    c.stabilize();
    expect(c.appliedData('l')).toEqual(['x']);
    // Isolated for a long time, the learner never even pre-campaigns.
    c.isolate('l');
    c.run(100);
    expect(c.delivered.some((m) => m.from === 'l' && (m.type === 'vote' || m.type === 'preVote'))).toBe(
      false,
    );
    expect(c.raft('l').status().role).toBe('follower');
    // With b and c unreachable, the learner's acknowledgement does not commit anything.
    c.heal();
    c.partition(['a', 'l']);
    c.propose('a', 'y');
    c.stabilize();
    expect(c.raft('a').status().progress?.['l']?.match).toBe(c.raft('a').status().lastIndex);
    expect(c.appliedData('a')).toEqual(['x']);
    c.checkSafety();
  });

  it('candidates do not ask learners for votes, and a learner’s grant would not count', () => {
    const c = new Cluster({ voters: abc, learners: ['l'], preVote: false });
    c.partition(['a', 'l'], ['b'], ['c']);
    c.raft('a').campaign();
    c.flush();
    expect(c.network.filter((m) => m.type === 'vote').map((m) => m.to)).toEqual(['b', 'c']);
    // Even a (forged) grant from the learner leaves a short of a majority.
    c.raft('a').step({ ...c.network[0]!, type: 'voteResp', from: 'l', to: 'a', term: 2, reject: false });
    c.stabilize();
    expect(c.raft('a').status().role).toBe('candidate');
  });

  it('adding a learner from an empty disk, promoting it, and one change at a time', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.propose('a', 'x');
    c.stabilize();
    c.addNode('d');
    c.raft('a').proposeConfChange({ type: 'addLearner', nodeId: 'd' });
    expect(() => c.raft('a').proposeConfChange({ type: 'promoteLearner', nodeId: 'd' })).toThrow(
      expect.objectContaining({ code: 'confChangePending' }),
    );
    c.stabilize();
    c.run(3);
    // d got the bootstrap snapshot (initial membership) and then the log.
    expect(c.appliedData('d')).toEqual(['x']);
    expect(c.raft('d').status().confState).toEqual({ voters: abc, learners: ['d'] });
    expect(() => c.raft('a').proposeConfChange({ type: 'addLearner', nodeId: 'b' })).toThrow(
      expect.objectContaining({ code: 'invalidConfChange' }),
    );
    c.raft('a').proposeConfChange({ type: 'promoteLearner', nodeId: 'd' });
    c.stabilize();
    for (const id of ['a', 'b', 'c', 'd']) {
      expect(c.raft(id).status().confState).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    }
    // Four voters: a majority is three. With c and d gone, nothing commits.
    c.crash('c');
    c.crash('d');
    c.propose('a', 'y');
    c.stabilize();
    expect(c.appliedData('a')).toEqual(['x']);
    c.restart('d');
    c.run(3);
    expect(c.appliedData('a')).toEqual(['x', 'y']);
    c.checkSafety();
  });
});

describe('crash and restart', () => {
  it('a leader crashing between persisting and sending loses nothing that was acknowledged', () => {
    const c = new Cluster({ voters: abc, seed: 9 });
    c.elect('a');
    c.propose('a', 'acked');
    c.stabilize();
    expect(c.appliedData('a')).toEqual(['acked']);
    // a persists a new entry, then dies before its appends go out.
    c.raft('a').propose(utf8('unacked'));
    const lost = c.crashAfterPersist('a');
    expect(lost.entries.map((e) => e.index)).toEqual([4]);
    expect(lost.messages.some((m) => m.type === 'app')).toBe(true);
    c.run(30);
    const l = c.leader();
    expect(l === 'b' || l === 'c').toBe(true);
    c.restart('a');
    // Its disk has the unacknowledged entry 4; commit 3 survived too.
    expect(c.raft('a').status()).toMatchObject({ role: 'follower', term: 2, lastIndex: 4, commit: 3 });
    c.propose(c.leader() ?? '', 'later');
    c.run(5);
    for (const id of abc) expect(c.appliedData(id)).toEqual(['acked', 'later']);
    c.checkSafety();
  });

  it('a voter crashing after persisting its vote but before sending it never votes twice in that term', () => {
    const c = new Cluster({ voters: abc, preVote: false });
    c.raft('a').campaign();
    c.flush();
    // c receives a's request only, then crashes after persisting the vote.
    c.deliverRound((m) => m.type === 'vote' && m.from === 'a' && m.to === 'c');
    c.drop((m) => m.from === 'c');
    c.restart('c');
    expect(c.raft('c').status()).toMatchObject({ term: 2, vote: 'a' });
    // b campaigns in the same term: c must refuse.
    c.drop();
    c.raft('b').campaign();
    c.flush();
    const req = c.network.find((m) => m.type === 'vote' && m.to === 'c');
    expect(req?.term).toBe(2);
    c.deliverRound((m) => m.to === 'c');
    expect(c.network.find((m) => m.from === 'c' && m.type === 'voteResp')?.reject).toBe(true);
  });

  it('a follower crashing after persisting entries but before acknowledging them keeps them once', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.propose('a', 'x');
    c.deliverRound((m) => m.type === 'app' && m.to === 'b');
    c.drop((m) => m.from === 'b');
    c.restart('b');
    expect(c.raft('b').status().lastIndex).toBe(3);
    c.run(3);
    expect(c.appliedData('b')).toEqual(['x']);
    expect(c.node('b').applied.map((e) => e.index)).toEqual([2, 3]);
    c.checkSafety();
  });
});
