import type { Entry } from '../storage/raft/types.js';

/** A client write as it rides in a Raft entry: op id (unique per client op), key, value. */
export interface KvCommand {
  id: string;
  key: string;
  value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify([cmd.id, cmd.key, cmd.value]));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const [id, key, value] = JSON.parse(decoder.decode(data)) as [string, string, string];
  return { id, key, value };
}

/** Short printable form of an entry for transcripts and violation reports. */
export function describeEntry(e: Entry): string {
  if (e.type === 'confChange') return `${e.index}@${e.term} conf(${decoder.decode(e.data)})`;
  if (e.data.length === 0) return `${e.index}@${e.term} noop`;
  try {
    const c = decodeCommand(e.data);
    return `${e.index}@${e.term} ${c.id}:${c.key}=${c.value}`;
  } catch {
    return `${e.index}@${e.term} <${e.data.length} bytes>`;
  }
}

/**
 * The application state machine of the simulation: a small KV store that applies
 * each client op at most once (by op id), because clients retry and a retried op
 * can be in the log twice. It records the op ids in the order they took effect
 * (`history`): the end-of-run exactly-once check reads that sequence.
 *
 * `digest` is a rolling hash over every applied entry (index, term, type, data),
 * carried in snapshots, so that two nodes at one applied index can be compared in
 * O(1) even when one of them got there through a snapshot.
 */
export class KvStore {
  appliedIndex = 0;
  digest = 0x811c9dc5;
  /** Duplicates skipped (a retried op committed twice): expected, counted for the report. */
  duplicatesSkipped = 0;
  private readonly values = new Map<string, string>();
  private readonly applied = new Set<string>();
  private readonly order: string[] = [];

  get history(): readonly string[] {
    return this.order;
  }

  has(opId: string): boolean {
    return this.applied.has(opId);
  }

  read(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  /** Apply one committed entry (must be appliedIndex + 1). */
  apply(e: Entry): void {
    if (e.index !== this.appliedIndex + 1) {
      throw new Error(`KvStore: apply ${e.index} after ${this.appliedIndex}`);
    }
    this.appliedIndex = e.index;
    this.digest = mixEntry(this.digest, e);
    if (e.type !== 'normal' || e.data.length === 0) return;
    const cmd = decodeCommand(e.data);
    if (this.applied.has(cmd.id)) {
      this.duplicatesSkipped++;
      return;
    }
    this.applied.add(cmd.id);
    this.order.push(cmd.id);
    this.values.set(cmd.key, cmd.value);
  }

  snapshot(): Uint8Array {
    const state: SnapshotState = {
      index: this.appliedIndex,
      digest: this.digest,
      values: [...this.values],
      order: this.order,
    };
    return encoder.encode(JSON.stringify(state));
  }

  /** Replace the whole state with a snapshot's (empty data = the bootstrap snapshot at `index`). */
  static restore(data: Uint8Array, index: number): KvStore {
    const kv = new KvStore();
    if (data.length === 0) {
      kv.appliedIndex = index;
      return kv;
    }
    const state = JSON.parse(decoder.decode(data)) as SnapshotState;
    if (state.index !== index)
      throw new Error(`KvStore: snapshot data at ${state.index}, meta says ${index}`);
    kv.appliedIndex = state.index;
    kv.digest = state.digest;
    for (const [k, v] of state.values) kv.values.set(k, v);
    for (const id of state.order) {
      kv.applied.add(id);
      kv.order.push(id);
    }
    return kv;
  }
}

interface SnapshotState {
  index: number;
  digest: number;
  values: [string, string][];
  order: string[];
}

function mixEntry(h: number, e: Entry): number {
  h = mix(h, e.index);
  h = mix(h, e.term);
  h = mix(h, e.type === 'normal' ? 1 : 2);
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ (e.data[i] as number), 0x01000193);
  return h >>> 0;
}

function mix(h: number, x: number): number {
  h = Math.imul(h ^ (x & 0xffff), 0x01000193);
  return Math.imul(h ^ Math.floor(x / 0x10000), 0x01000193) >>> 0;
}
