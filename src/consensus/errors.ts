/**
 * Why a proposal, read or transfer request was refused. Stable codes: callers
 * switch on them (e.g. to forward to the leader or to retry later).
 */
export type ProposalDropCode =
  /** This node is not the leader (followers do not forward proposals). */
  | 'notLeader'
  /** No leader is known (readIndex / transferLeadership on a follower). */
  | 'noLeader'
  /** A leadership transfer is in progress. */
  | 'transferInProgress'
  /** Another membership change is not yet applied. */
  | 'confChangePending'
  /** The membership change does not fit the current configuration. */
  | 'invalidConfChange'
  /** The transfer target is not a voter of the current configuration. */
  | 'invalidTransferee';

export class ProposalDroppedError extends Error {
  override readonly name = 'ProposalDroppedError';
  constructor(
    readonly code: ProposalDropCode,
    message: string,
  ) {
    super(message);
  }
}

/** Programming errors of the driver (contract violations), not network faults. */
export type RaftUsageCode =
  | 'readyPending'
  | 'noReady'
  | 'compactOutOfRange'
  | 'invalidConfig'
  | 'storageUnavailable'
  | 'invalidConfChangeData';

export class RaftUsageError extends Error {
  override readonly name = 'RaftUsageError';
  constructor(
    readonly code: RaftUsageCode,
    message: string,
  ) {
    super(message);
  }
}
