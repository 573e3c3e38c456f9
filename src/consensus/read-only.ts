import type { NodeId } from '../storage/raft/types.js';

/** A ReadIndex request waiting for a heartbeat round to confirm leadership. */
export interface ReadIndexStatus {
  /** The commit index when the request arrived: the read index. */
  index: number;
  /** Who asked: this node (local readIndex) or a follower. */
  from: NodeId;
  context: Uint8Array;
  acks: Set<NodeId>;
}

/**
 * Pending linearizable reads on the leader (etcd read_only.go, ReadOnlySafe).
 * Requests are keyed by their context bytes, so callers must make contexts
 * unique; a duplicate context joins the pending request.
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  add(index: number, from: NodeId, context: Uint8Array): void {
    const key = contextKey(context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, from, context, acks: new Set() });
    this.queue.push(key);
  }

  /** Records a heartbeat answer carrying `context`; returns the acks so far, or null if unknown. */
  recvAck(id: NodeId, context: Uint8Array): ReadonlySet<NodeId> | null {
    const rs = this.pending.get(contextKey(context));
    if (rs === undefined) return null;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * Leadership was confirmed for the request with `context`: it and every
   * request queued before it are released, oldest first.
   */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of released) {
      const rs = this.pending.get(k);
      this.pending.delete(k);
      if (rs !== undefined) out.push(rs);
    }
    return out;
  }

  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)?.context;
  }

  size(): number {
    return this.queue.length;
  }
}

function contextKey(context: Uint8Array): string {
  let s = '';
  for (const b of context) s += b.toString(16).padStart(2, '0');
  return s;
}
