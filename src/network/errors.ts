/**
 * Errors raised by the network layer. Each class is told apart by `name`; its
 * `code` is stable and safe to log or to show to an operator. Remote refusals
 * carry the code the remote sent (see docs/NETWORK.md §Status frames).
 */

/** The network was used before `start()`, after `stop()`, or started twice. */
export class NetworkStateError extends Error {
  override readonly name = 'NetworkStateError';
  constructor(
    readonly code: 'NOT_STARTED' | 'ALREADY_STARTED' | 'STOPPED',
    message: string,
  ) {
    super(message);
  }
}

/** A peer could not be reached: nothing was sent to it (the dial, or opening the stream, failed). */
export class PeerUnreachableError extends Error {
  override readonly name = 'PeerUnreachableError';
  readonly code = 'UNREACHABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Configuration or arguments that can never work (bad node id, bad multiaddr, bad range). */
export class NetworkConfigError extends Error {
  override readonly name = 'NetworkConfigError';
  constructor(
    readonly code: 'BAD_NODE_ID' | 'BAD_SEED' | 'BAD_MULTIADDR' | 'BAD_LIMIT' | 'BAD_RANGE',
    message: string,
  ) {
    super(message);
  }
}

/** A frame, transaction, request or response is larger than its limit. */
export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
  readonly code = 'FRAME_TOO_LARGE';
  constructor(
    readonly size: number,
    readonly limit: number,
    what: string,
  ) {
    super(`${what} of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The peer is not in the current membership, so the protocol refuses it. */
export class NotMemberError extends Error {
  override readonly name = 'NotMemberError';
  readonly code = 'NOT_MEMBER';
}

/** The remote broke the wire format (bad status frame, too many blocks, truncated stream). */
export class ProtocolViolationError extends Error {
  override readonly name = 'ProtocolViolationError';
  readonly code = 'PROTOCOL_VIOLATION';
}

/** The remote answered with an error status frame; `code` is the remote's code. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A request did not complete within its time limit. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  readonly code = 'TIMEOUT';
}
