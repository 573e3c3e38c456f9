import { MESSAGE_TYPES, type Entry, type Message, type Snapshot } from '../consensus/index.js';
import { joinBatch, splitBatch } from '../network/index.js';

/**
 * Raft messages on the wire (/bitnexus/raft/1.0.0 frames, docs/NETWORK.md).
 * Binary, big-endian; integers (terms, indexes) as u64 (at most 2^53 − 1),
 * strings as u16 length + UTF-8, byte strings as u32 length + bytes:
 *
 *   [ver u8 = 1][type u8 = index in MESSAGE_TYPES][flags u8: 1 reject, 2 transfer, 4 context, 8 snapshot]
 *   [from str][to str][term u64][logTerm u64][index u64][commit u64][rejectHint u64]
 *   [context bytes]?                                  (flag 4)
 *   [snapshot: index u64, term u64, voters (u16 n, str*), learners (u16 n, str*), data bytes]?  (flag 8)
 *   [nEntries u32] then per entry [index u64][term u64][type u8: 0 normal, 1 confChange][data bytes]
 *
 * `decodeRaftMessage` is strict and throws RaftWireError on anything else: a
 * peer's garbage frame is dropped, never fed to the state machine.
 */

export class RaftWireError extends Error {
  override readonly name = 'RaftWireError';
  readonly code = 'BAD_RAFT_FRAME';
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function encodeRaftMessage(m: Message): Uint8Array {
  const from = enc.encode(m.from);
  const to = enc.encode(m.to);
  let size = 3 + 2 + from.length + 2 + to.length + 5 * 8 + 4;
  if (m.context) size += 4 + m.context.length;
  const snapParts = m.snapshot ? snapshotParts(m.snapshot) : undefined;
  if (snapParts) size += snapParts.size;
  for (const e of m.entries) size += 17 + 4 + e.data.length;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  let o = 0;
  const u8 = (x: number) => {
    v.setUint8(o, x);
    o += 1;
  };
  const u16 = (x: number) => {
    v.setUint16(o, x);
    o += 2;
  };
  const u32 = (x: number) => {
    v.setUint32(o, x);
    o += 4;
  };
  const u64 = (x: number) => {
    v.setBigUint64(o, BigInt(x));
    o += 8;
  };
  const bytes = (b: Uint8Array) => {
    u32(b.length);
    buf.set(b, o);
    o += b.length;
  };
  const str = (b: Uint8Array) => {
    u16(b.length);
    buf.set(b, o);
    o += b.length;
  };
  u8(1);
  u8(MESSAGE_TYPES.indexOf(m.type));
  u8((m.reject ? 1 : 0) | (m.transfer ? 2 : 0) | (m.context ? 4 : 0) | (m.snapshot ? 8 : 0));
  str(from);
  str(to);
  u64(m.term);
  u64(m.logTerm);
  u64(m.index);
  u64(m.commit);
  u64(m.rejectHint);
  if (m.context) bytes(m.context);
  if (m.snapshot && snapParts) {
    u64(m.snapshot.meta.index);
    u64(m.snapshot.meta.term);
    for (const list of [snapParts.voters, snapParts.learners]) {
      u16(list.length);
      for (const id of list) str(id);
    }
    bytes(m.snapshot.data);
  }
  u32(m.entries.length);
  for (const e of m.entries) {
    u64(e.index);
    u64(e.term);
    u8(e.type === 'confChange' ? 1 : 0);
    bytes(e.data);
  }
  return buf;
}

function snapshotParts(s: Snapshot) {
  const voters = s.meta.confState.voters.map((x) => enc.encode(x));
  const learners = s.meta.confState.learners.map((x) => enc.encode(x));
  let size = 16 + 4 + 4 + s.data.length;
  for (const id of [...voters, ...learners]) size += 2 + id.length;
  return { voters, learners, size };
}

export function decodeRaftMessage(buf: Uint8Array): Message {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  const need = (n: number) => {
    if (o + n > buf.length) throw new RaftWireError('truncated frame');
  };
  const u8 = () => {
    need(1);
    return v.getUint8(o++);
  };
  const u16 = () => {
    need(2);
    const x = v.getUint16(o);
    o += 2;
    return x;
  };
  const u32 = () => {
    need(4);
    const x = v.getUint32(o);
    o += 4;
    return x;
  };
  const u64 = () => {
    need(8);
    const x = v.getBigUint64(o);
    o += 8;
    if (x > BigInt(MAX_SAFE)) throw new RaftWireError('integer out of range');
    return Number(x);
  };
  const bytes = () => {
    const n = u32();
    need(n);
    const b = buf.slice(o, o + n);
    o += n;
    return b;
  };
  const str = () => {
    const n = u16();
    need(n);
    try {
      const s = dec.decode(buf.subarray(o, o + n));
      o += n;
      return s;
    } catch {
      throw new RaftWireError('string is not UTF-8');
    }
  };
  if (u8() !== 1) throw new RaftWireError('unknown frame version');
  const type = MESSAGE_TYPES[u8()];
  if (type === undefined) throw new RaftWireError('unknown message type');
  const flags = u8();
  if (flags > 15) throw new RaftWireError('unknown flags');
  const m: Message = {
    type,
    from: str(),
    to: str(),
    term: u64(),
    logTerm: u64(),
    index: u64(),
    commit: u64(),
    rejectHint: u64(),
    reject: (flags & 1) !== 0,
    entries: [],
  };
  if (flags & 2) m.transfer = true;
  if (flags & 4) m.context = bytes();
  if (flags & 8) {
    const index = u64();
    const term = u64();
    const list = () => Array.from({ length: u16() }, () => str());
    const voters = list();
    const learners = list();
    m.snapshot = { meta: { index, term, confState: { voters, learners } }, data: bytes() };
  }
  const n = u32();
  if (n > buf.length) throw new RaftWireError('entry count exceeds frame');
  for (let i = 0; i < n; i++) {
    const index = u64();
    const term = u64();
    const t = u8();
    if (t > 1) throw new RaftWireError('unknown entry type');
    const e: Entry = { index, term, type: t === 1 ? 'confChange' : 'normal', data: bytes() };
    m.entries.push(e);
  }
  if (o !== buf.length) throw new RaftWireError('trailing bytes');
  return m;
}

/**
 * The other kind of frame on the same stream: transactions a member accepted
 * from clients, forwarded to the leader it knows so they need not wait for
 * gossip (docs/NETWORK.md). `[0x80]` then a gossip batch: `[u32 count]
 * ([u32 length][canonical signed transaction])*`. A Raft frame starts with
 * its version, 1.
 */
export const TX_FORWARD_FRAME = 0x80;

export function encodeTxForward(txs: readonly Uint8Array[]): Uint8Array {
  const batch = joinBatch(txs);
  const out = new Uint8Array(1 + batch.length);
  out[0] = TX_FORWARD_FRAME;
  out.set(batch, 1);
  return out;
}

export function isTxForward(frame: Uint8Array): boolean {
  return frame[0] === TX_FORWARD_FRAME;
}

/** The forwarded transactions, or undefined when the frame is malformed or one is over `maxTxBytes`. */
export function decodeTxForward(frame: Uint8Array, maxTxBytes: number): Uint8Array[] | undefined {
  return isTxForward(frame) ? splitBatch(frame.subarray(1), maxTxBytes) : undefined;
}
