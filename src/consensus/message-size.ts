import type { Entry, Snapshot } from '../storage/raft/types.js';
import type { Message } from './types.js';

// Rough wire sizes: fixed overhead per field plus payload bytes. Used for
// batching (maxMsgBytes) and by the simulator to model bandwidth; not exact.
const MESSAGE_OVERHEAD = 48;
const ENTRY_OVERHEAD = 24;
const SNAPSHOT_OVERHEAD = 32;

export function entrySize(e: Entry): number {
  return ENTRY_OVERHEAD + e.data.length;
}

function snapshotSize(s: Snapshot): number {
  let size = SNAPSHOT_OVERHEAD + s.data.length;
  for (const id of s.meta.confState.voters) size += id.length + 2;
  for (const id of s.meta.confState.learners) size += id.length + 2;
  return size;
}

/** Estimated encoded size of a message in bytes. */
export function messageSize(m: Message): number {
  let size = MESSAGE_OVERHEAD + m.from.length + m.to.length;
  for (const e of m.entries) size += entrySize(e);
  if (m.snapshot !== undefined) size += snapshotSize(m.snapshot);
  if (m.context !== undefined) size += m.context.length;
  return size;
}
