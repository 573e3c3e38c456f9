import { nextHeaderFields } from './chain.js';
import {
  BLOCK_VERSION,
  blockHash,
  signBlockHeader,
  type Block,
  type BlockHeader,
  type DecodedBlock,
} from './block.js';
import { toHex } from '../codec/index.js';
import { publicKeyFromSecret } from '../crypto/index.js';
import { getConfig, getHead } from './chain.js';
import type { StateView } from './state.js';
import type { DecodedTx } from './transaction.js';

export interface BuildBlockOptions {
  timestamp: number;
  term: number;
  proposerSecretKey: Uint8Array;
}

/**
 * Cut the next block over `txs` on top of `state` and sign it: what the Raft
 * leader does when it proposes. The timestamp is raised to the previous
 * block's if the proposer's clock is behind it (timestamps never go back).
 */
export function buildBlock(state: StateView, txs: DecodedTx[], opts: BuildBlockOptions): DecodedBlock {
  const config = getConfig(state);
  if (!config || !getHead(state)) throw new Error('cannot build a block before genesis');
  const f = nextHeaderFields(state, txs);
  const header: BlockHeader = {
    v: BLOCK_VERSION,
    chainId: config.chainId,
    height: f.height,
    prevHash: f.prevHash,
    txRoot: f.txRoot,
    txCount: f.txCount,
    ledgerRoot: f.ledgerRoot,
    ledgerSize: f.ledgerSize,
    timestamp: Math.max(opts.timestamp, f.minTimestamp),
    term: opts.term,
    proposer: toHex(publicKeyFromSecret(opts.proposerSecretKey)),
  };
  const block: Block = {
    header,
    signature: signBlockHeader(header, opts.proposerSecretKey),
    txs: txs.map((t) => t.tx),
  };
  return { block, hash: blockHash(header), txs };
}
