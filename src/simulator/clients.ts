import type { NodeId } from '../storage/raft/types.js';
import type { KvOperation } from './kv-model.js';
import { encodeCommand, type KvStore } from './kv-store.js';
import type { Prng } from './prng.js';

/** What clients can see of the cluster: the same things a real client library could. */
export interface ClusterAccess {
  /** Live nodes that clients may talk to. */
  reachableNodes(): NodeId[];
  /** Submit a proposal to `node`; false if it refused (not leader, crashed, ...). */
  propose(node: NodeId, data: Uint8Array): boolean;
  /** Ask `node` for a ReadIndex; false if it refused. */
  readIndex(node: NodeId, context: Uint8Array): boolean;
  /** The read index `node` answered for `context`, if it has. */
  readState(node: NodeId, context: string): number | undefined;
  /** Who `node` believes leads, if anyone. */
  leaderHint(node: NodeId): NodeId | null;
  /** The live application state of `node`, or null if it is down. */
  kv(node: NodeId): KvStore | null;
  trace(line: string): void;
}

export interface ClientConfig {
  clients: number;
  keys: number;
  /** Chance per tick that an idle client starts an operation. */
  opRate: number;
  writeRatio: number;
  /** Ticks an attempt may take before the client retries elsewhere. */
  timeout: number;
  /** Chance that a timed-out client gives up on the op instead (a pending op in the history). */
  abandonRate: number;
}

interface InFlight {
  kind: 'write' | 'read';
  key: string;
  /** Write: the unique op id, which is also the value written. */
  opId: string;
  call: number;
  target: NodeId | null;
  deadline: number;
  attempts: number;
  /** Read: the context of the current attempt; its answered read index once known. */
  context: string;
  readIndex: number | undefined;
}

const encoder = new TextEncoder();

/**
 * Sequential clients (one op at a time each, as linearizability assumes) doing
 * writes and ReadIndex reads against a small KV. A write is acknowledged when
 * the node the client is waiting on has applied it; unacknowledged writes are
 * retried with the same op id (so a write can be in the log more than once). A
 * read is served from the node that answered the ReadIndex, once it has applied
 * up to the read index.
 *
 * Times in the history are virtual ticks with a per-event fraction, so that
 * events within one tick keep their real order.
 */
export class Clients {
  readonly history: KvOperation[] = [];
  /** Op ids of writes that a client saw acknowledged. */
  readonly acknowledged = new Set<string>();
  /** Calls (reads and writes) refused or timed out and retried: for the run summary. */
  retries = 0;
  /** Ops given up on after a timeout. */
  abandoned = 0;
  /** When false, idle clients start nothing new (the calm phase drains what is in flight). */
  accepting = true;
  /** When false, timed-out clients always retry (the calm phase: every op must finish). */
  mayAbandon = true;
  private readonly inFlight: (InFlight | null)[];
  private readonly seqs: number[];
  private readonly preferred: (NodeId | null)[];
  private now = 0;
  private eventInTick = 0;

  constructor(
    private readonly cfg: ClientConfig,
    private readonly rng: Prng,
    private readonly cluster: ClusterAccess,
  ) {
    this.inFlight = new Array<InFlight | null>(cfg.clients).fill(null);
    this.seqs = new Array<number>(cfg.clients).fill(0);
    this.preferred = new Array<NodeId | null>(cfg.clients).fill(null);
  }

  get busy(): number {
    return this.inFlight.filter((op) => op !== null).length;
  }

  /** Ops still waiting, for a liveness report. */
  describePending(): string[] {
    return this.inFlight.flatMap((op, c) =>
      op === null
        ? []
        : [`client ${c} ${op.kind} ${op.kind === 'write' ? op.opId : op.key} (${op.attempts} attempts)`],
    );
  }

  /** Called once per tick, after the cluster processed it. */
  step(now: number): void {
    if (now !== this.now) {
      this.now = now;
      this.eventInTick = 0;
    }
    for (let c = 0; c < this.cfg.clients; c++) {
      const op = this.inFlight[c];
      if (op === null || op === undefined) {
        if (this.accepting && this.rng.chance(this.cfg.opRate)) this.start(c);
      } else {
        this.poll(c, op);
      }
    }
  }

  private time(): number {
    return this.now + ++this.eventInTick / 10_000;
  }

  private start(c: number): void {
    const seq = ++this.seqs[c]!;
    const key = `k${this.rng.int(this.cfg.keys)}`;
    const kind = this.rng.chance(this.cfg.writeRatio) ? 'write' : 'read';
    const op: InFlight = {
      kind,
      key,
      opId: `c${c}.${seq}`,
      call: this.time(),
      target: null,
      deadline: 0,
      attempts: 0,
      context: '',
      readIndex: undefined,
    };
    this.inFlight[c] = op;
    this.cluster.trace(`client ${c} invokes ${kind} ${key}${kind === 'write' ? `=${op.opId}` : ''}`);
    this.attempt(c, op);
  }

  private attempt(c: number, op: InFlight): void {
    const nodes = this.cluster.reachableNodes();
    const hint = this.preferred[c] ?? null;
    const target =
      hint !== null && nodes.includes(hint) ? hint : nodes.length > 0 ? this.rng.pick(nodes) : null;
    op.attempts++;
    op.target = target;
    op.deadline = this.now + this.cfg.timeout;
    op.readIndex = undefined;
    if (target === null) return;
    let accepted: boolean;
    if (op.kind === 'write') {
      accepted = this.cluster.propose(target, encodeCommand({ id: op.opId, key: op.key, value: op.opId }));
    } else {
      op.context = `${op.opId}#${op.attempts}`;
      accepted = this.cluster.readIndex(target, encoder.encode(op.context));
    }
    if (!accepted) {
      // Ask again next tick, at whoever the refusing node thinks leads.
      this.retries++;
      this.preferred[c] = this.cluster.leaderHint(target) ?? (nodes.length > 0 ? this.rng.pick(nodes) : null);
      op.deadline = this.now + 1;
      op.target = null;
    }
  }

  private poll(c: number, op: InFlight): void {
    const kv = op.target === null ? null : this.cluster.kv(op.target);
    if (op.target !== null && kv !== null) {
      if (op.kind === 'write' && kv.has(op.opId)) {
        this.finish(c, op, null);
        this.acknowledged.add(op.opId);
        return;
      }
      if (op.kind === 'read') {
        op.readIndex ??= this.cluster.readState(op.target, op.context);
        if (op.readIndex !== undefined && kv.appliedIndex >= op.readIndex) {
          this.finish(c, op, kv.read(op.key));
          return;
        }
      }
    }
    if (this.now < op.deadline) return;
    if (op.attempts > 1 || op.target !== null) this.retries++;
    if (this.mayAbandon && op.target !== null && this.rng.chance(this.cfg.abandonRate)) {
      // A write given up on stays in the history as pending: it may yet take effect.
      if (op.kind === 'write') {
        this.history.push({
          clientId: c,
          input: { kind: 'write', key: op.key, value: op.opId },
          call: op.call,
          output: { value: null },
          ret: Infinity,
        });
      }
      this.abandoned++;
      this.cluster.trace(`client ${c} abandons ${op.kind} ${op.opId}`);
      this.inFlight[c] = null;
      return;
    }
    this.preferred[c] = op.target === null ? null : this.cluster.leaderHint(op.target);
    this.attempt(c, op);
  }

  private finish(c: number, op: InFlight, value: string | null): void {
    const ret = this.time();
    this.history.push({
      clientId: c,
      input:
        op.kind === 'write' ? { kind: 'write', key: op.key, value: op.opId } : { kind: 'read', key: op.key },
      call: op.call,
      output: { value },
      ret,
    });
    this.preferred[c] = op.target;
    this.cluster.trace(
      `client ${c} ${op.kind === 'write' ? `acked ${op.opId}` : `read ${op.key} -> ${value ?? 'null'} at ${op.readIndex}`} from ${op.target}`,
    );
    this.inFlight[c] = null;
  }

  /** Pending writes still in flight at the end count as pending ops in the history. */
  closeHistory(): void {
    this.inFlight.forEach((op, c) => {
      if (op === null || op.kind !== 'write') return;
      this.history.push({
        clientId: c,
        input: { kind: 'write', key: op.key, value: op.opId },
        call: op.call,
        output: { value: null },
        ret: Infinity,
      });
    });
  }
}
