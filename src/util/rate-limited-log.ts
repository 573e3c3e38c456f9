interface KeyEntry {
  at: number;
  suppressed: number;
}

interface KindWindow {
  start: number;
  admitted: number;
  /** lines dropped by this kind's global limit since its last admitted line */
  suppressed: number;
}

/**
 * Decides whether an event about one key (usually `<kind>:<peer id>`) may be
 * logged now, so a misbehaving or unlucky peer cannot flood the log.
 *
 * - Each key logs at most once per interval.
 * - Each kind (the part of the key before its first `:`) logs at most
 *   `maxPerKind` lines per interval, whatever the keys: a peer that rotates
 *   its peer id gets a new key each time, but not a new kind.
 * - At most `maxKeys` keys are remembered; past that the key logged longest
 *   ago is forgotten (one extra line for it at worst), never all of them.
 *
 * An admitted line reports how many were suppressed before it: its key's own
 * drops since that key's last line, plus the drops of its kind's global limit
 * since that kind's last line. Every dropped event is counted exactly once.
 */
export class LogRateLimiter {
  /** insertion order = order of last admission, oldest first */
  readonly #keys = new Map<string, KeyEntry>();
  readonly #kinds = new Map<string, KindWindow>();

  /**
   * @param maxKeys keys remembered at most; past it the key logged longest ago is forgotten
   * @param maxPerKind lines of one kind admitted per interval, all keys together
   */
  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys = 4096,
    private readonly now: () => number = Date.now,
    private readonly maxPerKind = 20,
  ) {}

  /** `undefined` when the event should be dropped, else how many were suppressed before it. */
  admit(key: string): { suppressed: number } | undefined {
    const now = this.now();
    const entry = this.#keys.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed += 1;
      return undefined;
    }
    const kind = this.#kind(key, now);
    if (kind.admitted >= this.maxPerKind) {
      kind.suppressed += 1;
      return undefined;
    }
    kind.admitted += 1;
    const suppressed = (entry?.suppressed ?? 0) + kind.suppressed;
    kind.suppressed = 0;
    // Re-insert so that the map's order stays the order of last admission.
    this.#keys.delete(key);
    while (this.#keys.size >= this.maxKeys) {
      const oldest = this.#keys.keys().next();
      if (oldest.done === true) break;
      this.#keys.delete(oldest.value);
    }
    this.#keys.set(key, { at: now, suppressed: 0 });
    return { suppressed };
  }

  #kind(key: string, now: number): KindWindow {
    const colon = key.indexOf(':');
    const name = colon < 0 ? key : key.slice(0, colon);
    let kind = this.#kinds.get(name);
    if (kind === undefined) {
      // Kinds are fixed strings in the code (never peer-chosen), so this map stays small.
      kind = { start: now, admitted: 0, suppressed: 0 };
      this.#kinds.set(name, kind);
    } else if (now - kind.start >= this.intervalMs) {
      kind.start = now;
      kind.admitted = 0;
    }
    return kind;
  }
}
