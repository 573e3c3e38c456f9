// consensus/: Raft as a pure, deterministic state machine, modelled on
// etcd-io/raft. No timers, no I/O, no clock, no randomness of its own: time is
// `tick()`, randomness is the injected `random`, the network is `step()` in and
// `Ready.messages` out, the disk is `Ready` out and LogStorage in.
//
// Driver contract (see README.md), for every Ready:
//   const rd = node.ready();
//   1. persist rd.hardState, rd.entries and rd.snapshot durably in ONE atomic
//      batch with fsync (storage/raft RaftStore.save) — BEFORE sending anything;
//   2. install them in the in-memory LogStorage view: storage.applySnapshot(rd.snapshot)
//      first, then storage.append(rd.entries), storage.setHardState(rd.hardState);
//   3. send rd.messages (any order; the network may drop/reorder/duplicate);
//   4. restore the application from rd.snapshot if present, then apply
//      rd.committedEntries in order; for a `confChange` entry call
//      node.applyConfChange(decodeConfChange(entry.data)); answer readers waiting
//      on rd.readStates once their index is applied;
//   5. node.advance().
// Only one Ready is outstanding at a time: hasReady() is false and ready()
// throws until advance(). step()/tick()/propose() may be called in between.
// At restart: load the durable state, MemoryStorage.fromPersisted(...), and
// construct RaftNode with `applied` = the last index the application applied.
// Log compaction: const snap = node.compact(index, data); persist it
// (RaftStore.save({ snapshot: snap }) then RaftStore.compact(index)) and
// storage.applySnapshot(snap).
export { bootstrapState, RaftNode } from './raft.js';
export { MemoryStorage, type LogStorage } from './memory-storage.js';
export { messageSize, entrySize } from './message-size.js';
export { encodeConfChange, decodeConfChange, applyConfChangeToConfState } from './conf-change.js';
export { ProposalDroppedError, RaftUsageError, type ProposalDropCode, type RaftUsageCode } from './errors.js';
export {
  MESSAGE_TYPES,
  type MessageType,
  type Message,
  type Role,
  type SoftState,
  type ReadState,
  type ConfChange,
  type Ready,
  type ProgressState,
  type ProgressStatus,
  type RaftStatus,
  type RaftFaults,
  type RaftLogger,
  type RaftConfig,
} from './types.js';
export type {
  NodeId,
  Entry,
  EntryType,
  HardState,
  ConfState,
  SnapshotMeta,
  Snapshot,
} from '../storage/raft/types.js';
