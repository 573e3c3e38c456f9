import { fromHex, toHex } from '../codec/index.js';
import {
  appendLeaves,
  frontierRoot,
  leafHash,
  merkleRoot,
  type MerkleFrontier,
  type MerkleNode,
} from '../crypto/index.js';
import { applyBlock } from './apply.js';
import { blockHash, txRootOf, verifyBlockSignature, ZERO_HASH, type DecodedBlock } from './block.js';
import { genesisConfigHash, type GenesisConfig } from './genesis.js';
import type { Receipt } from './receipt.js';
import {
  keys,
  type ConfigRec,
  type HeadRec,
  type MembersRec,
  type StateRecord,
  type StateView,
} from './state.js';
import { verifyTxSignature } from './transaction.js';

/** Why a block cannot extend the chain. A stored block failing this means the data is corrupt or forged. */
export const BLOCK_ERROR_CODES = [
  'BAD_HEIGHT',
  'BAD_PREV_HASH',
  'WRONG_CHAIN',
  'BAD_TIMESTAMP',
  'BAD_TX_COUNT',
  'TOO_MANY_TXS',
  'BAD_TX_ROOT',
  'BAD_LEDGER_ROOT',
  'BAD_PROPOSER',
  'BAD_BLOCK_SIGNATURE',
  'BAD_TX_SIGNATURE',
  'BAD_GENESIS',
] as const;
export type BlockErrorCode = (typeof BLOCK_ERROR_CODES)[number];

export class BlockError extends Error {
  override readonly name = 'BlockError';
  constructor(
    readonly code: BlockErrorCode,
    readonly height: number,
    readonly field: string,
    message: string,
    readonly txIndex?: number,
  ) {
    super(`block ${height}${txIndex === undefined ? '' : ` tx ${txIndex}`} ${field}: ${message}`);
  }
}

export interface ProcessedBlock {
  receipts: Receipt[];
  /** state writes including the new head, to persist in one batch */
  writes: Map<string, StateRecord>;
  /** new perfect-subtree nodes of the whole-ledger tree */
  merkleNodes: MerkleNode[];
  /** processed with `trustRoots`: no Merkle nodes, a head without frontier; never to be stored */
  rootsTrusted?: true;
  head: HeadRec;
}

export interface ProcessOptions {
  /**
   * Check the proposer's and every transaction's signature here. An auditor
   * that checks them on worker threads passes false; a node checks
   * transaction signatures when they enter the mempool and block signatures
   * when it receives a block.
   */
  checkSignatures: boolean;
  /**
   * Take the header's Merkle roots as given instead of recomputing them, for
   * a block read back from this node's own chain store, where it passed
   * processBlock with its roots checked when it was committed. The Postgres
   * sink passes true: hashing both trees was ~13 % of its work, and its
   * receipts check still catches a stored transaction that does not match
   * its id. The resulting head holds no whole-ledger frontier (no peaks), so a
   * state built this way can only go on with trustRoots: processing a block
   * on it with roots checked throws (once the ledger holds a transaction), and
   * LedgerChain refuses to store such a result (`rootsTrusted`).
   */
  trustRoots?: boolean;
}

export function getHead(state: StateView): HeadRec | undefined {
  return state.get(keys.head) as HeadRec | undefined;
}

export function getConfig(state: StateView): GenesisConfig | undefined {
  return (state.get(keys.config) as ConfigRec | undefined)?.config;
}

export function frontierOf(head: HeadRec): MerkleFrontier {
  return { size: head.ledgerSize, peaks: head.peaks.map((p) => fromHex(p)) };
}

/** The genesis block's writes: config, members, operators as participants, head. */
export function processGenesis(block: DecodedBlock, opts: ProcessOptions): ProcessedBlock {
  const { header, config } = block.block;
  const fail = (field: string, msg: string): never => {
    throw new BlockError('BAD_GENESIS', 0, field, msg);
  };
  if (header.height !== 0 || !config) fail('header.height', 'the first block must be the genesis block');
  const cfg = config as GenesisConfig;
  if (header.prevHash !== ZERO_HASH) fail('header.prevHash', 'must be zero');
  if (header.txCount !== 0 || block.txs.length !== 0) fail('txs', 'the genesis block holds no transactions');
  if (header.chainId !== cfg.chainId) fail('header.chainId', 'differs from config.chainId');
  if (header.configHash !== genesisConfigHash(cfg))
    fail('header.configHash', 'is not the hash of the config');
  if (header.timestamp !== cfg.createdAt) fail('header.timestamp', 'differs from config.createdAt');
  if (header.term !== 0 || header.ledgerSize !== 0) fail('header', 'term and ledgerSize must be 0');
  const empty = toHex(frontierRoot({ size: 0, peaks: [] }));
  if (header.txRoot !== empty || header.ledgerRoot !== empty)
    fail('header.txRoot', 'must be the empty-tree root');
  if (!cfg.operators.includes(header.proposer)) fail('header.proposer', 'is not an operator of the config');
  if (opts.checkSignatures && !verifyBlockSignature(block.block)) {
    throw new BlockError('BAD_BLOCK_SIGNATURE', 0, 'signature', 'does not verify for the proposer');
  }
  const writes = new Map<string, StateRecord>();
  writes.set(keys.config, { t: 'config', config: cfg });
  writes.set(keys.members, { t: 'members', voters: [...cfg.members], learners: [] });
  for (const op of cfg.operators) {
    writes.set(keys.participant(op), {
      t: 'participant',
      key: op,
      role: 'operator',
      name: 'operator',
      since: 0,
      tx: null,
    });
  }
  const head: HeadRec = {
    t: 'head',
    height: 0,
    hash: block.hash,
    timestamp: header.timestamp,
    ledgerSize: 0,
    peaks: [],
  };
  writes.set(keys.head, head);
  return { receipts: [], writes, merkleNodes: [], head };
}

/** Validate a block against the chain head and apply it. Deterministic; throws BlockError. */
export function processBlock(state: StateView, block: DecodedBlock, opts: ProcessOptions): ProcessedBlock {
  const head = getHead(state);
  if (!head) return processGenesis(block, opts);
  const config = getConfig(state)!;
  const h = block.block.header;
  const height = h.height;
  const fail = (code: BlockErrorCode, field: string, msg: string, txIndex?: number): never => {
    throw new BlockError(code, height, field, msg, txIndex);
  };
  if (height !== head.height + 1) fail('BAD_HEIGHT', 'header.height', `expected ${head.height + 1}`);
  if (h.chainId !== config.chainId) fail('WRONG_CHAIN', 'header.chainId', `expected ${config.chainId}`);
  if (h.prevHash !== head.hash) fail('BAD_PREV_HASH', 'header.prevHash', `expected ${head.hash}`);
  if (h.timestamp < head.timestamp) fail('BAD_TIMESTAMP', 'header.timestamp', 'is before the previous block');
  if (h.txCount !== block.txs.length)
    fail('BAD_TX_COUNT', 'header.txCount', `the block holds ${block.txs.length}`);
  if (h.txCount > config.params.maxBlockTxs)
    fail('TOO_MANY_TXS', 'header.txCount', `limit ${config.params.maxBlockTxs}`);
  const members = state.get(keys.members) as MembersRec;
  if (!members.voters.includes(h.proposer)) fail('BAD_PROPOSER', 'header.proposer', 'is not a voting member');
  block.txs.forEach((t, i) => {
    if (t.tx.chainId !== config.chainId) fail('WRONG_CHAIN', 'chainId', `expected ${config.chainId}`, i);
  });
  let merkleNodes: MerkleNode[] = [];
  let peaks: string[] = [];
  if (opts.trustRoots) {
    if (h.ledgerSize !== head.ledgerSize + h.txCount)
      fail('BAD_LEDGER_ROOT', 'header.ledgerSize', `expected ${head.ledgerSize + h.txCount}`);
  } else {
    if (head.ledgerSize > 0 && head.peaks.length === 0)
      throw new Error(
        'this state was built with trustRoots: it has no whole-ledger frontier to check roots with',
      );
    // Each leaf hash once: the block's own tree and the whole-ledger tree share them.
    const leaves = block.txs.map((t) => leafHash(t.idBytes));
    if (toHex(merkleRoot(leaves)) !== h.txRoot)
      fail('BAD_TX_ROOT', 'header.txRoot', 'is not the root of the transactions');
    const appended = appendLeaves(frontierOf(head), leaves);
    if (appended.frontier.size !== h.ledgerSize)
      fail('BAD_LEDGER_ROOT', 'header.ledgerSize', `expected ${appended.frontier.size}`);
    if (toHex(frontierRoot(appended.frontier)) !== h.ledgerRoot) {
      fail('BAD_LEDGER_ROOT', 'header.ledgerRoot', 'is not the root of the whole ledger');
    }
    merkleNodes = appended.nodes;
    peaks = appended.frontier.peaks.map(toHex);
  }
  if (opts.checkSignatures) {
    if (!verifyBlockSignature(block.block))
      fail('BAD_BLOCK_SIGNATURE', 'signature', 'does not verify for the proposer');
    block.txs.forEach((t, i) => {
      if (!verifyTxSignature(t.tx))
        fail('BAD_TX_SIGNATURE', 'signature', 'does not verify for the signer', i);
    });
  }
  const { receipts, writes } = applyBlock(state, block);
  const newHead: HeadRec = {
    t: 'head',
    height,
    hash: block.hash,
    timestamp: h.timestamp,
    ledgerSize: h.ledgerSize,
    peaks,
  };
  writes.set(keys.head, newHead);
  return opts.trustRoots
    ? { receipts, writes, merkleNodes, head: newHead, rootsTrusted: true }
    : { receipts, writes, merkleNodes, head: newHead };
}

/** Build the header fields of the next block over `txs` (what a proposer fills in before signing). */
export function nextHeaderFields(state: StateView, txs: DecodedBlock['txs']) {
  const head = getHead(state)!;
  const appended = appendLeaves(
    frontierOf(head),
    txs.map((t) => leafHash(t.idBytes)),
  );
  return {
    height: head.height + 1,
    prevHash: head.hash,
    txRoot: txRootOf(txs),
    txCount: txs.length,
    ledgerRoot: toHex(frontierRoot(appended.frontier)),
    ledgerSize: appended.frontier.size,
    minTimestamp: head.timestamp,
  };
}

export { blockHash };
