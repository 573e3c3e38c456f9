import { Level } from 'level';

/**
 * The small key-value surface every store is written against. Keys are
 * strings (a prefix per store, see chain-store.ts), values raw bytes. `batch`
 * is atomic: all or nothing, and with `sync` it is on disk (fsync) when the
 * promise resolves.
 */
export interface KeyValueStore {
  get(key: string): Promise<Uint8Array | undefined>;
  batch(ops: readonly BatchOp[], opts?: { sync?: boolean }): Promise<void>;
  /** entries whose key starts with `prefix`, in key order (UTF-8 byte order) */
  iterate(prefix: string, opts?: { gte?: string; lt?: string }): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}

export type BatchOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

const ITERATE_BATCH = 1000;
/**
 * Bytes one nextv call may read before it stops short of ITERATE_BATCH
 * entries. classic-level's default, 16 KiB, cut a walk over the chain's small
 * entries (50–300 bytes) into calls of ~100: 8,615 native calls for 826,000
 * entries instead of 827, ~0.3 µs more CPU per entry.
 */
const ITERATE_BYTES = 1 << 20;

export class LevelStore implements KeyValueStore {
  private constructor(private readonly db: Level<string, Uint8Array>) {}

  static async open(location: string, opts: { createIfMissing?: boolean } = {}): Promise<LevelStore> {
    const db = new Level<string, Uint8Array>(location, {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
      createIfMissing: opts.createIfMissing ?? true,
    });
    await db.open();
    return new LevelStore(db);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return this.db.get(key);
  }

  async batch(ops: readonly BatchOp[], opts: { sync?: boolean } = {}): Promise<void> {
    // The chained form: one native call per entry with key and value as arguments. The array
    // form reads every operation's type, key and value as object properties through N-API, on
    // the event loop's thread: ~1 µs more per entry (a node writes ~10 entries per transaction).
    const batch = this.db.batch();
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
    } catch (err) {
      await batch.close(); // a bad operation: nothing was written, free the batch now
      throw err;
    }
    await batch.write({ sync: opts.sync ?? true });
  }

  async *iterate(
    prefix: string,
    opts: { gte?: string; lt?: string } = {},
  ): AsyncIterable<[string, Uint8Array]> {
    const gte = opts.gte ?? prefix;
    const lt = opts.lt ?? prefixEnd(prefix);
    // nextv: one native call (and one promise) per thousand entries, not per entry; an auditor
    // reads every entry of a chain (~9 µs per transaction saved in bitnexus verify).
    const it = this.db.iterator({ gte, lt, highWaterMarkBytes: ITERATE_BYTES });
    try {
      for (;;) {
        const batch = await it.nextv(ITERATE_BATCH);
        if (batch.length === 0) return;
        for (const [k, v] of batch) yield [k, v];
      }
    } finally {
      await it.close();
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** In-memory store with the same behaviour, for tests. */
export class MemoryStore implements KeyValueStore {
  readonly data = new Map<string, Uint8Array>();

  get(key: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.data.get(key));
  }

  batch(ops: readonly BatchOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, op.value);
      else this.data.delete(op.key);
    }
    return Promise.resolve();
  }

  async *iterate(
    prefix: string,
    opts: { gte?: string; lt?: string } = {},
  ): AsyncIterable<[string, Uint8Array]> {
    const gte = opts.gte ?? prefix;
    const lt = opts.lt ?? prefixEnd(prefix);
    const selected = [...this.data.keys()].filter((k) => k >= gte && k < lt).sort(compareUtf8);
    for (const k of selected) {
      const v = this.data.get(k);
      if (v !== undefined) yield [k, v];
    }
    await Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The smallest string greater than every string starting with `prefix`. */
export function prefixEnd(prefix: string): string {
  return prefix + '\uffff';
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
