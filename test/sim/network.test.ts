import { describe, expect, it } from 'vitest';
import { CALM_NETWORK, type Envelope, SimNetwork } from '../../src/simulator/network.js';
import { Prng } from '../../src/simulator/prng.js';

interface Msg {
  n: number;
  payload: { xs: number[] };
}

function drain(
  net: SimNetwork<Msg>,
  from: number,
  to: number,
): { deliver: Envelope<Msg>[]; blocked: number } {
  const deliver: Envelope<Msg>[] = [];
  let blocked = 0;
  for (let t = from; t <= to; t++) {
    const due = net.takeDue(t);
    deliver.push(...due.deliver);
    blocked += due.blocked.length;
  }
  return { deliver, blocked };
}

describe('SimNetwork', () => {
  it('delivers one tick later, cloned, in a shuffled order when links need not be FIFO', () => {
    const net = new SimNetwork<Msg>(new Prng(1), { ...CALM_NETWORK, fifo: false });
    const sent: Msg[] = [];
    for (let i = 0; i < 20; i++) {
      const m = { n: i, payload: { xs: [i] } };
      sent.push(m);
      expect(net.send('1', '2', m, 10)).toBe('queued');
    }
    expect(net.takeDue(10).deliver).toHaveLength(0);
    const got = net.takeDue(11).deliver;
    expect(got.map((e) => e.msg.n).sort((a, b) => a - b)).toEqual(sent.map((m) => m.n));
    expect(got.map((e) => e.msg.n)).not.toEqual(sent.map((m) => m.n)); // reordered
    const first = got.find((e) => e.msg.n === 0);
    expect(first?.msg).toEqual(sent[0]);
    expect(first?.msg).not.toBe(sent[0]); // no shared objects between nodes
    expect(net.pending).toBe(0);
  });

  it('drops, duplicates and delays within the configured bounds', () => {
    const faults = {
      dropRate: 0.2,
      duplicateRate: 0.1,
      minDelay: 2,
      maxDelay: 5,
      longDelayRate: 0.05,
      longDelayMax: 40,
      fifo: false,
    };
    const net = new SimNetwork<Msg>(new Prng(2), faults);
    const outcomes = { queued: 0, dropped: 0, duplicated: 0 };
    for (let i = 0; i < 10_000; i++) outcomes[net.send('1', '2', { n: i, payload: { xs: [] } }, 0)]++;
    expect(outcomes.dropped).toBeGreaterThan(1700);
    expect(outcomes.dropped).toBeLessThan(2300);
    expect(outcomes.duplicated).toBeGreaterThan(600);
    expect(outcomes.duplicated).toBeLessThan(1000);
    const { deliver } = drain(net, 0, 100);
    expect(deliver).toHaveLength(outcomes.queued + 2 * outcomes.duplicated);
    for (const e of deliver) {
      expect(e.deliverAt - e.sentAt).toBeGreaterThanOrEqual(2);
      expect(e.deliverAt - e.sentAt).toBeLessThanOrEqual(40);
    }
    expect(deliver.some((e) => e.deliverAt - e.sentAt > 5)).toBe(true);
  });

  it('keeps each link in send order when FIFO, while links interleave', () => {
    const net = new SimNetwork<Msg>(new Prng(5), {
      dropRate: 0,
      duplicateRate: 0,
      minDelay: 1,
      maxDelay: 6,
      longDelayRate: 0.1,
      longDelayMax: 30,
      fifo: true,
    });
    for (let i = 0; i < 300; i++)
      net.send(i % 2 === 0 ? 'a' : 'b', 'c', { n: i, payload: { xs: [] } }, Math.floor(i / 10));
    const { deliver } = drain(net, 0, 100);
    expect(deliver).toHaveLength(300);
    for (const from of ['a', 'b']) {
      const ns = deliver.filter((e) => e.from === from).map((e) => e.msg.n);
      expect(ns).toEqual([...ns].sort((x, y) => x - y));
    }
    const sources = deliver.map((e) => e.from).join('');
    expect(sources).not.toMatch(/^a+b+$|^b+a+$/);
  });

  it('cuts links one way (asymmetric) or both (symmetric), including what is already in flight, until healed', () => {
    const net = new SimNetwork<Msg>(new Prng(3), CALM_NETWORK);
    const m = (n: number): Msg => ({ n, payload: { xs: [] } });
    net.send('1', '2', m(1), 0);
    net.cutLink('1', '2');
    net.send('2', '1', m(2), 0);
    const t1 = net.takeDue(1);
    expect(t1.deliver.map((e) => e.msg.n)).toEqual([2]);
    expect(t1.blocked.map((e) => e.msg.n)).toEqual([1]);

    net.heal();
    net.partition(['1'], ['2', '3']);
    expect(net.isCut('1', '3') && net.isCut('3', '1') && net.isCut('2', '1')).toBe(true);
    expect(net.isCut('2', '3')).toBe(false);
    net.heal();
    net.isolate('3', ['1', '2', '3']);
    expect(net.isCut('3', '1') && net.isCut('2', '3')).toBe(true);
    expect(net.isCut('3', '3')).toBe(false);
    net.heal();
    expect(net.cutLinks).toBe(0);
  });

  it('replays identically from the same seed', () => {
    const run = (): string[] => {
      const net = new SimNetwork<Msg>(new Prng(4), {
        dropRate: 0.1,
        duplicateRate: 0.1,
        minDelay: 1,
        maxDelay: 4,
        longDelayRate: 0.1,
        longDelayMax: 20,
        fifo: false,
      });
      for (let i = 0; i < 200; i++)
        net.send(`n${i % 3}`, `n${(i + 1) % 3}`, { n: i, payload: { xs: [] } }, i % 7);
      return drain(net, 0, 50).deliver.map((e) => `${e.deliverAt}:${e.msg.n}`);
    };
    expect(run()).toEqual(run());
  });
});
