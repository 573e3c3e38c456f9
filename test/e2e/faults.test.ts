import { afterAll, describe, expect, it } from 'vitest';
import { Devnet } from '../support/devnet.js';

const nets: Devnet[] = [];
afterAll(async () => {
  await Promise.all(nets.map((n) => n.destroy()));
});

async function setup() {
  const net = await Devnet.create(3);
  nets.push(net);
  await net.startAll();
  await net.waitLeader();
  return { net, p: await net.participants() };
}

describe('faults on a real 3-node network', () => {
  it('kill -9 the leader, then a follower, under load: every committed transaction is in the chain exactly once on every node', async () => {
    const { net, p } = await setup();
    const down = new Set<number>();
    const l = net.steadyLoad(p, { targets: () => [0, 1, 2].filter((i) => !down.has(i)) });
    await new Promise((r) => setTimeout(r, 1500));
    const leader = await net.waitLeader();
    down.add(leader);
    await net.kill(leader, 'SIGKILL');
    const before = l.committed.size;
    await net.waitLeader([0, 1, 2].filter((i) => i !== leader));
    await net.waitFor('commits without the old leader', () =>
      Promise.resolve(l.committed.size > before + 20),
    );
    await net.restart(leader);
    down.delete(leader);
    const current = await net.waitLeader();
    const victim = [0, 1, 2].find((i) => i !== current)!;
    down.add(victim);
    await net.kill(victim, 'SIGKILL');
    const mid = l.committed.size;
    await net.waitFor('commits with a follower down', () => Promise.resolve(l.committed.size > mid + 20));
    await net.restart(victim);
    down.delete(victim);
    await new Promise((r) => setTimeout(r, 1000));
    await l.stop();
    await net.waitOneHead();
    const chains = await Promise.all([0, 1, 2].map((i) => net.chainOf(i)));
    expect(chains[1]!.map((b) => b.header)).toEqual(chains[0]!.map((b) => b.header));
    expect(chains[2]!.map((b) => b.header)).toEqual(chains[0]!.map((b) => b.header));
    // exactly once: no transaction (signer + nonce) appears twice in the chain
    const seen = new Map<string, number>();
    for (const b of chains[0]!)
      for (const t of b.txs)
        seen.set(`${t.signer}/${t.nonce}`, (seen.get(`${t.signer}/${t.nonce}`) ?? 0) + 1);
    expect([...seen.entries()].filter(([, c]) => c > 1)).toEqual([]);
    // every acknowledged transaction is there, at the height and index its receipt named, on every node
    for (const [id, at] of l.committed) {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${net.nodes[i]!.url}/v1/transactions/${id}`);
        expect(r.status, `${id} on node ${i}`).toBe(200);
        const v = (await r.json()) as { receipt: { height: number; index: number } };
        expect(v.receipt).toMatchObject(at);
      }
    }
    expect(l.committed.size).toBeGreaterThan(50);
  });

  it('a SIGSTOPped leader is replaced; resumed, it steps down and commits nothing of its own', async () => {
    const { net, p } = await setup();
    const old = await net.waitLeader();
    const oldStatus = (await net.status(old))!;
    net.signal(old, 'SIGSTOP');
    const others = [0, 1, 2].filter((i) => i !== old);
    const fresh = await net.waitLeader(others);
    for (let k = 0; k < 5; k++) {
      const r = await net.submit(fresh, net.commission(p, `paused-${k}`, '5'));
      expect(r.body.receipt?.code).toBe('OK');
    }
    net.signal(old, 'SIGCONT');
    // It steps down on the first message of a higher term, which may be a follower's answer to its
    // heartbeat: then it knows of no leader until the new one's next heartbeat reaches it.
    const resumed = await net.waitFor('the old leader to follow', async () => {
      const s = await net.status(old);
      return s && s.role !== 'leader' && s.term > oldStatus.term && s.leader !== null ? s : undefined;
    });
    expect(resumed.leader).toBe(net.nodes[fresh]!.nodeId);
    await net.waitOneHead();
    const [a, b] = await Promise.all([net.chainOf(old), net.chainOf(fresh)]);
    expect(a.map((x) => x.header)).toEqual(b.map((x) => x.header));
  });
});
