import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES, type Message } from '../../../src/consensus/index.js';
import {
  decodeRaftMessage,
  decodeTxForward,
  encodeRaftMessage,
  encodeTxForward,
  isTxForward,
  RaftWireError,
} from '../../../src/node/raft-wire.js';

const id = fc.string({ minLength: 1, maxLength: 64 });
const n = fc.maxSafeNat();
const bytes = fc.uint8Array({ maxLength: 64 });
const entry = fc.record({
  index: n,
  term: n,
  type: fc.constantFrom('normal' as const, 'confChange' as const),
  data: bytes,
});
const message: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...MESSAGE_TYPES),
    from: id,
    to: id,
    term: n,
    logTerm: n,
    index: n,
    commit: n,
    reject: fc.boolean(),
    rejectHint: n,
    entries: fc.array(entry, { maxLength: 5 }),
    context: fc.option(bytes, { nil: undefined }),
    transfer: fc.option(fc.constant(true), { nil: undefined }),
    snapshot: fc.option(
      fc.record({
        meta: fc.record({
          index: n,
          term: n,
          confState: fc.record({
            voters: fc.array(id, { maxLength: 4 }),
            learners: fc.array(id, { maxLength: 3 }),
          }),
        }),
        data: bytes,
      }),
      { nil: undefined },
    ),
  })
  .map((m) => {
    const out = { ...m } as Message & Record<string, unknown>;
    for (const k of ['context', 'transfer', 'snapshot']) if (out[k] === undefined) delete out[k];
    return out;
  });

describe('raft messages on the wire', () => {
  it('round-trips every message exactly', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeRaftMessage(encodeRaftMessage(m))).toEqual(m);
      }),
    );
  });

  it('refuses truncated, extended and random frames with a typed error, never anything else', () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, cut) => {
        const buf = encodeRaftMessage(m);
        expect(() => decodeRaftMessage(buf.subarray(0, cut % buf.length))).toThrow(RaftWireError);
        expect(() => decodeRaftMessage(Uint8Array.of(...buf, 0))).toThrow(RaftWireError);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
        try {
          decodeRaftMessage(junk);
        } catch (err) {
          expect(err).toBeInstanceOf(RaftWireError);
        }
      }),
    );
  });
});

describe('transaction forward frames on the Raft stream', () => {
  it('round-trip, are told apart from Raft frames, and refuse garbage', () => {
    const txs = [new Uint8Array([1, 2, 3]), new Uint8Array(0), Buffer.from('{"a":1}')];
    const frame = encodeTxForward(txs);
    expect(isTxForward(frame)).toBe(true);
    expect(decodeTxForward(frame, 1024)?.map((t) => Buffer.from(t).toString('hex'))).toEqual(
      txs.map((t) => Buffer.from(t).toString('hex')),
    );
    expect(decodeTxForward(frame, 2)).toBeUndefined(); // one is over the limit
    expect(decodeTxForward(frame.subarray(0, frame.length - 1), 1024)).toBeUndefined();
    const raft = encodeRaftMessage({
      type: 'heartbeat',
      from: 'a',
      to: 'b',
      term: 1,
      logTerm: 0,
      index: 0,
      commit: 0,
      reject: false,
      rejectHint: 0,
      entries: [],
    });
    expect(isTxForward(raft)).toBe(false);
    expect(() => decodeRaftMessage(frame)).toThrow(RaftWireError);
  });
});
