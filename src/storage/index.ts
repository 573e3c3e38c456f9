// storage/: level-backed stores behind small interfaces, with in-memory twins for tests.
export { LevelStore, MemoryStore, prefixEnd, type KeyValueStore, type BatchOp } from './kv.js';
export {
  ChainStore,
  chainKeys,
  prefixes,
  parseTxLocation,
  type BlockWrite,
  type TxLocation,
} from './chain-store.js';
