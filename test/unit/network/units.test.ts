// Pure parts of the network layer: identity mapping, the bounded Raft queue,
// log rate limiting, status frames, length prefixes and block-range requests.
import { describe, expect, it } from 'vitest';
import { sign, verify } from '../../../src/crypto/index.js';
import {
  NetworkConfigError,
  P2PNetwork,
  isNodeId,
  nodeIdFromPeerId,
  nodeIdFromSeed,
  peerIdFromNodeId,
  privateKeyFromSeed,
} from '../../../src/network/index.js';
import { resolveLimits } from '../../../src/network/limits.js';
import { FrameQueue } from '../../../src/network/frame-queue.js';
import { LogRateLimiter } from '../../../src/util/rate-limited-log.js';
import { decodeLengthPrefix, decodeStatusFrame, errorFrame, okFrame } from '../../../src/network/framing.js';
import { decodeRange, encodeRange } from '../../../src/network/block-sync.js';
import { capturingLogger, seed, utf8 } from './helpers.js';

describe('identity', () => {
  it('uses the node key as the libp2p key, so the peer id names the block signer', async () => {
    const key = await privateKeyFromSeed(seed(5));
    const nodeId = nodeIdFromSeed(seed(5));
    expect(Buffer.from(key.publicKey.raw).toString('hex')).toBe(nodeId);
    // a signature by the libp2p key verifies under the ledger's Ed25519 rule, and vice versa
    const message = utf8('block 7');
    expect(verify(await key.sign(message), message, key.publicKey.raw)).toBe(true);
    expect(await key.publicKey.verify(message, sign(message, seed(5)))).toBe(true);
    const peerId = peerIdFromNodeId(nodeId);
    expect(peerId.toString()).toMatch(/^12D3KooW/);
    expect(nodeIdFromPeerId(peerId)).toBe(nodeId);
  });

  it('refuses malformed node ids and seeds', () => {
    expect(isNodeId('ab'.repeat(32))).toBe(true);
    expect(isNodeId('AB'.repeat(32))).toBe(false);
    expect(() => peerIdFromNodeId('xyz')).toThrow(NetworkConfigError);
    expect(() => nodeIdFromSeed(new Uint8Array(31))).toThrow(NetworkConfigError);
    const { logger } = capturingLogger();
    expect(
      () => new P2PNetwork({ chainId: 'c', seed: seed(1), listen: [], peers: [], members: ['nope'], logger }),
    ).toThrow(expect.objectContaining({ name: 'NetworkConfigError', code: 'BAD_NODE_ID' }));
    expect(
      () =>
        new P2PNetwork({
          chainId: 'c',
          seed: seed(1),
          listen: [],
          peers: [
            {
              nodeId: nodeIdFromSeed(seed(2)),
              addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerIdFromNodeId(nodeIdFromSeed(seed(3))).toString()}`],
            },
          ],
          members: [],
          logger,
        }),
    ).toThrow(expect.objectContaining({ code: 'BAD_MULTIADDR' }));
  });

  it('validates limits', () => {
    expect(() => resolveLimits({ maxRaftFrameBytes: 0 })).toThrow(NetworkConfigError);
    expect(() => resolveLimits({ raftQueueBytes: 10, maxRaftFrameBytes: 100 })).toThrow(/raftQueueBytes/);
    expect(resolveLimits({}).maxRaftFrameBytes).toBe(16 * 1024 * 1024);
    expect(() => resolveLimits({ maxConnections: 10, maxNonMemberConnections: 10 })).toThrow(
      /maxNonMemberConnections/,
    );
  });
});

describe('FrameQueue', () => {
  it('keeps order and drops the oldest frames when a bound is hit', () => {
    const q = new FrameQueue(3, 100);
    for (const n of [1, 2, 3]) expect(q.push(Uint8Array.of(n))).toBe(0);
    expect(q.push(Uint8Array.of(4))).toBe(1);
    expect([q.shift(), q.shift(), q.shift()].map((f) => f?.[0])).toEqual([2, 3, 4]);
    expect(q.shift()).toBeUndefined();
    q.push(new Uint8Array(60));
    expect(q.push(new Uint8Array(50))).toBe(1);
    expect(q.bytes).toBe(50);
    expect(q.clear()).toBe(1);
    expect(q.length).toBe(0);
  });
});

describe('LogRateLimiter', () => {
  it('admits one event per key per interval and counts the rest', () => {
    let now = 0;
    const limiter = new LogRateLimiter(1000, 10, () => now);
    expect(limiter.admit('p')).toEqual({ suppressed: 0 });
    expect(limiter.admit('p')).toBeUndefined();
    expect(limiter.admit('q')).toEqual({ suppressed: 0 });
    now = 1500;
    expect(limiter.admit('p')).toEqual({ suppressed: 1 });
  });

  it('limits each kind of line in total, so rotating peer ids does not flood the log', () => {
    let now = 0;
    const limiter = new LogRateLimiter(1000, 4096, () => now);
    let admitted = 0;
    for (let i = 0; i < 100; i++) if (limiter.admit(`submit:peer${i}`) !== undefined) admitted += 1;
    expect(admitted).toBe(20); // the default per-kind limit
    // another kind is not affected
    expect(limiter.admit('raft:peer0')).toEqual({ suppressed: 0 });
    // the next line of the kind reports what its global limit dropped
    now = 1000;
    expect(limiter.admit('submit:peer100')).toEqual({ suppressed: 80 });
  });

  it('forgets the oldest keys when full, never lifting suppression for everyone', () => {
    let now = 0;
    const limiter = new LogRateLimiter(1000, 8, () => now, 4);
    expect(limiter.admit('raft:member')).toEqual({ suppressed: 0 });
    expect(limiter.admit('raft:member')).toBeUndefined();
    // a peer rotating its id: only 4 lines a second, so it never fills the 8 keys
    for (let t = 0; t < 900; t += 100) {
      now = t;
      for (let i = 0; i < 50; i++) limiter.admit(`submit:${t}-${i}`);
    }
    // the member's key is still remembered: still suppressed within its interval
    now = 950;
    expect(limiter.admit('raft:member')).toBeUndefined();
    now = 1000;
    expect(limiter.admit('raft:member')).toEqual({ suppressed: 2 });
    // with more keys than room, the least recently admitted one goes first
    const small = new LogRateLimiter(1000, 2, () => 0);
    small.admit('a:1');
    small.admit('b:1');
    small.admit('c:1'); // forgets a:1 only
    expect(small.admit('b:1')).toBeUndefined();
    expect(small.admit('a:1')).toEqual({ suppressed: 0 });
  });
});

describe('wire formats', () => {
  it('round-trips status frames and rejects malformed ones', () => {
    expect(decodeStatusFrame(okFrame(utf8('hi')))).toEqual({ ok: true, body: utf8('hi') });
    expect(decodeStatusFrame(errorFrame('NOT_MEMBER', 'no'))).toEqual({
      ok: false,
      code: 'NOT_MEMBER',
      message: 'no',
    });
    expect(() => decodeStatusFrame(Uint8Array.of(7))).toThrow(/status byte/);
    expect(() => decodeStatusFrame(Uint8Array.of(1, 0x7b))).toThrow(/JSON/);
  });

  it('decodes length prefixes and gives up on one that never ends', () => {
    const list = (bytes: number[]) => ({ byteLength: bytes.length, get: (i: number) => bytes[i] ?? 0 });
    expect(decodeLengthPrefix(list([0x05]), 4)).toBe(5);
    expect(decodeLengthPrefix(list([0x80, 0x80, 0x80, 0x08]), 4)).toBe(16 * 1024 * 1024);
    expect(() => decodeLengthPrefix(list([0xff, 0xff]), 4)).toThrow(RangeError);
    expect(() => decodeLengthPrefix(list([0xff, 0xff, 0xff, 0xff]), 4)).toThrow(/longer than 4 bytes/);
  });

  it('encodes block ranges as two big-endian u64 and refuses bad ones', () => {
    expect(decodeRange(encodeRange(3, 514))).toEqual({ from: 3, to: 514 });
    expect(decodeRange(encodeRange(0, 512))).toBeUndefined();
    expect(decodeRange(encodeRange(5, 4))).toBeUndefined();
    expect(decodeRange(new Uint8Array(15))).toBeUndefined();
  });
});
