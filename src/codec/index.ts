// codec/: the one byte encoding of everything hashed or signed (docs/FORMAT.md).
export { canonicalize, canonicalBytes, type JsonValue, type JsonObject } from './canonical.js';
export { toHex, fromHex, isHex } from './hex.js';
export { utf8, concatBytes, bytesEqual } from './bytes.js';
export { CodecError } from './errors.js';
export { hasDuplicateKeys, parseJsonStrict } from './strict-json.js';
export {
  signingMessage,
  signingMessageFromBody,
  signingPrefix,
  SIGNING_DOMAINS,
  type SigningDomain,
} from './signing.js';
