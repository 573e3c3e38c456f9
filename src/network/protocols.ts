/** Protocol ids and topic names spoken by a BitNexus node (docs/NETWORK.md). */

export const RAFT_PROTOCOL = '/bitnexus/raft/1.0.0';
export const SUBMIT_PROTOCOL = '/bitnexus/submit/1.0.0';
export const BLOCKS_PROTOCOL = '/bitnexus/blocks/1.0.0';

/** The gossipsub topic for transactions of one network; chain ids keep networks apart. */
export function txTopic(chainId: string): string {
  return `/bitnexus/${chainId}/tx/1`;
}
