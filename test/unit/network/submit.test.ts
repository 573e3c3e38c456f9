// The submit protocol: a round trip through the throwaway client node, handler
// errors and timeouts as error responses, and misbehaving peers (garbage, an
// oversized frame, silence) that never crash the node or stop it serving.
import { multiaddr } from '@multiformats/multiaddr';
import type { Stream } from '@libp2p/interface';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FrameTooLargeError,
  RemoteError,
  RequestTimeoutError,
  SUBMIT_PROTOCOL,
  submitOverP2P,
} from '../../../src/network/index.js';
import { nodeIdOf, rawClient, startNode, text, utf8, waitFor, type TestNode } from './helpers.js';

const S = 21;
const MAX_REQUEST = 4 * 1024;

describe('the submit protocol', () => {
  let server: TestNode;
  let address: string;

  beforeAll(async () => {
    server = await startNode(S, { members: [nodeIdOf(S)], limits: { maxSubmitRequestBytes: MAX_REQUEST } });
    address = server.net.addresses()[0] ?? '';
    server.net.handleSubmit(async (request, _from, signal) => {
      const body = text(request);
      if (body === 'reject') throw Object.assign(new Error('duplicate order'), { code: 'DUPLICATE' });
      if (body === 'crash') throw new TypeError('cannot read properties of undefined');
      if (body === 'hang') {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
      }
      return utf8(`receipt:${body}`);
    });
  });

  afterAll(async () => {
    await server.net.stop();
  });

  const stillServing = async (): Promise<void> => {
    expect(text(await submitOverP2P(address, utf8('ping'), { timeoutMs: 5_000 }))).toBe('receipt:ping');
  };

  it('answers a request over a throwaway client node', async () => {
    const response = await submitOverP2P(address, utf8('{"kind":"commission.record"}'), { timeoutMs: 5_000 });
    expect(text(response)).toBe('receipt:{"kind":"commission.record"}');
  });

  it('also dials an address without /p2p/ (identity then taken from the Noise handshake)', async () => {
    const bare = address.replace(/\/p2p\/.*$/, '');
    expect(bare).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/);
    expect(text(await submitOverP2P(bare, utf8('no-id'), { timeoutMs: 5_000 }))).toBe('receipt:no-id');
  });

  it('turns a handler error into an error response with its code', async () => {
    await expect(submitOverP2P(address, utf8('reject'))).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'DUPLICATE',
      message: 'duplicate order',
    });
    await expect(submitOverP2P(address, utf8('crash'))).rejects.toMatchObject({ code: 'INTERNAL' });
    await stillServing();
  });

  it('answers TIMEOUT when the handler takes too long', async () => {
    const err = await submitOverP2P(address, utf8('hang')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
  });

  it('refuses an oversized request with REQUEST_TOO_LARGE, client or server side', async () => {
    await expect(
      submitOverP2P(address, new Uint8Array(MAX_REQUEST + 1), { maxRequestBytes: 1024 * 1024 }),
    ).rejects.toMatchObject({ code: 'REQUEST_TOO_LARGE' });
    await expect(submitOverP2P(address, new Uint8Array(2 * 1024 * 1024))).rejects.toBeInstanceOf(
      FrameTooLargeError,
    );
    await stillServing();
  });

  it('survives garbage bytes and a peer that sends nothing, and keeps serving', async () => {
    const client = await rawClient();
    try {
      const target = multiaddr(address);
      const garbage = await client.dialProtocol(target, SUBMIT_PROTOCOL);
      garbage.send(new Uint8Array(32).fill(0xff)); // a length prefix that never ends
      const silent = await client.dialProtocol(target, SUBMIT_PROTOCOL);
      const truncated = await client.dialProtocol(target, SUBMIT_PROTOCOL);
      truncated.send(Uint8Array.of(100, 1, 2, 3)); // says 100 bytes, sends 3
      const closedBy = (s: Stream): boolean => s.status !== 'open';
      await waitFor(() => closedBy(garbage), 'the garbage stream to be aborted');
      await waitFor(() => closedBy(silent) && closedBy(truncated), 'the idle streams to time out', 5_000);
      await stillServing();
    } finally {
      await client.stop();
    }
    expect(server.net.stats().submit.badRequests).toBeGreaterThanOrEqual(3);
    expect(server.lines.some((l) => l.msg.startsWith('bad submit request'))).toBe(true);
  });

  it('lets a member ask another member (submitTo), with the same answers and errors', async () => {
    const asker = await startNode(23, {
      members: [nodeIdOf(S), nodeIdOf(23)],
      peers: [{ nodeId: nodeIdOf(S), addrs: [address] }],
    });
    try {
      expect(text(await asker.net.submitTo(nodeIdOf(S), utf8('from a member')))).toBe(
        'receipt:from a member',
      );
      await expect(asker.net.submitTo(nodeIdOf(S), utf8('reject'))).rejects.toMatchObject({
        name: 'RemoteError',
        code: 'DUPLICATE',
      });
      await expect(asker.net.submitTo(nodeIdOf(S), new Uint8Array(2 * 1024 * 1024))).rejects.toBeInstanceOf(
        FrameTooLargeError,
      );
      const gone = AbortSignal.timeout(50);
      await expect(asker.net.submitTo(nodeIdOf(S), utf8('hang'), gone)).rejects.toBeDefined();
      expect(gone.aborted).toBe(true);
    } finally {
      await asker.net.stop();
    }
    await stillServing();
  });

  it('times out on the client when the answer is late', async () => {
    const err = await submitOverP2P(address, utf8('hang'), { timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestTimeoutError);
    await stillServing();
  });

  it('answers UNAVAILABLE before a handler is registered', async () => {
    const bare = await startNode(22, { members: [] });
    try {
      await expect(submitOverP2P(bare.net.addresses()[0] ?? '', utf8('x'))).rejects.toMatchObject({
        code: 'UNAVAILABLE',
      });
    } finally {
      await bare.net.stop();
    }
    // after stop: sends are dropped, requests refused, stop is idempotent
    bare.net.sendRaft(nodeIdOf(S), utf8('late'));
    void bare.net.publishTx(utf8('late'));
    await expect(bare.net.fetchBlocks(nodeIdOf(S), 0, 0)).rejects.toMatchObject({
      name: 'NetworkStateError',
      code: 'STOPPED',
    });
    await bare.net.stop();
    await expect(bare.net.start()).rejects.toMatchObject({ code: 'ALREADY_STARTED' });
  });
});
