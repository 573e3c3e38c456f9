import {
  decodeRecord,
  encodeDecodedBlock,
  encodeReceipt,
  encodeRecord,
  getHead,
  keys,
  LedgerState,
  processBlock,
  type DecodedBlock,
  type HeadRec,
  type ProcessedBlock,
  type Receipt,
} from '../ledger/index.js';
import { ChainStore, type KeyValueStore } from '../storage/index.js';

/**
 * The committed chain of one node: the ledger state in memory, and the block
 * store, indexes, receipts and Merkle nodes on disk. `commit` validates and
 * applies a block, writes everything it changes in one synced batch, and only
 * then updates the in-memory state, so a crash at any point leaves the store at
 * a block boundary.
 */
export class LedgerChain {
  private constructor(
    readonly store: ChainStore,
    readonly state: LedgerState,
  ) {}

  /** Open a chain store and load its state (empty before genesis). */
  static async open(kv: KeyValueStore): Promise<LedgerChain> {
    const store = new ChainStore(kv);
    const state = new LedgerState();
    for await (const [key, bytes] of store.stateEntries()) state.records.set(key, decodeRecord(bytes));
    return new LedgerChain(store, state);
  }

  get head(): HeadRec | undefined {
    return getHead(this.state);
  }

  get height(): number {
    return this.head?.height ?? -1;
  }

  /**
   * Validate, apply and persist the next block. `checkSignatures: false` is
   * for blocks whose signatures were verified already (the auditor's workers,
   * or a node's mempool admission). `processed` is the result of
   * `processBlock` for this block against a state equal to this chain's
   * current state (a leader's own block, processed when it was cut); the
   * caller vouches for that equality, and the block is not processed again.
   */
  async commit(
    block: DecodedBlock,
    opts: { checkSignatures: boolean; sync?: boolean; processed?: ProcessedBlock } = {
      checkSignatures: true,
    },
  ): Promise<Receipt[]> {
    const processed = opts.processed ?? processBlock(this.state, block, opts);
    await this.store.commitBlock(toBlockWrite(block, processed), { sync: opts.sync ?? true });
    this.state.merge(processed.writes);
    return processed.receipts;
  }

  /**
   * Make every earlier unsynced block write durable (LevelDB's log is
   * sequential, so one synced write covers all before it). A node that
   * commits blocks with `sync: false` — the Raft log already holds them
   * durably and replays them after a crash — calls this before it compacts
   * the Raft log past them.
   */
  async flush(): Promise<void> {
    const head = this.head;
    if (!head) return;
    await this.store.commitState([[keys.head, encodeRecord(head)]], { sync: true });
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

export function toBlockWrite(block: DecodedBlock, processed: ProcessedBlock) {
  if (processed.rootsTrusted)
    throw new Error(`block ${block.block.header.height} was processed with trustRoots: it cannot be stored`);
  return {
    height: block.block.header.height,
    hash: block.hash,
    block: encodeDecodedBlock(block),
    newTxs: processed.receipts
      .filter((r) => r.code !== 'DUPLICATE_TX')
      .map((r) => ({ id: r.tx, index: r.index })),
    receipts: processed.receipts.map(encodeReceipt),
    state: [...processed.writes].map(([k, v]): [string, Uint8Array] => [k, encodeRecord(v)]),
    merkleNodes: processed.merkleNodes,
  };
}
