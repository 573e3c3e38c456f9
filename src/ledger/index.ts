// ledger/: transactions, blocks, genesis and the commission state machine. Pure: no I/O.
export * from './errors.js';
export * from './transaction.js';
export * from './genesis.js';
export * from './block.js';
export * from './receipt.js';
export { receiptText, recordText } from './record-text.js';
export * from './state.js';
export {
  applyBlock,
  applyTransaction,
  checkAllInvariants,
  checkBlockInvariants,
  payable,
  REJECTED_AT_ADMISSION,
  type ApplyResult,
  type TxResult,
} from './apply.js';
export {
  BlockError,
  BLOCK_ERROR_CODES,
  processBlock,
  processGenesis,
  getHead,
  getConfig,
  frontierOf,
  nextHeaderFields,
  type BlockErrorCode,
  type ProcessedBlock,
  type ProcessOptions,
} from './chain.js';
export * from './admin.js';
export { buildBlock, selectTransactions, type Selection, type BuildBlockOptions } from './build.js';
