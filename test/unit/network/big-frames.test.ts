// Streams that carry frames back to back (Raft, block-range answers). Yamux
// hands a reader data in messages as large as the stream's receive window,
// and one message can hold the end of one frame and most of the next ones: a
// reader's buffer must hold a whole frame plus one such message, or a burst
// of honest frames resets the stream (seen at 1.5 MiB frames, and at the
// 4.2 MiB of an append carrying one full block).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_STREAM_WINDOW_BYTES } from '../../../src/network/index.js';
import { nodeIdOf, startNode, waitFor, type TestNode } from './helpers.js';

const A = 31;
const B = 32;
const MiB = 1024 * 1024;

/** A frame of `size` bytes whose content says which one it is. */
function frame(size: number, n: number): Uint8Array {
  const f = new Uint8Array(size);
  new DataView(f.buffer).setUint32(0, n);
  f[size - 1] = n % 251;
  return f;
}

describe('back-to-back frames of several MiB', () => {
  let a: TestNode;
  let b: TestNode;
  const members = [A, B].map(nodeIdOf);

  beforeAll(async () => {
    a = await startNode(A, { members });
    b = await startNode(B, { members, peers: [{ nodeId: nodeIdOf(A), addrs: a.net.addresses() }] });
    await waitFor(() => a.net.connectedMembers().includes(nodeIdOf(B)), 'A and B connected');
  });

  afterAll(async () => {
    await Promise.all([a.net.stop(), b.net.stop()]);
  });

  it('bounds the muxer messages a reader can be handed', () => {
    expect(MAX_STREAM_WINDOW_BYTES).toBe(4 * MiB);
  });

  for (const [size, count] of [
    [Math.round(4.2 * MiB), 14],
    [Math.round(1.5 * MiB), 40],
    // the largest a Raft frame may be (maxRaftFrameBytes 16 MiB); the reviewer's were 15 MiB
    [15 * MiB, 4],
  ] as const) {
    it(`delivers a burst of ${count} Raft frames of ${(size / MiB).toFixed(1)} MiB, all of them, in order`, async () => {
      const got: number[] = [];
      const unsubscribe = b.net.onRaftFrame((from, f) => {
        if (from === nodeIdOf(A) && f.byteLength === size) {
          const n = new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(0);
          if (f[size - 1] === n % 251) got.push(n);
        }
      });
      try {
        for (let i = 0; i < count; i++) a.net.sendRaft(nodeIdOf(B), frame(size, i));
        await waitFor(() => got.length === count, `${count} frames`, 20_000);
        expect(got).toEqual(Array.from({ length: count }, (_, i) => i));
        expect(b.net.stats().raft.badInboundFrames).toBe(0);
      } finally {
        unsubscribe();
      }
    });
  }

  it('fetches a block range of 12 blocks of 4 MiB intact', async () => {
    const size = 4 * MiB;
    b.net.handleBlockRange((from, to) =>
      Promise.resolve(Array.from({ length: to - from + 1 }, (_, i) => frame(size, from + i))),
    );
    const blocks = await a.net.fetchBlocks(nodeIdOf(B), 1, 12);
    expect(
      blocks.map((blk) => new DataView(blk.buffer, blk.byteOffset, blk.byteLength).getUint32(0)),
    ).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });
});
