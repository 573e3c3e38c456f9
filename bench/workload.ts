import { randomUUID } from 'node:crypto';
import { toHex } from '../src/codec/index.js';
import { generateKeyPair, type KeyPair } from '../src/crypto/index.js';
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
} from '../src/ledger/index.js';
import { LedgerState, processBlock, type StateView } from '../src/ledger/index.js';

/** A signed transaction as the JSON a client posts: a fresh random nonce, now as its timestamp. */
export function signedJson(
  chainId: string,
  signer: KeyPair,
  kind: UnsignedTx['kind'],
  payload: unknown,
): string {
  return JSON.stringify(
    signTransaction(
      {
        v: 1,
        kind,
        chainId,
        signer: toHex(signer.publicKey),
        nonce: randomUUID(),
        timestamp: Date.now(),
        payload,
      } as UnsignedTx,
      signer.secretKey,
    ),
  );
}

/** A one-operator, one-node bench network whose blocks may hold `blockSize` transactions. */
export interface BenchNetwork {
  operator: KeyPair;
  /** the node key: proposes (signs) every block */
  node: KeyPair;
  config: GenesisConfig;
  genesis: DecodedBlock;
}

export function benchNetwork(blockSize: number, createdAt: number): BenchNetwork {
  const operator = generateKeyPair();
  const node = generateKeyPair();
  const config: GenesisConfig = {
    chainId: 'bitnexus-bench',
    createdAt,
    operators: [toHex(operator.publicKey)],
    members: [toHex(node.publicKey)],
    params: { ...DEFAULT_PARAMS, maxBlockTxs: Math.max(blockSize, DEFAULT_PARAMS.maxBlockTxs) },
  };
  return { operator, node, config, genesis: decodeBlock(createGenesisBlock(config, operator.secretKey)) };
}

/** Signs and decodes bench transactions: nonces `<prefix>1`, `<prefix>2`, …, timestamps from `clock`. */
export function txMaker(
  chainId: string,
  prefix: string,
  clock: () => number,
): <K extends TxKind>(kind: K, signer: KeyPair, payload: PayloadByKind[K]) => DecodedTx {
  let nonce = 0;
  return (kind, signer, payload) =>
    decodeTx(
      signTransaction(
        {
          v: 1,
          kind,
          chainId,
          signer: toHex(signer.publicKey),
          nonce: `${prefix}${++nonce}`,
          timestamp: clock(),
          payload,
        } as UnsignedTx,
        signer.secretKey,
      ),
    );
}

/**
 * Cut `queue` into blocks of `blockSize` on top of `state`, each `stepMs`
 * after the previous one; `commit` applies each (and must advance `state`).
 */
export async function cutBenchBlocks(
  net: BenchNetwork,
  state: StateView,
  queue: readonly DecodedTx[],
  blockSize: number,
  clock: { time: number; stepMs: number },
  commit: (block: DecodedBlock) => void | Promise<void>,
): Promise<void> {
  for (let off = 0; off < queue.length; off += blockSize) {
    clock.time += clock.stepMs;
    const block = buildBlock(state, queue.slice(off, off + blockSize), {
      timestamp: clock.time,
      term: 1,
      proposerSecretKey: net.node.secretKey,
    });
    await commit(block);
  }
}

/**
 * A realistic commission workload for benchmarks: operators register
 * merchants and affiliates, merchants record commissions (most of the
 * traffic), approve and sometimes reverse them, operators record payouts.
 */
export interface Workload {
  genesis: DecodedBlock;
  blocks: DecodedBlock[];
  txCount: number;
}

export async function makeWorkload(
  totalTxs: number,
  blockSize: number,
  startTime = Date.now(),
): Promise<Workload> {
  const net = benchNetwork(blockSize, startTime);
  const { operator, genesis } = net;
  const state = new LedgerState();
  state.merge(processBlock(state, genesis, { checkSignatures: false }).writes);
  const clock = { time: startTime, stepMs: 50 };
  const mk = txMaker(net.config.chainId, 'b', () => clock.time);
  const merchants = Array.from({ length: 20 }, () => generateKeyPair());
  const affiliates = Array.from({ length: 200 }, () => generateKeyPair());
  const queue: DecodedTx[] = [
    ...merchants.map((m, i) =>
      mk('participant.register', operator, {
        participant: toHex(m.publicKey),
        role: 'merchant',
        name: `merchant ${i}`,
      }),
    ),
    ...affiliates.map((a, i) =>
      mk('participant.register', operator, {
        participant: toHex(a.publicKey),
        role: 'affiliate',
        name: `affiliate ${i}`,
      }),
    ),
  ];
  const recorded: { id: string; m: KeyPair; a: KeyPair }[] = [];
  let i = 0;
  while (queue.length < totalTxs) {
    const m = merchants[i % merchants.length]!;
    const a = affiliates[(i * 7) % affiliates.length]!;
    const r = i % 10;
    if (r < 6 || recorded.length < 10) {
      const t = mk('commission.record', m, {
        merchant: toHex(m.publicKey),
        affiliate: toHex(a.publicKey),
        amount: String(1000 + (i % 5000)),
        currency: i % 3 === 0 ? 'USD' : 'EUR',
        orderId: `order-${i}`,
        description: `Order ${i}: affiliate referral for product line ${i % 40}`,
      });
      recorded.push({ id: t.id, m, a });
      queue.push(t);
    } else if (r < 9) {
      const c = recorded[recorded.length - 5]!;
      queue.push(mk('commission.approve', c.m, { commission: c.id }));
    } else {
      const c = recorded[recorded.length - 8]!;
      queue.push(
        mk('commission.reverse', c.m, { commission: c.id, amount: '100', reason: 'partial refund' }),
      );
    }
    i++;
  }
  const blocks: DecodedBlock[] = [];
  await cutBenchBlocks(net, state, queue, blockSize, clock, (b) => {
    state.merge(processBlock(state, b, { checkSignatures: false }).writes);
    blocks.push(b);
  });
  return { genesis, blocks, txCount: queue.length };
}
