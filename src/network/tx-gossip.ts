import { TopicValidatorResult, type GossipSub, type GossipsubMessage, type Message } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import type { Logger } from 'pino';
import { FrameTooLargeError } from './errors.js';
import { nodeIdFromPeerId } from './identity.js';
import type { NetworkLimits } from './limits.js';
import type { MembershipGate } from './membership.js';
import { txTopic } from './protocols.js';
import type { LogRateLimiter } from '../util/rate-limited-log.js';

export type TxHandler = (from: string, tx: Uint8Array) => void;

export interface TxGossipComponents {
  pubsub: GossipSub;
  gate: MembershipGate;
  logger: Logger;
  limits: NetworkLimits;
  warnings: LogRateLimiter;
  chainId: string;
  /** receives each accepted transaction once, with the node id of its originator */
  deliver: TxHandler;
}

export interface TxGossipStats {
  published: number;
  /** publishes that failed (too large, or gossipsub refused) */
  failed: number;
  accepted: number;
  rejected: number;
}

/**
 * Transaction gossip on `/bitnexus/<chainId>/tx/1`. Only members gossip: the
 * topic validator rejects (neither delivers nor forwards) any message whose
 * forwarding peer is not a member, or whose data is over the size limit;
 * rejections also lower the sender's gossipsub score. Publishing floods to
 * every subscribed peer (floodPublish), which for a few validators is every
 * member.
 *
 * Batching: transactions published within one short window (`BATCH_DELAY_MS`,
 * or until a batch reaches `BATCH_BYTES`) travel as one gossip message
 * `[u32 count] ([u32 length] [bytes])*`. Messages are not signed by gossipsub
 * (StrictNoSign): the forwarding peer is authenticated by Noise and must be a
 * member, and every transaction carries its client's signature, which the
 * leader checks before proposing. Signing and verifying one Ed25519 envelope
 * per transaction on every node was the single largest cost under load.
 *
 * Non-members are also shut out by gossipsub's own peer scoring: the host
 * gives them an application score far below the graylist threshold
 * (`memberGossipScore`), so their RPCs are ignored, nothing is published to
 * them and they never join the mesh. (Per-protocol stream middleware,
 * `libp2p.use`, would be the other way, but libp2p 3.3 appends the protocol
 * handler to the shared middleware array on every inbound stream — js-libp2p
 * PR #3534 — so it is not used.)
 */
export class TxGossip {
  readonly topic: string;
  readonly stats: TxGossipStats = { published: 0, failed: 0, accepted: 0, rejected: 0 };

  constructor(private readonly components: TxGossipComponents) {
    this.topic = txTopic(components.chainId);
  }

  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly #validate = (source: PeerId, msg: Message): TopicValidatorResult => {
    const { gate, limits } = this.components;
    if (msg.data.byteLength > BATCH_BYTES + limits.maxTxBytes + 64) {
      return this.#reject(source, 'gossiped transaction batch too large');
    }
    if (!gate.hasPeer(source)) return this.#reject(source, 'transaction gossip relayed by a non-member');
    if (splitBatch(msg.data, limits.maxTxBytes) === undefined)
      return this.#reject(source, 'malformed transaction batch');
    return TopicValidatorResult.Accept;
  };

  readonly #onMessage = (evt: CustomEvent<GossipsubMessage>): void => {
    const { msg, propagationSource } = evt.detail;
    if (msg.topic !== this.topic) return;
    const txs = splitBatch(msg.data, this.components.limits.maxTxBytes);
    if (txs === undefined) return;
    // the member that sent us the batch (with floodPublish among members: its originator)
    const from = nodeIdFromPeerId(propagationSource);
    if (from === undefined) return;
    for (const tx of txs) {
      this.stats.accepted += 1;
      this.components.deliver(from, tx);
    }
  };

  start(): void {
    const { pubsub } = this.components;
    pubsub.topicValidators.set(this.topic, this.#validate);
    pubsub.addEventListener('gossipsub:message', this.#onMessage);
    pubsub.subscribe(this.topic);
  }

  stop(): void {
    const { pubsub } = this.components;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#batch = [];
    this.#batchBytes = 0;
    // a batch never sent reached no one: its publishers hear so now, not never
    for (const w of this.#waiters.splice(0)) w.resolve(0);
    pubsub.unsubscribe(this.topic);
    pubsub.removeEventListener('gossipsub:message', this.#onMessage);
    pubsub.topicValidators.delete(this.topic);
  }

  /**
   * Queues `tx` for the next batch; resolves with how many peers the batch
   * was sent to.
   */
  publish(tx: Uint8Array): Promise<number> {
    const { limits } = this.components;
    if (tx.byteLength > limits.maxTxBytes) {
      this.stats.failed += 1;
      return Promise.reject(new FrameTooLargeError(tx.byteLength, limits.maxTxBytes, 'transaction'));
    }
    this.#batch.push(tx);
    this.#batchBytes += tx.byteLength + 4;
    const flushed = new Promise<number>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (this.#batchBytes >= BATCH_BYTES) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), BATCH_DELAY_MS);
    return flushed;
  }

  #waiters: { resolve: (n: number) => void; reject: (e: unknown) => void }[] = [];

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    const waiters = this.#waiters;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#waiters = [];
    if (batch.length === 0) return;
    this.components.pubsub.publish(this.topic, joinBatch(batch)).then(
      (result) => {
        this.stats.published += batch.length;
        for (const w of waiters) w.resolve(result.recipients.length);
      },
      (err: unknown) => {
        this.stats.failed += batch.length;
        for (const w of waiters) w.reject(err);
      },
    );
  }

  /** Node ids of the members subscribed to the transaction topic. */
  subscribers(): string[] {
    return this.components.pubsub
      .getSubscribers(this.topic)
      .filter((peer) => this.components.gate.hasPeer(peer))
      .flatMap((peer) => nodeIdFromPeerId(peer) ?? []);
  }

  #reject(source: PeerId, reason: string): TopicValidatorResult {
    this.stats.rejected += 1;
    const admitted = this.components.warnings.admit(`gossip:${source.toString()}`);
    if (admitted !== undefined) {
      this.components.logger.warn(
        { peer: source.toString(), topic: this.topic, suppressed: admitted.suppressed },
        `rejected ${reason}`,
      );
    }
    return TopicValidatorResult.Reject;
  }
}

/** How long a transaction waits for others to share its gossip message. */
export const BATCH_DELAY_MS = 2;
/** A batch is sent at once when it reaches this size. */
export const BATCH_BYTES = 256 * 1024;

export function joinBatch(txs: readonly Uint8Array[]): Uint8Array {
  let size = 4;
  for (const t of txs) size += 4 + t.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, txs.length);
  let off = 4;
  for (const t of txs) {
    view.setUint32(off, t.byteLength);
    out.set(t, off + 4);
    off += 4 + t.byteLength;
  }
  return out;
}

/**
 * The transactions of a batch, or undefined when it is malformed or holds one
 * above `maxTxBytes`. They are views into `data`, not copies: a caller that
 * keeps one must copy it (Mempool.addRaw does), or it keeps the whole batch
 * (or Raft frame, or muxer message) alive with it.
 */
export function splitBatch(data: Uint8Array, maxTxBytes: number): Uint8Array[] | undefined {
  if (data.byteLength < 4) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(0);
  if (count > data.byteLength) return undefined;
  const out: Uint8Array[] = [];
  let off = 4;
  for (let i = 0; i < count; i++) {
    if (off + 4 > data.byteLength) return undefined;
    const len = view.getUint32(off);
    if (len > maxTxBytes || off + 4 + len > data.byteLength) return undefined;
    out.push(data.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return off === data.byteLength ? out : undefined;
}
