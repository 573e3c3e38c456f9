import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../../src/codec/index.js';
import { merkleRoot, publicKeyFromSecret, sha256, verify } from '../../../src/crypto/index.js';
import {
  acceptTransaction,
  blockHash,
  decodeBlock,
  parseBlock,
  RESULT_CODES,
  TX_KINDS,
} from '../../../src/ledger/index.js';
import { buildLedgerVectors } from '../../support/vectors.js';

const FILE = new URL('../../vectors/ledger.json', import.meta.url);
const FORMAT_MD = new URL('../../../docs/FORMAT.md', import.meta.url);

describe('ledger test vectors (test/vectors/ledger.json)', async () => {
  const built = await buildLedgerVectors();
  if (process.env.UPDATE_VECTORS === '1') await writeFile(FILE, JSON.stringify(built, null, 2) + '\n');
  const file = JSON.parse(await readFile(FILE, 'utf8')) as typeof built;
  const receiptOf = (s: string) => JSON.parse(s) as { code: string; existing?: string; commission?: string };

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
    for (const b of [file.genesis, ...file.blocks]) {
      expect(toHex(sha256(Buffer.from(b.canonicalHeader, 'utf8')))).toBe(b.hash);
      const prefix = Buffer.from(`BITNEXUS-SIG-V1\0block\0${b.header.chainId}\0`, 'utf8');
      expect(toHex(Buffer.concat([prefix, Buffer.from(b.canonicalHeader, 'utf8')]))).toBe(
        b.signingMessageHex,
      );
      expect(verify(fromHex(b.signature), fromHex(b.signingMessageHex), fromHex(b.header.proposer))).toBe(
        true,
      );
      const parsed = decodeBlock(parseBlock(JSON.parse(b.stored)));
      expect(parsed.hash).toBe(b.hash);
      expect(blockHash(parsed.block.header)).toBe(b.hash);
    }
    expect(toHex(sha256(Buffer.from(file.genesis.canonicalConfig, 'utf8')))).toBe(file.genesis.configHash);
    // roots from the leaves alone: leaf = SHA-256(0x00 || txId bytes)
    const leaf = (id: string) => sha256(Uint8Array.of(0), fromHex(id));
    let prev: { hash: string; header: { height: number } } = file.genesis;
    const ledger: string[] = [];
    for (const b of file.blocks) {
      expect(b.header.prevHash).toBe(prev.hash);
      expect(b.header.height).toBe(prev.header.height + 1);
      expect(b.height).toBe(b.header.height);
      expect(b.header.txCount).toBe(b.txIds.length);
      expect(b.receipts).toHaveLength(b.txIds.length);
      expect(decodeBlock(parseBlock(JSON.parse(b.stored))).txs.map((t) => t.id)).toEqual(b.txIds);
      ledger.push(...b.txIds);
      expect(b.header.ledgerSize).toBe(ledger.length);
      expect(toHex(merkleRoot(b.txIds.map(leaf)))).toBe(b.header.txRoot);
      expect(toHex(merkleRoot(ledger.map(leaf)))).toBe(b.header.ledgerRoot);
      expect(b.stateWrites.head).toBeDefined();
      prev = b;
    }
    // `transactions` is every transaction of the blocks, in chain order
    expect(file.transactions.map((t) => t.id)).toEqual(ledger);
    expect(file.transactions.map((t) => [t.height, t.index])).toEqual(
      file.blocks.flatMap((b) => b.txIds.map((_, i) => [b.height, i])),
    );
  });

  it('cover every transaction kind, every receipt code, and a whole-ledger tree across blocks', () => {
    expect(new Set(file.transactions.map((t) => t.kind))).toEqual(new Set(TX_KINDS));
    const codes = file.blocks.flatMap((b) => b.receipts.map((r) => receiptOf(r).code));
    expect(new Set(codes)).toEqual(new Set(RESULT_CODES));
    // a block after the first whose whole-ledger tree is neither its own tree nor a perfect tree
    const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;
    expect(
      file.blocks.some(
        (b) => b.height > 1 && b.header.ledgerSize > b.header.txCount && !isPowerOfTwo(b.header.ledgerSize),
      ),
    ).toBe(true);
    // the final state is genesis's writes overlaid by every block's
    expect(file.finalState).toEqual(
      Object.assign({}, file.genesis.stateWrites, ...file.blocks.map((b) => b.stateWrites)),
    );
  });

  it('are described exactly by docs/FORMAT.md §9', async () => {
    const md = await readFile(FORMAT_MD, 'utf8');
    const section = md.slice(md.indexOf('\n## 9. '));
    expect(section.length).toBeGreaterThan(10);
    const count = /`transactions`: all (\d+) transactions/.exec(section);
    expect(Number(count?.[1])).toBe(file.transactions.length);
    // | `blocks[i]` | height | txCount | ledgerSize | ... |
    const rows = [...section.matchAll(/^\| `blocks\[(\d+)\]` \| (\d+) \| (\d+) \| (\d+) \|/gm)].map((m) =>
      m.slice(1).map(Number),
    );
    expect(rows).toEqual(
      file.blocks.map((b, i) => [i, b.header.height, b.header.txCount, b.header.ledgerSize]),
    );
    // | index | `kind` | signer | case | `CODE` ... | for every transaction of the blocks listed per index
    for (const b of file.blocks) {
      const table = section.split('\n### ').find((part) => part.startsWith(`Block ${b.height} `)) ?? '';
      const described = [...table.matchAll(/^\| (\d+) \| `([a-z.]+)` \|.*\| `([A-Z_]+)`[^|]*\|$/gm)].map(
        (m) => [Number(m[1]), m[2], m[3]],
      );
      const kinds = file.transactions.filter((t) => t.height === b.height).map((t) => t.kind);
      expect(described, `FORMAT.md §9, block ${b.height}`).toEqual(
        b.receipts.map((r, i) => [i, kinds[i], receiptOf(r).code]),
      );
    }
  });
});
