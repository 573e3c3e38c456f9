import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/codec/index.js';
import { generateKeyPair } from '../../src/crypto/index.js';
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
    const shop = generateKeyPair();
    const blog = generateKeyPair();
    for (const [k, role] of [
      [shop, 'merchant'],
      [blog, 'affiliate'],
    ] as const) {
      expect(
        (
          await d.submit(
            0,
            d.signed('participant.register', d.operator, {
              participant: toHex(k.publicKey),
              role,
              name: role,
            }),
          )
        ).body.receipt?.code,
      ).toBe('OK');
    }
    let running = true;
    let ok = 0;
    let seq = 0;
    const flow = (async () => {
      while (running) {
        const live = d.nodes.map((_, i) => i).filter((i) => i !== 0 || seq < 0);
        const i = live[seq % live.length]!;
        const t = d.signed('commission.record', shop, {
          merchant: toHex(shop.publicKey),
          affiliate: toHex(blog.publicKey),
          amount: '7',
          currency: 'EUR',
          orderId: `m-${seq++}`,
          description: '',
        });
        try {
          const r = await d.submit(i, t, true, 5000);
          if (r.body.receipt?.code === 'OK') ok++;
        } catch {
          // a node in transition; only receipts count
        }
      }
    })();
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
    const before = ok;
    await d.waitFor('transactions to keep committing', () => Promise.resolve(ok > before + 10));
    running = false;
    await flow;
    const status = await runCli(['status', '--node', d.nodes[to]!.url]);
    expect(status.stdout).toContain('(leader');
  });
});
