import { fromHex } from '../codec/index.js';
import {
  BlockError,
  checkAllInvariants,
  decodeBlock,
  decodedTxSigningMessage,
  encodeDecodedBlock,
  encodeReceipt,
  encodeRecord,
  blockSigningMessage,
  InvariantViolation,
  LedgerState,
  parseBlock,
  processBlock,
  ValidationError,
  verifyTxSignature,
  type DecodedBlock,
} from '../ledger/index.js';
import { chainKeys, prefixes, type KeyValueStore } from '../storage/index.js';
import { SignaturePool } from './signature-pool.js';

/**
 * The auditor's full check of a node's stored chain, trusting nothing the
 * node computed: every block is parsed from its stored bytes, linked, its
 * Merkle roots recomputed, every signature checked (on worker threads), every
 * transaction re-executed from genesis; then every stored receipt, index
 * entry, state record and Merkle node is compared byte for byte with what the
 * re-execution produced, and the whole-state invariants are checked.
 *
 * The first problem found, in chain order, is reported with the height,
 * transaction and field (or store key) that is wrong.
 */

export interface VerifyFailure {
  code: string;
  message: string;
  height?: number;
  txIndex?: number;
  txId?: string;
  field?: string;
  /** the store key that differs, for index/state/receipt checks */
  key?: string;
}

export interface VerifyReport {
  ok: boolean;
  /** height of the last block checked */
  height: number;
  blocks: number;
  transactions: number;
  seconds: number;
  failure?: VerifyFailure;
}

export interface VerifyOptions {
  /** signature worker threads; 0 verifies on this thread. Default: one per core. */
  threads?: number;
  onProgress?: (height: number, lastHeight: number) => void;
}

class Failed extends Error {
  constructor(readonly failure: VerifyFailure) {
    super(failure.message);
  }
}

const decoder = new TextDecoder();
const text = new TextEncoder();
/** tags for signature jobs: height * TAG_STRIDE + index + 1 (0 = block signature) */
const TAG_STRIDE = 1_000_000;

export async function verifyChain(kv: KeyValueStore, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const started = performance.now();
  const pool = new SignaturePool(opts.threads);
  let height = -1;
  let blocks = 0;
  let transactions = 0;
  const state = new LedgerState();
  const expected = {
    receipts: new Map<string, Uint8Array>(),
    txIndex: new Map<string, Uint8Array>(),
    hashes: new Map<string, Uint8Array>(),
    merkle: new Map<string, Uint8Array>(),
  };
  const report = (failure?: VerifyFailure): VerifyReport => {
    const r: VerifyReport = {
      ok: failure === undefined,
      height,
      blocks,
      transactions,
      seconds: (performance.now() - started) / 1000,
    };
    if (failure) r.failure = failure;
    return r;
  };
  try {
    const lastHeight = await storedHeadHeight(kv);
    let blockFailure: VerifyFailure | undefined;
    for await (const [key, bytes] of kv.iterate(prefixes.block)) {
      const h = Number(key.slice(prefixes.block.length));
      if (h !== height + 1) {
        blockFailure = {
          code: 'MISSING_BLOCK',
          height: height + 1,
          key,
          message: `block ${height + 1} is missing (next stored is ${h})`,
        };
        break;
      }
      const decoded = decodeStored(h, bytes);
      if (!decoded.ok) {
        blockFailure = decoded.failure;
        break;
      }
      const block = decoded.block;
      queueSignatures(pool, block);
      let processed;
      try {
        processed = processBlock(state, block, { checkSignatures: false });
      } catch (err) {
        blockFailure = explainBlockError(err, block);
        break;
      }
      state.merge(processed.writes);
      height = h;
      blocks++;
      transactions += block.txs.length;
      expected.hashes.set(chainKeys.hash(block.hash), text.encode(String(h)));
      for (const r of processed.receipts) {
        expected.receipts.set(chainKeys.receipt(h, r.index), encodeReceipt(r));
        if (r.code !== 'DUPLICATE_TX')
          expected.txIndex.set(chainKeys.tx(r.tx), text.encode(`${h}:${r.index}`));
      }
      for (const n of processed.merkleNodes) expected.merkle.set(chainKeys.merkle(n.level, n.index), n.hash);
      opts.onProgress?.(h, lastHeight);
      await pool.throttle();
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
            : {
                code: 'BAD_TX_SIGNATURE',
                height: h,
                txIndex: i,
                field: `txs[${i}].signature`,
                message: `block ${h} transaction ${i}: the signature does not verify`,
              },
        );
      }
    }
    if (blockFailure) throw new Failed(blockFailure);
    if (height < 0)
      throw new Failed({
        code: 'EMPTY_CHAIN',
        message: 'the store holds no blocks (not a node data directory?)',
      });

    await compareStore(kv, prefixes.receipt, expected.receipts, describeReceiptKey);
    await compareStore(kv, prefixes.tx, expected.txIndex, (k) => ({
      txId: k.slice(prefixes.tx.length),
      what: 'transaction index entry',
    }));
    await compareStore(kv, prefixes.hash, expected.hashes, (k) => ({
      what: `block-hash index entry ${k.slice(prefixes.hash.length)}`,
    }));
    await compareStore(kv, prefixes.merkle, expected.merkle, (k) => ({
      what: `whole-ledger Merkle node ${k.slice(prefixes.merkle.length)}`,
    }));
    const expectedState = new Map<string, Uint8Array>();
    for (const [k, rec] of state.records) expectedState.set(chainKeys.state(k), encodeRecord(rec));
    await compareStore(kv, prefixes.state, expectedState, (k) => ({
      what: `state record ${k.slice(prefixes.state.length)}`,
    }));
    await checkNoUnknownKeys(kv);
    try {
      checkAllInvariants(state.records, height);
    } catch (err) {
      if (err instanceof InvariantViolation)
        throw new Failed({ code: 'INVARIANT_VIOLATION', height, message: err.message });
      throw err;
    }
    return report();
  } catch (err) {
    if (err instanceof Failed) return report(err.failure);
    throw err;
  } finally {
    await pool.close();
  }
}

async function storedHeadHeight(kv: KeyValueStore): Promise<number> {
  try {
    const head = await kv.get(chainKeys.state('head'));
    if (!head) return 0;
    const v = JSON.parse(decoder.decode(head)) as { height?: unknown };
    return typeof v.height === 'number' ? v.height : 0;
  } catch {
    return 0;
  }
}

type Decoded = { ok: true; block: DecodedBlock } | { ok: false; failure: VerifyFailure };

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
    if (!Buffer.from(encodeDecodedBlock(decoded)).equals(Buffer.from(bytes))) {
      return {
        ok: false,
        failure: {
          code: 'NON_CANONICAL_BLOCK',
          height,
          key,
          message: `block ${height}: stored bytes are not the canonical encoding`,
        },
      };
    }
    return { ok: true, block: decoded };
  } catch (err) {
    if (err instanceof ValidationError) {
      const tx = /^\$\.txs\[(\d+)\]/.exec(err.field ?? '');
      const f: VerifyFailure = { code: err.code, height, key, message: `block ${height}: ${err.message}` };
      if (err.field !== undefined) f.field = err.field;
      if (tx) f.txIndex = Number(tx[1]);
      return { ok: false, failure: f };
    }
    throw err;
  }
}

function queueSignatures(pool: SignaturePool, block: DecodedBlock): void {
  const h = block.block.header.height;
  pool.add({
    tag: h * TAG_STRIDE,
    message: blockSigningMessage(block.block.header),
    signature: fromHex(block.block.signature),
    publicKey: fromHex(block.block.header.proposer),
  });
  block.txs.forEach((t, i) => {
    pool.add({
      tag: h * TAG_STRIDE + i + 1,
      message: decodedTxSigningMessage(t),
      signature: fromHex(t.tx.signature),
      publicKey: fromHex(t.tx.signer),
    });
  });
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

interface KeyDescription {
  what: string;
  height?: number;
  txIndex?: number;
  txId?: string;
}

function describeReceiptKey(key: string): KeyDescription {
  const [, h, i] = key.split('/');
  return {
    what: `receipt of block ${Number(h)} transaction ${Number(i)}`,
    height: Number(h),
    txIndex: Number(i),
  };
}

/** Stored entries under `prefix` must be exactly `expected`: same keys, same bytes. */
async function compareStore(
  kv: KeyValueStore,
  prefix: string,
  expected: Map<string, Uint8Array>,
  describe: (key: string) => KeyDescription,
): Promise<void> {
  const seen = new Set<string>();
  const fail = (key: string, code: string, detail: string): never => {
    const d = describe(key);
    const f: VerifyFailure = { code, key, message: `${d.what}: ${detail}` };
    if (d.height !== undefined) f.height = d.height;
    if (d.txIndex !== undefined) f.txIndex = d.txIndex;
    if (d.txId !== undefined) f.txId = d.txId;
    const field = detail.match(/field (\S+)/)?.[1];
    if (field) f.field = field;
    throw new Failed(f);
  };
  for await (const [key, stored] of kv.iterate(prefix)) {
    const want = expected.get(key);
    if (want === undefined)
      fail(key, 'UNEXPECTED_ENTRY', 'is stored but re-execution produces no such entry');
    else if (!Buffer.from(want).equals(Buffer.from(stored)))
      fail(key, 'ENTRY_MISMATCH', differs(want, stored));
    seen.add(key);
  }
  for (const key of expected.keys()) {
    if (!seen.has(key)) fail(key, 'MISSING_ENTRY', 'is missing from the store');
  }
}

/** Name the first JSON field that differs, when both sides are JSON objects. */
function differs(want: Uint8Array, got: Uint8Array): string {
  try {
    const a = JSON.parse(decoder.decode(want)) as Record<string, unknown>;
    const b = JSON.parse(decoder.decode(got)) as Record<string, unknown>;
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

async function checkNoUnknownKeys(kv: KeyValueStore): Promise<void> {
  const known = Object.values(prefixes) as string[];
  for await (const [key] of kv.iterate('')) {
    if (!known.some((p) => key.startsWith(p))) {
      throw new Failed({
        code: 'UNEXPECTED_ENTRY',
        key,
        message: `store key ${JSON.stringify(key)} belongs to no known store`,
      });
    }
  }
}
