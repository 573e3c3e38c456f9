// What one member can make a follower hold undecoded: the reviewer's attack
// sent 150 forward frames of ~3.7 MiB, each with one new ~300 B fake
// transaction; the follower kept a view of each whole frame for an hour.
import { describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../../src/codec/index.js';
import { LIMITS } from '../../../src/ledger/index.js';
import { Mempool, RAW_ENTRY_OVERHEAD_BYTES } from '../../../src/node/mempool.js';
import { keyFor, pub, tx } from '../../support/ledger-fixture.js';

const op = keyFor('operator');
const reg = (label: string) =>
  tx('participant.register', op, { participant: pub(keyFor(label)), role: 'merchant', name: label });

/** A fake gossiped transaction: all a follower checks before keeping it is a `"signature":"<128 hex>"` member. */
function fake(n: number, pad = 100): { sig: string; bytes: Uint8Array } {
  const sig = n.toString(16).padStart(128, '0');
  return { sig, bytes: new TextEncoder().encode(`{"pad":"${'x'.repeat(pad)}","signature":"${sig}"}`) };
}

/** `bytes` as a view into the middle of a much larger frame, the way a forward frame is split. */
function inFrame(bytes: Uint8Array, frameBytes: number): Uint8Array {
  const frame = new Uint8Array(frameBytes);
  frame.set(bytes, 1000);
  return frame.subarray(1000, 1000 + bytes.byteLength);
}

const held = (m: Mempool): Uint8Array[] =>
  [...m.dueForResend(Number.MAX_SAFE_INTEGER, 1, 1)].flatMap((e) => ('bytes' in e ? [e.bytes] : []));

describe('the mempool bounds what members make it hold undecoded', () => {
  it('keeps a copy of a raw transaction, never a view that pins the frame it came in', () => {
    const m = new Mempool();
    const { sig, bytes } = fake(1);
    const view = inFrame(bytes, 4 * 1024 * 1024);
    expect(view.buffer.byteLength).toBe(4 * 1024 * 1024);
    expect(m.addRaw(sig, view, 1)).toBe(true);
    const [kept] = held(m);
    expect(kept).toBeDefined();
    expect(Buffer.from(kept!).equals(Buffer.from(bytes))).toBe(true);
    // the 4 MiB frame can be collected: what is kept owns exactly its own bytes
    expect(kept!.buffer.byteLength).toBe(bytes.byteLength);
    // and a later change to the frame does not reach it
    view.fill(0);
    expect(Buffer.from(m.takeRaw()[0]!).equals(Buffer.from(bytes))).toBe(true);
  });

  it('counts what a raw entry really costs (its bytes, key, map entry and objects)', () => {
    // measured on Node 22: ~430-520 heap bytes per raw entry besides its payload
    expect(RAW_ENTRY_OVERHEAD_BYTES).toBeGreaterThanOrEqual(512);
    const { bytes } = fake(0);
    const perEntry = bytes.byteLength + RAW_ENTRY_OVERHEAD_BYTES;
    const m = new Mempool({ maxTxs: 1000, maxBytes: 20 * perEntry, maxPerSigner: 1000 });
    let admitted = 0;
    for (let i = 0; i < 100; i++) if (m.addRaw(fake(i).sig, fake(i).bytes, 1)) admitted++;
    // half of the bytes may be raw (below): 10 entries, not the ~20 that +200 per entry let in
    expect(admitted).toBe(10);
  });

  it('refuses a raw entry larger than any valid transaction', () => {
    const m = new Mempool();
    const { sig, bytes } = fake(7, LIMITS.maxTxBytes + 1024);
    expect(m.addRaw(sig, bytes, 1)).toBe(false);
    expect(m.hasSignature(sig)).toBe(false);
    const ok = fake(8, LIMITS.maxTxBytes - 400);
    expect(m.addRaw(ok.sig, ok.bytes, 1)).toBe(true);
  });

  it('keeps raw entries to half of the mempool, so decoded transactions always have room', () => {
    const m = new Mempool({ maxTxs: 100, maxBytes: 1 << 30, maxPerSigner: 1000 });
    let raw = 0;
    for (let i = 0; i < 200; i++) if (m.addRaw(fake(i).sig, fake(i).bytes, 1)) raw++;
    expect(raw).toBe(50);
    // an honest client's transaction is not refused as "mempool is full"
    expect(m.add(reg('client'), 2)).toBe(true);
    // the byte share too
    const perEntry = fake(0).bytes.byteLength + RAW_ENTRY_OVERHEAD_BYTES;
    const byBytes = new Mempool({ maxTxs: 100_000, maxBytes: 10 * perEntry, maxPerSigner: 1000 });
    let n = 0;
    for (let i = 0; i < 100; i++) if (byBytes.addRaw(fake(i).sig, fake(i).bytes, 1)) n++;
    expect(n).toBe(5);
  });

  it('holds at most a quarter of the mempool raw for one relaying member', () => {
    const m = new Mempool({ maxTxs: 100, maxBytes: 1 << 30, maxPerSigner: 1000 });
    let fromM1 = 0;
    for (let i = 0; i < 100; i++) if (m.addRaw(fake(i).sig, fake(i).bytes, 1, 'm1')) fromM1++;
    expect(fromM1).toBe(25);
    // another member's gossip still gets in
    expect(m.addRaw(fake(1000).sig, fake(1000).bytes, 1, 'm2')).toBe(true);
    // what leaves the mempool frees the relayer's quota, however it leaves
    m.removeRaw(fake(0).sig);
    expect(m.addRaw(fake(2000).sig, fake(2000).bytes, 1, 'm1')).toBe(true);
    expect(m.addRaw(fake(2001).sig, fake(2001).bytes, 1, 'm1')).toBe(false);
    expect(m.sweepRaw(2)).toBe(26); // all of them arrived at 1
    for (let i = 0; i < 25; i++)
      expect(m.addRaw(fake(3000 + i).sig, fake(3000 + i).bytes, 3, 'm1')).toBe(true);
    expect(m.addRaw(fake(4000).sig, fake(4000).bytes, 3, 'm1')).toBe(false);
    m.takeRaw();
    expect(m.addRaw(fake(4000).sig, fake(4000).bytes, 4, 'm1')).toBe(true);
  });

  it('frees the relayer quota when the decoded copy of a raw entry replaces it', () => {
    const m = new Mempool({ maxTxs: 4, maxBytes: 1 << 30, maxPerSigner: 1000 });
    const a = reg('a');
    expect(m.addRaw(a.tx.signature, canonicalBytes(a.tx), 1, 'm1')).toBe(true);
    expect(m.addRaw(fake(1).sig, fake(1).bytes, 1, 'm1')).toBe(false); // quota: 1 of 4
    expect(m.add(a, 2)).toBe(true);
    expect(m.addRaw(fake(1).sig, fake(1).bytes, 3, 'm1')).toBe(true);
  });

  it('reproduces the reviewer’s attack: 150 frames of 3.7 MiB leave only the small copies held', () => {
    const m = new Mempool();
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 150; i++) {
      const { sig, bytes } = fake(10_000 + i);
      const view = inFrame(bytes, 3_700_000);
      frames.push(view);
      m.addRaw(sig, view, 1, 'member-3');
    }
    const kept = held(m);
    expect(kept).toHaveLength(150);
    const pinned = new Set(kept.map((b) => b.buffer));
    for (const frame of frames) expect(pinned.has(frame.buffer)).toBe(false);
    expect(kept.reduce((sum, b) => sum + b.buffer.byteLength, 0)).toBeLessThan(150 * 400);
  });
});
