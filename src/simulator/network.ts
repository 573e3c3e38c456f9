import type { Prng } from './prng.js';

/** How the simulated network misbehaves. Delays are in virtual ticks. */
export interface NetworkFaults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice (the copy gets its own delay). */
  duplicateRate: number;
  minDelay: number;
  maxDelay: number;
  /** Probability that a message takes a long detour (up to longDelayMax ticks): reordering beyond jitter. */
  longDelayRate: number;
  longDelayMax: number;
  /**
   * Keep each link's messages in send order (a TCP-like transport): delays then
   * only hold messages back, head-of-line. When false, anything may overtake.
   */
  fifo: boolean;
}

/** A network that delivers every message after exactly one tick, in send order per tick: for benchmarks and calm phases. */
export const CALM_NETWORK: NetworkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  minDelay: 1,
  maxDelay: 1,
  longDelayRate: 0,
  longDelayMax: 1,
  fifo: true,
};

export interface Envelope<M> {
  /** Unique per send (a duplicate keeps the number of its original). */
  seq: number;
  from: string;
  to: string;
  sentAt: number;
  deliverAt: number;
  msg: M;
}

export type SendOutcome = 'queued' | 'dropped' | 'duplicated';

/**
 * Messages in flight between simulated nodes. Each message is cloned on send so
 * that sender and receiver never share an object, delayed by a random number of
 * ticks (which reorders), possibly dropped or duplicated. Links can be cut one
 * direction at a time, so symmetric and asymmetric partitions are the same thing
 * at two strengths. A cut link drops what is in flight on it when it arrives.
 */
export class SimNetwork<M> {
  faults: NetworkFaults;
  private readonly inFlight = new Map<number, Envelope<M>[]>();
  private readonly cut = new Set<string>();
  /** FIFO mode: the latest delivery time booked on each link. */
  private readonly linkClock = new Map<string, number>();
  private nextSeq = 1;
  private size = 0;

  constructor(
    private readonly rng: Prng,
    faults: NetworkFaults,
  ) {
    this.faults = { ...faults };
  }

  send(from: string, to: string, msg: M, now: number): SendOutcome {
    const f = this.faults;
    if (this.rng.chance(f.dropRate)) return 'dropped';
    const seq = this.nextSeq++;
    this.enqueue({
      seq,
      from,
      to,
      sentAt: now,
      deliverAt: this.deliveryTime(from, to, now),
      msg: structuredClone(msg),
    });
    if (this.rng.chance(f.duplicateRate)) {
      this.enqueue({
        seq,
        from,
        to,
        sentAt: now,
        deliverAt: this.deliveryTime(from, to, now),
        msg: structuredClone(msg),
      });
      return 'duplicated';
    }
    return 'queued';
  }

  /**
   * Everything due at `now`, in a random order, minus what a cut link swallowed
   * (returned separately so a transcript can show it).
   */
  takeDue(now: number): { deliver: Envelope<M>[]; blocked: Envelope<M>[] } {
    const due = this.inFlight.get(now);
    if (due === undefined) return { deliver: [], blocked: [] };
    this.inFlight.delete(now);
    this.size -= due.length;
    this.rng.shuffle(due);
    if (this.faults.fifo) restoreLinkOrder(due);
    const deliver: Envelope<M>[] = [];
    const blocked: Envelope<M>[] = [];
    for (const env of due) (this.isCut(env.from, env.to) ? blocked : deliver).push(env);
    return { deliver, blocked };
  }

  get pending(): number {
    return this.size;
  }

  cutLink(from: string, to: string): void {
    this.cut.add(linkKey(from, to));
  }

  isCut(from: string, to: string): boolean {
    return this.cut.size > 0 && this.cut.has(linkKey(from, to));
  }

  /** Cut every link between the two sides, both ways. */
  partition(sideA: readonly string[], sideB: readonly string[]): void {
    for (const a of sideA)
      for (const b of sideB) {
        this.cutLink(a, b);
        this.cutLink(b, a);
      }
  }

  /** Cut a node off entirely (both directions) from the others. */
  isolate(node: string, others: readonly string[]): void {
    this.partition(
      [node],
      others.filter((o) => o !== node),
    );
  }

  heal(): void {
    this.cut.clear();
  }

  get cutLinks(): number {
    return this.cut.size;
  }

  private deliveryTime(from: string, to: string, now: number): number {
    const at = now + this.delay();
    if (!this.faults.fifo) return at;
    const key = linkKey(from, to);
    const booked = Math.max(at, this.linkClock.get(key) ?? 0);
    this.linkClock.set(key, booked);
    return booked;
  }

  private delay(): number {
    const f = this.faults;
    if (this.rng.chance(f.longDelayRate))
      return this.rng.range(f.maxDelay, Math.max(f.maxDelay, f.longDelayMax));
    return this.rng.range(f.minDelay, f.maxDelay);
  }

  private enqueue(env: Envelope<M>): void {
    const bucket = this.inFlight.get(env.deliverAt);
    if (bucket === undefined) this.inFlight.set(env.deliverAt, [env]);
    else bucket.push(env);
    this.size++;
  }
}

/**
 * Interleave links in the shuffled order while each link's messages go out in
 * the order they were sent (`seq`): slot i of the result gets the oldest pending
 * message of the link that the shuffle put at slot i.
 */
function restoreLinkOrder<M>(due: Envelope<M>[]): void {
  const perLink = new Map<string, Envelope<M>[]>();
  for (const env of due) {
    const key = linkKey(env.from, env.to);
    const q = perLink.get(key);
    if (q === undefined) perLink.set(key, [env]);
    else q.push(env);
  }
  for (const q of perLink.values()) q.sort((a, b) => a.seq - b.seq);
  const links = due.map((env) => linkKey(env.from, env.to));
  const cursor = new Map<string, number>();
  links.forEach((key, i) => {
    const n = cursor.get(key) ?? 0;
    cursor.set(key, n + 1);
    due[i] = perLink.get(key)?.[n] as Envelope<M>;
  });
}

function linkKey(from: string, to: string): string {
  return `${from}>${to}`;
}
