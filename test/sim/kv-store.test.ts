import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/consensus/index.js';
import { decodeCommand, describeEntry, encodeCommand, KvStore } from '../../src/simulator/kv-store.js';

const put = (index: number, term: number, id: string, key: string, value: string): Entry => ({
  index,
  term,
  type: 'normal',
  data: encodeCommand({ id, key, value }),
});
const noop = (index: number, term: number): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(0),
});

describe('KvStore (the simulated application)', () => {
  it('round-trips commands and describes entries', () => {
    const cmd = { id: 'c1.2', key: 'k0', value: 'c1.2' };
    expect(decodeCommand(encodeCommand(cmd))).toEqual(cmd);
    expect(describeEntry(put(3, 2, 'c1.2', 'k0', 'v'))).toBe('3@2 c1.2:k0=v');
    expect(describeEntry(noop(4, 2))).toBe('4@2 noop');
  });

  it('applies each op id once, recording the order in which ops took effect', () => {
    const kv = new KvStore();
    kv.apply(noop(1, 1));
    kv.apply(put(2, 1, 'a', 'x', '1'));
    kv.apply(put(3, 1, 'b', 'x', '2'));
    kv.apply(put(4, 2, 'a', 'x', '1')); // a retried op committed twice: skipped
    expect(kv.read('x')).toBe('2');
    expect(kv.history).toEqual(['a', 'b']);
    expect(kv.duplicatesSkipped).toBe(1);
    expect(kv.has('a') && kv.has('b') && !kv.has('c')).toBe(true);
    expect(kv.appliedIndex).toBe(4);
  });

  it('refuses gaps and re-application (the exactly-once check must not lean on dedupe)', () => {
    const kv = new KvStore();
    kv.apply(noop(1, 1));
    expect(() => kv.apply(put(3, 1, 'a', 'x', '1'))).toThrow(/apply 3 after 1/);
    expect(() => kv.apply(noop(1, 1))).toThrow(/apply 1 after 1/);
  });

  it('restores from its snapshot to the same state and digest; digests tell histories apart', () => {
    const a = new KvStore();
    const b = new KvStore();
    for (const kv of [a, b]) kv.apply(noop(1, 1));
    a.apply(put(2, 1, 'a', 'x', '1'));
    b.apply(put(2, 2, 'a', 'x', '1')); // same data, other term: a different log
    expect(a.digest).not.toBe(b.digest);
    const r = KvStore.restore(a.snapshot(), 2);
    expect(r.digest).toBe(a.digest);
    expect(r.history).toEqual(['a']);
    expect(r.read('x')).toBe('1');
    r.apply(put(3, 1, 'a', 'x', '1'));
    expect(r.history).toEqual(['a']);
    expect(() => KvStore.restore(a.snapshot(), 5)).toThrow(/meta says 5/);
    const boot = KvStore.restore(new Uint8Array(0), 1);
    expect(boot.appliedIndex).toBe(1);
    expect(boot.digest).toBe(new KvStore().digest);
  });
});
