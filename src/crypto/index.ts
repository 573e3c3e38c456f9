// crypto/: SHA-256, Ed25519 under one verification rule, RFC 6962 Merkle trees.
export { sha256 } from './hash.js';
export {
  generateKeyPair,
  publicKeyFromSecret,
  sign,
  verify,
  verifyReference,
  PUBLIC_KEY_BYTES,
  SECRET_KEY_BYTES,
  SIGNATURE_BYTES,
  type KeyPair,
} from './ed25519.js';
export {
  HASH_BYTES,
  leafHash,
  nodeHash,
  emptyRoot,
  merkleRoot,
  inclusionProof,
  consistencyProof,
  inclusionProofRanges,
  consistencyProofRanges,
  verifyInclusion,
  verifyConsistency,
  type LeafRange,
} from './merkle.js';
export {
  emptyFrontier,
  appendLeaves,
  frontierRoot,
  frontierFromNodes,
  rootFromNodes,
  inclusionProofFromNodes,
  consistencyProofFromNodes,
  MemoryMerkleNodes,
  type MerkleFrontier,
  type MerkleNode,
  type MerkleNodeReader,
} from './merkle-log.js';
