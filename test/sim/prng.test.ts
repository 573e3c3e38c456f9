import { describe, expect, it } from 'vitest';
import { deriveSeed, Prng } from '../../src/simulator/prng.js';

describe('Prng (xoshiro128** seeded by splitmix32)', () => {
  it('is a pure function of its seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const sa = Array.from({ length: 100 }, () => a.nextU32());
    const sb = Array.from({ length: 100 }, () => b.nextU32());
    const sc = Array.from({ length: 100 }, () => c.nextU32());
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
  });

  it('never gets stuck, seed 0 included', () => {
    const p = new Prng(0);
    const seen = new Set(Array.from({ length: 1000 }, () => p.nextU32()));
    expect(seen.size).toBeGreaterThan(990);
  });

  it('keeps int/range/float inside their bounds and spreads evenly', () => {
    const p = new Prng(7);
    const counts = new Array<number>(10).fill(0);
    let outOfBounds = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = p.int(10);
      if (!(x >= 0 && x < 10)) outOfBounds++;
      counts[x] = (counts[x] ?? 0) + 1;
      const f = p.float();
      if (!(f >= 0 && f < 1)) outOfBounds++;
      const y = p.range(-3, 3);
      if (!(y >= -3 && y <= 3 && Number.isInteger(y))) outOfBounds++;
    }
    expect(outOfBounds).toBe(0);
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(() => p.int(0)).toThrow(RangeError);
  });

  it('shuffles into a permutation and picks from the list', () => {
    const p = new Prng(9);
    const xs = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = p.shuffle([...xs]);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(xs);
    expect(shuffled).not.toEqual(xs);
    expect(xs).toContain(p.pick(xs));
    expect(() => p.pick([])).toThrow(RangeError);
  });

  it('forks independent, reproducible streams', () => {
    const f1 = new Prng(5).fork('net');
    const f2 = new Prng(5).fork('net');
    const g = new Prng(5).fork('clients');
    const s1 = Array.from({ length: 20 }, () => f1.nextU32());
    expect(Array.from({ length: 20 }, () => f2.nextU32())).toEqual(s1);
    expect(Array.from({ length: 20 }, () => g.nextU32())).not.toEqual(s1);
    expect(deriveSeed(1, 'node-1')).toBe(deriveSeed(1, 'node-1'));
    expect(deriveSeed(1, 'node-1')).not.toBe(deriveSeed(1, 'node-2'));
    expect(deriveSeed(1, 'node-1')).not.toBe(deriveSeed(2, 'node-1'));
  });
});
