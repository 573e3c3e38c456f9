/**
 * A bounded FIFO of frames for one peer. When a push would exceed the frame or
 * byte bound, the oldest frames are dropped to make room: Raft tolerates loss
 * and retransmits, and the newest message carries the freshest state.
 */
export class FrameQueue {
  #frames: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;

  constructor(
    private readonly maxFrames: number,
    private readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.#frames.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Appends `frame`; returns how many older frames were dropped to fit it. */
  push(frame: Uint8Array): number {
    let dropped = 0;
    while (
      this.length > 0 &&
      (this.length + 1 > this.maxFrames || this.#bytes + frame.byteLength > this.maxBytes)
    ) {
      this.shift();
      dropped += 1;
    }
    this.#frames.push(frame);
    this.#bytes += frame.byteLength;
    return dropped;
  }

  shift(): Uint8Array | undefined {
    if (this.length === 0) return undefined;
    const frame = this.#frames[this.#head];
    this.#frames[this.#head] = EMPTY;
    this.#head += 1;
    if (frame !== undefined) this.#bytes -= frame.byteLength;
    if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return frame;
  }

  /** Empties the queue; returns how many frames were discarded. */
  clear(): number {
    const n = this.length;
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
    return n;
  }
}

const EMPTY = new Uint8Array(0);
