import { CodecError } from '../codec/index.js';
import type { MerkleNode } from '../crypto/index.js';
import {
  BlockError,
  checkAllInvariants,
  decodeBlock,
  decodedTxSigningMessage,
  encodeDecodedBlock,
  encodeReceiptGeneric,
  encodeRecordGeneric,
  blockSigningMessage,
  InvariantViolation,
  LedgerState,
  parseBlock,
  processBlock,
  ValidationError,
  verifyTxSignature,
  type DecodedBlock,
  type Receipt,
  type StateRecord,
  receiptText,
  recordText,
} from '../ledger/index.js';
import { chainKeys, prefixes, prefixEnd, type KeyValueStore } from '../storage/index.js';
import { iterateStored, storedBytes, storedText, type StoredValue } from '../storage/kv.js';
import { storedEquals } from './equals-text.js';
import { SignaturePool, type SignaturePoolOptions } from './signature-pool.js';
import { decodeStoredFast } from './stored-block.js';

/**
 * The auditor's full check of a node's stored chain, trusting nothing the
 * node computed: every block is parsed from its stored bytes, linked, its
 * Merkle roots recomputed, every signature checked, every transaction
 * re-executed from genesis; every stored receipt, index entry, state record
 * and Merkle node is compared byte for byte with what the re-execution
 * produced, and the whole-state invariants are checked.
 *
 * How the work is spread. The calling thread reads each block, checks that
 * its bytes are canonical and computes the transaction ids
 * (stored-block.ts: the signed messages are written once, into the signature
 * pool's batch buffer, and hashed there), re-executes it and compares its
 * receipts as it goes (a second cursor over the receipt store walks in step
 * with the blocks). Signatures are checked on worker threads meanwhile; the
 * calling thread runs ahead of them, compares the other stores in one pass
 * while they are still busy, and then verifies queued batches itself until
 * all are done. Each stored entry is read once.
 *
 * The first problem found, in chain order, is reported with the height,
 * transaction and field (or store key) that is wrong. Blocks and signatures
 * come first; then the stores, in the order receipts, transaction index,
 * block-hash index, Merkle nodes, state, unknown keys; then the invariants.
 * A store that cannot be read (LevelDB finds a damaged table) is a failed
 * check too, STORE_CORRUPT: in chain order for the block store, else after
 * the blocks and signatures, before the other stores' findings.
 */

export interface VerifyFailure {
  code: string;
  message: string;
  height?: number;
  txIndex?: number;
  txId?: string;
  field?: string;
  /**
   * the store key concerned: the entry that differs, is missing, is not a key a node reads or
   * cannot be read (STORE_CORRUPT: else the last key read)
   */
  key?: string;
}

export interface VerifyReport {
  ok: boolean;
  /** height of the last block checked */
  height: number;
  blocks: number;
  transactions: number;
  seconds: number;
  /** the chain id and genesis block hash of the chain checked (what to compare with a known network) */
  chainId?: string;
  genesisHash?: string;
  /** hash of the last block checked */
  headHash?: string;
  failure?: VerifyFailure;
}

export interface VerifyOptions {
  /** signature worker threads; 0 verifies on this thread. Default: one per core. */
  threads?: number;
  onProgress?: (height: number, lastHeight: number) => void;
  /** the signature worker script; for tests */
  signatureWorker?: URL;
  /**
   * The genesis block hash the auditor knows for the network (published by
   * its operators): a store whose genesis differs is another network, however
   * consistent, and fails with GENESIS_MISMATCH. Without it, the chain is
   * checked against its own stored genesis, which the report names.
   */
  genesisHash?: string;
}

class Failed extends Error {
  constructor(readonly failure: VerifyFailure) {
    super(failure.message);
  }
}

const decoder = new TextDecoder();
/** tags for signature jobs: height * TAG_STRIDE + index + 1 (0 = block signature); > maxBlockTxs + 1 */
const TAG_STRIDE = 2 ** 21;
const tagOf = (height: number, index: number) => height * TAG_STRIDE + index + 1;
/** a transaction's place, height * POSITION + index */
const POSITION = 2 ** 21;

export async function verifyChain(kv: KeyValueStore, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const poolOpts: SignaturePoolOptions = {};
  if (opts.threads !== undefined) poolOpts.threads = opts.threads;
  if (opts.signatureWorker !== undefined) poolOpts.workerUrl = opts.signatureWorker;
  const pool = new SignaturePool(poolOpts);
  let height = -1;
  let blocks = 0;
  let transactions = 0;
  const state = new LedgerState();
  const expected: Expected = {
    txIndex: new Map(),
    hashes: new Map(),
    merkle: new ExpectedMerkle(),
    state,
  };
  const findings = new Findings();
  let receipts: Cursor | undefined;
  /** a store other than the block store that could not be read */
  let storeFailure: VerifyFailure | undefined;
  let chainId: string | undefined;
  let genesisHash: string | undefined;
  let headHash: string | undefined;
  const report = (failure?: VerifyFailure): VerifyReport => {
    const r: VerifyReport = {
      ok: failure === undefined,
      height,
      blocks,
      transactions,
      seconds: (performance.now() - started) / 1000,
    };
    if (chainId !== undefined) r.chainId = chainId;
    if (genesisHash !== undefined) r.genesisHash = genesisHash;
    if (headHash !== undefined) r.headHash = headHash;
    if (failure) r.failure = failure;
    return r;
  };
  try {
    const headHeight = await storedHeadHeight(kv);
    const lastHeight = headHeight ?? 0;
    receipts = await Cursor.open(kv, prefixes.receipt, 'the receipt store (r/)', true);
    let blockFailure: VerifyFailure | undefined;
    // The first key in the block store that is not a block key (b/<height, 12 digits>), say a block
    // renamed b/4: no node reads it (ChainStore.getBlock), so the block is missing where it was.
    let stray: string | undefined;
    // Not for await: a read that fails must be told from a failure of the checks (without a
    // wrapper per entry, which costs ~50 ns each).
    const entries = kv.iterate(prefixes.block)[Symbol.asyncIterator]();
    try {
      for (let last: string | undefined; ;) {
        let next: IteratorResult<[string, Uint8Array]>;
        try {
          next = await entries.next();
        } catch (err) {
          blockFailure =
            (await unreadableBlock(kv, height + 1)) ?? storeCorrupt(err, 'the block store (b/)', last);
          break;
        }
        if (next.done) break;
        const [key, bytes] = next.value;
        last = key;
        const h = blockKey(key);
        if (h === undefined) {
          stray ??= key;
          findings.note('unknown', {
            code: 'UNEXPECTED_ENTRY',
            key,
            message: `store key ${JSON.stringify(key)} is in the block store but is not a block key (b/<height, 12 digits>)`,
          });
          continue;
        }
        if (h !== height + 1) {
          // LevelDB skips a damaged part of a table, reporting it only at the end of the walk
          blockFailure =
            (await unreadableBlock(kv, height + 1)) ??
            missingBlock(height + 1, `next stored is ${h}`, key, stray);
          break;
        }
        let block = decodeStoredFast(h, bytes, pool, tagOf);
        if (block === undefined) {
          const decoded = decodeStored(h, bytes);
          if (!decoded.ok) {
            blockFailure = decoded.failure;
            break;
          }
          block = decoded.block;
          queueSignatures(pool, block);
        }
        let processed;
        try {
          processed = processBlock(state, block, { checkSignatures: false });
        } catch (err) {
          blockFailure = explainBlockError(err, block);
          break;
        }
        if (h === 0) {
          chainId = block.block.header.chainId;
          genesisHash = block.hash;
          if (opts.genesisHash !== undefined && block.hash !== opts.genesisHash.toLowerCase()) {
            blockFailure = {
              code: 'GENESIS_MISMATCH',
              height: 0,
              message: `the stored genesis is ${block.hash}, not ${opts.genesisHash}: another network's chain`,
            };
            break;
          }
        }
        state.merge(processed.writes);
        height = h;
        headHash = block.hash;
        blocks++;
        transactions += block.txs.length;
        expected.hashes.set(block.hash, h);
        await compareReceipts(receipts, h, processed.receipts, findings);
        for (const r of processed.receipts) {
          if (r.code !== 'DUPLICATE_TX') expected.txIndex.set(r.tx, h * POSITION + r.index);
        }
        expected.merkle.add(processed.merkleNodes);
        opts.onProgress?.(h, lastHeight);
        pool.balance();
      }
    } finally {
      await entries.return?.();
    }
    if (blockFailure === undefined && (height < (headHeight ?? -1) || (height < 0 && stray !== undefined))) {
      // The last blocks deleted (or renamed): without this, their receipts and index entries would
      // be reported as entries of no block.
      blockFailure = missingBlock(
        height + 1,
        headHeight !== undefined && height < headHeight
          ? `the stored head names height ${headHeight}`
          : undefined,
        chainKeys.block(height + 1),
        stray,
      );
    }
    let invariantFailure: VerifyFailure | undefined;
    if (blockFailure === undefined && height >= 0) {
      // receipts of no block
      for (; receipts.entry !== undefined; await receipts.next()) {
        findings.note('receipt', entryFailure(receipts.entry[0], 'UNEXPECTED_ENTRY', NOT_PRODUCED));
      }
      // while the workers are still checking signatures
      const unread = await compareOtherStores(kv, expected, findings);
      storeFailure = receipts.failure ?? unread;
      try {
        checkAllInvariants(state.records, height);
      } catch (err) {
        if (!(err instanceof InvariantViolation)) throw err;
        invariantFailure = { code: 'INVARIANT_VIOLATION', height, message: err.message };
      }
    }
    const bad = await pool.drain();
    if (bad.length > 0) {
      const tag = bad[0]!;
      const h = Math.floor(tag / TAG_STRIDE);
      const i = (tag % TAG_STRIDE) - 1;
      if (blockFailure === undefined || h <= (blockFailure.height ?? Infinity)) {
        throw new Failed(
          i < 0
            ? {
                code: 'BAD_BLOCK_SIGNATURE',
                height: h,
                field: 'signature',
                message: `block ${h}: the proposer's signature does not verify`,
              }
            : await badTxSignature(kv, h, i),
        );
      }
    }
    if (blockFailure) throw new Failed(blockFailure);
    if (height < 0)
      throw new Failed({
        code: 'EMPTY_CHAIN',
        message: 'the store holds no blocks (not a node data directory?)',
      });
    if (storeFailure) throw new Failed((await unreadableEntry(kv, expected, findings)) ?? storeFailure);
    for (const store of STORES) {
      const f =
        findings.wrong.get(store) ??
        findings.missing.get(store) ??
        (await missingEntry(kv, store, expected, findings));
      if (f) throw new Failed(f);
    }
    if (invariantFailure) throw new Failed(invariantFailure);
    return report();
  } catch (err) {
    if (err instanceof Failed) return report(err.failure);
    throw err;
  } finally {
    await receipts?.close();
    await pool.close();
  }
}

/** The height the stored head record names; undefined without a readable one (the state comparison reports that). */
async function storedHeadHeight(kv: KeyValueStore): Promise<number | undefined> {
  try {
    const head = await kv.get(chainKeys.state('head'));
    if (!head) return undefined;
    const v = JSON.parse(decoder.decode(head)) as { height?: unknown };
    return typeof v.height === 'number' && Number.isSafeInteger(v.height) ? v.height : undefined;
  } catch {
    return undefined;
  }
}

/** `b/<height:12>` → height, only in exactly the form chainKeys.block writes (the only key a node reads). */
function blockKey(key: string): number | undefined {
  const m = /^b\/(\d{12,})$/.exec(key);
  if (!m) return undefined;
  const h = Number(m[1]);
  return chainKeys.block(h) === key ? h : undefined;
}

/** Block h is not stored; `stray`, a key in the block store no node reads, is likely where it went. */
function missingBlock(
  h: number,
  why: string | undefined,
  key: string,
  stray: string | undefined,
): VerifyFailure {
  let message = `block ${h} is missing`;
  if (why !== undefined) message += ` (${why})`;
  if (stray !== undefined)
    message += `; the block store holds ${JSON.stringify(stray)}, which is not a block key (b/<height, 12 digits>) and no node reads`;
  return { code: 'MISSING_BLOCK', height: h, key: stray ?? key, message };
}

/**
 * A walk over the store failed: LevelDB found a damaged table (a flipped byte in a compressed
 * block) or the disk failed. A stored entry was altered or lost, what verify is there to find:
 * a failed check naming the store walked and the last key read (and its height), not an internal
 * error. LevelDB reports the damage where the walk ends, having skipped the entries it could not
 * read: unreadableBlock and unreadableEntry then name the first of them.
 */
function storeCorrupt(err: unknown, store: string, last: string | undefined): VerifyFailure {
  const f: VerifyFailure = {
    code: 'STORE_CORRUPT',
    message: `${store} cannot be read (${causeOf(err)}); the last key read is ${last === undefined ? 'none' : JSON.stringify(last)}`,
  };
  if (last !== undefined) {
    f.key = last;
    const h = blockKey(last) ?? receiptKey(last)?.[0];
    if (h !== undefined) f.height = h;
  }
  return f;
}

const causeOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** STORE_CORRUPT for block h if reading it fails (it is in a damaged part of a table). */
async function unreadableBlock(kv: KeyValueStore, h: number): Promise<VerifyFailure | undefined> {
  const key = chainKeys.block(h);
  const cause = await readFailure(kv, key);
  if (cause === undefined) return undefined;
  return { code: 'STORE_CORRUPT', height: h, key, message: `block ${h} cannot be read (${cause})` };
}

/** Why `key` cannot be read on its own (a damaged table), or undefined when it can. */
async function readFailure(kv: KeyValueStore, key: string): Promise<string | undefined> {
  try {
    await kv.get(key);
    return undefined;
  } catch (err) {
    return causeOf(err);
  }
}

/**
 * After a walk that failed: the first entry, in store order, that re-execution produced, the walks
 * did not read and cannot be read on its own either: STORE_CORRUPT naming it.
 */
async function unreadableEntry(
  kv: KeyValueStore,
  expected: Expected,
  findings: Findings,
): Promise<VerifyFailure | undefined> {
  for (const store of STORES) {
    const missing = findings.missing.get(store) ?? (await missingEntry(kv, store, expected, findings, true));
    if (missing?.key === undefined) continue;
    const cause = await readFailure(kv, missing.key);
    if (cause !== undefined)
      return {
        ...missing,
        code: 'STORE_CORRUPT',
        message: `${describeKey(missing.key).what} cannot be read (${cause})`,
      };
  }
  return undefined;
}

type Decoded = { ok: true; block: DecodedBlock } | { ok: false; failure: VerifyFailure };

/** The exact (slow) path: parse, canonicalise every transaction, compare with the stored bytes. */
function decodeStored(height: number, bytes: Uint8Array): Decoded {
  const key = chainKeys.block(height);
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    return {
      ok: false,
      failure: {
        code: 'MALFORMED_BLOCK',
        height,
        key,
        message: `block ${height}: stored bytes are not JSON (${(err as Error).message})`,
      },
    };
  }
  const nonCanonical: VerifyFailure = {
    code: 'NON_CANONICAL_BLOCK',
    height,
    key,
    message: `block ${height}: stored bytes are not the canonical encoding`,
  };
  try {
    const block = parseBlock(json);
    if (block.header.height !== height) {
      return {
        ok: false,
        failure: {
          code: 'BAD_HEIGHT',
          height,
          field: 'header.height',
          key,
          message: `block stored at ${height} says height ${block.header.height}`,
        },
      };
    }
    const decoded = decodeBlock(block);
    // encodeDecodedBlock reuses each transaction's canonical bytes (a test keeps it equal to encodeBlock)
    if (!Buffer.from(encodeDecodedBlock(decoded)).equals(bytes)) return { ok: false, failure: nonCanonical };
    return { ok: true, block: decoded };
  } catch (err) {
    if (err instanceof ValidationError) {
      const tx = /^\$\.txs\[(\d+)\]/.exec(err.field ?? '');
      const f: VerifyFailure = { code: err.code, height, key, message: `block ${height}: ${err.message}` };
      if (err.field !== undefined) f.field = err.field;
      if (tx) f.txIndex = Number(tx[1]);
      return { ok: false, failure: f };
    }
    // a value canonical JSON cannot hold (say -0): whatever it is, these bytes are not canonical
    if (err instanceof CodecError) return { ok: false, failure: nonCanonical };
    throw err;
  }
}

function queueSignatures(pool: SignaturePool, block: DecodedBlock): void {
  const h = block.block.header.height;
  pool.beginMessage();
  pool.writeBytes(blockSigningMessage(block.block.header));
  pool.endMessage(tagOf(h, -1), block.block.signature, block.block.header.proposer);
  block.txs.forEach((t, i) => {
    pool.beginMessage();
    pool.writeBytes(decodedTxSigningMessage(t));
    pool.endMessage(tagOf(h, i), t.tx.signature, t.tx.signer);
  });
}

/** The failure for a transaction signature a worker refused, with the transaction's id. */
async function badTxSignature(kv: KeyValueStore, h: number, i: number): Promise<VerifyFailure> {
  const f: VerifyFailure = {
    code: 'BAD_TX_SIGNATURE',
    height: h,
    txIndex: i,
    field: `txs[${i}].signature`,
    message: `block ${h} transaction ${i}: the signature does not verify`,
  };
  // the id is a courtesy: a block that cannot be read again leaves it out
  const bytes = await kv.get(chainKeys.block(h)).catch(() => undefined);
  const decoded = bytes === undefined ? undefined : decodeStored(h, bytes);
  const id = decoded?.ok ? decoded.block.txs[i]?.id : undefined;
  if (id !== undefined) {
    f.txId = id;
    f.message = `block ${h} transaction ${i} (${id}): the signature does not verify`;
  }
  return f;
}

function explainBlockError(err: unknown, block: DecodedBlock): VerifyFailure {
  const height = block.block.header.height;
  if (err instanceof BlockError) {
    if (err.code === 'BAD_TX_ROOT') {
      // A changed transaction changes its id and so the root: find which one by its signature.
      const i = block.txs.findIndex((t) => !verifyTxSignature(t.tx));
      if (i >= 0) {
        return {
          code: 'BAD_TX_SIGNATURE',
          height,
          txIndex: i,
          txId: block.txs[i]!.id,
          field: `txs[${i}]`,
          message: `block ${height} transaction ${i}: its contents do not match its signature (altered after signing)`,
        };
      }
    }
    const f: VerifyFailure = { code: err.code, height, field: err.field, message: err.message };
    if (err.txIndex !== undefined) {
      f.txIndex = err.txIndex;
      f.txId = block.txs[err.txIndex]?.id ?? '';
    }
    return f;
  }
  if (err instanceof InvariantViolation) return { code: 'INVARIANT_VIOLATION', height, message: err.message };
  throw err;
}

// ---- the stores ----

type Store = 'receipt' | 'tx' | 'hash' | 'merkle' | 'state' | 'unknown';
/** the order in which store failures are reported */
const STORES: readonly Store[] = ['receipt', 'tx', 'hash', 'merkle', 'state', 'unknown'];

/** Per store, the first entry that is stored but wrong or unexpected, and the first one missing. */
class Findings {
  readonly wrong = new Map<Store, VerifyFailure>();
  readonly missing = new Map<Store, VerifyFailure>();
  /** stored entries that re-execution also produced */
  readonly matched: Record<Store, number> = { receipt: 0, tx: 0, hash: 0, merkle: 0, state: 0, unknown: 0 };

  note(store: Store, f: VerifyFailure): void {
    if (!this.wrong.has(store)) this.wrong.set(store, f);
  }

  noteMissing(store: Store, f: VerifyFailure): void {
    if (!this.missing.has(store)) this.missing.set(store, f);
  }
}

interface Expected {
  /** tx id → place of its first inclusion */
  txIndex: Map<string, number>;
  /** block hash → height */
  hashes: Map<string, number>;
  merkle: ExpectedMerkle;
  state: LedgerState;
}

/** Whole-ledger tree nodes by level and index. */
class ExpectedMerkle {
  readonly levels: Uint8Array[][] = [];
  size = 0;

  add(nodes: readonly MerkleNode[]): void {
    for (const n of nodes) {
      const level = (this.levels[n.level] ??= []);
      if (level[n.index] === undefined) this.size++;
      level[n.index] = n.hash;
    }
  }

  get(level: number, index: number): Uint8Array | undefined {
    return this.levels[level]?.[index];
  }

  *keys(): Iterable<string> {
    for (const [level, nodes] of this.levels.entries()) {
      for (const [index, node] of (nodes ?? []).entries()) {
        if (node !== undefined) yield chainKeys.merkle(level, index);
      }
    }
  }
}

/** An iterator over one store that can be advanced in step with the blocks. */
class Cursor {
  entry: [string, StoredValue] | undefined;
  /** set when a read failed; the walk then ends there */
  failure: VerifyFailure | undefined;
  private constructor(
    private readonly it: AsyncIterator<[string, StoredValue]>,
    private readonly store: string,
  ) {}

  /** `text`: values as iterateStored gives them (for stores of JSON text), else as bytes */
  static async open(kv: KeyValueStore, prefix: string, store: string, text = false): Promise<Cursor> {
    const c = new Cursor(
      (text ? iterateStored(kv, prefix) : kv.iterate(prefix))[Symbol.asyncIterator](),
      store,
    );
    await c.next();
    return c;
  }

  async next(): Promise<void> {
    const last = this.entry?.[0];
    this.entry = undefined;
    if (this.failure) return;
    try {
      const r = await this.it.next();
      if (!r.done) this.entry = r.value;
    } catch (err) {
      this.failure = storeCorrupt(err, this.store, last);
    }
  }

  async close(): Promise<void> {
    this.entry = undefined;
    await this.it.return?.();
  }
}

const NOT_PRODUCED = 'is stored but re-execution produces no such entry';

/** Compare block h's receipts with the receipt store, advancing its cursor past them. */
async function compareReceipts(
  cur: Cursor,
  h: number,
  receipts: readonly Receipt[],
  findings: Findings,
): Promise<void> {
  for (const r of receipts) {
    const key = chainKeys.receipt(h, r.index);
    while (cur.entry !== undefined && cur.entry[0] < key) {
      findings.note('receipt', entryFailure(cur.entry[0], 'UNEXPECTED_ENTRY', NOT_PRODUCED));
      await cur.next();
    }
    if (cur.entry !== undefined && cur.entry[0] === key) {
      const stored = cur.entry[1];
      const fast = receiptText(r);
      if (fast === undefined || !storedEquals(stored, fast)) {
        const want = encodeReceiptGeneric(r);
        const bytes = storedBytes(stored);
        if (!Buffer.from(want).equals(bytes))
          findings.note('receipt', entryFailure(key, 'ENTRY_MISMATCH', differs(want, bytes)));
      }
      await cur.next();
    } else {
      findings.noteMissing('receipt', entryFailure(key, 'MISSING_ENTRY', 'is missing from the store'));
    }
  }
}

const SLASH = 0x2f;

/**
 * One pass over every key outside the block and receipt stores (those were
 * walked with the blocks): each entry must be one re-execution produced, with
 * the same bytes; any other key is unexpected. Returns the first walk that
 * failed (every entry that could be read is compared).
 */
async function compareOtherStores(
  kv: KeyValueStore,
  expected: Expected,
  findings: Findings,
): Promise<VerifyFailure | undefined> {
  let failure: VerifyFailure | undefined;
  // The last range has no upper bound: keys at or above U+FFFF, even bytes that are not UTF-8
  // (written by other software), come after any bound in LevelDB's byte order.
  // `text`: values read as text (iterateStored), for stores of JSON text; Merkle nodes are
  // binary, mostly not UTF-8, and would each be read twice.
  const ranges: [gte: string, lt: string | undefined, store: string, text: boolean][] = [
    ['', prefixes.block, 'the keys before the block store', false],
    [prefixEnd(prefixes.block)!, prefixes.receipt, 'the block-hash index and Merkle stores (h/, m/)', false],
    [prefixEnd(prefixes.receipt)!, undefined, 'the state and transaction index stores (s/, t/)', true],
  ];
  for (const [gte, lt, store, asText] of ranges) {
    const range = lt === undefined ? { gte } : { gte, lt };
    // not for await: see verifyChain
    const entries = (asText ? iterateStored(kv, '', range) : kv.iterate('', range))[Symbol.asyncIterator]();
    try {
      for (let last: string | undefined; ;) {
        let next: IteratorResult<[string, StoredValue]>;
        try {
          next = await entries.next();
        } catch (err) {
          failure ??= storeCorrupt(err, store, last);
          break;
        }
        if (next.done) break;
        const [key, stored] = next.value;
        last = key;
        compareEntry(key, stored, expected, findings);
      }
    } finally {
      await entries.return?.();
    }
  }
  return failure;
}

/** One entry of a store other than blocks and receipts, against what re-execution produced. */
function compareEntry(key: string, stored: StoredValue, expected: Expected, findings: Findings): void {
  const store = key.charCodeAt(1) === SLASH ? storeOf(key.charCodeAt(0)) : 'unknown';
  switch (store) {
    case 'tx': {
      const place = expected.txIndex.get(key.slice(2));
      if (place === undefined) findings.note('tx', entryFailure(key, 'UNEXPECTED_ENTRY', NOT_PRODUCED));
      else {
        findings.matched.tx++;
        const want = `${Math.floor(place / POSITION)}:${place % POSITION}`;
        if (!storedEquals(stored, want))
          findings.note('tx', entryFailure(key, 'ENTRY_MISMATCH', differs(want, stored)));
      }
      break;
    }
    case 'hash': {
      const h = expected.hashes.get(key.slice(2));
      if (h === undefined) findings.note('hash', entryFailure(key, 'UNEXPECTED_ENTRY', NOT_PRODUCED));
      else {
        findings.matched.hash++;
        const want = String(h);
        if (!storedEquals(stored, want))
          findings.note('hash', entryFailure(key, 'ENTRY_MISMATCH', differs(want, stored)));
      }
      break;
    }
    case 'merkle': {
      const at = merkleKey(key);
      const want = at && expected.merkle.get(at[0], at[1]);
      if (!want) findings.note('merkle', entryFailure(key, 'UNEXPECTED_ENTRY', NOT_PRODUCED));
      else {
        findings.matched.merkle++;
        const bytes = storedBytes(stored);
        if (!sameBytes(want, bytes))
          findings.note('merkle', entryFailure(key, 'ENTRY_MISMATCH', differs(want, bytes)));
      }
      break;
    }
    case 'state': {
      const rec = expected.state.records.get(key.slice(2));
      if (rec === undefined) findings.note('state', entryFailure(key, 'UNEXPECTED_ENTRY', NOT_PRODUCED));
      else {
        findings.matched.state++;
        if (!recordMatches(rec, stored)) {
          findings.note(
            'state',
            entryFailure(key, 'ENTRY_MISMATCH', differs(encodeRecordGeneric(rec), stored)),
          );
        }
      }
      break;
    }
    case 'unknown':
      findings.note('unknown', {
        code: 'UNEXPECTED_ENTRY',
        key,
        message: `store key ${JSON.stringify(key)} belongs to no known store`,
      });
  }
}

/**
 * a === b byte for byte. Compared in place: a Merkle node (a SHA-256 digest)
 * lives on V8's heap, and `Buffer.from(want.buffer, …)` would first move it to
 * a fresh off-heap backing store, once per node of the tree.
 */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function storeOf(c: number): Exclude<Store, 'receipt'> {
  switch (c) {
    case 0x74: // t/
      return 'tx';
    case 0x68: // h/
      return 'hash';
    case 0x6d: // m/
      return 'merkle';
    case 0x73: // s/
      return 'state';
    default:
      return 'unknown';
  }
}

function recordMatches(rec: StateRecord, stored: StoredValue): boolean {
  const fast = recordText(rec);
  if (fast !== undefined && storedEquals(stored, fast)) return true;
  return Buffer.from(encodeRecordGeneric(rec)).equals(storedBytes(stored));
}

/** `r/<height:12>/<index:6>` → [height, index], only in exactly the form chainKeys.receipt writes. */
function receiptKey(key: string): [number, number] | undefined {
  const m = /^r\/(\d{12,})\/(\d{6,})$/.exec(key);
  if (!m) return undefined;
  const h = Number(m[1]);
  const i = Number(m[2]);
  return chainKeys.receipt(h, i) === key ? [h, i] : undefined;
}

/** `m/<level:2>/<index:12>` → [level, index], only in exactly the form chainKeys.merkle writes. */
function merkleKey(key: string): [number, number] | undefined {
  const m = /^m\/(\d{2,})\/(\d{12,})$/.exec(key);
  if (!m) return undefined;
  const level = Number(m[1]);
  const index = Number(m[2]);
  return chainKeys.merkle(level, index) === key ? [level, index] : undefined;
}

/**
 * The first entry of `store` that re-execution produced and the store lacks
 * (receipts were matched in step with the blocks). Only when the store held
 * fewer matching entries than expected, so it may read that store again; in a
 * store known to be `damaged`, among the keys that can be read.
 */
async function missingEntry(
  kv: KeyValueStore,
  store: Store,
  expected: Expected,
  findings: Findings,
  damaged = false,
): Promise<VerifyFailure | undefined> {
  const storedKeys = async (prefix: string) => {
    const keys = new Set<string>();
    const c = await Cursor.open(kv, prefix, `the ${prefix} store`);
    try {
      for (; c.entry !== undefined; await c.next()) keys.add(c.entry[0]);
    } finally {
      await c.close();
    }
    if (c.failure && !damaged) throw new Failed(c.failure);
    return keys;
  };
  const first = async (prefix: string, keys: Iterable<string>) => {
    const have = await storedKeys(prefix);
    for (const key of keys) {
      if (!have.has(key)) return entryFailure(key, 'MISSING_ENTRY', 'is missing from the store');
    }
    return undefined;
  };
  const n = findings.matched[store];
  switch (store) {
    case 'tx':
      return n < expected.txIndex.size
        ? first(prefixes.tx, [...expected.txIndex.keys()].map(chainKeys.tx))
        : undefined;
    case 'hash':
      return n < expected.hashes.size
        ? first(prefixes.hash, [...expected.hashes.keys()].map(chainKeys.hash))
        : undefined;
    case 'merkle':
      return n < expected.merkle.size ? first(prefixes.merkle, expected.merkle.keys()) : undefined;
    case 'state':
      return n < expected.state.records.size
        ? first(prefixes.state, [...expected.state.records.keys()].map(chainKeys.state))
        : undefined;
    case 'receipt':
    case 'unknown':
      return undefined;
  }
}

interface KeyDescription {
  what: string;
  height?: number;
  txIndex?: number;
  txId?: string;
}

function describeKey(key: string): KeyDescription {
  const rest = key.slice(2);
  if (key.startsWith(prefixes.receipt)) {
    const at = receiptKey(key);
    if (at === undefined) return { what: `receipt-store key ${JSON.stringify(key)} (not a receipt key)` };
    const [h, i] = at;
    return { what: `receipt of block ${h} transaction ${i}`, height: h, txIndex: i };
  }
  if (key.startsWith(prefixes.tx)) return { txId: rest, what: `transaction index entry for ${rest}` };
  if (key.startsWith(prefixes.hash)) return { what: `block-hash index entry ${rest}` };
  if (key.startsWith(prefixes.merkle)) return { what: `whole-ledger Merkle node ${rest}` };
  return { what: `state record ${rest}` };
}

function entryFailure(key: string, code: string, detail: string): VerifyFailure {
  const d = describeKey(key);
  const f: VerifyFailure = { code, key, message: `${d.what}: ${detail}` };
  if (d.height !== undefined) f.height = d.height;
  if (d.txIndex !== undefined) f.txIndex = d.txIndex;
  if (d.txId !== undefined) f.txId = d.txId;
  const field = detail.match(/field (\S+)/)?.[1];
  if (field) f.field = field;
  return f;
}

/** Name the first JSON field that differs, when both sides are JSON objects. */
function differs(want: Uint8Array | string, got: StoredValue): string {
  try {
    const a = JSON.parse(typeof want === 'string' ? want : decoder.decode(want)) as Record<string, unknown>;
    const b = JSON.parse(storedText(got)) as Record<string, unknown>;
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
        return `field ${k} differs: stored ${JSON.stringify(b[k])}, re-execution gives ${JSON.stringify(a[k])}`;
      }
    }
    return 'stored bytes differ from the canonical encoding';
  } catch {
    return 'stored bytes differ from what re-execution produces';
  }
}
