import { describe, expect, it } from 'vitest';
import { canonicalBytes } from '../../../src/codec/index.js';
import { signatureOfCanonicalTx } from '../../../src/ledger/index.js';
import { Mempool } from '../../../src/node/mempool.js';
import { keyFor, pub, tx } from '../../support/ledger-fixture.js';

const op = keyFor('operator');
const reg = (label: string) =>
  tx('participant.register', op, { participant: pub(keyFor(label)), role: 'merchant', name: label });

describe('the mempool', () => {
  it('keeps gossip undecoded by signature until taken, and forgets it once decoded or committed', () => {
    const m = new Mempool();
    const a = reg('a');
    const b = reg('b');
    const bytesA = canonicalBytes(a.tx);
    const sigA = signatureOfCanonicalTx(bytesA)!;
    expect(sigA).toBe(a.tx.signature);
    expect(m.addRaw(sigA, bytesA, 1)).toBe(true);
    expect(m.addRaw(sigA, bytesA, 2)).toBe(true); // already held
    expect(m.size).toBe(1);
    expect(m.hasSignature(sigA)).toBe(true);
    expect(m.pendingCount()).toBe(0); // nothing to propose until decoded
    // the decoded copy replaces the raw one
    expect(m.add(a, 3)).toBe(true);
    expect(m.size).toBe(1);
    expect(m.takeRaw()).toEqual([]);
    // raw entries are taken oldest first, and removed by signature
    m.addRaw(b.tx.signature, canonicalBytes(b.tx), 4);
    m.removeRaw(b.tx.signature);
    expect(m.hasSignature(b.tx.signature)).toBe(false);
    m.addRaw(b.tx.signature, canonicalBytes(b.tx), 5);
    expect(m.takeRaw().map((x) => Buffer.from(x).toString())).toEqual([
      Buffer.from(canonicalBytes(b.tx)).toString(),
    ]);
    expect(m.size).toBe(1);
  });

  it('ages raw gossip out and counts it against the limits', () => {
    const m = new Mempool({ maxTxs: 2, maxBytes: 1 << 20, maxPerSigner: 10 });
    const [a, b, c] = [reg('x'), reg('y'), reg('z')];
    expect(m.addRaw(a.tx.signature, canonicalBytes(a.tx), 10)).toBe(true);
    expect(m.add(b, 20)).toBe(true);
    expect(m.addRaw(c.tx.signature, canonicalBytes(c.tx), 30)).toBe(false); // full
    expect(m.sweepRaw(15)).toBe(1);
    expect(m.size).toBe(1);
    expect(m.addRaw(c.tx.signature, canonicalBytes(c.tx), 30)).toBe(true);
  });

  it('keeps a raw copy when its decoded form does not fit, and counts each signer’s transactions', () => {
    const m = new Mempool({ maxTxs: 2, maxBytes: 1 << 20, maxPerSigner: 2 });
    const [a, b, c] = [reg('p'), reg('q'), reg('r')];
    m.add(a, 1);
    m.addRaw(b.tx.signature, canonicalBytes(b.tx), 2);
    // full (a, and b raw): b decoded takes the place of its raw copy
    expect(m.add(b, 3)).toBe(true);
    expect(m.size).toBe(2);
    // c arrives raw while full: refused; then decoded, still refused, and nothing else is lost
    expect(m.addRaw(c.tx.signature, canonicalBytes(c.tx), 4)).toBe(false);
    expect(m.add(c, 5)).toBe(false);
    expect(m.size).toBe(2);
    // one signer (the operator signs all three) at its quota
    expect(m.signerAtQuota(pub(op))).toBe(true);
    m.remove(a.id);
    expect(m.signerAtQuota(pub(op))).toBe(false);
    // a raw copy held while full stays when its decoded form cannot be added
    const n = new Mempool({ maxTxs: 2, maxBytes: 1 << 20, maxPerSigner: 10 });
    const [d, e] = [reg('d'), reg('e')];
    n.addRaw(d.tx.signature, canonicalBytes(d.tx), 1);
    n.add(e, 2);
    const big = { ...d, unsignedBytes: new Uint8Array(2 << 20) }; // its decoded form is over maxBytes
    expect(n.add(big, 3)).toBe(false);
    expect(n.hasSignature(d.tx.signature)).toBe(true); // was dropped before
  });

  it('sends again what has not committed on a schedule that backs off, skipping what is in flight', () => {
    const m = new Mempool();
    const a = reg('a');
    const b = reg('b');
    const c = reg('c');
    m.add(a, 1_000);
    m.add(b, 1_000);
    m.addRaw(c.tx.signature, canonicalBytes(c.tx), 1_500);
    m.markInflight([b.id]); // in a proposed block: not sent again
    const due = (now: number) =>
      [...m.dueForResend(now, 2_000, 10_000)].map((e) => ('tx' in e ? e.tx.id : 'raw'));
    expect(due(2_999)).toEqual([]);
    expect(due(3_000)).toEqual([a.id]); // first gap: 2 s after it arrived
    expect(due(3_500)).toEqual(['raw']);
    expect(due(6_999)).toEqual([]);
    expect(due(7_000)).toEqual([a.id]); // then 4 s
    expect(due(7_500)).toEqual(['raw']);
    expect(due(15_000)).toEqual([a.id]); // 8 s
    expect(due(25_000)).toEqual([a.id, 'raw']); // a capped at 10 s; the raw copy's 8 s
    expect(due(25_000)).toEqual([]); // each is rescheduled as it is yielded
    m.remove(a.id);
    m.removeRaw(c.tx.signature);
    m.releaseInflight();
    expect(due(100_000)).toEqual([b.id]);
  });

  it('gossips a held transaction once', () => {
    const m = new Mempool();
    const a = reg('a');
    expect(m.markGossiped(a.id)).toBe(false); // not held
    m.add(a, 1);
    expect(m.markGossiped(a.id)).toBe(true);
    expect(m.markGossiped(a.id)).toBe(false);
  });
});
