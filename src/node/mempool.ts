import { LIMITS, type DecodedTx } from '../ledger/index.js';

/** When an entry is next sent again, and the gap after that. */
interface Resend {
  at: number;
  gap: number;
}

/** An entry due to be sent again: decoded (`tx`) or raw (`bytes`). */
export type DueEntry = { tx: DecodedTx } | { bytes: Uint8Array };

export interface MempoolLimits {
  /** entries held, decoded and raw together */
  maxTxs: number;
  /** bytes counted for the entries held, decoded and raw together */
  maxBytes: number;
  /** decoded entries of one signer */
  maxPerSigner: number;
  /** raw (undecoded) entries, all relayers together (default: half of maxTxs) */
  maxRawTxs?: number;
  /** bytes counted for raw entries, all relayers together (default: half of maxBytes) */
  maxRawBytes?: number;
  /** raw entries relayed by one member (default: a quarter of maxTxs) */
  maxRawTxsPerRelayer?: number;
  /** bytes counted for the raw entries relayed by one member (default: a quarter of maxBytes) */
  maxRawBytesPerRelayer?: number;
}

export const DEFAULT_MEMPOOL_LIMITS: Readonly<MempoolLimits> = Object.freeze({
  maxTxs: 100_000,
  maxBytes: 256 * 1024 * 1024,
  maxPerSigner: 10_000,
});

/**
 * What one raw entry costs besides its bytes: the signature key (128 hex
 * characters), the map entry, the entry object, and the Uint8Array with its
 * ArrayBuffer. Measured on Node 22 at 430-520 bytes of heap per entry.
 */
export const RAW_ENTRY_OVERHEAD_BYTES = 512;

/**
 * A raw entry larger than this cannot be a valid transaction (a signed
 * transaction's canonical bytes are at most LIMITS.maxTxBytes; the slack is
 * the forward decoder's, ledger-node.ts FORWARD_SLACK_BYTES).
 */
export const MAX_RAW_TX_BYTES = LIMITS.maxTxBytes + 256;

interface RawEntry {
  bytes: Uint8Array;
  addedAt: number;
  /** handed out once by uncheckedRaw (to see whether it can still commit) */
  checked?: true;
  resend?: Resend;
  /** node id of the member that relayed it, when known */
  relayer?: string;
}

/**
 * Transactions accepted by this node (signature checked) and not yet seen in
 * an applied block. Every member keeps one: the node that accepted a
 * transaction holds it and sends it to the leader until it commits, so it
 * survives the leader's death; one answered 202 is also gossiped to every
 * mempool, so it survives the accepting node too (LedgerNode.submit).
 * Insertion order is proposal order. Entries the leader put in a proposed
 * block are marked in flight until that block is applied (then removed) or
 * the leader loses its term (then released).
 *
 * A follower keeps gossiped transactions undecoded ("raw", by signature):
 * it needs them only on the day it leads, and most are committed long
 * before. They are decoded when it becomes leader (`takeRaw`), dropped when
 * a block holding them is applied, and aged out by the sweep.
 *
 * Whatever a follower holds that does not commit is sent to the leader
 * again on a schedule that backs off (`dueForResend`).
 *
 * Raw entries are neither decoded nor signature-checked, and any member can
 * send them (gossip, or a transaction forward on the Raft stream). So they
 * are bounded on their own: together at most half of the mempool
 * (`maxRawTxs`, `maxRawBytes`), so that they never make this node answer an
 * honest client "mempool is full"; and those relayed by one member at most a
 * quarter (`maxRawTxsPerRelayer`, `maxRawBytesPerRelayer`), so that one member
 * cannot crowd out the others' gossip. A raw entry is a copy that owns its
 * bytes, never a view into the frame it arrived in (which would keep the
 * whole frame alive for as long as the entry), and it is counted with what
 * holding it costs (RAW_ENTRY_OVERHEAD_BYTES). Dropping a raw copy loses
 * little: the member that accepted the transaction from its client holds it
 * decoded and forwards it to the leader itself.
 */
export class Mempool {
  private readonly txs = new Map<
    string,
    { tx: DecodedTx; addedAt: number; bytes: number; resend?: Resend; gossiped?: boolean }
  >();
  private readonly inflight = new Set<string>();
  /** signatures of the transactions held: a gossiped copy is recognised before it is decoded */
  private readonly signatures = new Set<string>();
  /** undecoded gossiped transactions, by signature */
  private readonly raw = new Map<string, RawEntry>();
  private totalBytes = 0;
  /** bytes counted for the raw entries (part of totalBytes) */
  private rawBytes = 0;
  /** raw entries and their counted bytes per relaying member */
  private readonly perRelayer = new Map<string, { txs: number; bytes: number }>();
  /** decoded transactions held per signer (raw ones are not decoded: their signer is not known) */
  private readonly perSigner = new Map<string, number>();
  private readonly rawLimits: {
    txs: number;
    bytes: number;
    txsPerRelayer: number;
    bytesPerRelayer: number;
  };

  constructor(readonly limits: MempoolLimits = DEFAULT_MEMPOOL_LIMITS) {
    const part = (n: number, d: number): number => Math.max(1, Math.floor(n / d));
    this.rawLimits = {
      txs: limits.maxRawTxs ?? part(limits.maxTxs, 2),
      bytes: limits.maxRawBytes ?? part(limits.maxBytes, 2),
      txsPerRelayer: limits.maxRawTxsPerRelayer ?? part(limits.maxTxs, 4),
      bytesPerRelayer: limits.maxRawBytesPerRelayer ?? part(limits.maxBytes, 4),
    };
  }

  /**
   * Has `signer` as many transactions waiting as one signer may? One busy or
   * hostile participant could otherwise fill the mempool and have everyone
   * else refused as "full".
   */
  signerAtQuota(signer: string): boolean {
    return (this.perSigner.get(signer) ?? 0) >= this.limits.maxPerSigner;
  }

  /** decoded and raw */
  get size(): number {
    return this.txs.size + this.raw.size;
  }

  has(id: string): boolean {
    return this.txs.has(id);
  }

  /** holds a transaction with this signature (hex)? */
  hasSignature(signature: string): boolean {
    return this.signatures.has(signature) || this.raw.has(signature);
  }

  /**
   * Keep a gossiped or forwarded transaction undecoded, relayed by member
   * `relayer` (its node id; pass it whenever it is known, so that the
   * per-relayer quota applies). True when added or already held; false when
   * refused: the mempool, the raw share or the relayer's quota is full, or it
   * is larger than any valid transaction. `bytes` may be a view into a larger
   * frame: what is kept is a copy.
   */
  addRaw(signature: string, bytes: Uint8Array, now: number, relayer?: string): boolean {
    if (this.hasSignature(signature)) return true;
    if (bytes.byteLength > MAX_RAW_TX_BYTES) return false;
    const size = rawSize(bytes);
    if (this.size >= this.limits.maxTxs || this.totalBytes + size > this.limits.maxBytes) return false;
    const raw = this.rawLimits;
    if (this.raw.size >= raw.txs || this.rawBytes + size > raw.bytes) return false;
    const mine = relayer === undefined ? undefined : (this.perRelayer.get(relayer) ?? { txs: 0, bytes: 0 });
    if (mine !== undefined && (mine.txs >= raw.txsPerRelayer || mine.bytes + size > raw.bytesPerRelayer)) {
      return false;
    }
    // a copy that owns exactly its bytes (Uint8Array's constructor copies; Buffer#slice would not)
    const entry: RawEntry = { bytes: new Uint8Array(bytes), addedAt: now };
    if (relayer !== undefined && mine !== undefined) {
      entry.relayer = relayer;
      mine.txs += 1;
      mine.bytes += size;
      this.perRelayer.set(relayer, mine);
    }
    this.raw.set(signature, entry);
    this.totalBytes += size;
    this.rawBytes += size;
    return true;
  }

  /** Remove and return every raw transaction, oldest first (to decode them). */
  takeRaw(): Uint8Array[] {
    const out = [...this.raw.values()].map((e) => e.bytes);
    for (const sig of [...this.raw.keys()]) this.removeRaw(sig);
    return out;
  }

  removeRaw(signature: string): void {
    const e = this.raw.get(signature);
    if (!e) return;
    this.raw.delete(signature);
    const size = rawSize(e.bytes);
    this.totalBytes -= size;
    this.rawBytes -= size;
    if (e.relayer !== undefined) {
      const mine = this.perRelayer.get(e.relayer);
      if (mine !== undefined) {
        mine.txs -= 1;
        mine.bytes -= size;
        if (mine.txs <= 0) this.perRelayer.delete(e.relayer);
      }
    }
  }

  /**
   * Raw transactions that arrived before `cutoff` and were not handed out
   * here before, as [signature, bytes]: each once, so its owner can check
   * whether it can still commit (a gossip that arrived after its block).
   */
  uncheckedRaw(cutoff: number): [string, Uint8Array][] {
    const out: [string, Uint8Array][] = [];
    for (const [sig, e] of this.raw) {
      if (e.checked || e.addedAt >= cutoff) continue;
      e.checked = true;
      out.push([sig, e.bytes]);
    }
    return out;
  }

  /** Drop raw transactions that arrived before `cutoff`; returns how many. */
  sweepRaw(cutoff: number): number {
    let n = 0;
    for (const [sig, e] of this.raw) {
      if (e.addedAt < cutoff) {
        this.removeRaw(sig);
        n++;
      }
    }
    return n;
  }

  get(id: string): DecodedTx | undefined {
    return this.txs.get(id)?.tx;
  }

  /** false when full (the caller answers "busy"); true when added or already present */
  add(tx: DecodedTx, now: number): boolean {
    if (this.txs.has(tx.id)) return true;
    // a raw copy of it held already makes room for the decoded one; if that does not fit, the
    // raw copy stays
    const raw = this.raw.get(tx.tx.signature);
    const bytes = tx.unsignedBytes.length + 200;
    const count = this.size - (raw ? 1 : 0);
    const total = this.totalBytes - (raw ? rawSize(raw.bytes) : 0);
    if (count >= this.limits.maxTxs || total + bytes > this.limits.maxBytes) return false;
    this.removeRaw(tx.tx.signature); // decoded now
    this.txs.set(tx.id, { tx, addedAt: now, bytes });
    this.signatures.add(tx.tx.signature);
    this.totalBytes += bytes;
    this.perSigner.set(tx.tx.signer, (this.perSigner.get(tx.tx.signer) ?? 0) + 1);
    return true;
  }

  remove(id: string): void {
    const e = this.txs.get(id);
    if (!e) return;
    this.txs.delete(id);
    this.inflight.delete(id);
    this.signatures.delete(e.tx.tx.signature);
    this.totalBytes -= e.bytes;
    const signer = e.tx.tx.signer;
    const left = (this.perSigner.get(signer) ?? 1) - 1;
    if (left > 0) this.perSigner.set(signer, left);
    else this.perSigner.delete(signer);
  }

  /** candidates for the next block, oldest first, skipping those in flight */
  *pending(): Generator<DecodedTx> {
    for (const [id, e] of this.txs) if (!this.inflight.has(id)) yield e.tx;
  }

  /**
   * Entries (decoded ones not in flight, and raw ones) due to be sent again
   * at `now`: first `firstGapMs` after they arrived, then after twice the
   * previous gap, at most `maxGapMs`. Each is rescheduled as it is yielded.
   */
  *dueForResend(now: number, firstGapMs: number, maxGapMs: number): Generator<DueEntry> {
    const due = (e: { addedAt: number; resend?: Resend }): boolean => {
      const r = e.resend ?? { at: e.addedAt + firstGapMs, gap: firstGapMs };
      const gap = Math.min(maxGapMs, r.gap * 2);
      e.resend = now < r.at ? r : { at: now + gap, gap };
      return now >= r.at;
    };
    for (const [id, e] of this.txs) if (!this.inflight.has(id) && due(e)) yield { tx: e.tx };
    for (const e of this.raw.values()) if (due(e)) yield { bytes: e.bytes };
  }

  /** Mark a held transaction gossiped; false if it was already (or is not held). */
  markGossiped(id: string): boolean {
    const e = this.txs.get(id);
    if (!e || e.gossiped) return false;
    e.gossiped = true;
    return true;
  }

  pendingCount(): number {
    return this.txs.size - this.inflight.size;
  }

  markInflight(ids: Iterable<string>): void {
    for (const id of ids) if (this.txs.has(id)) this.inflight.add(id);
  }

  releaseInflight(): void {
    this.inflight.clear();
  }

  /**
   * Drop what `keep` says no longer belongs (committed elsewhere, expired,
   * refused). In-flight entries stay: they are in a block this leader
   * proposed, which settles them when it is applied (or releases them when
   * leadership is lost).
   */
  sweep(keep: (tx: DecodedTx, addedAt: number) => boolean): string[] {
    const dropped: string[] = [];
    for (const [id, e] of this.txs) {
      if (this.inflight.has(id)) continue;
      if (!keep(e.tx, e.addedAt)) {
        this.remove(id);
        dropped.push(id);
      }
    }
    return dropped;
  }
}

/** What a raw entry is counted as: its bytes and what holding them costs. */
function rawSize(bytes: Uint8Array): number {
  return bytes.byteLength + RAW_ENTRY_OVERHEAD_BYTES;
}
