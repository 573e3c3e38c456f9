// Unit tests named after the sentence of the Raft paper (Ongaro & Ousterhout,
// "In Search of an Understandable Consensus Algorithm") or thesis they check,
// in the style of etcd-io/raft's raft_paper_test.go. Each drives one RaftNode
// directly: messages in through step(), messages out through ready().
import { describe, expect, it } from 'vitest';
import { RaftNode, MemoryStorage, type Message } from '../../../src/consensus/index.js';
import { drain, entries, msg, seededRandom, solo, utf8 } from './harness.js';

const three = ['a', 'b', 'c'];
const five = ['a', 'b', 'c', 'd', 'e'];

/** Make `a` the leader of a 3-node cluster at term 2 (votes from b), drained. */
function leaderA(opts: { entryTerms?: number[]; acked?: boolean } = {}) {
  const n = solo({ id: 'a', voters: three, preVote: false, ...opts });
  n.raft.campaign();
  drain(n.raft, n.storage);
  n.raft.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 2 }));
  const sent = drain(n.raft, n.storage);
  if (opts.acked === true) {
    // Both followers acknowledge the no-op: they move to replicate state.
    const noop = n.raft.status().lastIndex;
    for (const from of ['b', 'c']) n.raft.step(msg({ type: 'appResp', from, to: 'a', term: 2, index: noop }));
    drain(n.raft, n.storage);
  }
  expect(n.raft.status().role).toBe('leader');
  return { ...n, sent };
}

describe('§5.1 terms', () => {
  it('if a server receives a request with a stale term number, it rejects the request', () => {
    const { raft, storage } = solo({ id: 'a', voters: three, term: 3 });
    raft.step(
      msg({ type: 'app', from: 'b', to: 'a', term: 2, index: 1, logTerm: 1, entries: entries(2, [2]) }),
    );
    const out = drain(raft, storage);
    // The stale leader learns the newer term from the answer.
    expect(out).toEqual([expect.objectContaining({ type: 'appResp', to: 'b', term: 3 })]);
    expect(raft.status().lastIndex).toBe(1);
  });

  it.each(['follower', 'candidate', 'leader'] as const)(
    'if one server’s current term is smaller than the other’s, the %s updates its current term and reverts to follower',
    (role) => {
      const n = role === 'leader' ? leaderA() : solo({ id: 'a', voters: three, preVote: false });
      if (role === 'candidate') {
        n.raft.campaign();
        drain(n.raft, n.storage);
        expect(n.raft.status().role).toBe('candidate');
      }
      n.raft.step(msg({ type: 'app', from: 'b', to: 'a', term: 9, index: 1, logTerm: 1 }));
      drain(n.raft, n.storage);
      const st = n.raft.status();
      expect(st.term).toBe(9);
      expect(st.role).toBe('follower');
      expect(st.leader).toBe('b');
    },
  );
});

describe('§5.2 leader election', () => {
  it('when servers start up, they begin as followers', () => {
    const { raft } = solo({ id: 'a', voters: three });
    expect(raft.status()).toMatchObject({ role: 'follower', leader: null, term: 1 });
  });

  it('leaders send periodic heartbeats (AppendEntries that carry no log entries) to all followers', () => {
    const { raft, storage } = leaderA();
    raft.tick();
    const hb = drain(raft, storage).filter((m) => m.type === 'heartbeat');
    expect(hb.map((m) => m.to).sort()).toEqual(['b', 'c']);
    for (const m of hb) expect(m.entries).toEqual([]);
  });

  it('if a follower receives no communication over a period called the election timeout, it begins an election', () => {
    const { raft, storage } = solo({ id: 'a', voters: three, preVote: false, electionTick: 10 });
    const out: Message[] = [];
    for (let i = 0; i < 20 && raft.status().role === 'follower'; i++) {
      raft.tick();
      out.push(...drain(raft, storage));
    }
    // To begin an election, a follower increments its current term, votes for
    // itself and issues RequestVote RPCs in parallel to each of the other servers.
    expect(raft.status()).toMatchObject({ role: 'candidate', term: 2, vote: 'a' });
    expect(out.filter((m) => m.type === 'vote').map((m) => [m.to, m.term, m.index, m.logTerm])).toEqual([
      ['b', 2, 1, 1],
      ['c', 2, 1, 1],
    ]);
  });

  it('a candidate wins an election if it receives votes from a majority of the servers in the full cluster', () => {
    const cases: [string[], Record<string, boolean>, 'leader' | 'candidate' | 'follower'][] = [
      [['a'], {}, 'leader'],
      [three, { b: true }, 'leader'],
      [three, { b: false }, 'candidate'],
      [three, { b: false, c: false }, 'follower'],
      [five, { b: true }, 'candidate'],
      [five, { b: true, c: true }, 'leader'],
      [five, { b: false, c: false, d: false }, 'follower'],
    ];
    for (const [voters, votes, want] of cases) {
      const { raft, storage } = solo({ id: 'a', voters, preVote: false });
      raft.campaign();
      drain(raft, storage);
      for (const [from, granted] of Object.entries(votes)) {
        raft.step(msg({ type: 'voteResp', from, to: 'a', term: 2, reject: !granted }));
      }
      drain(raft, storage);
      expect(raft.status().role, `${voters.length} voters, votes ${JSON.stringify(votes)}`).toBe(want);
    }
  });

  it('each server will vote for at most one candidate in a given term, on a first-come-first-served basis', () => {
    const { raft, storage } = solo({ id: 'c', voters: three });
    raft.step(msg({ type: 'vote', from: 'a', to: 'c', term: 2, index: 1, logTerm: 1 }));
    raft.step(msg({ type: 'vote', from: 'b', to: 'c', term: 2, index: 1, logTerm: 1 }));
    // A retransmitted request from the chosen candidate is granted again.
    raft.step(msg({ type: 'vote', from: 'a', to: 'c', term: 2, index: 1, logTerm: 1 }));
    const out = drain(raft, storage);
    expect(out.map((m) => [m.to, m.reject])).toEqual([
      ['a', false],
      ['b', true],
      ['a', false],
    ]);
    expect(storage.initialState().hardState.vote).toBe('a');
  });

  it('while waiting for votes, a candidate that receives AppendEntries from a leader with term >= its own returns to follower', () => {
    const { raft, storage } = solo({ id: 'a', voters: three, preVote: false });
    raft.campaign();
    drain(raft, storage);
    raft.step(msg({ type: 'app', from: 'b', to: 'a', term: 2, index: 1, logTerm: 1 }));
    drain(raft, storage);
    expect(raft.status()).toMatchObject({ role: 'follower', leader: 'b', term: 2 });
  });

  it('election timeouts are chosen randomly from a fixed interval (between electionTick and 2 × electionTick)', () => {
    const seen = new Set<number>();
    const random = seededRandom(42);
    for (let i = 0; i < 200; i++) {
      const { raft, storage } = solo({ id: 'a', voters: three, preVote: false, electionTick: 10, random });
      let ticks = 0;
      while (raft.status().role === 'follower') {
        raft.tick();
        drain(raft, storage);
        ticks++;
      }
      seen.add(ticks);
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...seen)).toBeLessThan(20);
    expect(seen.size).toBeGreaterThan(5);
  });

  it('the randomness comes only from the injected random function: same seed, same timeouts', () => {
    const timeouts = (seed: number): number[] => {
      const random = seededRandom(seed);
      return Array.from({ length: 10 }, () => {
        const { raft, storage } = solo({ id: 'a', voters: three, preVote: false, random });
        let ticks = 0;
        while (raft.status().role === 'follower') {
          raft.tick();
          drain(raft, storage);
          ticks++;
        }
        return ticks;
      });
    };
    expect(timeouts(5)).toEqual(timeouts(5));
  });
});

describe('§5.3 log replication', () => {
  it('the leader appends the command to its log as a new entry, then issues AppendEntries in parallel to each of the other servers', () => {
    const { raft, storage } = leaderA({ acked: true });
    raft.propose(utf8('x'));
    const out = drain(raft, storage).filter((m) => m.type === 'app');
    expect(out.map((m) => m.to).sort()).toEqual(['b', 'c']);
    const last = raft.status().lastIndex;
    expect(storage.entries(last, last + 1)[0]).toMatchObject({ index: 3, term: 2, data: utf8('x') });
  });

  it('a log entry is committed once the leader that created it has replicated it on a majority of the servers', () => {
    const { raft, storage } = leaderA();
    raft.propose(utf8('x'));
    drain(raft, storage);
    expect(raft.status().commit).toBe(1);
    raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index: 3 }));
    const applied: { index: number }[] = [];
    drain(raft, storage, applied as never);
    expect(raft.status().commit).toBe(3);
    expect(applied.map((e) => e.index)).toEqual([2, 3]);
  });

  it('the leader keeps track of the highest index it knows to be committed, and includes it in future AppendEntries', () => {
    const { raft, storage } = leaderA();
    raft.propose(utf8('x'));
    drain(raft, storage);
    raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 2, index: 3 }));
    const out = drain(raft, storage);
    expect(out.filter((m) => m.type === 'app').every((m) => m.commit === 3)).toBe(true);
    raft.tick();
    const hb = drain(raft, storage).filter((m) => m.type === 'heartbeat');
    // Heartbeats carry the commit index, but never beyond what the follower matches.
    expect(hb.find((m) => m.to === 'b')?.commit).toBe(3);
    expect(hb.find((m) => m.to === 'c')?.commit).toBe(0);
  });

  it('once a follower learns that a log entry is committed, it applies the entry to its local state machine', () => {
    const { raft, storage } = solo({ id: 'b', voters: three, term: 2 });
    const applied: { index: number }[] = [];
    raft.step(
      msg({ type: 'app', from: 'a', to: 'b', term: 2, index: 1, logTerm: 1, entries: entries(2, [2, 2]) }),
    );
    drain(raft, storage, applied as never);
    expect(applied).toEqual([]);
    raft.step(msg({ type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 2 }));
    drain(raft, storage, applied as never);
    expect(applied.map((e) => e.index)).toEqual([2]);
  });

  it('if the follower does not find an entry in its log with the same index and term, then it refuses the new entries', () => {
    const { raft, storage } = solo({ id: 'b', voters: three, term: 3, entryTerms: [1, 1] });
    raft.step(
      msg({ type: 'app', from: 'a', to: 'b', term: 3, index: 3, logTerm: 2, entries: entries(4, [3]) }),
    );
    const out = drain(raft, storage);
    // The hint: the last index whose term is <= 2 (the leader's term at 3), with its term.
    expect(out).toEqual([
      expect.objectContaining({ type: 'appResp', reject: true, index: 3, rejectHint: 3, logTerm: 1 }),
    ]);
    expect(raft.status().lastIndex).toBe(3);
  });

  it('if an existing entry conflicts with a new one (same index but different terms), delete the existing entry and all that follow it', () => {
    const { raft, storage } = solo({ id: 'b', voters: three, term: 3, entryTerms: [1, 2, 2, 2] });
    raft.step(
      msg({ type: 'app', from: 'a', to: 'b', term: 3, index: 2, logTerm: 1, entries: entries(3, [3]) }),
    );
    const out = drain(raft, storage);
    expect(out).toEqual([expect.objectContaining({ type: 'appResp', reject: false, index: 3 })]);
    expect([2, 3].map((i) => storage.term(i))).toEqual([1, 3]);
    expect(storage.lastIndex()).toBe(3);
  });

  it('an AppendEntries already contained in the log changes nothing (it never truncates)', () => {
    const { raft, storage } = solo({ id: 'b', voters: three, term: 2, entryTerms: [2, 2, 2] });
    raft.step(
      msg({ type: 'app', from: 'a', to: 'b', term: 2, index: 1, logTerm: 1, entries: entries(2, [2]) }),
    );
    const out = drain(raft, storage);
    expect(out).toEqual([expect.objectContaining({ type: 'appResp', reject: false, index: 2 })]);
    expect(storage.lastIndex()).toBe(4);
  });

  it('after a rejection, the leader skips every conflicting entry of a term in one round trip (fast backtracking)', () => {
    // Leader a: terms [1 | 1 1 1 4 4 4] then its no-op of term 5 at index 8.
    // Follower c: a long stale term-2 suffix from index 5 to 11.
    const a = solo({ id: 'a', voters: three, term: 4, entryTerms: [1, 1, 1, 4, 4, 4], preVote: false });
    const c = solo({ id: 'c', voters: three, term: 4, entryTerms: [1, 1, 1, 2, 2, 2, 2, 2, 2, 2] });
    a.raft.campaign();
    drain(a.raft, a.storage);
    a.raft.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 5 }));
    let toC = drain(a.raft, a.storage).filter((m) => m.to === 'c');
    const appsToC: Message[] = [];
    const fromC: Message[] = [];
    while (toC.length > 0) {
      appsToC.push(...toC.filter((m) => m.type === 'app'));
      for (const m of toC) c.raft.step(m);
      const out = drain(c.raft, c.storage);
      fromC.push(...out);
      for (const m of out) a.raft.step(m);
      toC = drain(a.raft, a.storage).filter((m) => m.to === 'c');
    }
    // The probe at (7, term 4) is rejected with hint (7, term 2): the leader
    // jumps straight to index 4, the last index of a term <= 2 in its own log.
    expect(fromC.filter((m) => m.reject).map((m) => [m.rejectHint, m.logTerm])).toEqual([[7, 2]]);
    expect(appsToC.slice(0, 2).map((m) => [m.index, m.logTerm, m.entries.length])).toEqual([
      [7, 4, 1],
      [4, 1, 4],
    ]);
    expect([2, 3, 4, 5, 6, 7, 8].map((i) => c.storage.term(i))).toEqual([1, 1, 1, 4, 4, 4, 5]);
    expect(c.storage.lastIndex()).toBe(8);
  });
});

describe('§5.4 safety', () => {
  it('the voter denies its vote if its own log is more up-to-date than that of the candidate', () => {
    // Voter log: last entry (index 3, term 2).
    const cases: [number, number, boolean][] = [
      [3, 1, false], // lower last term
      [9, 1, false], // longer but lower last term
      [2, 2, false], // same term, shorter
      [3, 2, true], // identical
      [4, 2, true], // same term, longer
      [1, 3, true], // higher last term wins even if shorter
    ];
    for (const [index, logTerm, granted] of cases) {
      const { raft, storage } = solo({ id: 'c', voters: three, term: 2, entryTerms: [2, 2] });
      raft.step(msg({ type: 'vote', from: 'a', to: 'c', term: 3, index, logTerm }));
      const out = drain(raft, storage);
      expect(out[0]?.reject, `candidate last (${index}, ${logTerm})`).toBe(!granted);
    }
  });

  it('Raft never commits log entries from previous terms by counting replicas (§5.4.2)', () => {
    // a is leader of term 3 with an entry of term 2 at index 2; b has it too.
    const n = solo({ id: 'a', voters: three, term: 2, entryTerms: [2], preVote: false });
    n.raft.campaign();
    drain(n.raft, n.storage);
    n.raft.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 3 }));
    drain(n.raft, n.storage);
    // b acknowledges index 2 (term 2) but not the term-3 no-op at 3.
    n.raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 3, index: 2 }));
    drain(n.raft, n.storage);
    expect(n.raft.status().commit).toBe(1);
    // Once an entry from the current term is replicated, all prior entries are committed indirectly.
    n.raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 3, index: 3 }));
    drain(n.raft, n.storage);
    expect(n.raft.status().commit).toBe(3);
  });

  it('the commitPriorTermEntries fault (test-only) commits by counting replicas of prior-term entries', () => {
    const n = solo({
      id: 'a',
      voters: three,
      term: 2,
      entryTerms: [2],
      preVote: false,
      faults: { commitPriorTermEntries: true },
    });
    n.raft.campaign();
    drain(n.raft, n.storage);
    n.raft.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 3 }));
    drain(n.raft, n.storage);
    n.raft.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 3, index: 2 }));
    drain(n.raft, n.storage);
    expect(n.raft.status().commit).toBe(2);
  });
});

describe('§8 client interaction', () => {
  it('each leader commits a blank no-op entry into the log at the start of its term', () => {
    const { raft, storage } = leaderA();
    const last = raft.status().lastIndex;
    expect(storage.entries(last, last + 1)[0]).toMatchObject({
      index: 2,
      term: 2,
      type: 'normal',
      data: new Uint8Array(0),
    });
  });
});

describe('construction and restart', () => {
  it('a founding member starts from a bootstrap snapshot at index 1 carrying the membership', () => {
    const storage = new MemoryStorage();
    const raft = new RaftNode({
      id: 'a',
      storage,
      random: seededRandom(1),
      bootstrap: { voters: three, learners: [] },
    });
    expect(raft.hasReady()).toBe(true);
    const rd = raft.ready();
    expect(rd.snapshot?.meta).toEqual({ index: 1, term: 1, confState: { voters: three, learners: [] } });
    expect(rd.hardState).toEqual({ term: 1, vote: null, commit: 1 });
    expect(rd.committedEntries).toEqual([]);
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    raft.advance();
    expect(raft.status()).toMatchObject({ applied: 1, commit: 1, firstIndex: 2, lastIndex: 1 });
  });

  it('a restarted node reloads term, vote, commit and the membership as of the applied index', () => {
    const n = solo({ id: 'a', voters: ['a'], preVote: false });
    n.raft.campaign();
    drain(n.raft, n.storage);
    n.raft.proposeConfChange({ type: 'addLearner', nodeId: 'z' });
    drain(n.raft, n.storage);
    const restarted = new RaftNode({ id: 'a', storage: n.storage, random: seededRandom(2), applied: 3 });
    expect(restarted.status()).toMatchObject({
      term: 2,
      vote: 'a',
      commit: 3,
      applied: 3,
      confState: { voters: ['a'], learners: ['z'] },
    });
    // Nothing to re-apply, nothing to re-persist.
    expect(restarted.hasReady()).toBe(false);
    // Restarted with applied = 1, the change is applied again (by the driver) and not counted twice.
    const again = new RaftNode({ id: 'a', storage: n.storage, random: seededRandom(2), applied: 1 });
    expect(again.status().confState).toEqual({ voters: ['a'], learners: [] });
    const rd = again.ready();
    expect(rd.committedEntries.map((e) => e.type)).toEqual(['normal', 'confChange']);
  });

  it('rejects contradictory configuration', () => {
    const storage = new MemoryStorage();
    expect(
      () => new RaftNode({ id: 'a', storage, random: Math.random, electionTick: 1, heartbeatTick: 1 }),
    ).toThrow(/electionTick/);
    expect(() => new RaftNode({ id: 'a', storage, random: Math.random, maxInflight: 0 })).toThrow(
      /maxInflight/,
    );
  });
});
