import type { Entry, Snapshot } from '../storage/raft/types.js';
import { MESSAGE_TYPES, type Message } from './types.js';

// Shape checks for messages from the network. step() drops anything that
// fails them instead of throwing: a peer (or a bug in a peer) must not be able
// to crash this node.

const TYPES = new Set<string>(MESSAGE_TYPES);

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isEntry(v: unknown): v is Entry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Partial<Record<keyof Entry, unknown>>;
  return (
    isIndex(e.index) &&
    e.index > 0 &&
    isIndex(e.term) &&
    e.term > 0 &&
    (e.type === 'normal' || e.type === 'confChange') &&
    e.data instanceof Uint8Array
  );
}

function isSnapshot(v: unknown): v is Snapshot {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as { meta?: unknown; data?: unknown };
  if (!(s.data instanceof Uint8Array) || typeof s.meta !== 'object' || s.meta === null) return false;
  const m = s.meta as { index?: unknown; term?: unknown; confState?: unknown };
  if (!isIndex(m.index) || m.index === 0 || !isIndex(m.term) || m.term === 0) return false;
  if (typeof m.confState !== 'object' || m.confState === null) return false;
  const cs = m.confState as { voters?: unknown; learners?: unknown };
  return isStringArray(cs.voters) && isStringArray(cs.learners);
}

/** Is `m` a well-formed message addressed to `self`? */
export function isWellFormed(m: unknown, self: string): m is Message {
  if (typeof m !== 'object' || m === null) return false;
  const msg = m as Partial<Record<keyof Message, unknown>>;
  if (typeof msg.type !== 'string' || !TYPES.has(msg.type)) return false;
  if (typeof msg.from !== 'string' || msg.to !== self || msg.from === self) return false;
  if (!isIndex(msg.term) || !isIndex(msg.logTerm) || !isIndex(msg.index) || !isIndex(msg.commit))
    return false;
  if (!isIndex(msg.rejectHint) || typeof msg.reject !== 'boolean') return false;
  if (msg.context !== undefined && !(msg.context instanceof Uint8Array)) return false;
  if (msg.transfer !== undefined && typeof msg.transfer !== 'boolean') return false;
  if (!Array.isArray(msg.entries)) return false;
  const entries: unknown[] = msg.entries;
  // Entries must follow `index` without gaps, with terms non-decreasing and
  // not newer than the message (Log Matching relies on it).
  let prevTerm = msg.logTerm;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (!isEntry(e) || e.index !== msg.index + 1 + i || e.term < prevTerm || e.term > msg.term) return false;
    prevTerm = e.term;
  }
  if (entries.length > 0 && msg.type !== 'app') return false;
  switch (msg.type) {
    case 'app':
      return msg.logTerm <= msg.term && msg.term > 0;
    case 'snap':
      return isSnapshot(msg.snapshot) && msg.snapshot.meta.term <= msg.term;
    case 'readIndex':
    case 'transferLeader':
      return msg.context !== undefined;
    case 'readIndexResp':
      return msg.context !== undefined && msg.term > 0;
    default:
      return msg.term > 0;
  }
}
