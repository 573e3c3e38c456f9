import type { ConfState, NodeId } from '../storage/raft/types.js';
import { RaftUsageError } from './errors.js';
import type { ConfChange } from './types.js';

// Byte layout of a confChange entry's data: one tag byte (1 addLearner,
// 2 promoteLearner, 3 removeNode) followed by the node id in UTF-8.
const TAGS = { addLearner: 1, promoteLearner: 2, removeNode: 3 } as const;
const TYPES = [undefined, 'addLearner', 'promoteLearner', 'removeNode'] as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = encoder.encode(cc.nodeId);
  const out = new Uint8Array(1 + id.length);
  out[0] = TAGS[cc.type];
  out.set(id, 1);
  return out;
}

/** Throws RaftUsageError('invalidConfChangeData') on bytes not made by encodeConfChange. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = TYPES[data[0] ?? 0];
  if (type === undefined || data.length < 2) {
    throw new RaftUsageError('invalidConfChangeData', 'not an encoded ConfChange');
  }
  try {
    return { type, nodeId: decoder.decode(data.subarray(1)) };
  } catch {
    throw new RaftUsageError('invalidConfChangeData', 'ConfChange node id is not UTF-8');
  }
}

/** Why `cc` cannot be proposed against `cs`, or null when it can. */
export function confChangeProblem(cs: ConfState, cc: ConfChange): string | null {
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case 'addLearner':
      return isVoter || isLearner ? `${cc.nodeId} is already a member` : null;
    case 'promoteLearner':
      return isLearner ? null : `${cc.nodeId} is not a learner`;
    case 'removeNode':
      if (!isVoter && !isLearner) return `${cc.nodeId} is not a member`;
      return isVoter && cs.voters.length === 1 ? 'cannot remove the last voter' : null;
  }
}

/**
 * The membership after applying `cc`. Total and deterministic: a change that
 * no longer fits (which the proposer's checks make impossible for committed
 * entries) leaves the membership unchanged, identically on every node.
 */
export function applyConfChangeToConfState(cs: ConfState, cc: ConfChange): ConfState {
  const voters = cs.voters.filter((id) => id !== cc.nodeId);
  const learners = cs.learners.filter((id) => id !== cc.nodeId);
  const wasVoter = voters.length !== cs.voters.length;
  const wasLearner = learners.length !== cs.learners.length;
  switch (cc.type) {
    case 'addLearner':
      if (wasVoter || wasLearner) return copy(cs);
      return { voters, learners: sorted([...learners, cc.nodeId]) };
    case 'promoteLearner':
      if (!wasLearner) return copy(cs);
      return { voters: sorted([...voters, cc.nodeId]), learners };
    case 'removeNode':
      if (wasVoter && voters.length === 0) return copy(cs);
      return { voters, learners };
  }
}

function copy(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

function sorted(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
