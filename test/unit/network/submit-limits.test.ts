// What submit streams can make a node buffer. The reviewer's attack: 8
// connections with fresh peer ids from one address, 16 submit streams each,
// each sending a ~1 MiB length prefix and all but the last byte, reopened
// when the read timeout aborts them (RSS 138 -> ~400 MB; at 128 non-member
// connections, ~2 GiB). A signed transaction is at most 8 KiB.
import type { Libp2p, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  FrameTooLargeError,
  SUBMIT_PROTOCOL,
  submitOverP2P,
} from '../../../src/network/index.js';
import { decodeStatusFrame } from '../../../src/network/framing.js';
import { resolveLimits } from '../../../src/network/limits.js';
import { exchangeSubmit } from '../../../src/network/submit-client.js';
import { submitInboundStreamLimit } from '../../../src/network/submit-service.js';
import { nodeIdOf, rawClient, startNode, text, utf8, waitFor, type TestNode } from './helpers.js';

const KiB = 1024;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await Promise.resolve(stop()).catch(() => undefined);
});

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/**
 * A submit stream that announces `length` bytes and sends only the first 10: it holds its place.
 * (A stream the node refuses may be closed before anything is sent.)
 */
async function holdOpen(client: Libp2p, address: string, length: number): Promise<Stream> {
  const stream = await client.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
  if (stream.writeStatus === 'writable') {
    stream.send(varint(length));
    stream.send(new Uint8Array(10));
  }
  return stream;
}

interface HeldStream {
  stream: Stream;
  /** sends the rest of the request, then reads the answer's body (an error status is thrown) */
  finish(): Promise<string>;
}

/** A submit stream that has sent its length prefix and the first half of `request`: it holds its place. */
async function partial(c: Libp2p, address: string, request: string): Promise<HeldStream> {
  const stream = await c.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
  const bytes = utf8(request);
  const half = Math.floor(bytes.byteLength / 2);
  stream.send(varint(bytes.byteLength));
  stream.send(bytes.subarray(0, half));
  return {
    stream,
    async finish() {
      stream.send(bytes.subarray(half));
      const status = decodeStatusFrame(
        (await lpStream(stream).read({ signal: AbortSignal.timeout(5_000) })).subarray(),
      );
      await stream.close();
      if (!status.ok) throw new Error(`${status.code}: ${status.message}`);
      return text(status.body);
    },
  };
}

async function client(): Promise<Libp2p> {
  const c = await rawClient();
  cleanup.push(() => c.stop());
  return c;
}

/** A server whose handler waits for `release` on requests that say "hold". */
async function server(
  n: number,
  limits: Parameters<typeof startNode>[1]['limits'],
  members: number[] = [n],
): Promise<{ node: TestNode; address: string; release: () => void }> {
  const node = await startNode(n, {
    members: members.map(nodeIdOf),
    limits: { submitIoTimeoutMs: 20_000, submitHandlerTimeoutMs: 20_000, ...limits },
  });
  cleanup.push(() => node.net.stop());
  let release = (): void => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  node.net.handleSubmit(async (request, _from, signal) => {
    if (text(request) === 'hold') {
      await Promise.race([released, new Promise((resolve) => signal.addEventListener('abort', resolve))]);
    }
    return utf8(`ok ${text(request)}`);
  });
  return { node, address: node.net.addresses()[0] ?? '', release };
}

const isOpen = (s: Stream): boolean => s.status === 'open';

describe('submit streams', () => {
  it('take a request of at most 64 KiB by default, as the HTTP API does', async () => {
    expect(DEFAULT_LIMITS.maxSubmitRequestBytes).toBe(64 * KiB);
    const { address, node } = await server(71, {});
    await expect(submitOverP2P(address, new Uint8Array(64 * KiB + 1))).rejects.toBeInstanceOf(
      FrameTooLargeError,
    );
    await expect(
      submitOverP2P(address, new Uint8Array(64 * KiB + 1), { maxRequestBytes: 1024 * KiB }),
    ).rejects.toMatchObject({ code: 'REQUEST_TOO_LARGE' });
    // what the reviewer sent: a ~1 MiB prefix, refused at once rather than buffered
    const c = await client();
    const big = await holdOpen(c, address, 1024 * KiB - 64);
    await waitFor(() => !isOpen(big), 'the 1 MiB request to be refused', 3_000);
    expect(node.net.stats().submit.badRequests).toBeGreaterThanOrEqual(1);
    expect(text(await submitOverP2P(address, new Uint8Array(60 * KiB).fill(0x41)))).toMatch(/^ok A+$/);
  });

  it('past 4 on one non-member connection are answered BUSY, not reset; the 4 still complete', async () => {
    const { address, node } = await server(72, {});
    expect(node.net.limits.maxSubmitStreamsPerConnection).toBe(4);
    const c = await client();
    const held: HeldStream[] = [];
    for (let i = 0; i < 4; i++) held.push(await partial(c, address, `held ${i}`));
    await new Promise((resolve) => setTimeout(resolve, 200));
    // a fifth that has sent most of a large request: answered without the rest being awaited
    const big = await c.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
    if (big.writeStatus === 'writable') {
      big.send(varint(60 * KiB));
      big.send(new Uint8Array(48 * KiB));
    }
    const answer = decodeStatusFrame(
      (await lpStream(big).read({ signal: AbortSignal.timeout(5_000) })).subarray(),
    );
    expect(answer).toEqual({
      ok: false,
      code: 'BUSY',
      message: expect.stringMatching(/at most 4 .*per connection.*try again/) as unknown,
    });
    // a sixth, as the library's client sends it: a RemoteError with code BUSY, the retriable refusal
    const sixth = await c.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
    await expect(
      exchangeSubmit(sixth, utf8('sixth'), DEFAULT_LIMITS.maxSubmitResponseBytes, AbortSignal.timeout(5_000)),
    ).rejects.toMatchObject({ name: 'RemoteError', code: 'BUSY' });
    expect(node.net.stats().submit.refusedStreams).toBe(2);
    // the node ends a refused stream its client leaves open, soon
    await waitFor(() => big.status !== 'open', 'the node to end the refused stream', 3_000);
    // the four held complete normally, and the connection may then open another, which is served
    expect(await Promise.all(held.map((h) => h.finish()))).toEqual([0, 1, 2, 3].map((i) => `ok held ${i}`));
    const next = await c.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
    expect(
      text(
        await exchangeSubmit(
          next,
          utf8('next'),
          DEFAULT_LIMITS.maxSubmitResponseBytes,
          AbortSignal.timeout(5_000),
        ),
      ),
    ).toBe('ok next');
    // none of the refused requests reached the handler
    expect(node.net.stats().submit).toMatchObject({ answered: 5, badRequests: 0, refusedStreams: 2 });
  });

  it("past libp2p's limit of 16 on one connection are reset: answering BUSY is bounded too", async () => {
    const { address, node } = await server(77, {});
    const c = await client();
    const held: HeldStream[] = [];
    for (let i = 0; i < 4; i++) held.push(await partial(c, address, `held ${i}`));
    await new Promise((resolve) => setTimeout(resolve, 200));
    // 16 more at once, none of which closes its end (the node ends a refused stream after 1 s,
    // long after these are all open): 12 fit under libp2p's 16 and are told BUSY, 4 are reset
    const outcomes = await Promise.all(
      Array.from({ length: 16 }, async () => {
        let s: Stream | undefined;
        try {
          s = await c.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
          const status = decodeStatusFrame(
            (await lpStream(s).read({ signal: AbortSignal.timeout(5_000) })).subarray(),
          );
          return status.ok ? 'ok' : status.code;
        } catch (err) {
          return s?.status === 'reset' ? 'reset' : `failed: ${String(err)}`;
        }
      }),
    );
    expect(outcomes.filter((o) => o === 'BUSY')).toHaveLength(12);
    expect(outcomes.filter((o) => o !== 'BUSY')).toEqual(Array<string>(4).fill('reset'));
    expect(node.net.stats().submit.refusedStreams).toBe(12);
    expect(submitInboundStreamLimit(node.net.limits)).toBe(16);
    // a larger configured allowance still leaves room to answer BUSY
    expect(submitInboundStreamLimit({ maxSubmitStreamsPerConnection: 16 })).toBe(20);
    expect(await Promise.all(held.map((h) => h.finish()))).toEqual([0, 1, 2, 3].map((i) => `ok held ${i}`));
  });

  /**
   * Member B asks member A `count` questions at once, answered after 300 ms; `bothEnds`: only once
   * A's end of the connection is set up too, else as soon as B's is.
   */
  async function memberAsks(A: number, B: number, count: number, bothEnds: boolean): Promise<TestNode> {
    const { node, address, release } = await server(A, {}, [A, B]);
    const asker = await startNode(B, {
      members: [A, B].map(nodeIdOf),
      peers: [{ nodeId: nodeIdOf(A), addrs: [address] }],
    });
    cleanup.push(() => asker.net.stop());
    await waitFor(() => asker.net.connectedMembers().includes(nodeIdOf(A)), 'the member to connect');
    if (bothEnds)
      await waitFor(() => node.net.connectedMembers().includes(nodeIdOf(B)), 'the member to be connected');
    const asks = Array.from({ length: count }, () => asker.net.submitTo(nodeIdOf(A), utf8('hold')));
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    expect((await Promise.all(asks)).map(text)).toEqual(Array<string>(count).fill('ok hold'));
    return node;
  }

  it('are not limited that way for a member, whose follower asks its leader 8 at once', async () => {
    await memberAsks(73, 74, 10, true);
  });

  it('a member connection survives 14 streams opened before its receiving end is set up', async () => {
    // yamux's default (10 early streams) aborted the whole connection (MaxEarlyStreamsError) when a
    // follower asked right after connecting, beside identify, Raft and gossip: 4 of 8 such runs
    // failed on a loaded machine before MAX_EARLY_STREAMS; on an idle one the receiving end is
    // usually ready in time, and this passes either way. 16 is the members' limit per connection.
    const node = await memberAsks(77, 78, 14, false);
    expect(node.net.connectedMembers()).toContain(nodeIdOf(78));
  });

  it('share a budget of request bytes in flight: past it new streams get BUSY, members excepted', async () => {
    const A = 75;
    const B = 76;
    const request = 4 * KiB;
    const { node, address, release } = await server(
      A,
      // three requests being read at once, and a little more
      { maxSubmitRequestBytes: request, maxSubmitBufferBytes: 3.5 * request },
      [A, B],
    );
    // Requests already read hold only their own bytes while the handler runs: four small ones
    // waiting for their answer leave room for three requests still being read.
    const waiting = await client();
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 4; i++) {
      const s = await waiting.dialProtocol(multiaddr(address), SUBMIT_PROTOCOL);
      const lp = lpStream(s);
      await lp.write(utf8('hold'));
      answers.push(lp.read().then((answer) => text(answer.subarray().subarray(1))));
      // read by the node before the next one opens (while being read, each counts 4 KiB)
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const readers = [await client(), await client()];
    const held = [
      await holdOpen(readers[0]!, address, 1000),
      await holdOpen(readers[0]!, address, 1000),
      await holdOpen(readers[1]!, address, 1000),
    ];
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(held.every(isOpen)).toBe(true);
    // full: a fourth is refused with BUSY, from another connection as well
    await expect(submitOverP2P(address, utf8('x'), { timeoutMs: 5_000 })).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'BUSY',
    });
    expect(node.net.stats().submit.refusedBusy).toBe(1);
    // a member still gets through
    const asker = await startNode(B, {
      members: [A, B].map(nodeIdOf),
      peers: [{ nodeId: nodeIdOf(A), addrs: [address] }],
    });
    cleanup.push(() => asker.net.stop());
    await waitFor(() => asker.net.connectedMembers().includes(nodeIdOf(A)), 'the member to connect');
    expect(text(await asker.net.submitTo(nodeIdOf(A), utf8('member')))).toBe('ok member');
    // once the readers go, there is room again
    for (const s of held) s.abort(new Error('client gives up'));
    await waitFor(() => node.net.stats().submit.badRequests >= 3, 'the server to see them go', 3_000);
    expect(text(await submitOverP2P(address, utf8('after'), { timeoutMs: 5_000 }))).toBe('ok after');
    release();
    expect(await Promise.all(answers)).toEqual(Array<string>(4).fill('ok hold'));
  });

  it('validate the budget against the request limit', () => {
    expect(() => resolveLimits({ maxSubmitRequestBytes: 64 * KiB, maxSubmitBufferBytes: 32 * KiB })).toThrow(
      /maxSubmitBufferBytes/,
    );
    expect(resolveLimits({}).maxSubmitBufferBytes).toBe(16 * 1024 * KiB);
  });
});
