import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Block } from '../../src/ledger/index.js';
import { Devnet } from '../support/devnet.js';
import { Namespaces, namespacesUnavailable } from '../support/netns.js';

/**
 * Network partitions between real node processes: each node runs in a
 * network namespace of its own (support/netns.ts), and links are cut with
 * blackhole routes while the processes keep running. The kill -9 and SIGSTOP
 * tests (faults.test.ts) stop a node; here every node keeps running and
 * talking, and only the links between them fail.
 *
 * Namespaces need root and iproute2, as on the project's machines and in CI.
 * Elsewhere the tests fail saying so; BITNEXUS_SKIP_NETNS=1 skips them there
 * (never in CI).
 */
const unavailable = namespacesUnavailable();
const skip = unavailable !== undefined && process.env.BITNEXUS_SKIP_NETNS === '1';

// each test's nodes stop, and its namespaces go, before the next test starts; a failed test's
// devnet is kept, with its nodes' logs printed (afterEach runs after the failure is recorded)
const cleanups: ((failed: boolean) => Promise<void> | void)[] = [];
afterEach(async ({ task }) => {
  const failed = task.result?.state === 'fail';
  const all = cleanups.splice(0).reverse();
  const failures: unknown[] = [];
  for (const f of all) {
    try {
      await f(failed);
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw failures[0];
});

async function setup() {
  if (unavailable !== undefined)
    throw new Error(`network namespaces unavailable (${unavailable}); BITNEXUS_SKIP_NETNS=1 skips`);
  const net = await Devnet.create(3);
  const made: Namespaces[] = [];
  // nodes first, then their namespaces (registered before the namespaces exist: creating them may fail)
  cleanups.push(async (failed) => {
    if (failed) net.keepForDiagnosis();
    try {
      await net.destroy();
    } finally {
      for (const ns of made) ns.destroy();
    }
  });
  const ns = Namespaces.create(3);
  made.push(ns);
  await ns.place(net);
  await net.startAll();
  await net.waitLeader();
  return { net, ns, p: await net.participants() };
}

/** All nodes at one head; then every node's chain up to it is the same, block for block. */
async function settledChain(net: Devnet): Promise<Block[]> {
  const height = await net.waitOneHead();
  const chains = await Promise.all(net.nodes.map((_, i) => net.chainOf(i, height)));
  for (const c of chains.slice(1)) expect(c.map((b) => b.header)).toEqual(chains[0]!.map((b) => b.header));
  return chains[0]!;
}

/** Where each transaction (by signer and nonce) is in the chain; fails on any that is there twice. */
function placesOf(chain: Block[]): Map<string, number> {
  const seen = new Map<string, number>();
  const twice: string[] = [];
  for (const b of chain)
    for (const t of b.txs) {
      const k = `${t.signer}/${t.nonce}`;
      if (seen.has(k)) twice.push(k);
      seen.set(k, b.header.height);
    }
  expect(twice).toEqual([]);
  return seen;
}

describe.skipIf(skip)('network partitions between real node processes', () => {
  it('a leader cut off from its followers: the majority elects another and commits, the old one steps down and acknowledges nothing; healed, every node holds one chain with every acknowledged transaction once', async () => {
    const { net, ns, p } = await setup();
    const old = await net.waitLeader();
    const others = [0, 1, 2].filter((i) => i !== old);
    // clients of every node, the cut-off one included: whatever it acknowledges is checked below
    const load = net.steadyLoad(p, { targets: () => [0, 1, 2], timeoutMs: 3000 });
    cleanups.push(() => load.stop()); // first of the clean-ups: its clients stop before their nodes
    await sleep(1000);

    ns.isolate(old);
    const fresh = await net.waitLeader(others);
    // check quorum: without a majority it stops leading by itself, though nothing stopped it
    await net.waitFor('the cut-off leader to step down', async () => {
      const s = await net.status(old);
      return s !== undefined && s.role !== 'leader';
    });
    // it knows no leader now, and says it is not ready (a load balancer sends clients elsewhere)
    const ready = await fetch(`${net.nodes[old]!.url}/readyz`);
    expect(ready.status, await ready.text()).toBe(503);
    // a transaction it accepts while cut off is kept, and committed once the link is back
    const late = net.commission(p, 'accepted-while-cut-off', '7');
    const accepted = await net.submit(old, late, false);
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(202);
    const before = load.committed.size;
    await net.waitFor('commits on the majority side', () =>
      Promise.resolve(load.committed.size > before + 20),
    );
    const cutOff = (await net.status(old))!;
    expect(cutOff.height).toBeLessThan((await net.status(fresh))!.height);

    ns.heal();
    // it follows a leader of the majority (on a loaded machine the two may have swapped since)
    const rejoined = await net.waitFor('the old leader to follow another', async () => {
      const s = await net.status(old);
      return s !== undefined && s.leader !== null && s.leader !== net.nodes[old]!.nodeId ? s : undefined;
    });
    expect(rejoined.role).toBe('follower');
    expect(others.map((i) => net.nodes[i]!.nodeId)).toContain(rejoined.leader);
    await net.waitFor('the transaction accepted while cut off to commit', async () => {
      const r = await fetch(`${net.nodes[old]!.url}/v1/transactions/${accepted.body.id}`);
      return r.status === 200;
    });
    await sleep(1000);
    await load.stop();

    const chain = await settledChain(net);
    const places = placesOf(chain);
    // every acknowledged transaction is where its receipt said, on every node
    for (const [id, at] of load.committed) {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${net.nodes[i]!.url}/v1/transactions/${id}`);
        expect(r.status, `${id} on node ${i}`).toBe(200);
        expect(((await r.json()) as { receipt: unknown }).receipt).toMatchObject(at);
      }
    }
    expect(load.committed.size).toBeGreaterThan(20);
    expect(places.has(`${late.signer}/${late.nonce}`)).toBe(true);
  });

  it('a follower cut off: the leader keeps leading and committing; healed, the follower catches up without forcing an election from the terms it would have counted up alone (pre-vote)', async () => {
    const { net, ns, p } = await setup();
    const leader = await net.waitLeader();
    const follower = [0, 1, 2].find((i) => i !== leader)!;

    ns.isolate(follower);
    const submitted = [];
    for (let k = 0; k < 10; k++) {
      const sub = net.commission(p, `while-cut-${k}`, '3');
      submitted.push(sub);
      const r = await net.submit(leader, sub);
      expect(r.body.receipt?.code, JSON.stringify(r.body)).toBe('OK');
    }
    // long enough for many election timeouts of the cut-off follower
    await sleep(5000);
    const alone = (await net.status(follower))!;
    const majority = (await net.status(leader))!;
    // it heard none of the ten blocks
    expect(alone.height).toBeLessThan(majority.height);
    expect(alone.role).not.toBe('leader');
    // pre-vote: failing to reach anyone, it never raised its term (without pre-vote it is several
    // terms ahead by now). Compared with the leader's term rather than the start's: on a loaded
    // machine a late heartbeat can cost the majority an election of its own.
    expect(alone.term).toBeLessThanOrEqual(majority.term);

    ns.heal();
    const chain = await settledChain(net);
    // it rejoined without deposing anyone: no election from the term it would have brought back
    const after = (await net.status(leader))!;
    expect(after.term).toBeLessThanOrEqual(majority.term + 1);
    const places = placesOf(chain);
    for (const sub of submitted) expect(places.has(`${sub.signer}/${sub.nonce}`)).toBe(true);
  });
});
