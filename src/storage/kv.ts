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
  /**
   * entries whose key starts with `prefix`, in key order (UTF-8 byte order); `gte`/`lt` narrow the
   * range (default: the prefix's; for the prefix '' no upper bound, so every key is reached)
   */
  iterate(prefix: string, opts?: { gte?: string; lt?: string }): AsyncIterable<[string, Uint8Array]>;
  /**
   * `iterate` with each value as a StoredValue: its text when that stands for exactly the stored
   * bytes, else the bytes. Optional (iterateStored falls back to `iterate`); for walks over
   * entries that do not change under them.
   */
  iterateText?(prefix: string, opts?: { gte?: string; lt?: string }): AsyncIterable<[string, StoredValue]>;
  close(): Promise<void>;
}

/**
 * A stored value: either its bytes, or a string that is their exact UTF-8
 * decoding (bytes = UTF-8 of the string, so comparing the string compares the
 * bytes). Use `storedBytes` for the bytes either way.
 */
export type StoredValue = string | Uint8Array;

/** The bytes of a stored value. */
export function storedBytes(v: StoredValue): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

const textDecoder = new TextDecoder();

/**
 * A stored value as text, as TextDecoder reads its bytes: invalid UTF-8 as
 * U+FFFD (only bytes can hold it: see iterateText) and a leading byte-order
 * mark dropped, so that either form of the same value gives the same text.
 */
export function storedText(v: StoredValue): string {
  if (typeof v !== 'string') return textDecoder.decode(v);
  return v.charCodeAt(0) === BOM ? v.slice(1) : v;
}

const BOM = 0xfeff;

/** kv.iterateText when the store has it, else kv.iterate (every value as bytes). */
export function iterateStored(
  kv: KeyValueStore,
  prefix: string,
  opts: { gte?: string; lt?: string } = {},
): AsyncIterable<[string, StoredValue]> {
  return kv.iterateText ? kv.iterateText(prefix, opts) : kv.iterate(prefix, opts);
}

const REPLACEMENT = '\ufffd';

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

  iterate(prefix: string, opts: { gte?: string; lt?: string } = {}): AsyncIterable<[string, Uint8Array]> {
    return this.walk(prefix, opts, 'view') as AsyncIterable<[string, Uint8Array]>;
  }

  /**
   * The values are decoded from UTF-8 by LevelDB's binding into strings, which live on V8's heap:
   * as bytes, each value is a Buffer of its own, an off-heap backing store (~1 µs per entry to
   * allocate and free; an auditor reads ~8 entries per transaction). A value that is not valid
   * UTF-8 comes out of that decoding with U+FFFD where the invalid bytes were, so a text holding
   * U+FFFD is no proof of the bytes: that value is read again as bytes. Any other text is exact:
   * the bytes are valid UTF-8 (a byte-order mark and NUL kept as characters) and are its encoding.
   */
  iterateText(
    prefix: string,
    opts: { gte?: string; lt?: string } = {},
  ): AsyncIterable<[string, StoredValue]> {
    return this.walk(prefix, opts, 'utf8');
  }

  /** `iterate` ('view') or `iterateText` ('utf8'): one generator, not one wrapped in another (a promise each). */
  private async *walk(
    prefix: string,
    opts: { gte?: string; lt?: string },
    valueEncoding: 'view' | 'utf8',
  ): AsyncIterable<[string, StoredValue]> {
    const gte = opts.gte ?? prefix;
    const lt = opts.lt ?? prefixEnd(prefix);
    // nextv: one native call (and one promise) per thousand entries, not per entry; an auditor
    // reads every entry of a chain (~9 µs per transaction saved in bitnexus verify).
    const it = this.db.iterator<string, StoredValue>(
      lt === undefined
        ? { gte, highWaterMarkBytes: ITERATE_BYTES, valueEncoding }
        : { gte, lt, highWaterMarkBytes: ITERATE_BYTES, valueEncoding },
    );
    let last: string | undefined;
    try {
      for (;;) {
        let batch: [string, StoredValue][];
        try {
          batch = await it.nextv(ITERATE_BATCH);
        } catch (err) {
          // LevelDB skips a damaged block of a table (LEVEL_CORRUPTION) and reports it only where
          // the walk ends, failing that read's whole batch: read the batch again one entry at a
          // time, so the caller gets every entry that can be read before the error. Any other
          // failure (the store closing, say) is passed on as it is.
          if ((err as { code?: unknown }).code === 'LEVEL_CORRUPTION')
            yield* this.oneByOne(last === undefined ? { gte } : { gt: last }, lt, valueEncoding);
          throw err;
        }
        if (batch.length === 0) return;
        for (const [k, v] of batch) {
          if (typeof v === 'string' && v.includes(REPLACEMENT)) yield [k, await this.bytesOf(k, v)];
          else yield [k, v];
        }
        last = batch[batch.length - 1]![0];
      }
    } finally {
      await it.close();
    }
  }

  /** The entries of a range, one read each, up to the first read that fails. */
  private async *oneByOne(
    from: { gte: string } | { gt: string },
    lt: string | undefined,
    valueEncoding: 'view' | 'utf8',
  ): AsyncIterable<[string, StoredValue]> {
    const it = this.db.iterator<string, StoredValue>(
      lt === undefined ? { ...from, valueEncoding } : { ...from, lt, valueEncoding },
    );
    try {
      for (;;) {
        let entry: [string, StoredValue][];
        try {
          entry = await it.nextv(1);
        } catch {
          return;
        }
        if (entry.length === 0) return;
        const [k, v] = entry[0]!;
        if (typeof v === 'string' && v.includes(REPLACEMENT)) yield [k, await this.bytesOf(k, v)];
        else yield [k, v];
      }
    } finally {
      await it.close();
    }
  }

  /**
   * A value read as text that holds U+FFFD, read again as bytes (iterateText). A key that is not
   * UTF-8 (written by other software) decodes with U+FFFD too, and cannot be read again by its
   * decoded name: no node reads such a key, so whatever its value, it is an entry of no store,
   * and the value's text as bytes says enough.
   */
  private async bytesOf(key: string, text: string): Promise<Uint8Array> {
    if (key.includes(REPLACEMENT)) return Buffer.from(text, 'utf8');
    const bytes = await this.db.get(key);
    if (bytes === undefined) throw new Error(`store key ${JSON.stringify(key)} was deleted during the walk`);
    return bytes;
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
    // selected and sorted by their UTF-8 bytes, as LevelDB does: JavaScript's string order (UTF-16
    // code units) puts U+FFFF after '😀', LevelDB before it.
    const gte = utf8(opts.gte ?? prefix);
    const end = opts.lt ?? prefixEnd(prefix);
    const lt = end === undefined ? undefined : utf8(end);
    const selected = [...this.data.keys()]
      .map((k): [string, Buffer] => [k, utf8(k)])
      .filter(([, b]) => Buffer.compare(b, gte) >= 0 && (lt === undefined || Buffer.compare(b, lt) < 0))
      .sort(([, a], [, b]) => Buffer.compare(a, b))
      .map(([k]) => k);
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

/**
 * The smallest key above every key starting with `prefix`, in UTF-8 byte order (LevelDB's): the
 * prefix with its last character replaced by the next code point. UTF-8 keeps code point order
 * and no character's encoding is a prefix of another's, so exactly the keys starting with
 * `prefix` lie in [prefix, prefixEnd(prefix)). undefined when there is no such key (the prefix ''
 * or one of only U+10FFFF): no upper bound. (`prefix + '\uffff'` is not one: `prefix + '😀'`
 * sorts after it, and it is a key itself.)
 */
export function prefixEnd(prefix: string): string | undefined {
  let end = prefix;
  while (end.length > 0) {
    const lastUnit = end.charCodeAt(end.length - 1);
    const pair =
      isLowSurrogate(lastUnit) && end.length >= 2 && isHighSurrogate(end.charCodeAt(end.length - 2));
    // a lone surrogate is written as U+FFFD (what Buffer and LevelDB's utf8 encoding make of it)
    const cp = pair ? end.codePointAt(end.length - 2)! : isSurrogate(lastUnit) ? 0xfffd : lastUnit;
    end = end.slice(0, end.length - (pair ? 2 : 1));
    if (cp === 0x10ffff) continue; // no next code point: bump the one before
    // the surrogates are no characters: after U+D7FF comes U+E000
    return end + String.fromCodePoint(cp === 0xd7ff ? 0xe000 : cp + 1);
  }
  return undefined;
}

const isHighSurrogate = (u: number) => u >= 0xd800 && u <= 0xdbff;
const isLowSurrogate = (u: number) => u >= 0xdc00 && u <= 0xdfff;
const isSurrogate = (u: number) => u >= 0xd800 && u <= 0xdfff;
const utf8 = (s: string) => Buffer.from(s, 'utf8');
