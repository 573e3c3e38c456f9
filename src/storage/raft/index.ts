// storage/raft/: what Raft persists (plain types) and durable stores for it.
// consensus/ imports the types from here; nothing here knows Raft's rules
// beyond the RaftStore contract in store.ts.
export type { NodeId, Entry, EntryType, HardState, ConfState, SnapshotMeta, Snapshot } from './types.js';
export { EMPTY_HARD_STATE } from './types.js';
export {
  RaftStoreError,
  type RaftStoreErrorCode,
  type RaftStore,
  type RaftWrite,
  type PersistedRaftState,
} from './store.js';
export { MemoryRaftStore } from './memory-store.js';
export { LevelRaftStore, type BinaryLevel } from './level-store.js';
export {
  RaftRecordError,
  encodeEntry,
  decodeEntry,
  encodeHardState,
  decodeHardState,
  encodeSnapshot,
  decodeSnapshot,
} from './codec.js';
