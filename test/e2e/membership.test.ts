import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { Devnet } from '../support/devnet.js';

let net: Devnet | undefined;
afterAll(async () => {
  await net?.destroy();
});

describe('membership changes and leadership transfer while transactions flow', () => {
  it('adds a fourth node as a learner, promotes it, removes an old member, and transfers leadership, all via the CLI', async () => {
    net = await Devnet.create(3, 'bitnexus-members');
    const d = net;
    await d.startAll();
    await d.waitLeader();
    const p = await d.participants();
    // Never node 0: it is removed from the network below.
    const flow = d.steadyLoad(p, {
      targets: () => d.nodes.map((_, i) => i).filter((i) => i !== 0),
      workers: 1,
    });
    const opKey = join(d.dir, 'operator.key');
    const url = d.nodes[1]!.url;
    const four = await d.addNodeFolder();
    const id4 = d.nodes[four]!.nodeId;
    const add = await runCli(['members', 'add', '--key', opKey, '--member', id4, '--node', url, '--json']);
    expect(add.code, add.stderr).toBe(0);
    d.start(four);
    await d.waitHealthy(d.nodes[four]!);
    await d.waitFor(
      'node 4 to catch up as a learner',
      async () => {
        const [s4, s1] = await Promise.all([d.status(four), d.status(1)]);
        return s4 && s1 && s4.role === 'learner' && s4.height >= s1.height - 1;
      },
      60_000,
    );
    const promote = await runCli(['members', 'promote', '--key', opKey, '--member', id4, '--node', url]);
    expect(promote.code, promote.stderr).toBe(0);
    await d.waitFor('node 4 to vote', async () =>
      (await d.status(1))?.members.some((m) => m.nodeId === id4 && m.role === 'voter'),
    );
    const remove = await runCli([
      'members',
      'remove',
      '--key',
      opKey,
      '--member',
      d.nodes[0]!.nodeId,
      '--node',
      url,
    ]);
    expect(remove.code, remove.stderr).toBe(0);
    await d.waitFor('node 1 to leave raft', async () => {
      const s = await d.status(1);
      return s && !s.members.some((m) => m.nodeId === d.nodes[0]!.nodeId);
    });
    const leaderIdx = await d.waitLeader([1, 2, 3]);
    const to = [1, 2, 3].find((i) => i !== leaderIdx)!;
    const transfer = await runCli([
      'leader',
      'transfer',
      '--key',
      opKey,
      '--to',
      d.nodes[to]!.nodeId,
      '--node',
      d.nodes[leaderIdx]!.url,
    ]);
    expect(transfer.code, transfer.stderr).toBe(0);
    await d.waitFor('the transfer', async () => (await d.status(to))?.role === 'leader');
    const before = flow.committed.size;
    await d.waitFor('transactions to keep committing', () =>
      Promise.resolve(flow.committed.size > before + 10),
    );
    await flow.stop();
    const status = await runCli(['status', '--node', d.nodes[to]!.url]);
    expect(status.stdout).toContain('(leader');
  });
});
