// Reconnecting to members after they restart: a member that is not a static
// peer is redialed at the addresses it announced even once libp2p's peer store
// has forgotten them, and Raft frames flow again as soon as a member is back,
// however long its link's backoff had grown.
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as Limits from '../../../src/network/limits.js';
import { nodeIdOf, startNode, utf8, waitFor, type TestNode } from './helpers.js';

// Backoff without jitter, so that the test knows when a link would retry.
vi.mock('../../../src/network/limits.js', async (importOriginal) => {
  const original = await importOriginal<typeof Limits>();
  return {
    ...original,
    backoffDelay: (attempt: number, minMs: number, maxMs: number) =>
      Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1)),
  };
});

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await Promise.resolve(stop()).catch(() => undefined);
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function portOf(node: TestNode): string {
  const port = multiaddr(node.net.addresses()[0])
    .getComponents()
    .find((c) => c.name === 'tcp')?.value;
  if (port === undefined) throw new Error('no tcp port');
  return port;
}

describe('reconnecting to a member', () => {
  it('redials a non-static member at its announced addresses after the peer store forgot them', async () => {
    const A = 81;
    const B = 82;
    const members = [nodeIdOf(A), nodeIdOf(B)];
    // A knows B only through identify, and its peer store forgets addresses after 300 ms
    // (one hour by default, counted from the first sighting however often B announces them).
    const a = await startNode(A, { members, limits: { peerAddressAgeMs: 300 } });
    cleanup.push(() => a.net.stop());
    const b = await startNode(B, { members, peers: [{ nodeId: nodeIdOf(A), addrs: a.net.addresses() }] });
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'B to connect to A');
    const port = portOf(b);
    await sleep(800); // the peer store's copy of B's addresses has expired
    await b.net.stop();
    await waitFor(() => !a.net.connectedMembers().includes(nodeIdOf(B)), 'A to see B gone');
    // B comes back at the same address, but without A on its static list it cannot dial A:
    // only A can restore the connection.
    const restarted = await startNode(B, { members, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    cleanup.push(() => restarted.net.stop());
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'A to redial B', 5_000);
  });

  it('sends Raft frames as soon as the member is back, not when the link backoff expires', async () => {
    const A = 83;
    const B = 84;
    const members = [nodeIdOf(A), nodeIdOf(B)];
    // Link retries after 0.8, 1.6, 3.2, 6.4 s: while B is down for ~3 s the wait grows past it.
    const limits = { redialMinMs: 800, redialMaxMs: 20_000 };
    const a = await startNode(A, { members, limits });
    cleanup.push(() => a.net.stop());
    const peersOfB = [{ nodeId: nodeIdOf(A), addrs: a.net.addresses() }];
    const b = await startNode(B, { members, peers: peersOfB, limits });
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'B to connect to A');

    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        a.net.sendRaft(nodeIdOf(B), utf8('heartbeat'));
        await sleep(100);
      }
    })();
    cleanup.push(async () => {
      ticking = false;
      await ticker;
    });
    await waitFor(() => (b.raft.get(nodeIdOf(A))?.length ?? 0) > 0, 'first frames to B');

    await b.net.stop();
    await sleep(2_900);
    // B restarts on another port and dials A, its static peer.
    const restarted = await startNode(B, { members, peers: peersOfB, limits });
    cleanup.push(() => restarted.net.stop());
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'B to reconnect', 5_000);
    const reconnectedAt = Date.now();
    await waitFor(() => (restarted.raft.get(nodeIdOf(A))?.length ?? 0) > 0, 'frames to B again', 10_000);
    // Before the fix the link slept out its backoff: frames resumed about 2.5 s after the reconnection.
    expect(Date.now() - reconnectedAt).toBeLessThan(1_200);
  });
});
