import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';
import type { Stream } from '@libp2p/interface';
import { ProtocolViolationError } from './errors.js';
import { MAX_STREAM_WINDOW_BYTES } from './limits.js';
import { toError } from './wait.js';

/**
 * Wire helpers shared by the protocols. Every frame is an unsigned-varint
 * length followed by that many bytes (`lpStream`). Request/response protocols
 * answer with a status frame first: one status byte, then a body
 * (docs/NETWORK.md §Status frames).
 */

/** Room for the varint length prefix on top of a frame's payload. */
const PREFIX_ROOM = 16;

/**
 * Room, besides one muxer message, for the small messages that one socket
 * read can complete along with it before the reader runs (a read is at most
 * 64 KiB).
 */
const MESSAGE_SLACK = 1024 * 1024;

export interface FramedOptions {
  /**
   * Frames follow each other back to back on this stream and are read one
   * after another (Raft, a block-range answer). Then the reader's buffer must
   * hold, besides the frame being read, the muxer message that completes it:
   * yamux hands a reader data in messages as large as the stream's receive
   * window, and such a message can carry the end of one frame and the next
   * frames. Sized for one frame only, a burst of honest frames (1.5 MiB ones,
   * or the 4.2 MiB of an append carrying one full block) overflowed it and the
   * stream was reset, losing what it carried. Not needed where a stream
   * carries a single frame each way (submit, a block-range request).
   */
  consecutive?: boolean;
}

/**
 * Wraps `stream` for length-prefixed frames of at most `maxFrameBytes`.
 *
 * Two lpStream defaults need care: it buffers 4 MiB by default (as does the
 * stream while no reader is attached), and both must hold one whole frame
 * (and one muxer message more for `consecutive` frames); and its default
 * varint decoder keeps reading a length prefix that never ends (0xff 0xff …)
 * forever, because its prefix-length check only runs after a successful
 * decode. Our decoder gives up after as many bytes as the largest allowed
 * length needs. Whatever is buffered beyond the room aborts the stream.
 */
export function framed(
  stream: Stream,
  maxFrameBytes: number,
  options: FramedOptions = {},
): LengthPrefixedStream<Stream> {
  const room =
    maxFrameBytes +
    PREFIX_ROOM +
    (options.consecutive === true ? MAX_STREAM_WINDOW_BYTES + MESSAGE_SLACK : 0);
  if (stream.maxReadBufferLength < room) stream.maxReadBufferLength = room;
  const maxPrefixBytes = varintLength(maxFrameBytes);
  return lpStream(stream, {
    maxDataLength: maxFrameBytes,
    maxLengthLength: maxPrefixBytes,
    maxBufferSize: room,
    lengthDecoder: (prefix) => decodeLengthPrefix(prefix, maxPrefixBytes),
  });
}

/**
 * Decodes an unsigned LEB128 varint. Throws RangeError while the prefix is
 * merely incomplete (lpStream then reads another byte) and
 * ProtocolViolationError once it is longer than `maxPrefixBytes`.
 */
export function decodeLengthPrefix(prefix: ByteList, maxPrefixBytes: number): number {
  let value = 0;
  for (let i = 0; i < prefix.byteLength; i++) {
    const byte = prefix.get(i);
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return value;
    if (i + 1 >= maxPrefixBytes) {
      throw new ProtocolViolationError(`frame length prefix longer than ${maxPrefixBytes} bytes`);
    }
  }
  throw new RangeError('incomplete frame length prefix');
}

/** What the decoder needs of lpStream's Uint8ArrayList (not imported: it is not our dependency). */
export interface ByteList {
  readonly byteLength: number;
  get(index: number): number;
}

/** `frame` with its length prefix, ready to send on a stream as is (no lpStream needed). */
export function lengthPrefixed(frame: Uint8Array): Uint8Array {
  const prefix: number[] = [];
  let n = frame.byteLength;
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  prefix.push(n);
  const out = new Uint8Array(prefix.length + frame.byteLength);
  out.set(prefix, 0);
  out.set(frame, prefix.length);
  return out;
}

function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    n += 1;
  }
  return n;
}

/**
 * True when a read failed only because the remote closed its end between two
 * frames (lpStream reports that as an UnexpectedEOFError).
 */
export function isEndOfStream(err: unknown, stream: Stream): boolean {
  return (
    err instanceof Error &&
    err.name === 'UnexpectedEOFError' &&
    stream.remoteWriteStatus === 'closed' &&
    stream.status !== 'aborted' &&
    stream.status !== 'reset'
  );
}

/** Closes our writable end; a close that fails or times out becomes an abort. */
export async function closeStream(stream: Stream, signal: AbortSignal): Promise<void> {
  try {
    await stream.close({ signal });
  } catch (err) {
    stream.abort(toError(err));
  }
}

export const STATUS_OK = 0;
export const STATUS_ERROR = 1;

export type StatusFrame = { ok: true; body: Uint8Array } | { ok: false; code: string; message: string };

export function okFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + body.byteLength);
  frame[0] = STATUS_OK;
  frame.set(body, 1);
  return frame;
}

/** An error status frame: status byte 1, then UTF-8 JSON `{"code","message"}` (message cut to 512 chars). */
export function errorFrame(code: string, message: string): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify({ code, message: message.slice(0, 512) }));
  const frame = new Uint8Array(1 + json.byteLength);
  frame[0] = STATUS_ERROR;
  frame.set(json, 1);
  return frame;
}

export function decodeStatusFrame(frame: Uint8Array): StatusFrame {
  const status = frame[0];
  if (status === STATUS_OK) return { ok: true, body: frame.subarray(1) };
  if (status === STATUS_ERROR) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(1)));
    } catch {
      throw new ProtocolViolationError('error status frame is not UTF-8 JSON');
    }
    const { code, message } = (parsed ?? {}) as { code?: unknown; message?: unknown };
    if (typeof code !== 'string' || typeof message !== 'string') {
      throw new ProtocolViolationError('error status frame lacks a string code and message');
    }
    return { ok: false, code, message };
  }
  throw new ProtocolViolationError(`unknown status byte ${String(status)}`);
}

/** The error code to put in an error frame for a thrown value; `INTERNAL` when it has none. */
export function errorCodeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'INTERNAL';
}
