import { canonicalBytes } from './canonical.js';
import { concatBytes, utf8 } from './bytes.js';

/** The kinds of object that are ever signed. A signature for one never verifies as another. */
export const SIGNING_DOMAINS = ['tx', 'block', 'checkpoint', 'admin'] as const;
export type SigningDomain = (typeof SIGNING_DOMAINS)[number];

/**
 * Domain-separated message (docs/FORMAT.md §Signatures):
 *
 *   "BITNEXUS-SIG-V1" 0x00 domain 0x00 chainId 0x00 canonical-JSON(body)
 *
 * Naming the object kind and the chain id in the signed bytes means a
 * signature can never be replayed on another network or as another kind of
 * object, even when the bodies happen to be equal.
 */
export function signingMessage(domain: SigningDomain, chainId: string, body: unknown): Uint8Array {
  return signingMessageFromBody(domain, chainId, canonicalBytes(body));
}

/** The same, for a body already in canonical bytes. */
export function signingMessageFromBody(
  domain: SigningDomain,
  chainId: string,
  canonicalBody: Uint8Array,
): Uint8Array {
  return concatBytes(utf8(signingPrefix(domain, chainId)), canonicalBody);
}

/** What precedes the canonical body in a signed message (for writers that assemble it themselves). */
export function signingPrefix(domain: SigningDomain, chainId: string): string {
  return `BITNEXUS-SIG-V1\0${domain}\0${chainId}\0`;
}
