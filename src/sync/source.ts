import {
  blockHash,
  decodeBlock,
  decodeCanonicalTx,
  parseBlock,
  type Block,
  type DecodedBlock,
  type DecodedTx,
  type Receipt,
} from '../ledger/index.js';
import { chainKeys, type ChainStore } from '../storage/index.js';
import { iterateStored, storedText } from '../storage/kv.js';
import { SyncError } from './errors.js';

/**
 * What the sink follows: the committed chain of one node. Small on purpose,
 * so the node (or a test, or an offline tool) can provide it. Everything it
 * returns must be committed: the sink never sees a block that could still
 * change.
 */
export interface ChainSource {
  /** height of the last committed block (-1 before genesis) */
  height(): number;
  /** the stored block (canonical JSON), or undefined above the head */
  getBlockBytes(height: number): Promise<Uint8Array | undefined>;
  /** the chain's receipts of one block, in transaction order */
  getReceipts(height: number): Promise<Receipt[]>;
  /** called after each commit with the new head height; returns an unsubscribe function */
  onCommitted(listener: (height: number) => void): () => void;
}

const decoder = new TextDecoder();

/**
 * A block as a chain store holds it. With `validate` the structure is
 * checked field by field (parseBlock); the sink skips that, because the store
 * holds only blocks that passed validation when committed, and re-processing
 * checks the hash link and every transaction id anyway. Without it, the
 * stored bytes are taken to be canonical, as a node writes them, and each
 * transaction's id is hashed from its part of the stored text
 * (decodeCanonicalTx) instead of canonicalising it again; a wrong id would
 * differ from the id in the chain's receipt, which the sink compares.
 */
export function decodeStoredBlock(bytes: Uint8Array, opts: { validate?: boolean } = {}): DecodedBlock {
  const value: unknown = JSON.parse(decoder.decode(bytes));
  if (opts.validate) return decodeBlock(parseBlock(value));
  const block = value as Block;
  if (block.config !== undefined) return decodeBlock(block);
  const txs = new Array<DecodedTx>(block.txs.length);
  for (let i = 0; i < txs.length; i++) {
    const tx = block.txs[i]!;
    const d = decodeCanonicalTx(tx, JSON.stringify(tx));
    if (!d) return decodeBlock(block);
    txs[i] = d;
  }
  return { block, hash: blockHash(block.header), txs };
}

/** The receipts of one block as stored in a chain store (docs/FORMAT.md §7). */
export async function readReceipts(store: ChainStore, height: number): Promise<Receipt[]> {
  const out: Receipt[] = [];
  // as text where the store can (no off-heap buffer per receipt)
  for await (const [, v] of iterateStored(store.kv, chainKeys.receiptsOf(height))) {
    out.push(JSON.parse(storedText(v)) as Receipt);
  }
  return out;
}

/** Height of the chain in a store, from its `head` state record (-1 when empty). */
export async function storedHeight(store: ChainStore): Promise<number> {
  const v = await store.kv.get(chainKeys.state('head'));
  if (v === undefined) return -1;
  const head = JSON.parse(decoder.decode(v)) as { height?: unknown };
  if (typeof head.height !== 'number')
    throw new SyncError('SOURCE_MISSING_BLOCK', 'head record has no height');
  return head.height;
}

/** A committed block as the node hands it over: its stored bytes and receipts. */
export interface CommittedBlock {
  bytes: Uint8Array;
  receipts: Receipt[];
}

/** blocks handed over with their commit and not read yet, at most… */
const HANDED_OVER_LIMIT = 4096;
/** …and their bytes at most (a sink stalled by an outage must not hold the chain in memory) */
const HANDED_OVER_BYTES = 32 * 1024 * 1024;

/**
 * A ChainSource over a node's chain store. The node calls `committed(height)`
 * after each block it commits; `head` reads the current height (for a
 * LedgerChain: `() => chain.height`).
 *
 * The node may hand the block over with the notice (`committed(height,
 * block)`): the sink then takes it from memory instead of the store. In a
 * node the store is read through the node's thread (mirror-worker.ts), two
 * round trips per block, each waiting its turn in an event loop that is busy
 * with consensus: under load that, not Postgres, was most of the mirror's
 * lag. Each handed-over block is used once (a retry reads the store) and at
 * most HANDED_OVER_LIMIT blocks or HANDED_OVER_BYTES of them wait; older ones
 * are dropped and read when needed.
 */
export class ChainStoreSource implements ChainSource {
  private readonly listeners = new Set<(height: number) => void>();
  private readonly handedOver = new Map<number, CommittedBlock>();
  private handedOverBytes = 0;

  constructor(
    readonly store: ChainStore,
    private readonly head: () => number,
  ) {}

  height(): number {
    return this.head();
  }

  getBlockBytes(height: number): Promise<Uint8Array | undefined> {
    const b = this.handedOver.get(height);
    return b ? Promise.resolve(b.bytes) : this.store.getBlock(height);
  }

  getReceipts(height: number): Promise<Receipt[]> {
    const b = this.handedOver.get(height);
    if (!b) return readReceipts(this.store, height);
    // the sink reads a block's bytes, then its receipts: done with it
    this.drop(height);
    return Promise.resolve(b.receipts);
  }

  onCommitted(listener: (height: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tell followers that `height` is committed (with the block, when the caller has it at hand). */
  committed(height: number, block?: CommittedBlock): void {
    if (block) {
      this.drop(height);
      this.handedOver.set(height, block);
      this.handedOverBytes += block.bytes.length;
      for (const h of this.handedOver.keys()) {
        if (this.handedOver.size <= HANDED_OVER_LIMIT && this.handedOverBytes <= HANDED_OVER_BYTES) break;
        this.drop(h); // the oldest
      }
    }
    for (const l of this.listeners) l(height);
  }

  private drop(height: number): void {
    const b = this.handedOver.get(height);
    if (!b) return;
    this.handedOver.delete(height);
    this.handedOverBytes -= b.bytes.length;
  }
}
