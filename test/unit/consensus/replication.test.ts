// Flow control of log replication: batching, pipelining with a bounded
// in-flight window, and the probe / replicate / snapshot progress states.
import { describe, expect, it } from 'vitest';
import { Cluster, utf8 } from './harness.js';

const abc = ['a', 'b', 'c'];

describe('batching', () => {
  it('an append carries at most maxMsgEntries entries', () => {
    const c = new Cluster({ voters: abc, maxMsgEntries: 3 });
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 10; i++) c.propose('a', `e${i}`);
    c.stabilize();
    c.heal();
    c.run(3);
    const toC = c.delivered.filter((m) => m.type === 'app' && m.to === 'c' && m.entries.length > 0);
    expect(Math.max(...toC.map((m) => m.entries.length))).toBe(3);
    expect(c.appliedData('c')).toHaveLength(10);
  });

  it('an append carries at most maxMsgBytes of entries, but always at least one entry', () => {
    const c = new Cluster({ voters: abc, maxMsgBytes: 250 });
    c.elect('a');
    c.isolate('c');
    for (let i = 0; i < 6; i++) c.propose('a', 'x'.repeat(100)); // 124 bytes each with overhead
    c.propose('a', 'y'.repeat(400)); // alone over the limit
    c.stabilize();
    c.heal();
    c.run(3);
    const sizes = c.delivered
      .filter((m) => m.type === 'app' && m.to === 'c' && m.entries.length > 0)
      .map((m) => m.entries.map((e) => e.data.length));
    expect(sizes.every((s) => s.length <= 2)).toBe(true);
    expect(sizes.some((s) => s.length === 1 && s[0] === 400)).toBe(true);
    expect(c.appliedData('c')).toHaveLength(7);
  });
});

describe('pipelining', () => {
  it('in replicate state the leader keeps at most maxInflight appends in flight per follower', () => {
    const c = new Cluster({ voters: abc, maxInflight: 2 });
    c.elect('a');
    expect(c.raft('a').status().progress?.['b']?.state).toBe('replicate');
    for (let i = 0; i < 5; i++) c.propose('a', `p${i}`);
    const toB = c.network.filter((m) => m.type === 'app' && m.to === 'b');
    // Two appends left without waiting for any answer; then the window is full.
    expect(toB.map((m) => m.entries.length)).toEqual([1, 1]);
    expect(c.raft('a').status().progress?.['b']).toMatchObject({ inflight: 2, paused: true });
    // Acknowledgements free the window; the rest goes in one batch.
    c.deliverRound((m) => m.to === 'b');
    c.deliverRound((m) => m.from === 'b');
    const next = c.network.filter((m) => m.type === 'app' && m.to === 'b' && m.entries.length > 0);
    expect(next.map((m) => m.entries.length)).toEqual([3]);
    c.stabilize();
    expect(c.appliedData('b')).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    expect(c.raft('a').status().progress?.['b']).toMatchObject({ inflight: 0, paused: false });
  });

  it('a lost append in replicate state is detected and resent (via probe)', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    c.propose('a', 'lost');
    c.drop((m) => m.type === 'app' && m.to === 'b');
    c.propose('a', 'next');
    // b rejects "next" (it misses "lost"): the leader falls back to probe.
    c.deliverRound((m) => m.to === 'b');
    c.deliverRound((m) => m.from === 'b');
    expect(c.raft('a').status().progress?.['b']?.state).toBe('probe');
    c.stabilize();
    c.run(2);
    expect(c.appliedData('b')).toEqual(['lost', 'next']);
    expect(c.raft('a').status().progress?.['b']?.state).toBe('replicate');
  });

  it('a full window whose appends were all lost is reopened by heartbeat answers', () => {
    const c = new Cluster({ voters: abc, maxInflight: 1 });
    c.elect('a');
    c.propose('a', 'x');
    c.drop((m) => m.type === 'app' && m.to === 'b');
    expect(c.raft('a').status().progress?.['b']?.paused).toBe(true);
    c.run(3);
    expect(c.appliedData('b')).toEqual(['x']);
  });
});

describe('probe state', () => {
  it('a new leader probes each follower with one append at a time until it finds the match', () => {
    const c = new Cluster({
      voters: abc,
      logs: {
        a: { term: 2, entryTerms: [1, 1, 2, 2] },
        b: { term: 2, entryTerms: [1, 1, 2, 2] },
        c: { term: 2, entryTerms: [1] },
      },
    });
    c.raft('a').campaign();
    c.stabilize();
    const probes: number[] = [];
    for (const m of c.delivered) if (m.type === 'app' && m.to === 'c') probes.push(m.index);
    // First probe at the leader's last index, rejected; then straight to c's last index.
    expect(probes.slice(0, 2)).toEqual([5, 2]);
    expect(c.logTerms('c')).toEqual(c.logTerms('a'));
    expect(c.raft('a').status().progress?.['c']?.state).toBe('replicate');
  });

  it('proposals are refused on followers with a typed error (no forwarding)', () => {
    const c = new Cluster({ voters: abc });
    c.elect('a');
    expect(() => c.raft('b').propose(utf8('x'))).toThrow(
      expect.objectContaining({ name: 'ProposalDroppedError', code: 'notLeader' }),
    );
    expect(() => c.raft('b').proposeConfChange({ type: 'removeNode', nodeId: 'c' })).toThrow(
      expect.objectContaining({ code: 'notLeader' }),
    );
  });
});
