// A peer whose key is not a member: it cannot deliver Raft frames, fetch
// blocks or gossip transactions (each refusal logged with its peer id), but
// it can submit. Members do not gossip to it either.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotMemberError, peerIdFromNodeId, submitOverP2P } from '../../../src/network/index.js';
import { nodeIdOf, startNode, text, utf8, waitFor, type TestNode } from './helpers.js';

const A = 11;
const B = 12;
const D = 13; // the outsider
const MEMBERS = [A, B].map(nodeIdOf);

describe('membership gating', () => {
  let a: TestNode;
  let b: TestNode;
  let d: TestNode;

  beforeAll(async () => {
    a = await startNode(A, { members: MEMBERS });
    b = await startNode(B, { members: MEMBERS, peers: [{ nodeId: nodeIdOf(A), addrs: a.net.addresses() }] });
    // D believes A and B are fellow members; they do not agree.
    d = await startNode(D, {
      members: [...MEMBERS, nodeIdOf(D)],
      peers: [
        { nodeId: nodeIdOf(A), addrs: a.net.addresses() },
        { nodeId: nodeIdOf(B), addrs: b.net.addresses() },
      ],
    });
    a.net.handleSubmit((request, from) => Promise.resolve(utf8(`ack ${text(request)} from ${from}`)));
    a.net.handleBlockRange(() => Promise.resolve([utf8('block')]));
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'A and B connected');
    await waitFor(() => d.net.connectedMembers().length === 2, 'D connected to A and B');
  });

  afterAll(async () => {
    await Promise.all([a, b, d].map((n) => n?.net.stop()));
  });

  const refusedD = (node: TestNode, protocol: string): boolean =>
    node.lines.some(
      (l) =>
        l.msg.startsWith('refused peer') &&
        l.peer === peerIdFromNodeId(nodeIdOf(D)).toString() &&
        l.protocol === protocol,
    );

  it('does not count a connected non-member as a member', () => {
    expect(a.net.connectedMembers()).toEqual([nodeIdOf(B)]);
  });

  it('refuses Raft frames from a non-member and logs the refusal', async () => {
    d.net.sendRaft(nodeIdOf(A), utf8('let me in'));
    await waitFor(() => a.net.stats().raft.refusedInbound >= 1, 'A to refuse D');
    expect(refusedD(a, '/bitnexus/raft/1.0.0')).toBe(true);
    expect(a.raft.get(nodeIdOf(D))).toBeUndefined();
    // and A's own Raft traffic to a non-member is not sent at all
    a.net.sendRaft(nodeIdOf(D), utf8('secret'));
    expect(a.net.stats().raft.droppedNotMember).toBe(1);
  });

  it('refuses block requests from a non-member and logs the refusal', async () => {
    await expect(d.net.fetchBlocks(nodeIdOf(A), 0, 0)).rejects.toBeInstanceOf(NotMemberError);
    expect(refusedD(a, '/bitnexus/blocks/1.0.0')).toBe(true);
  });

  it('lets a non-member submit', async () => {
    const [address] = a.net.addresses();
    expect(address).toBeDefined();
    const answer = text(await submitOverP2P(address ?? '', utf8('{"tx":1}'), { timeoutMs: 5_000 }));
    expect(answer).toMatch(/^ack \{"tx":1\} from 12D3KooW/);
  });

  it('ignores transaction gossip from a non-member and never gossips to one', async () => {
    await waitFor(() => a.net.txGossipPeers().includes(nodeIdOf(B)), 'A and B on the tx topic');
    void d.net.publishTx(utf8('from-outsider'));
    void a.net.publishTx(utf8('from-member'));
    await waitFor(() => b.txs.some((t) => t.tx === 'from-member'), 'B to receive the member tx');
    // Gossip is fast on loopback: if the outsider's tx were going to arrive it would have by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(a.txs.map((t) => t.tx)).not.toContain('from-outsider');
    expect(b.txs.map((t) => t.tx)).not.toContain('from-outsider');
    expect(d.txs).toEqual([]);
    expect(a.net.txGossipPeers()).not.toContain(nodeIdOf(D));
  });

  it('drops a peer from Raft as soon as it leaves the membership', async () => {
    const events: [string, boolean][] = [];
    a.net.onMemberConnection((nodeId, connected) => events.push([nodeId, connected]));
    a.net.setMembers([nodeIdOf(A)]);
    expect(events).toEqual([[nodeIdOf(B), false]]);
    expect(a.net.connectedMembers()).toEqual([]);
    b.net.sendRaft(nodeIdOf(A), utf8('after removal'));
    await waitFor(() => a.net.stats().raft.refusedInbound >= 2, 'A to refuse B now');
    expect(a.raft.get(nodeIdOf(B))).toBeUndefined();
    a.net.setMembers(MEMBERS);
    expect(events.at(-1)).toEqual([nodeIdOf(B), true]);
  });
});
