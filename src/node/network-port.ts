/**
 * What the node needs from the network (src/network's P2PNetwork implements
 * it; in-process tests can use a loopback). Everything is in node ids: the
 * lower-case hex of a node's Ed25519 public key.
 */
export interface NodeNetwork {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** node ids allowed to speak Raft and exchange blocks and gossip */
  setMembers(nodeIds: string[]): void;
  /** non-blocking; may drop under backpressure (Raft retransmits) */
  sendRaft(to: string, frame: Uint8Array): void;
  onRaftFrame(handler: (from: string, frame: Uint8Array) => void): void;
  /**
   * Gossip a transaction to every connected member. Never rejects: resolves
   * with how many members it was handed to (0 when none, or on a failure,
   * which the network logs) once it is on its way to them.
   */
  publishTx(bytes: Uint8Array): Promise<number>;
  onTx(handler: (from: string, bytes: Uint8Array) => void): void;
  handleSubmit(
    handler: (request: Uint8Array, from: string, signal?: AbortSignal) => Promise<Uint8Array>,
  ): void;
  /**
   * A submit request (NETWORK.md, /bitnexus/submit/1.0.0) to member `nodeId`:
   * its answer's body. Throws an error with code UNREACHABLE when nothing was
   * sent (the member cannot be reached); otherwise when it answers with an
   * error status (an error with that `code`), or `signal` aborts first.
   */
  submitTo(nodeId: string, request: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>;
  handleBlockRange(handler: (from: number, to: number, signal?: AbortSignal) => Promise<Uint8Array[]>): void;
  fetchBlocks(nodeId: string, from: number, to: number, signal?: AbortSignal): Promise<Uint8Array[]>;
  connectedMembers(): string[];
}
