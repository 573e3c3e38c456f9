/**
 * A linearizability checker in the style of Wing & Gong, with Lowe's memoization
 * and Porcupine's P-compositionality (one search per partition, e.g. per key of a
 * KV store): search for a total order of the operations that respects real time
 * (an operation that returned before another was invoked comes first) and that a
 * sequential model accepts. Operations that never returned are "pending": their
 * return time is +Infinity, so they may be placed anywhere after their invocation,
 * including after everything else (which is the same as never taking effect).
 */

export interface Operation<I, O> {
  clientId: number;
  input: I;
  /** Virtual time of invocation. */
  call: number;
  output: O;
  /** Virtual time of the response, or Infinity if the client never saw one. */
  ret: number;
}

export interface Model<S, I, O> {
  /** Split a history into independent sub-histories (e.g. by key); default: one. */
  partition?: (history: readonly Operation<I, O>[]) => Operation<I, O>[][];
  init(): S;
  /** Apply `input` to `state`; ok is false if the model could not have produced `output`. */
  step(state: S, input: I, output: O): { ok: boolean; state: S };
  equal(a: S, b: S): boolean;
  describe?: (op: Operation<I, O>) => string;
}

export type CheckResult<I, O> =
  | { outcome: 'ok' }
  | {
      outcome: 'illegal';
      /** The smallest failing partition, sorted by invocation, so a report can print it. */
      partition: Operation<I, O>[];
      /** Longest prefix-closed set of operations the search managed to linearize. */
      longestLinearized: Operation<I, O>[];
    }
  | { outcome: 'unknown'; partition: Operation<I, O>[] };

export interface CheckOptions {
  /** Give up (outcome 'unknown') after this many search steps in one partition. */
  maxSteps?: number;
}

export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  const partitions = model.partition ? model.partition(history) : [history.slice()];
  const maxSteps = options.maxSteps ?? 50_000_000;
  for (const part of partitions) {
    const result = checkPartition(model, part, maxSteps);
    if (result.outcome !== 'ok') return result;
  }
  return { outcome: 'ok' };
}

interface ListEntry {
  isCall: boolean;
  opIndex: number;
  time: number;
  match: ListEntry | null;
  prev: ListEntry | null;
  next: ListEntry | null;
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps: number,
): CheckResult<I, O> {
  const sortedByCall = [...ops].sort((a, b) => a.call - b.call);
  const head = buildList(sortedByCall);
  const n = sortedByCall.length;
  const linearized = new Bitset(n);
  const cache = new Map<string, S[]>();
  const stack: { entry: ListEntry; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let best: number[] = [];
  let steps = 0;

  while (head.next !== null) {
    if (++steps > maxSteps) return { outcome: 'unknown', partition: sortedByCall };
    if (entry === null) throw new Error('linearizability: list ended on a call entry');
    if (entry.isCall) {
      const op = sortedByCall[entry.opIndex] as Operation<I, O>;
      const next = model.step(state, op.input, op.output);
      if (next.ok) {
        linearized.set(entry.opIndex);
        const key = linearized.key();
        const seen = cache.get(key);
        if (seen === undefined || !seen.some((s) => model.equal(s, next.state))) {
          if (seen === undefined) cache.set(key, [next.state]);
          else seen.push(next.state);
          stack.push({ entry, state });
          state = next.state;
          lift(entry);
          entry = head.next;
          if (stack.length > best.length) best = stack.map((s) => s.entry.opIndex);
          continue;
        }
        linearized.clear(entry.opIndex);
      }
      entry = entry.next;
    } else {
      // Reached the return of an operation not yet linearized: nothing invoked
      // before it can go first any more, so undo the last choice.
      const top = stack.pop();
      if (top === undefined) {
        return {
          outcome: 'illegal',
          partition: sortedByCall,
          longestLinearized: best.map((i) => sortedByCall[i] as Operation<I, O>),
        };
      }
      state = top.state;
      linearized.clear(top.entry.opIndex);
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { outcome: 'ok' };
}

function buildList<I, O>(ops: readonly Operation<I, O>[]): ListEntry {
  const events: ListEntry[] = [];
  ops.forEach((op, i) => {
    const call: ListEntry = { isCall: true, opIndex: i, time: op.call, match: null, prev: null, next: null };
    const ret: ListEntry = { isCall: false, opIndex: i, time: op.ret, match: null, prev: null, next: null };
    call.match = ret;
    events.push(call, ret);
  });
  // At equal times calls go first: operations that touch at an instant count as
  // concurrent (the permissive reading; the simulator's clocks never tie anyway).
  events.sort(
    (a, b) => a.time - b.time || (a.isCall === b.isCall ? a.opIndex - b.opIndex : a.isCall ? -1 : 1),
  );
  const head: ListEntry = {
    isCall: false,
    opIndex: -1,
    time: -Infinity,
    match: null,
    prev: null,
    next: null,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/** Remove a call entry and its return from the list (they stay linked to their neighbours for unlift). */
function lift(call: ListEntry): void {
  unlink(call);
  if (call.match !== null) unlink(call.match);
}

function unlift(call: ListEntry): void {
  if (call.match !== null) relink(call.match);
  relink(call);
}

function unlink(e: ListEntry): void {
  if (e.prev !== null) e.prev.next = e.next;
  if (e.next !== null) e.next.prev = e.prev;
}

function relink(e: ListEntry): void {
  if (e.prev !== null) e.prev.next = e;
  if (e.next !== null) e.next.prev = e;
}

class Bitset {
  private readonly words: Uint32Array;
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) || 1);
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  key(): string {
    const halves = new Uint16Array(this.words.buffer);
    let out = '';
    for (let i = 0; i < halves.length; i += 4096) out += String.fromCharCode(...halves.subarray(i, i + 4096));
    return out;
  }
}
