import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import type { Logger } from 'pino';
import { FrameTooLargeError } from './errors.js';
import { nodeIdFromPeerId } from './identity.js';
import type { NetworkLimits } from './limits.js';
import type { MembershipGate } from './membership.js';
import { txTopic } from './protocols.js';
import type { LogRateLimiter } from './rate-limited-log.js';

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
 * signed originator or forwarding peer is not a member, or whose data is over
 * the size limit; rejections also lower the sender's gossipsub score.
 * Messages are signed by the originator's node key (StrictSign), so `from` is
 * authenticated. Publishing floods to every subscribed peer (floodPublish),
 * which for a few validators is every member.
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

  readonly #validate = (source: PeerId, msg: Message): TopicValidatorResult => {
    const { gate, limits } = this.components;
    if (msg.type !== 'signed') return this.#reject(source, 'unsigned transaction gossip');
    if (msg.data.byteLength > limits.maxTxBytes)
      return this.#reject(source, 'gossiped transaction too large');
    if (!gate.hasPeer(msg.from)) return this.#reject(source, 'transaction gossip from a non-member');
    if (!gate.hasPeer(source)) return this.#reject(source, 'transaction gossip relayed by a non-member');
    return TopicValidatorResult.Accept;
  };

  readonly #onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail;
    if (msg.topic !== this.topic || msg.type !== 'signed') return;
    const from = nodeIdFromPeerId(msg.from);
    if (from === undefined) return;
    this.stats.accepted += 1;
    this.components.deliver(from, msg.data);
  };

  start(): void {
    const { pubsub } = this.components;
    pubsub.topicValidators.set(this.topic, this.#validate);
    pubsub.addEventListener('message', this.#onMessage);
    pubsub.subscribe(this.topic);
  }

  stop(): void {
    const { pubsub } = this.components;
    pubsub.unsubscribe(this.topic);
    pubsub.removeEventListener('message', this.#onMessage);
    pubsub.topicValidators.delete(this.topic);
  }

  /** Publishes `tx`; resolves with how many peers it was sent to. */
  async publish(tx: Uint8Array): Promise<number> {
    const { limits, pubsub } = this.components;
    if (tx.byteLength > limits.maxTxBytes) {
      this.stats.failed += 1;
      throw new FrameTooLargeError(tx.byteLength, limits.maxTxBytes, 'transaction');
    }
    try {
      const result = await pubsub.publish(this.topic, tx);
      this.stats.published += 1;
      return result.recipients.length;
    } catch (err) {
      this.stats.failed += 1;
      throw err;
    }
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
