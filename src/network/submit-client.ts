import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { createLibp2p } from 'libp2p';
import { parseMultiaddr } from './config.js';
import { FrameTooLargeError, RemoteError, RequestTimeoutError } from './errors.js';
import { closeStream, decodeStatusFrame, framed } from './framing.js';
import { DEFAULT_LIMITS } from './limits.js';
import { SUBMIT_PROTOCOL } from './protocols.js';
import { deadline, toError } from './wait.js';

export interface SubmitOptions {
  signal?: AbortSignal;
  /** the whole exchange: dial, send, answer (default 30 s) */
  timeoutMs?: number;
  maxRequestBytes?: number;
  maxResponseBytes?: number;
}

const DEFAULT_SUBMIT_TIMEOUT_MS = 30_000;

/**
 * Client side of `/bitnexus/submit/1.0.0`, for `bitnexus submit --p2p`. Starts
 * a throwaway dial-only libp2p node (random identity, no listener, TCP + Noise
 * + Yamux), sends `request` to the node at `address` (a multiaddr, ideally
 * ending in /p2p/<peer id> so the remote's identity is checked), and returns
 * the response body. An error status frame from the node is thrown as a
 * RemoteError with the node's code (`BUSY`: the node is at one of its submit
 * limits and handled nothing; retry shortly); running out of time as a
 * RequestTimeoutError. The node is always stopped before this returns.
 */
export async function submitOverP2P(
  address: string,
  request: Uint8Array,
  opts: SubmitOptions = {},
): Promise<Uint8Array> {
  const target = parseMultiaddr(address);
  const maxRequest = opts.maxRequestBytes ?? DEFAULT_LIMITS.maxSubmitRequestBytes;
  if (request.byteLength > maxRequest) {
    throw new FrameTooLargeError(request.byteLength, maxRequest, 'submit request');
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_SUBMIT_TIMEOUT_MS;
  const budget = deadline(timeoutMs, opts.signal);
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
  });
  try {
    const stream = await node.dialProtocol(target, SUBMIT_PROTOCOL, { signal: budget.signal });
    return await exchangeSubmit(
      stream,
      request,
      opts.maxResponseBytes ?? DEFAULT_LIMITS.maxSubmitResponseBytes,
      budget.signal,
    );
  } catch (err) {
    if (budget.signal.aborted && budget.signal.reason instanceof RequestTimeoutError) {
      throw new RequestTimeoutError(`submit to ${address} timed out after ${timeoutMs} ms`);
    }
    throw err;
  } finally {
    budget.clear();
    await node.stop();
  }
}

/**
 * One exchange on an open `/bitnexus/submit/1.0.0` stream: the request frame
 * out, the status frame back. Returns the answer's body; an error status is
 * thrown as a RemoteError with the node's code (a node at its limits answers
 * `BUSY` at once, before it reads the request). The stream is closed, or
 * aborted on any failure.
 */
export async function exchangeSubmit(
  stream: Stream,
  request: Uint8Array,
  maxResponseBytes: number,
  signal: AbortSignal,
): Promise<Uint8Array> {
  try {
    const lp = framed(stream, 1 + maxResponseBytes);
    await lp.write(request, { signal });
    const status = decodeStatusFrame((await lp.read({ signal })).subarray());
    await closeStream(stream, signal);
    if (!status.ok) throw new RemoteError(status.code, status.message);
    return status.body;
  } catch (err) {
    stream.abort(toError(err));
    throw err;
  }
}
