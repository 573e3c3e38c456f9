import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/codec/index.js';
import { merkleRoot, publicKeyFromSecret, sha256, verify } from '../../../src/crypto/index.js';
import { acceptTransaction, blockHash, parseBlock, decodeBlock } from '../../../src/ledger/index.js';
import { buildLedgerVectors } from '../../support/vectors.js';

const FILE = new URL('../../vectors/ledger.json', import.meta.url);

describe('ledger test vectors (test/vectors/ledger.json)', async () => {
  const built = await buildLedgerVectors();
  if (process.env.UPDATE_VECTORS === '1') await writeFile(FILE, JSON.stringify(built, null, 2) + '\n');
  const file = JSON.parse(await readFile(FILE, 'utf8')) as typeof built;

  it('are reproduced exactly by this implementation', () => {
    expect(JSON.parse(JSON.stringify(built))).toEqual(file);
  });

  it('are self-consistent with only SHA-256 and Ed25519 (what an independent verifier does)', () => {
    for (const k of file.keys) expect(toHex(publicKeyFromSecret(fromHex(k.secretKey)))).toBe(k.publicKey);
    for (const t of file.transactions) {
      expect(toHex(sha256(Buffer.from(t.canonicalUnsigned, 'utf8')))).toBe(t.id);
      const prefix = Buffer.from(`BITNEXUS-SIG-V1\0tx\0${t.signed.chainId}\0`, 'utf8');
      expect(toHex(Buffer.concat([prefix, Buffer.from(t.canonicalUnsigned, 'utf8')]))).toBe(
        t.signingMessageHex,
      );
      expect(verify(fromHex(t.signature), fromHex(t.signingMessageHex), fromHex(t.signed.signer))).toBe(true);
      expect(acceptTransaction(t.signed, 'bitnexus-test').id).toBe(t.id);
    }
    for (const b of [
      file.genesis,
      file.block,
      {
        ...file.block2,
        signingMessageHex: toHex(
          Buffer.concat([
            Buffer.from(`BITNEXUS-SIG-V1\0block\0${file.block2.header.chainId}\0`),
            Buffer.from(file.block2.canonicalHeader),
          ]),
        ),
      },
    ]) {
      expect(toHex(sha256(Buffer.from(b.canonicalHeader, 'utf8')))).toBe(b.hash);
      expect(verify(fromHex(b.signature), fromHex(b.signingMessageHex), fromHex(b.header.proposer))).toBe(
        true,
      );
      const parsed = decodeBlock(parseBlock(JSON.parse(b.stored)));
      expect(parsed.hash).toBe(b.hash);
      expect(blockHash(parsed.block.header)).toBe(b.hash);
    }
    expect(toHex(sha256(Buffer.from(file.genesis.canonicalConfig, 'utf8')))).toBe(file.genesis.configHash);
    expect(file.block.header.prevHash).toBe(file.genesis.hash);
    expect(file.block2.header.prevHash).toBe(file.block.hash);
    // roots from the leaves alone: leaf = SHA-256(0x00 || txId bytes)
    const leaf = (id: string) => sha256(Uint8Array.of(0), fromHex(id));
    expect(toHex(merkleRoot(file.block2.allTxIds.map(leaf)))).toBe(file.block2.header.ledgerRoot);
    expect(toHex(merkleRoot(file.block2.txIds.map(leaf)))).toBe(file.block2.header.txRoot);
    expect(file.block2.header.ledgerRoot).not.toBe(file.block2.header.txRoot);
    expect(file.transactions.map((t) => t.kind)).toEqual([
      'participant.register',
      'participant.register',
      'commission.record',
      'commission.approve',
      'commission.reverse',
      'payout.record',
    ]);
    expect(file.block.receipts.every((r) => r.includes('"code":"OK"'))).toBe(true);
  });
});
