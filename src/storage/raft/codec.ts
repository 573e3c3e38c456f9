import type { ConfState, Entry, EntryType, HardState, Snapshot } from './types.js';

// Binary encodings of persisted Raft records. All integers are big-endian;
// indexes and terms are u64 (JS numbers, so at most 2^53 - 1); strings are
// UTF-8 with a u16 byte length. Every value starts with a format version byte
// (currently 1) so the layout can evolve.
//
//   HardState: [ver u8][term u64][commit u64][hasVote u8][voteLen u16][vote]
//   Entry:     [ver u8][term u64][type u8: 0 normal, 1 confChange][data...]
//              (the index is in the key: see level-store.ts)
//   Snapshot:  [ver u8][index u64][term u64]
//              [nVoters u16]{[len u16][id]}*[nLearners u16]{[len u16][id]}*
//              [dataLen u32][data]
//   LogMeta:   [ver u8][lastIndex u64]

const VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class RaftRecordError extends Error {
  override readonly name = 'RaftRecordError';
  readonly code = 'corruptRecord';
}

class Writer {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.reserve(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  u64(v: number): this {
    this.reserve(8);
    this.view.setBigUint64(this.len, BigInt(v));
    this.len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  str(s: string): this {
    const b = encoder.encode(s);
    if (b.length > 0xffff) throw new RangeError('string too long');
    return this.u16(b.length).bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

class Reader {
  private off = 0;
  private readonly view: DataView;
  private readonly buf: Uint8Array;
  constructor(input: Uint8Array) {
    // A plain Uint8Array view, so that slices are plain copies even when the
    // database hands us a Buffer.
    this.buf = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }

  private need(n: number): void {
    if (this.off + n > this.buf.length) throw new RaftRecordError('record truncated');
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.off++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.off);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off);
    this.off += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.off);
    this.off += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RaftRecordError('integer beyond 2^53');
    return Number(v);
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.slice(this.off, this.off + n);
    this.off += n;
    return b;
  }

  rest(): Uint8Array {
    return this.bytes(this.buf.length - this.off);
  }

  str(): string {
    try {
      return decoder.decode(this.bytes(this.u16()));
    } catch (e) {
      if (e instanceof RaftRecordError) throw e;
      throw new RaftRecordError('invalid UTF-8');
    }
  }

  version(): void {
    const v = this.u8();
    if (v !== VERSION) throw new RaftRecordError(`unknown record version ${v}`);
  }

  end(): void {
    if (this.off !== this.buf.length) throw new RaftRecordError('trailing bytes');
  }
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w = new Writer().u8(VERSION).u64(hs.term).u64(hs.commit);
  if (hs.vote === null) w.u8(0).u16(0);
  else w.u8(1).str(hs.vote);
  return w.finish();
}

export function decodeHardState(b: Uint8Array): HardState {
  const r = new Reader(b);
  r.version();
  const term = r.u64();
  const commit = r.u64();
  const hasVote = r.u8();
  const vote = r.str();
  r.end();
  return { term, commit, vote: hasVote === 1 ? vote : null };
}

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

export function encodeEntry(e: Entry): Uint8Array {
  return new Writer()
    .u8(VERSION)
    .u64(e.term)
    .u8(e.type === 'normal' ? 0 : 1)
    .bytes(e.data)
    .finish();
}

export function decodeEntry(index: number, b: Uint8Array): Entry {
  const r = new Reader(b);
  r.version();
  const term = r.u64();
  const type = ENTRY_TYPES[r.u8()];
  if (type === undefined) throw new RaftRecordError('unknown entry type');
  return { index, term, type, data: r.rest() };
}

function writeIds(w: Writer, ids: readonly string[]): void {
  w.u16(ids.length);
  for (const id of ids) w.str(id);
}

function readIds(r: Reader): string[] {
  const n = r.u16();
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.str());
  return out;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new Writer().u8(VERSION).u64(s.meta.index).u64(s.meta.term);
  writeIds(w, s.meta.confState.voters);
  writeIds(w, s.meta.confState.learners);
  return w.u32(s.data.length).bytes(s.data).finish();
}

export function decodeSnapshot(b: Uint8Array): Snapshot {
  const r = new Reader(b);
  r.version();
  const index = r.u64();
  const term = r.u64();
  const confState: ConfState = { voters: readIds(r), learners: readIds(r) };
  const data = r.bytes(r.u32());
  r.end();
  return { meta: { index, term, confState }, data };
}

export function encodeLogMeta(lastIndex: number): Uint8Array {
  return new Writer().u8(VERSION).u64(lastIndex).finish();
}

export function decodeLogMeta(b: Uint8Array): number {
  const r = new Reader(b);
  r.version();
  const lastIndex = r.u64();
  r.end();
  return lastIndex;
}
