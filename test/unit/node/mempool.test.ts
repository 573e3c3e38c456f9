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
    const m = new Mempool({ maxTxs: 2, maxBytes: 1 << 20 });
    const [a, b, c] = [reg('x'), reg('y'), reg('z')];
    expect(m.addRaw(a.tx.signature, canonicalBytes(a.tx), 10)).toBe(true);
    expect(m.add(b, 20)).toBe(true);
    expect(m.addRaw(c.tx.signature, canonicalBytes(c.tx), 30)).toBe(false); // full
    expect(m.sweepRaw(15)).toBe(1);
    expect(m.size).toBe(1);
    expect(m.addRaw(c.tx.signature, canonicalBytes(c.tx), 30)).toBe(true);
  });
});
