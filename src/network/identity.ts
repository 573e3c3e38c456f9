import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { fromHex, isHex, toHex } from '../codec/index.js';
import { publicKeyFromSecret } from '../crypto/index.js';
import { NetworkConfigError } from './errors.js';

/**
 * One key, two names. A node's Ed25519 key signs its blocks and is also its
 * libp2p identity, so the peer id names the signer. Above this layer a node is
 * its node id: the lower-case hex of the 32-byte Ed25519 public key. Only the
 * network layer sees PeerIds; these helpers convert at the boundary.
 */

export const SEED_BYTES = 32;

/** True when `value` is a well-formed node id (64 lower-case hex digits). */
export function isNodeId(value: unknown): value is string {
  return isHex(value, 32);
}

export function assertNodeId(value: unknown, what = 'node id'): asserts value is string {
  if (!isNodeId(value)) {
    throw new NetworkConfigError('BAD_NODE_ID', `${what} must be 64 lower-case hex digits`);
  }
}

/** The node id of the key whose 32-byte seed is `seed`. */
export function nodeIdFromSeed(seed: Uint8Array): string {
  assertSeed(seed);
  return toHex(publicKeyFromSecret(seed));
}

/** The libp2p private key for the node key with this seed (the same Ed25519 key). */
export async function privateKeyFromSeed(seed: Uint8Array): Promise<Ed25519PrivateKey> {
  assertSeed(seed);
  const key = await generateKeyPairFromSeed('Ed25519', seed);
  // Two Ed25519 implementations must agree, or the peer id would not name the signer.
  if (toHex(key.publicKey.raw) !== nodeIdFromSeed(seed)) {
    throw new NetworkConfigError('BAD_SEED', 'libp2p and the ledger derive different public keys');
  }
  return key;
}

export function peerIdFromNodeId(nodeId: string): PeerId {
  assertNodeId(nodeId);
  return peerIdFromPublicKey(publicKeyFromRaw(fromHex(nodeId, 32)));
}

/** The node id behind a peer id, or undefined when the peer's key is not Ed25519. */
export function nodeIdFromPeerId(peerId: PeerId): string | undefined {
  if (peerId.type !== 'Ed25519') return undefined;
  return toHex(peerId.publicKey.raw);
}

function assertSeed(seed: Uint8Array): void {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== SEED_BYTES) {
    throw new NetworkConfigError('BAD_SEED', `the node key seed must be ${SEED_BYTES} bytes`);
  }
}
