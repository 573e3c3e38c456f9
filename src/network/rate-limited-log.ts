/**
 * Decides whether an event about one key (usually a peer id) may be logged now,
 * so a misbehaving or unlucky peer cannot flood the log. Each key logs at most
 * once per interval; the next line reports how many were suppressed meanwhile.
 */
export class LogRateLimiter {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys = 4096,
    private readonly now: () => number = Date.now,
  ) {}

  /** `undefined` when the event should be dropped, else how many were suppressed before it. */
  admit(key: string): { suppressed: number } | undefined {
    const now = this.now();
    const entry = this.#last.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed += 1;
      return undefined;
    }
    if (entry === undefined && this.#last.size >= this.maxKeys) {
      // Forgetting old keys only means one extra log line per key; memory stays bounded.
      this.#last.clear();
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    return { suppressed: entry?.suppressed ?? 0 };
  }
}
