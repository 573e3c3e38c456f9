/** The properties the simulator checks; a run stops at the first one that fails. */
export type ViolationKind =
  /** At most one leader per term. */
  | 'electionSafety'
  /** Two logs with an entry of the same index and term agree on it and on everything before it. */
  | 'logMatching'
  /** A leader's log holds every entry committed in an earlier term. */
  | 'leaderCompleteness'
  /** No two nodes commit or apply different entries at one index. */
  | 'stateMachineSafety'
  /** A node's commit index never goes back, across restarts not below what it had persisted. */
  | 'commitRegressed'
  /** Every acknowledged write took effect exactly once on every live member. */
  | 'exactlyOnce'
  /** The client history (writes and ReadIndex reads) is linearizable. */
  | 'linearizability'
  /** After the faults stop a leader is elected and pending proposals commit in bounded time. */
  | 'liveness'
  /** The core threw, or broke the driver contract. */
  | 'coreError';

export const SAFETY_KINDS: ReadonlySet<ViolationKind> = new Set<ViolationKind>([
  'electionSafety',
  'logMatching',
  'leaderCompleteness',
  'stateMachineSafety',
  'commitRegressed',
  'exactlyOnce',
  'linearizability',
]);

export class SimViolation extends Error {
  override readonly name = 'SimViolation';
  constructor(
    readonly kind: ViolationKind,
    message: string,
  ) {
    super(`${kind}: ${message}`);
  }
}
