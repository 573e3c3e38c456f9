// Hostile or broken input from the network, driver contract misuse, and a
// small randomized run over a faulty network with crashes (the full
// simulator lives in test/sim; this is a smoke check of the same invariants).
import { describe, expect, it } from 'vitest';
import { MemoryStorage, messageSize, RaftNode, type Message } from '../../../src/consensus/index.js';
import { Cluster, drain, msg, seededRandom, solo, utf8 } from './harness.js';

const abc = ['a', 'b', 'c'];

describe('malformed messages are dropped, never thrown', () => {
  const good = msg({ type: 'app', from: 'b', to: 'a', term: 5, index: 1, logTerm: 1 });
  const bad: [string, unknown][] = [
    ['null', null],
    ['a string', 'hello'],
    ['an empty object', {}],
    ['an unknown type', { ...good, type: 'nope' }],
    ['addressed to someone else', { ...good, to: 'z' }],
    ['from itself', { ...good, from: 'a' }],
    ['a negative term', { ...good, term: -1 }],
    ['a fractional index', { ...good, index: 1.5 }],
    ['a term of NaN', { ...good, term: NaN }],
    [
      'entries not following index',
      { ...good, entries: [{ index: 5, term: 5, type: 'normal', data: new Uint8Array() }] },
    ],
    [
      'entries newer than the message',
      { ...good, entries: [{ index: 2, term: 6, type: 'normal', data: new Uint8Array() }] },
    ],
    ['entry data not bytes', { ...good, entries: [{ index: 2, term: 5, type: 'normal', data: 'x' }] }],
    ['a snap without a snapshot', { ...good, type: 'snap' }],
    ['a heartbeat with term 0', { ...good, type: 'heartbeat', term: 0 }],
    ['a readIndexResp without context', { ...good, type: 'readIndexResp' }],
    ['a non-boolean reject', { ...good, type: 'appResp', reject: 'yes' }],
  ];
  it.each(bad)('%s', (_name, m) => {
    const { raft, storage } = solo({ id: 'a', voters: abc });
    drain(raft, storage);
    const before = raft.status();
    expect(() => raft.step(m as Message)).not.toThrow();
    expect(raft.status()).toEqual(before);
    expect(raft.hasReady()).toBe(false);
  });

  it('an append that would rewrite committed entries is dropped', () => {
    const { raft, storage } = solo({ id: 'a', voters: abc, term: 2, entryTerms: [2, 2], commit: 3 });
    raft.step(
      msg({
        type: 'app',
        from: 'b',
        to: 'a',
        term: 3,
        index: 1,
        logTerm: 1,
        entries: [{ index: 2, term: 3, type: 'normal', data: utf8('evil') }],
      }),
    );
    drain(raft, storage);
    expect(storage.term(2)).toBe(2);
    expect(raft.status().commit).toBe(3);
  });

  it('an acknowledgement beyond the leader’s log is ignored', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    const before = c.raft('a').status();
    c.raft('a').step(msg({ type: 'appResp', from: 'b', to: 'a', term: before.term, index: 999 }));
    c.flush();
    expect(c.raft('a').status().commit).toBe(before.commit);
    expect(c.raft('a').status().progress?.['b']?.match).toBe(before.progress?.['b']?.match);
  });

  it('messages survive structuredClone and have an estimated size', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.raft('a').propose(utf8('x'.repeat(1000)));
    const rd = c.raft('a').ready();
    const app = rd.messages.find((m) => m.type === 'app');
    expect(app).toBeDefined();
    expect(structuredClone(app)).toEqual(app);
    expect(messageSize(app as Message)).toBeGreaterThan(1000);
    expect(messageSize(app as Message)).toBeLessThan(1200);
    c.node('a').storage.append(rd.entries);
    c.raft('a').advance();
  });
});

describe('driver contract', () => {
  it('one Ready at a time: hasReady is false and ready() throws until advance()', () => {
    const { raft, storage } = solo({ id: 'a', voters: ['a'] });
    raft.campaign();
    expect(raft.hasReady()).toBe(true);
    const rd = raft.ready();
    expect(raft.hasReady()).toBe(false);
    expect(() => raft.ready()).toThrow(expect.objectContaining({ code: 'readyPending' }));
    storage.append(rd.entries);
    raft.advance();
    expect(() => raft.advance()).toThrow(expect.objectContaining({ code: 'noReady' }));
  });

  it('a single-node leader commits at once; committed entries arrive in the same Ready as the entries to persist', () => {
    const { raft, storage } = solo({ id: 'a', voters: ['a'] });
    raft.campaign();
    const rd = raft.ready();
    expect(rd.softState).toEqual({ leader: 'a', role: 'leader' });
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    expect(rd.hardState).toEqual({ term: 2, vote: 'a', commit: 2 });
    storage.append(rd.entries);
    raft.advance();
    raft.readIndex(utf8('r'));
    expect(raft.ready().readStates).toEqual([{ index: 2, context: utf8('r') }]);
  });

  it('step() between ready() and advance() is allowed; its output comes in the next Ready', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.raft('a').propose(utf8('x'));
    const rd = c.raft('a').ready();
    c.raft('a').propose(utf8('y'));
    c.node('a').storage.append(rd.entries);
    c.network.push(...rd.messages);
    c.raft('a').advance();
    c.stabilize();
    expect(c.appliedData('b')).toEqual(['x', 'y']);
  });
});

describe('randomized faulty network with crashes (smoke)', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i keeps State Machine Safety and recovers liveness', (seed) => {
    const rnd = seededRandom(seed * 7919);
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const c = new Cluster({ voters: ids, seed, maxMsgEntries: 4, maxInflight: 4 });
    const down = new Set<string>();
    let proposed = 0;
    for (let t = 0; t < 300; t++) {
      c.tick(1);
      // Duplicate some messages, then deliver a random subset (the rest waits: reordering).
      for (const m of [...c.network]) if (rnd() < 0.05) c.network.push(structuredClone(m));
      c.drop(() => rnd() < 0.1);
      c.deliverRound(() => rnd() < 0.7);
      const l = c.leader();
      if (l !== null && rnd() < 0.3) {
        try {
          c.propose(l, `v${proposed}`);
          proposed++;
        } catch {
          // A transfer in progress: fine.
        }
      }
      if (rnd() < 0.02 && down.size < 2) {
        const victim = ids[Math.floor(rnd() * ids.length)] ?? 'a';
        if (!down.has(victim)) {
          c.crash(victim);
          down.add(victim);
        }
      } else if (down.size > 0 && rnd() < 0.05) {
        const back = [...down][0] ?? 'a';
        down.delete(back);
        c.restart(back);
      }
      const l2 = c.leader();
      if (l2 !== null && rnd() < 0.02) {
        const st = c.raft(l2).status();
        if (st.applied >= st.firstIndex) c.compact(l2, st.applied);
      }
      c.checkSafety();
    }
    // Heal everything: a leader emerges and a final write reaches every node.
    for (const id of down) c.restart(id);
    let final: string | null = null;
    for (let t = 0; t < 200 && final === null; t++) {
      c.run(1);
      const l = c.leader();
      if (l !== null) {
        c.propose(l, 'final');
        final = l;
      }
    }
    c.run(20);
    for (const id of ids) expect(c.appliedData(id).at(-1)).toBe('final');
    c.checkSafety();
  });
});

describe('randomized membership changes with crashes and compaction (smoke)', () => {
  it.each([1, 2, 3, 4, 5, 6])('seed %i keeps State Machine Safety and every member converges', (seed) => {
    const rnd = seededRandom(seed * 104729);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const pool = ['a', 'b', 'c', 'd', 'e', 'f'];
    const c = new Cluster({ voters: ['a', 'b', 'c'], seed, maxMsgEntries: 3, maxInflight: 3 });
    const down = new Set<string>();
    for (let t = 0; t < 300; t++) {
      c.tick(1);
      for (const m of [...c.network]) if (rnd() < 0.03) c.network.push(structuredClone(m));
      c.drop(() => rnd() < 0.1);
      c.deliverRound(() => rnd() < 0.7);
      const l = c.leader();
      if (l !== null && rnd() < 0.3) c.propose(l, `v${t}`);
      if (l !== null && rnd() < 0.05) {
        const cs = c.raft(l).status().confState;
        const id = pick(pool);
        const cc = cs.learners.includes(id)
          ? { type: rnd() < 0.7 ? ('promoteLearner' as const) : ('removeNode' as const), nodeId: id }
          : cs.voters.includes(id)
            ? cs.voters.length > 2
              ? { type: 'removeNode' as const, nodeId: id }
              : null
            : { type: 'addLearner' as const, nodeId: id };
        if (cc !== null) {
          if (!c.nodes.has(id)) c.addNode(id);
          try {
            c.raft(l).proposeConfChange(cc);
          } catch (e) {
            expect(e).toMatchObject({ name: 'ProposalDroppedError' });
          }
          c.flush();
        }
      }
      const members = [...c.nodes.keys()];
      if (down.size === 0 && rnd() < 0.02) {
        const victim = pick(members);
        c.crash(victim);
        down.add(victim);
      } else if (down.size > 0 && rnd() < 0.05) {
        for (const id of down) c.restart(id);
        down.clear();
      }
      for (const id of members) {
        if (down.has(id)) continue;
        const st = c.raft(id).status();
        if (rnd() < 0.02 && st.applied >= st.firstIndex) c.compact(id, st.applied);
      }
      c.checkSafety();
    }
    for (const id of down) c.restart(id);
    let leader: string | null = null;
    for (let t = 0; t < 300 && leader === null; t++) {
      c.run(1);
      leader = c.leader();
    }
    expect(leader).not.toBeNull();
    c.propose(leader ?? '', 'final');
    c.run(40);
    const cs = c.raft(leader ?? '').status().confState;
    for (const id of [...cs.voters, ...cs.learners]) expect(c.appliedData(id).at(-1)).toBe('final');
    c.checkSafety();
  });
});

describe('a node whose store was lost (abstainUntilLeader)', () => {
  /** An empty store, as a node with a new disk starts: no log, no record of its votes. */
  const wiped = (abstain: boolean) => {
    const storage = new MemoryStorage();
    const raft = new RaftNode({ id: 'c', storage, random: seededRandom(3), abstainUntilLeader: abstain });
    return { raft, storage };
  };
  const vote = (type: 'vote' | 'preVote', from: string, term: number) =>
    msg({ type, from, to: 'c', term, index: 5, logTerm: 2 });

  it('grants no vote or pre-vote before it hears a leader: it may have voted in that term already', () => {
    // before the disk was lost, c voted for a in term 3; b now asks for the same term
    const { raft, storage } = wiped(true);
    raft.step(vote('preVote', 'b', 3));
    raft.step(vote('vote', 'b', 3));
    const out = drain(raft, storage);
    expect(out.map((m) => [m.type, m.to, m.reject])).toEqual([
      ['preVoteResp', 'b', true],
      ['voteResp', 'b', true],
    ]);
    expect(storage.initialState().hardState.vote).toBeNull();
  });

  it('votes in later terms once a leader has spoken, and records that leader as its vote in the leader’s term', () => {
    const { raft, storage } = wiped(true);
    raft.step(msg({ type: 'heartbeat', from: 'a', to: 'c', term: 3 }));
    drain(raft, storage);
    // persisted: restarted, it does not vote for another candidate in term 3
    expect(storage.initialState().hardState).toMatchObject({ term: 3, vote: 'a' });
    for (let i = 0; i < 20; i++) raft.tick(); // the leader is gone: its lease has run out
    raft.step(vote('vote', 'b', 4));
    const out = drain(raft, storage).filter((m) => m.type === 'voteResp');
    expect(out.map((m) => [m.to, m.term, m.reject])).toEqual([['b', 4, false]]);
  });

  it('a leader of a term older than one it has seen since it started does not end the abstention', () => {
    const { raft, storage } = wiped(true);
    raft.step(vote('vote', 'b', 5)); // refused, but c now knows term 5
    raft.step(msg({ type: 'heartbeat', from: 'a', to: 'c', term: 4 }));
    raft.step(vote('vote', 'b', 5));
    const out = drain(raft, storage).filter((m) => m.type === 'voteResp');
    expect(out.every((m) => m.reject)).toBe(true);
  });

  it('without the option, the same empty node votes at once (what a new disk did before)', () => {
    const { raft, storage } = wiped(false);
    raft.step(vote('vote', 'b', 3));
    expect(drain(raft, storage).map((m) => [m.type, m.reject])).toEqual([['voteResp', false]]);
  });
});

describe('a follower that no longer holds entries it acknowledged', () => {
  /** a leads term 2 (b's vote); b acknowledged everything up to the no-op (`acked`) */
  const leaderWithB = () => {
    const { raft, storage } = solo({ id: 'a', voters: abc, preVote: false });
    raft.campaign();
    drain(raft, storage);
    raft.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 2 }));
    drain(raft, storage);
    const acked = raft.status().lastIndex;
    raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index: acked }));
    return { raft, storage, acked };
  };

  it('is replicated to again from what it holds, not probed at its old match for ever', () => {
    // b then lost its store
    const { raft, storage, acked } = leaderWithB();
    drain(raft, storage);
    const refuse = (index: number) =>
      raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index, reject: true, rejectHint: 0 }));
    const toB = () =>
      drain(raft, storage).filter((m) => m.to === 'b' && (m.type === 'app' || m.type === 'snap'));
    raft.propose(utf8('x'));
    toB();
    refuse(acked + 1); // the optimistic append after its match: back to probing from match + 1
    const sent = toB();
    expect(sent.map((m) => m.index)).toEqual([acked]);
    refuse(acked); // it holds nothing: the probe at its old match is refused
    // once could be a late copy of an old refusal: the same probe again
    expect(toB().map((m) => [m.type, m.index])).toEqual([['app', acked]]);
    expect(raft.status().progress?.b).toMatchObject({ match: acked });
    refuse(acked); // twice in a row: before, this went on for ever, each refusal answered at once
    // now the leader starts again from what b holds: nothing, so the snapshot its log begins with
    expect(toB().map((m) => m.type)).toEqual(['snap']);
    expect(raft.status().progress?.b).toMatchObject({ match: 0, state: 'snapshot' });
  });

  it('a healthy follower: a late copy of an old refusal does not lower its match', () => {
    const { raft, storage, acked } = leaderWithB();
    raft.propose(utf8('x'));
    drain(raft, storage);
    const refusal = msg({
      type: 'appResp',
      from: 'b',
      to: 'a',
      term: 2,
      index: acked + 1,
      reject: true,
      rejectHint: acked,
    });
    raft.step(refusal); // back to probing at its match
    drain(raft, storage);
    // a copy of an old refusal of the probe at its match, from before it held it
    raft.step(
      msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index: acked, reject: true, rejectHint: 0 }),
    );
    const sent = drain(raft, storage).filter((m) => m.to === 'b');
    // before, this alone reset b to nothing and sent it the snapshot
    expect(sent.map((m) => [m.type, m.index])).toEqual([['app', acked]]);
    expect(raft.status().progress?.b).toMatchObject({ match: acked });
    // b answers the probe sent again: it holds everything, and the note is cleared
    raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index: acked + 1 }));
    drain(raft, storage);
    expect(raft.status().progress?.b).toMatchObject({ match: acked + 1 });
  });
});
