import { toHex } from '../../src/codec/index.js';
import { generateKeyPair, publicKeyFromSecret, type KeyPair } from '../../src/crypto/index.js';
import {
  buildBlock,
  createGenesisBlock,
  decodeBlock,
  decodeTx,
  DEFAULT_PARAMS,
  signTransaction,
  type DecodedBlock,
  type DecodedTx,
  type GenesisConfig,
  type PayloadByKind,
  type TxKind,
  type UnsignedTx,
} from '../../src/ledger/index.js';
import { LedgerChain } from '../../src/node/ledger-chain.js';
import { MemoryStore, type KeyValueStore } from '../../src/storage/index.js';

export const CHAIN_ID = 'bitnexus-test';
export const T0 = 1_760_000_000_000;

/** Deterministic keys from a label, so fixtures and vectors are reproducible. */
export function keyFor(label: string): KeyPair {
  const seed = new Uint8Array(32);
  const bytes = Buffer.from(label, 'utf8');
  for (let i = 0; i < 32; i++) seed[i] = (bytes[i % bytes.length]! + i * 31) & 0xff;
  return { secretKey: seed, publicKey: publicKeyFromSecret(seed) };
}

export const pub = (k: KeyPair) => toHex(k.publicKey);

export interface Fixture {
  operator: KeyPair;
  node: KeyPair;
  config: GenesisConfig;
  genesis: DecodedBlock;
}

export function makeFixture(overrides: Partial<GenesisConfig> = {}): Fixture {
  const operator = keyFor('operator');
  const node = keyFor('node-1');
  const config: GenesisConfig = {
    chainId: CHAIN_ID,
    createdAt: T0,
    operators: [pub(operator)],
    members: [pub(node)],
    params: { ...DEFAULT_PARAMS },
    ...overrides,
  };
  return { operator, node, config, genesis: decodeBlock(createGenesisBlock(config, operator.secretKey)) };
}

let nonceCounter = 0;

export function tx<K extends TxKind>(
  kind: K,
  signer: KeyPair,
  payload: PayloadByKind[K],
  opts: { nonce?: string; timestamp?: number; chainId?: string } = {},
): DecodedTx {
  const unsigned = {
    v: 1,
    kind,
    chainId: opts.chainId ?? CHAIN_ID,
    signer: pub(signer),
    nonce: opts.nonce ?? `n-${++nonceCounter}`,
    timestamp: opts.timestamp ?? T0 + 1000,
    payload,
  } as UnsignedTx;
  return decodeTx(signTransaction(unsigned, signer.secretKey));
}

/** A chain in memory (or on the given store) with helpers to append blocks. */
export class TestChain {
  term = 1;
  time = T0 + 1000;
  private constructor(
    readonly fx: Fixture,
    readonly chain: LedgerChain,
  ) {}

  static async create(
    fx: Fixture = makeFixture(),
    kv: KeyValueStore = new MemoryStore(),
  ): Promise<TestChain> {
    const chain = await LedgerChain.open(kv);
    await chain.commit(fx.genesis);
    return new TestChain(fx, chain);
  }

  block(txs: DecodedTx[]): DecodedBlock {
    this.time += 1000;
    return buildBlock(this.chain.state, txs, {
      timestamp: this.time,
      term: this.term,
      proposerSecretKey: this.fx.node.secretKey,
    });
  }

  async append(...txs: DecodedTx[]) {
    return this.chain.commit(this.block(txs));
  }
}

/** Operator registers participants; returns their keys. */
export async function withParticipants(tc: TestChain, merchants: string[], affiliates: string[]) {
  const m = merchants.map(keyFor);
  const a = affiliates.map(keyFor);
  const txs = [
    ...m.map((k, i) =>
      tx('participant.register', tc.fx.operator, {
        participant: pub(k),
        role: 'merchant',
        name: merchants[i]!,
      }),
    ),
    ...a.map((k, i) =>
      tx('participant.register', tc.fx.operator, {
        participant: pub(k),
        role: 'affiliate',
        name: affiliates[i]!,
      }),
    ),
  ];
  const receipts = await tc.append(...txs);
  for (const r of receipts) if (r.code !== 'OK') throw new Error(`fixture registration failed: ${r.code}`);
  return { merchants: m, affiliates: a };
}

export { generateKeyPair };
