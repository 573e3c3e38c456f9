import { canonicalBytes, canonicalize, concatBytes, signingMessage, toHex, fromHex } from '../codec/index.js';
import { sha256, sign, verify, merkleRoot, leafHash, publicKeyFromSecret } from '../crypto/index.js';
import { ValidationError } from './errors.js';
import { genesisConfigHash, parseGenesisConfig, type GenesisConfig } from './genesis.js';
import { hex, int, obj } from './schema.js';
import {
  chainIdField,
  decodeTx,
  parseTransaction,
  signedTxParts,
  type DecodedTx,
  type SignedTx,
} from './transaction.js';

export const BLOCK_VERSION = 1;
export const ZERO_HASH = '0'.repeat(64);

/**
 * The header is what is hashed and signed (docs/FORMAT.md §Blocks). The
 * genesis header (height 0) also carries `configHash`; no other header has it.
 */
export interface BlockHeader {
  v: typeof BLOCK_VERSION;
  chainId: string;
  height: number;
  /** hash of the previous header; 64 zeros for genesis */
  prevHash: string;
  /** RFC 6962 root over this block's transaction ids */
  txRoot: string;
  txCount: number;
  /** RFC 6962 root over every transaction id of the chain so far, this block included */
  ledgerRoot: string;
  ledgerSize: number;
  /** proposer's clock, Unix ms; never below the previous block's */
  timestamp: number;
  /** Raft term the block was proposed in (0 for genesis) */
  term: number;
  /** public key (hex) of the node that proposed and signed the block; an operator for genesis */
  proposer: string;
  configHash?: string;
}

export interface Block {
  header: BlockHeader;
  signature: string;
  txs: SignedTx[];
  /** genesis only */
  config?: GenesisConfig;
}

export interface DecodedBlock {
  block: Block;
  hash: string;
  txs: DecodedTx[];
  /** the block's canonical bytes, when known (received or built), so nobody encodes it again */
  bytes?: Uint8Array;
}

export function blockHash(header: BlockHeader): string {
  return toHex(sha256(canonicalBytes(header)));
}

export function blockSigningMessage(header: BlockHeader): Uint8Array {
  return signingMessage('block', header.chainId, header);
}

export function signBlockHeader(header: BlockHeader, secretKey: Uint8Array): string {
  return toHex(sign(blockSigningMessage(header), secretKey));
}

export function verifyBlockSignature(block: Block): boolean {
  return verify(fromHex(block.signature), blockSigningMessage(block.header), fromHex(block.header.proposer));
}

/** Root over a list of transaction ids: RFC 6962 with leaf = the 32 id bytes. */
export function txRootOf(txs: readonly DecodedTx[]): string {
  return toHex(merkleRoot(txs.map((t) => leafHash(t.idBytes))));
}

/** The fields of a block header (docs/FORMAT.md); the API's JSON schema lists the same. */
export const BLOCK_HEADER_FIELDS = [
  'v',
  'chainId',
  'height',
  'prevHash',
  'txRoot',
  'txCount',
  'ledgerRoot',
  'ledgerSize',
  'timestamp',
  'term',
  'proposer',
] as const satisfies readonly (keyof BlockHeader)[];
/** Present in the genesis header only. */
export const BLOCK_HEADER_OPTIONAL_FIELDS = ['configHash'] as const satisfies readonly (keyof BlockHeader)[];

function parseHeader(value: unknown): BlockHeader {
  const p = '$.header';
  const o = obj(value, p, BLOCK_HEADER_FIELDS, BLOCK_HEADER_OPTIONAL_FIELDS);
  if (o.v !== BLOCK_VERSION)
    throw new ValidationError('UNSUPPORTED_VERSION', `must be ${BLOCK_VERSION}`, `${p}.v`);
  const header: BlockHeader = {
    v: BLOCK_VERSION,
    chainId: chainIdField(o.chainId, `${p}.chainId`),
    height: int(o.height, `${p}.height`, 0),
    prevHash: hex(o.prevHash, `${p}.prevHash`, 32),
    txRoot: hex(o.txRoot, `${p}.txRoot`, 32),
    txCount: int(o.txCount, `${p}.txCount`, 0),
    ledgerRoot: hex(o.ledgerRoot, `${p}.ledgerRoot`, 32),
    ledgerSize: int(o.ledgerSize, `${p}.ledgerSize`, 0),
    timestamp: int(o.timestamp, `${p}.timestamp`, 0),
    term: int(o.term, `${p}.term`, 0),
    proposer: hex(o.proposer, `${p}.proposer`, 32),
  };
  if (header.height === 0) {
    header.configHash = hex(o.configHash, `${p}.configHash`, 32);
  } else if (o.configHash !== undefined) {
    throw new ValidationError('UNKNOWN_FIELD', 'only the genesis header has a configHash', `${p}.configHash`);
  }
  return header;
}

/** Structural parse of a stored or received block. Checks no signature. */
export function parseBlock(value: unknown): Block {
  const o = obj(value, '$', ['header', 'signature', 'txs'], ['config']);
  const header = parseHeader(o.header);
  if (!Array.isArray(o.txs)) throw new ValidationError('INVALID_FIELD', 'must be an array', '$.txs');
  const txs = o.txs.map((t, i) => {
    try {
      return parseTransaction(t);
    } catch (err) {
      if (err instanceof ValidationError) {
        throw new ValidationError(err.code, err.message, `$.txs[${i}]`);
      }
      throw err;
    }
  });
  const block: Block = { header, signature: hex(o.signature, '$.signature', 64), txs };
  if (header.height === 0) {
    if (o.config === undefined)
      throw new ValidationError('MISSING_FIELD', 'the genesis block holds the config', '$.config');
    block.config = parseGenesisConfig(o.config);
  } else if (o.config !== undefined) {
    throw new ValidationError('UNKNOWN_FIELD', 'only the genesis block has a config', '$.config');
  }
  return block;
}

export function decodeBlock(block: Block): DecodedBlock {
  return { block, hash: blockHash(block.header), txs: block.txs.map(decodeTx) };
}

/** The genesis block: height 0, no transactions, the network config, signed by an operator. */
export function createGenesisBlock(config: GenesisConfig, operatorSecretKey: Uint8Array): Block {
  const proposer = toHex(publicKeyFromSecret(operatorSecretKey));
  if (!config.operators.includes(proposer)) {
    throw new ValidationError(
      'INVALID_FIELD',
      'the genesis block must be signed by one of its operators',
      '$.header.proposer',
    );
  }
  const emptyRoot = toHex(merkleRoot([]));
  const header: BlockHeader = {
    v: BLOCK_VERSION,
    chainId: config.chainId,
    height: 0,
    prevHash: ZERO_HASH,
    txRoot: emptyRoot,
    txCount: 0,
    ledgerRoot: emptyRoot,
    ledgerSize: 0,
    timestamp: config.createdAt,
    term: 0,
    proposer,
    configHash: genesisConfigHash(config),
  };
  return { header, signature: signBlockHeader(header, operatorSecretKey), txs: [], config };
}

export function encodeBlock(block: Block): Uint8Array {
  return canonicalBytes(block);
}

const enc = new TextEncoder();

/**
 * The same bytes as `encodeBlock`, built from each transaction's canonical
 * unsigned bytes (already computed for its id) instead of canonicalising
 * every transaction again. Block keys sort as config < header < signature <
 * txs; a signed transaction is its unsigned form with "signature" inserted
 * before the top-level "signer" (the last `,"signer":"` in the text: only
 * "timestamp" and "v", numbers, follow it). A test checks it against encodeBlock.
 */
export function encodeDecodedBlock(d: DecodedBlock): Uint8Array {
  if (d.bytes) return d.bytes;
  const b = d.block;
  if (b.config !== undefined) return encodeBlock(b);
  const parts: Uint8Array[] = [
    enc.encode(`{"header":${canonicalize(b.header)},"signature":"${b.signature}","txs":[`),
  ];
  d.txs.forEach((t, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(...signedTxParts(t));
  });
  parts.push(CLOSE);
  return concatBytes(...parts);
}

const COMMA = enc.encode(',');
const CLOSE = enc.encode(']}');
