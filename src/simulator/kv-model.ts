import type { Model, Operation } from './linearizability.js';

/** What a simulated client asked of the replicated KV store. */
export type KvInput = { kind: 'write'; key: string; value: string } | { kind: 'read'; key: string };
/** What it got back: a read's value (null = never written); writes return nothing. */
export interface KvOutput {
  value: string | null;
}
export type KvOperation = Operation<KvInput, KvOutput>;

/**
 * The sequential specification the client histories are checked against: a map of
 * independent registers. Keys never interact, so the history is split per key
 * (P-compositionality), and each key is a single register.
 */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  partition(history) {
    // A write that never returned and whose value no completed read saw can always
    // be placed after everything else, where it changes nothing anyone observed; so
    // it is dropped before the search instead of multiplying its branches.
    const seen = new Set<string>();
    for (const op of history)
      if (op.input.kind === 'read' && op.output.value !== null)
        seen.add(`${op.input.key}\u0000${op.output.value}`);
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      if (
        op.input.kind === 'write' &&
        op.ret === Infinity &&
        !seen.has(`${op.input.key}\u0000${op.input.value}`)
      )
        continue;
      const list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, [op]);
      else list.push(op);
    }
    return [...byKey.keys()].sort().map((k) => byKey.get(k) ?? []);
  },
  init: () => null,
  step(state, input, output) {
    if (input.kind === 'write') return { ok: true, state: input.value };
    return { ok: output.value === state, state };
  },
  equal: (a, b) => a === b,
  describe: describeKvOperation,
};

export function describeKvOperation(op: KvOperation): string {
  const ret = Number.isFinite(op.ret) ? String(op.ret) : 'pending';
  const what =
    op.input.kind === 'write'
      ? `write ${op.input.key}=${op.input.value}`
      : `read ${op.input.key} -> ${op.output.value ?? 'null'}`;
  return `client ${op.clientId} [${op.call}, ${ret}] ${what}`;
}
