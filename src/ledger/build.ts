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
import { StateOverlay, type StateView } from './state.js';
import { applyTransaction, REJECTED_AT_ADMISSION } from './apply.js';
import type { ResultCode } from './receipt.js';
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

export interface Selection {
  included: DecodedTx[];
  rejected: { tx: DecodedTx; code: ResultCode }[];
}

/**
 * Choose the transactions of the next block from `candidates` (in order):
 * each is applied on top of the ones chosen before it, against the state the
 * proposer's log will produce; those refused at admission are set aside with
 * their code, the others (successes and recorded failures alike) go in.
 */
export function selectTransactions(
  state: StateView,
  candidates: Iterable<DecodedTx>,
  blockTime: number,
  max: number,
): Selection {
  const head = getHead(state);
  if (!head) throw new Error('cannot select transactions before genesis');
  const overlay = new StateOverlay(state);
  const out: Selection = { included: [], rejected: [] };
  for (const dtx of candidates) {
    if (out.included.length >= max) break;
    // each candidate on a child overlay, so a refused one leaves no trace (not even its nonce)
    const child = new StateOverlay(overlay);
    const result = applyTransaction(child, dtx, head.height + 1, Math.max(blockTime, head.timestamp));
    if (REJECTED_AT_ADMISSION.has(result.code)) {
      out.rejected.push({ tx: dtx, code: result.code });
    } else {
      out.included.push(dtx);
      for (const [k, v] of child.writes) overlay.set(k, v);
    }
  }
  return out;
}
