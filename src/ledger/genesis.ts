import { canonicalBytes, toHex } from '../codec/index.js';
import { sha256 } from '../crypto/index.js';
import { ValidationError } from './errors.js';
import { hex, int, obj } from './schema.js';
import { chainIdField } from './transaction.js';

/** Chain parameters every node and auditor must agree on; fixed at genesis. */
export interface ChainParams {
  /** A transaction older than this (relative to its block's timestamp) is refused. */
  txMaxAgeMs: number;
  /** A transaction newer than this (relative to its block's timestamp) is refused. */
  txMaxFutureMs: number;
  /** Most transactions one block may hold. */
  maxBlockTxs: number;
}

export const DEFAULT_PARAMS: ChainParams = {
  txMaxAgeMs: 60 * 60 * 1000,
  txMaxFutureMs: 2 * 60 * 1000,
  maxBlockTxs: 4096,
};

export interface GenesisConfig {
  chainId: string;
  /** Unix ms; also the genesis block's timestamp. */
  createdAt: number;
  /** Operator public keys (hex). Operators register merchants and affiliates and record payouts. */
  operators: string[];
  /** Node public keys (hex) of the initial Raft voters; they sign blocks. */
  members: string[];
  params: ChainParams;
}

export function parseGenesisConfig(value: unknown): GenesisConfig {
  const o = obj(value, '$.config', ['chainId', 'createdAt', 'operators', 'members', 'params']);
  const keys = (v: unknown, path: string): string[] => {
    if (!Array.isArray(v) || v.length === 0)
      throw new ValidationError('INVALID_FIELD', 'must be a non-empty array', path);
    const out = v.map((k, i) => hex(k, `${path}[${i}]`, 32));
    if (new Set(out).size !== out.length)
      throw new ValidationError('INVALID_FIELD', 'holds a key twice', path);
    return out;
  };
  const p = obj(o.params, '$.config.params', ['txMaxAgeMs', 'txMaxFutureMs', 'maxBlockTxs']);
  return {
    chainId: chainIdField(o.chainId, '$.config.chainId'),
    createdAt: int(o.createdAt, '$.config.createdAt', 0),
    operators: keys(o.operators, '$.config.operators'),
    members: keys(o.members, '$.config.members'),
    params: {
      txMaxAgeMs: int(p.txMaxAgeMs, '$.config.params.txMaxAgeMs', 1),
      txMaxFutureMs: int(p.txMaxFutureMs, '$.config.params.txMaxFutureMs', 0),
      maxBlockTxs: int(p.maxBlockTxs, '$.config.params.maxBlockTxs', 1, 1_000_000),
    },
  };
}

/** configHash = SHA-256(canonical JSON of the genesis config), carried in the genesis header. */
export function genesisConfigHash(config: GenesisConfig): string {
  return toHex(sha256(canonicalBytes(config)));
}
