import { describe, expect, it } from 'vitest';
import { MemoryStorage, type Entry } from '../../src/consensus/index.js';
import { SafetyChecker } from '../../src/simulator/safety.js';
import { SimViolation } from '../../src/simulator/violation.js';

const e = (index: number, term: number, data = ''): Entry => ({
  index,
  term,
  type: 'normal',
  data: new TextEncoder().encode(data),
});

function log(...entries: Entry[]): MemoryStorage {
  const s = new MemoryStorage();
  s.append(entries);
  return s;
}

function violation(f: () => void): string {
  try {
    f();
  } catch (err) {
    if (err instanceof SimViolation) return err.kind;
    throw err;
  }
  return 'none';
}

describe('SafetyChecker (each property rejects a history that breaks it)', () => {
  it('election safety: one leader per term', () => {
    const c = new SafetyChecker();
    c.onLeader('n1', 3, log());
    c.onLeader('n1', 3, log());
    c.onLeader('n2', 4, log());
    expect(violation(() => c.onLeader('n2', 3, log()))).toBe('electionSafety');
  });

  it('log matching: same index and term means same entry and same history before it', () => {
    const c = new SafetyChecker();
    c.onAppend('n1', [e(1, 1, 'a'), e(2, 2, 'b')], log(e(1, 1, 'a'), e(2, 2, 'b')));
    c.onAppend('n2', [e(1, 1, 'a'), e(2, 2, 'b')], log(e(1, 1, 'a'), e(2, 2, 'b')));
    expect(violation(() => c.onAppend('n3', [e(2, 2, 'X')], log(e(1, 1, 'a'), e(2, 2, 'X'))))).toBe(
      'logMatching',
    );
    expect(violation(() => c.onAppend('n3', [e(2, 2, 'b')], log(e(1, 2, 'a'), e(2, 2, 'b'))))).toBe(
      'logMatching',
    );
  });

  it('state machine safety: nodes commit and apply the same entry at an index', () => {
    const c = new SafetyChecker();
    c.onCommit('n1', 2, 2, log(e(1, 1), e(2, 2)));
    expect(violation(() => c.onCommit('n2', 2, 3, log(e(1, 1), e(2, 3))))).toBe('stateMachineSafety');
    const d = new SafetyChecker();
    d.onApply('n1', e(1, 1, 'a'), 111);
    d.onApply('n2', e(1, 1, 'a'), 111);
    expect(violation(() => d.onApply('n3', e(1, 1, 'a'), 222))).toBe('stateMachineSafety');
    expect(violation(() => d.onRestore('n3', 1, 333))).toBe('stateMachineSafety');
  });

  it('leader completeness: a new leader holds everything committed in earlier terms', () => {
    const c = new SafetyChecker();
    c.onCommit('n1', 2, 2, log(e(1, 1), e(2, 2)));
    c.onLeader('n2', 3, log(e(1, 1), e(2, 2), e(3, 3)));
    expect(violation(() => c.onLeader('n3', 4, log(e(1, 1), e(2, 3))))).toBe('leaderCompleteness');
    expect(violation(() => c.onLeader('n4', 5, log(e(1, 1))))).toBe('leaderCompleteness');
  });

  it('commit index never goes back, across restarts not below what was persisted', () => {
    const c = new SafetyChecker();
    const l = log(e(1, 1), e(2, 1), e(3, 1));
    c.onCommit('n1', 2, 1, l);
    c.onPersistCommit('n1', 2);
    expect(violation(() => c.onCommit('n1', 1, 1, l))).toBe('commitRegressed');
    expect(violation(() => c.onRestart('n1', 1))).toBe('commitRegressed');
    c.onRestart('n1', 2);
    expect(violation(() => c.onCommit('n1', 4, 1, l))).toBe('coreError');
  });
});
