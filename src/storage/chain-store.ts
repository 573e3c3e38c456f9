import type { BatchOp, KeyValueStore } from './kv.js';

/**
 * Where a node keeps its chain (docs/FORMAT.md §Storage). One LevelDB, a key
 * prefix per store; values are the canonical bytes the ledger produced, so an
 * auditor can compare them byte for byte with a re-execution.
 *
 *   b/<height:12>                block (canonical JSON)
 *   h/<blockHash>                height (decimal)
 *   t/<txId>                     "<height>:<index>" of the transaction's first inclusion
 *   r/<height:12>/<index:6>      receipt (canonical JSON)
 *   s/<stateKey>                 ledger state record (canonical JSON)
 *   m/<level:2>/<index:12>       whole-ledger Merkle tree node (32 bytes)
 *
 * Numbers are zero-padded decimals so that key order is numeric order.
 */

export interface BlockWrite {
  height: number;
  hash: string;
  block: Uint8Array;
  /** ids of the block's transactions that were never indexed before, with their index in the block */
  newTxs: { id: string; index: number }[];
  receipts: Uint8Array[];
  state: [string, Uint8Array][];
  merkleNodes: { level: number; index: number; hash: Uint8Array }[];
}

export const prefixes = {
  block: 'b/',
  hash: 'h/',
  tx: 't/',
  receipt: 'r/',
  state: 's/',
  merkle: 'm/',
} as const;

const pad = (n: number, width: number) => n.toString().padStart(width, '0');

export const chainKeys = {
  block: (height: number) => `b/${pad(height, 12)}`,
  hash: (hash: string) => `h/${hash}`,
  tx: (id: string) => `t/${id}`,
  receipt: (height: number, index: number) => `r/${pad(height, 12)}/${pad(index, 6)}`,
  receiptsOf: (height: number) => `r/${pad(height, 12)}/`,
  state: (key: string) => `s/${key}`,
  merkle: (level: number, index: number) => `m/${pad(level, 2)}/${pad(index, 12)}`,
} as const;

export interface TxLocation {
  height: number;
  index: number;
}

const text = new TextEncoder();
const decoder = new TextDecoder();

export class ChainStore {
  constructor(readonly kv: KeyValueStore) {}

  /** Everything one committed block changes, in one atomic batch (synced unless the caller has the data durably elsewhere). */
  async commitBlock(w: BlockWrite, opts: { sync: boolean } = { sync: true }): Promise<void> {
    const ops: BatchOp[] = [
      { type: 'put', key: chainKeys.block(w.height), value: w.block },
      { type: 'put', key: chainKeys.hash(w.hash), value: text.encode(String(w.height)) },
    ];
    for (const { id, index } of w.newTxs) {
      ops.push({ type: 'put', key: chainKeys.tx(id), value: text.encode(`${w.height}:${index}`) });
    }
    w.receipts.forEach((r, i) => ops.push({ type: 'put', key: chainKeys.receipt(w.height, i), value: r }));
    for (const [k, v] of w.state) ops.push({ type: 'put', key: chainKeys.state(k), value: v });
    for (const n of w.merkleNodes)
      ops.push({ type: 'put', key: chainKeys.merkle(n.level, n.index), value: n.hash });
    await this.kv.batch(ops, { sync: opts.sync });
  }

  /** (Re)write state records, e.g. to force a sync point. */
  async commitState(entries: [string, Uint8Array][], opts: { sync: boolean }): Promise<void> {
    await this.kv.batch(
      entries.map(([k, value]) => ({ type: 'put' as const, key: chainKeys.state(k), value })),
      { sync: opts.sync },
    );
  }

  getBlock(height: number): Promise<Uint8Array | undefined> {
    return this.kv.get(chainKeys.block(height));
  }

  async getHeightByHash(hash: string): Promise<number | undefined> {
    const v = await this.kv.get(chainKeys.hash(hash));
    return v === undefined ? undefined : Number(decoder.decode(v));
  }

  async getTxLocation(id: string): Promise<TxLocation | undefined> {
    const v = await this.kv.get(chainKeys.tx(id));
    return v === undefined ? undefined : parseTxLocation(v);
  }

  getReceipt(height: number, index: number): Promise<Uint8Array | undefined> {
    return this.kv.get(chainKeys.receipt(height, index));
  }

  async getMerkleNode(level: number, index: number): Promise<Uint8Array> {
    const v = await this.kv.get(chainKeys.merkle(level, index));
    if (v === undefined) throw new Error(`missing Merkle node ${level}/${index}`);
    return v;
  }

  /** Every state record, key without the `s/` prefix. */
  async *stateEntries(): AsyncIterable<[string, Uint8Array]> {
    for await (const [k, v] of this.kv.iterate(prefixes.state)) yield [k.slice(prefixes.state.length), v];
  }

  close(): Promise<void> {
    return this.kv.close();
  }
}

export function parseTxLocation(v: Uint8Array): TxLocation {
  const [h, i] = decoder.decode(v).split(':');
  return { height: Number(h), index: Number(i) };
}
