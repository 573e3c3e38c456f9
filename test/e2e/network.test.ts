import { afterAll, describe, expect, it } from 'vitest';
import { canonicalBytes, toHex } from '../../src/codec/index.js';
import { generateKeyPair } from '../../src/crypto/index.js';
import { submitOverP2P } from '../../src/network/index.js';
import { Devnet } from '../support/devnet.js';
import { runCli } from '../support/cli.js';

const nets: Devnet[] = [];
afterAll(async () => {
  await Promise.all(nets.map((n) => n.destroy()));
});

async function exercise(n: number) {
  const net = await Devnet.create(n);
  nets.push(net);
  await net.startAll();
  await net.waitLeader();
  const shop = generateKeyPair();
  const blog = generateKeyPair();
  const ok = async (i: number, body: unknown) => {
    const r = await net.submit(i, body);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.receipt?.code).toBe('OK');
    return r.body;
  };
  await ok(
    n - 1,
    net.signed('participant.register', net.operator, {
      participant: toHex(shop.publicKey),
      role: 'merchant',
      name: 'Shop',
    }),
  );
  await ok(
    0,
    net.signed('participant.register', net.operator, {
      participant: toHex(blog.publicKey),
      role: 'affiliate',
      name: 'Blog',
    }),
  );
  const ids: string[] = [];
  await Promise.all(
    Array.from({ length: 20 }, async (_, k) => {
      const t = net.signed('commission.record', shop, {
        merchant: toHex(shop.publicKey),
        affiliate: toHex(blog.publicKey),
        amount: String(100 + k),
        currency: 'EUR',
        orderId: `o-${k}`,
        description: 'e2e',
      });
      const r = await ok(k % n, t);
      ids.push(r.id);
    }),
  );
  // over libp2p, to a node's submit protocol
  const viaP2P = net.signed('commission.record', shop, {
    merchant: toHex(shop.publicKey),
    affiliate: toHex(blog.publicKey),
    amount: '999',
    currency: 'EUR',
    orderId: 'p2p-1',
    description: 'over libp2p',
  });
  const resp = JSON.parse(
    Buffer.from(
      await submitOverP2P(net.nodes[1]!.p2p, canonicalBytes({ tx: viaP2P, wait: true, timeoutMs: 10_000 }), {
        timeoutMs: 15_000,
      }),
    ).toString('utf8'),
  ) as { status: string; receipt: { code: string } };
  expect(resp).toMatchObject({ status: 'committed', receipt: { code: 'OK' } });
  // every node reaches the same head
  const target = (await net.status(0))!.height;
  const heads = await net.waitFor('equal heads', async () => {
    const ss = await Promise.all(net.nodes.map((_, i) => net.status(i)));
    const hs = ss.map((s) => s && s.height >= target && `${s.height}:${s.headHash}`);
    return hs.every((h) => h && h === hs[0]) ? hs : undefined;
  });
  expect(new Set(heads).size).toBe(1);
  // stop all cleanly and audit every data directory
  for (let i = 0; i < n; i++) await net.kill(i, 'SIGTERM');
  for (const node of net.nodes) {
    const v = await runCli(['verify', '--data-dir', node.dataDir, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, transactions: 23 });
  }
}

describe('real networks of separate processes on loopback', () => {
  it('3 nodes: elect, commit over HTTP to any node and over libp2p, same chain, verify passes everywhere', async () => {
    await exercise(3);
  });

  it('5 nodes: the same', async () => {
    await exercise(5);
  });
});
