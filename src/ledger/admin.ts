import { fromHex, signingMessage, toHex } from '../codec/index.js';
import { sign, verify } from '../crypto/index.js';
import { ValidationError } from './errors.js';
import { hex, int, obj, oneOf, str } from './schema.js';
import { chainIdField } from './transaction.js';

/**
 * Operator-signed requests that act on the running network rather than on the
 * ledger (docs/FORMAT.md §Admin requests). Membership changes are ledger
 * transactions (member.add/promote/remove) so that auditors see them; moving
 * leadership changes nothing an auditor checks, so it is an admin request,
 * signed under the `admin` domain and accepted only from an operator within a
 * short time window.
 */
export const ADMIN_KINDS = ['leader.transfer'] as const;
export type AdminKind = (typeof ADMIN_KINDS)[number];

export interface UnsignedAdminRequest {
  v: 1;
  kind: AdminKind;
  chainId: string;
  signer: string;
  nonce: string;
  timestamp: number;
  payload: { to: string };
}
export type AdminRequest = UnsignedAdminRequest & { signature: string };

/** How far an admin request's timestamp may be from the node's clock. */
export const ADMIN_WINDOW_MS = 2 * 60 * 1000;

export function parseAdminRequest(value: unknown, chainId: string): AdminRequest {
  const o = obj(value, '$', ['v', 'kind', 'chainId', 'signer', 'nonce', 'timestamp', 'payload', 'signature']);
  if (o.v !== 1) throw new ValidationError('UNSUPPORTED_VERSION', 'must be 1', '$.v');
  const kind = oneOf(o.kind, '$.kind', ADMIN_KINDS);
  const cid = chainIdField(o.chainId, '$.chainId');
  if (cid !== chainId)
    throw new ValidationError('WRONG_CHAIN', `this network is ${JSON.stringify(chainId)}`, '$.chainId');
  const p = obj(o.payload, '$.payload', ['to']);
  return {
    v: 1,
    kind,
    chainId: cid,
    signer: hex(o.signer, '$.signer', 32),
    nonce: str(o.nonce, '$.nonce', { max: 64 }),
    timestamp: int(o.timestamp, '$.timestamp', 0),
    payload: { to: hex(p.to, '$.payload.to', 32) },
    signature: hex(o.signature, '$.signature', 64),
  };
}

function unsigned(r: AdminRequest): UnsignedAdminRequest {
  const { signature: _s, ...rest } = r;
  return rest;
}

export function signAdminRequest(r: UnsignedAdminRequest, secretKey: Uint8Array): AdminRequest {
  return { ...r, signature: toHex(sign(signingMessage('admin', r.chainId, r), secretKey)) };
}

export function verifyAdminSignature(r: AdminRequest): boolean {
  return verify(fromHex(r.signature), signingMessage('admin', r.chainId, unsigned(r)), fromHex(r.signer));
}
