import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/codec/index.js';
import { generateKeyPair } from '../../src/crypto/index.js';
import { signTransaction, unsignedPart, type UnsignedTx } from '../../src/ledger/index.js';
import { P2PNetwork, submitOverP2P } from '../../src/network/index.js';
import { readKeyFile } from '../../src/node/keyfile.js';
import { encodeRaftMessage } from '../../src/node/raft-wire.js';
import { Devnet } from '../support/devnet.js';

let net: Devnet;
beforeAll(async () => {
  net = await Devnet.create(3, 'bitnexus-sec');
  await net.startAll();
  await net.waitLeader();
});
afterAll(async () => {
  await net.destroy();
});

const silent = pino({ level: 'silent' });

async function rogue(seed: Uint8Array) {
  const n = new P2PNetwork({
    chainId: net.chainId,
    seed,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    peers: net.nodes.map((x) => ({ nodeId: x.nodeId, addrs: [x.p2p] })),
    members: net.nodes.map((x) => x.nodeId),
    logger: silent,
  });
  await n.start();
  return n;
}

async function healthyAndCommitting() {
  const leader = await net.waitLeader();
  const k = generateKeyPair();
  const r = await net.submit(
    leader,
    net.signed('participant.register', net.operator, {
      participant: toHex(k.publicKey),
      role: 'affiliate',
      name: 'still-alive',
    }),
  );
  expect(r.body.receipt?.code).toBe('OK');
}

describe('hostile input on a real 3-node network', () => {
  it('a peer whose key is not a member cannot take part in Raft or fetch blocks, and its refusal is logged', async () => {
    const before = await Promise.all([0, 1, 2].map((i) => net.status(i)));
    const seed = randomBytes(32);
    const r = await rogue(seed);
    try {
      await net
        .waitFor(
          'the rogue to connect',
          () => Promise.resolve(r.connectedMembers().length > 0 || undefined),
          10_000,
        )
        .catch(() => undefined);
      for (const node of net.nodes) {
        // a vote request with a huge term, and an append carrying a forged block
        const base = {
          from: r.nodeId,
          to: node.nodeId,
          logTerm: 1,
          index: 1,
          commit: 0,
          reject: false,
          rejectHint: 0,
        };
        r.sendRaft(node.nodeId, encodeRaftMessage({ ...base, type: 'vote', term: 1_000_000, entries: [] }));
        r.sendRaft(
          node.nodeId,
          encodeRaftMessage({
            ...base,
            type: 'app',
            term: 1_000_000,
            entries: [{ index: 2, term: 1_000_000, type: 'normal', data: Buffer.from('{"forged":true}') }],
          }),
        );
        await expect(r.fetchBlocks(node.nodeId, 0, 5)).rejects.toThrow();
      }
      await new Promise((res) => setTimeout(res, 500));
      const after = await Promise.all([0, 1, 2].map((i) => net.status(i)));
      for (let i = 0; i < 3; i++) {
        expect(after[i]!.term).toBe(before[i]!.term);
        expect(after[i]!.height).toBeGreaterThanOrEqual(before[i]!.height);
      }
      const logs = await Promise.all(
        net.nodes.map((n) => readFile(join(net.dir, n.name, 'node.log'), 'utf8')),
      );
      expect(logs.some((l) => l.includes(r.peerId.toString()) || l.includes('non-member'))).toBe(true);
    } finally {
      await r.stop();
    }
    await healthyAndCommitting();
  });

  it('garbage and forged Raft frames from a member identity are dropped without harm', async () => {
    // Borrow node 3's identity while it is down, as a compromised or buggy member would speak.
    await net.kill(2, 'SIGKILL');
    const key = await readKeyFile(join(net.dir, 'node-3', 'node.key'));
    const r = await rogue(key.secretKey);
    try {
      await net.waitFor(
        'the impostor to connect',
        () => Promise.resolve(r.connectedMembers().length >= 2 || undefined),
        15_000,
      );
      for (const target of [net.nodes[0]!, net.nodes[1]!]) {
        r.sendRaft(target.nodeId, randomBytes(300));
        r.sendRaft(target.nodeId, Uint8Array.of(1, 0, 0));
        // well-formed, but claims to come from another node
        r.sendRaft(
          target.nodeId,
          encodeRaftMessage({
            type: 'heartbeat',
            from: net.nodes[0]!.nodeId,
            to: target.nodeId,
            term: 999,
            logTerm: 0,
            index: 0,
            commit: 0,
            reject: false,
            rejectHint: 0,
            entries: [],
          }),
        );
      }
      await new Promise((res) => setTimeout(res, 500));
      for (const i of [0, 1]) expect((await fetch(`${net.nodes[i]!.url}/healthz`)).ok).toBe(true);
    } finally {
      await r.stop();
    }
    await net.restart(2);
    await healthyAndCommitting();
  });

  it('rejects forged, replayed, wrong-chain and malformed transactions with stable codes', async () => {
    const leader = await net.waitLeader();
    const shop = generateKeyPair();
    const reg = net.signed('participant.register', net.operator, {
      participant: toHex(shop.publicKey),
      role: 'merchant',
      name: 'Shop',
    });
    const first = await net.submit(leader, reg);
    expect(first.body.receipt?.code).toBe('OK');
    // replayed: the same transaction again returns the same receipt, from any node
    for (const i of [0, 1, 2]) {
      const again = await net.submit(i, reg);
      expect(again.status).toBe(200);
      expect(again.body.receipt).toEqual(first.body.receipt);
    }
    // the same nonce with other content: refused
    const reuse = signTransaction(
      { ...unsignedPart(reg), payload: { ...reg.payload, name: 'Other' } } as UnsignedTx,
      net.operator.secretKey,
    );
    const reused = await net.submit(leader, reuse);
    expect([reused.status, reused.body.error?.code, reused.body.error?.details?.receiptCode]).toEqual([
      409,
      'REJECTED',
      'NONCE_REUSED',
    ]);
    // forged: signed by someone else
    const intruder = generateKeyPair();
    const forged = {
      ...net.signed('participant.register', intruder, {
        participant: toHex(intruder.publicKey),
        role: 'merchant',
        name: 'x',
      }),
      signer: reg.signer,
    };
    const f = await net.submit(leader, forged);
    expect([f.status, f.body.error?.code]).toEqual([400, 'BAD_SIGNATURE']);
    // wrong chain
    const other = signTransaction(
      {
        ...unsignedPart(
          net.signed('participant.register', net.operator, {
            participant: toHex(intruder.publicKey),
            role: 'merchant',
            name: 'y',
          }),
        ),
        chainId: 'another-net',
      },
      net.operator.secretKey,
    );
    const w = await net.submit(leader, other);
    expect([w.status, w.body.error?.code]).toEqual([400, 'WRONG_CHAIN']);
    // malformed
    const bad = await net.submit(leader, '{"v":1,');
    expect([bad.status, bad.body.error?.code]).toEqual([400, 'MALFORMED_JSON']);
    const kind = await net.submit(leader, { ...reg, kind: 'commission.steal' });
    expect([kind.status, kind.body.error?.code]).toEqual([400, 'UNKNOWN_KIND']);
    const huge = await net.submit(leader, JSON.stringify({ junk: 'x'.repeat(200_000) }));
    expect(huge.status).toBe(413);
    // over libp2p: garbage and a non-JSON request
    const resp = Buffer.from(
      await submitOverP2P(net.nodes[0]!.p2p, randomBytes(64), { timeoutMs: 5000 }),
    ).toString('utf8');
    expect(resp).toContain('MALFORMED_JSON');
    await healthyAndCommitting();
  });
});
