// Connections of peers that are neither members nor static peers: capped in
// total and per address, and closed once idle, so that they can never lock
// members (or other submitters) out. libp2p refuses every inbound connection
// once maxConnections are open, and keeps any connection that answers pings.
import type { Libp2p } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { lpStream } from '@libp2p/utils';
import { createLibp2p } from 'libp2p';
import { afterEach, describe, expect, it } from 'vitest';
import { SUBMIT_PROTOCOL, peerIdFromNodeId, submitOverP2P } from '../../../src/network/index.js';
import { ipKey } from '../../../src/network/connection-guard.js';
import { KEEP_TAG, PeerDialer } from '../../../src/network/peer-dialer.js';
import { resolveLimits } from '../../../src/network/limits.js';
import { capturingLogger, nodeIdOf, rawClient, startNode, text, utf8, waitFor } from './helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await Promise.resolve(stop()).catch(() => undefined);
});

/** `count` bare clients that each dial `address` and then sit idle; dials past a cap may fail. */
async function squat(address: string, count: number): Promise<Libp2p[]> {
  const clients: Libp2p[] = [];
  for (let i = 0; i < count; i++) {
    const client = await rawClient();
    cleanup.push(() => client.stop());
    clients.push(client);
    await client.dial(multiaddr(address)).catch(() => undefined);
  }
  return clients;
}

const connected = (clients: Libp2p[]): number =>
  clients.filter((c) => c.getConnections().some((conn) => conn.status === 'open')).length;

describe('non-member connections', () => {
  it("are capped in total, below libp2p's ceiling, so a member still gets in", async () => {
    const A = 61;
    const B = 62;
    const members = [nodeIdOf(A), nodeIdOf(B)];
    const a = await startNode(A, {
      members,
      limits: {
        maxConnections: 6,
        maxNonMemberConnections: 3,
        maxNonMemberConnectionsPerIp: 100,
        nonMemberIdleMs: 60_000, // not idle-closed during this test: the caps alone must hold
      },
    });
    cleanup.push(() => a.net.stop());
    a.net.handleSubmit(() => Promise.resolve(utf8('ok')));
    const address = a.net.addresses()[0] ?? '';
    // More idle connections than libp2p's whole ceiling.
    const squatters = await squat(address, 8);
    await waitFor(() => connected(squatters) <= 3, 'squatters beyond the cap to be refused', 5_000);
    expect(a.net.stats().nonMembers.connections).toBeLessThanOrEqual(3);
    expect(a.net.stats().nonMembers.refusedTotalCap).toBeGreaterThan(0);
    // A member that (re)starts and dials in still gets a connection.
    const b = await startNode(B, { members, peers: [{ nodeId: nodeIdOf(A), addrs: [address] }] });
    cleanup.push(() => b.net.stop());
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'member B to connect', 5_000);
    a.net.sendRaft(nodeIdOf(B), utf8('hello'));
    await waitFor(() => (b.raft.get(nodeIdOf(A))?.length ?? 0) === 1, 'a Raft frame to B');
    expect(a.lines.some((l) => l.msg.startsWith('refused non-member connection'))).toBe(true);
  });

  it('are capped per IP address', async () => {
    const A = 63;
    const a = await startNode(A, {
      members: [nodeIdOf(A)],
      limits: { maxNonMemberConnectionsPerIp: 2, nonMemberIdleMs: 60_000 },
    });
    cleanup.push(() => a.net.stop());
    const squatters = await squat(a.net.addresses()[0] ?? '', 5);
    await waitFor(() => connected(squatters) <= 2, 'squatters beyond the per-IP cap to be refused', 5_000);
    expect(connected(squatters)).toBe(2);
    expect(a.net.stats().nonMembers.refusedIpCap).toBeGreaterThan(0);
  });

  it('are closed when idle, but not while a submit exchange runs; members stay', async () => {
    const A = 64;
    const B = 65;
    const members = [nodeIdOf(A), nodeIdOf(B)];
    const a = await startNode(A, {
      members,
      limits: { nonMemberIdleMs: 300, submitHandlerTimeoutMs: 3_000 },
    });
    cleanup.push(() => a.net.stop());
    // The handler takes longer than the idle time: the exchange keeps the connection.
    a.net.handleSubmit(async (request) => {
      await new Promise((resolve) => setTimeout(resolve, 800));
      return utf8(`ack ${text(request)}`);
    });
    const address = a.net.addresses()[0] ?? '';
    const b = await startNode(B, { members, peers: [{ nodeId: nodeIdOf(A), addrs: [address] }] });
    cleanup.push(() => b.net.stop());
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'member B to connect');

    // An idle connection that answers pings is closed anyway.
    const [idle] = await squat(address, 1);
    expect(connected([idle!])).toBe(1);
    await waitFor(() => connected([idle!]) === 0, 'the idle connection to be closed', 3_000);

    // A slow exchange completes.
    expect(text(await submitOverP2P(address, utf8('slow'), { timeoutMs: 5_000 }))).toBe('ack slow');

    // A client that keeps its connection after its exchange loses it once idle.
    const client = await rawClient();
    cleanup.push(() => client.stop());
    const stream = await client.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
    const lp = lpStream(stream);
    await lp.write(utf8('kept'));
    const answer = (await lp.read()).subarray();
    expect(text(answer.subarray(1))).toBe('ack kept');
    await waitFor(() => connected([client]) === 0, 'the connection to close after its exchange', 3_000);

    expect(a.net.stats().nonMembers.closedIdle).toBeGreaterThanOrEqual(2);
    // The member's connection, idle all along, is still there.
    expect(a.net.connectedMembers()).toEqual([nodeIdOf(B)]);
  });

  it('include a peer that left the membership', async () => {
    const A = 66;
    const B = 67;
    const members = [nodeIdOf(A), nodeIdOf(B)];
    const a = await startNode(A, { members, limits: { nonMemberIdleMs: 300 } });
    cleanup.push(() => a.net.stop());
    const b = await startNode(B, { members, peers: [{ nodeId: nodeIdOf(A), addrs: a.net.addresses() }] });
    cleanup.push(() => b.net.stop());
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'member B to connect');
    const seenByB: [string, boolean][] = [];
    b.net.onMemberConnection((nodeId, up) => seenByB.push([nodeId, up]));
    a.net.setMembers([nodeIdOf(A)]);
    // B still counts A as a member and redials it, but A closes the idle connection each time.
    await waitFor(
      () => seenByB.some(([, up]) => !up),
      "A to close its former member's idle connection",
      3_000,
    );
    expect(a.net.stats().nonMembers.closedIdle).toBeGreaterThanOrEqual(1);
  });
});

describe('the member tag that keeps members from being pruned', () => {
  it('is set on every member, not only static peers, and removed when one leaves', async () => {
    const host = await createLibp2p({ start: false });
    cleanup.push(() => host.stop());
    const controller = new AbortController();
    cleanup.push(() => controller.abort());
    const dialer = new PeerDialer(
      {
        host,
        logger: capturingLogger().logger,
        limits: resolveLimits({ redialMinMs: 60_000, redialMaxMs: 60_000, dialTimeoutMs: 100 }),
        signal: controller.signal,
        selfNodeId: nodeIdOf(70),
      },
      [],
    );
    cleanup.push(() => dialer.stop());
    const member = peerIdFromNodeId(nodeIdOf(71));
    const tagged = async (): Promise<boolean> =>
      (await host.peerStore.get(member).catch(() => undefined))?.tags.has(KEEP_TAG) ?? false;
    await dialer.start([nodeIdOf(70), nodeIdOf(71)]);
    expect(await tagged()).toBe(true);
    dialer.sync([nodeIdOf(70)]);
    await dialer.stop(); // waits for pending tag updates
    expect(await tagged()).toBe(false);
  });
});

describe('ipKey', () => {
  it('counts IPv4 by address and IPv6 by /64', () => {
    expect(ipKey(multiaddr('/ip4/10.1.2.3/tcp/1'))).toBe('10.1.2.3');
    expect(ipKey(multiaddr('/ip6/2001:db8:1:2:aaaa::1/tcp/1'))).toBe('2001:db8:1:2::/64');
    expect(ipKey(multiaddr('/ip6/2001:db8:1:2::ffff/tcp/1'))).toBe('2001:db8:1:2::/64');
    expect(ipKey(multiaddr('/ip6/::1/tcp/1'))).toBe('0:0:0:0::/64');
    expect(ipKey(multiaddr('/dns4/example.com/tcp/1'))).toBeUndefined();
  });
});
