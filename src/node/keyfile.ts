import { chmod, readFile, writeFile } from 'node:fs/promises';
import { fromHex, toHex } from '../codec/index.js';
import { generateKeyPair, publicKeyFromSecret, type KeyPair } from '../crypto/index.js';

/**
 * Key files (docs/OPERATIONS.md §Keys): JSON with the Ed25519 seed and public
 * key in hex, written with mode 0600. The public key is stored for reading
 * convenience only; loading re-derives it from the seed and refuses a file
 * where they disagree.
 */
export interface KeyFile {
  type: 'ed25519';
  publicKey: string;
  secretKey: string;
}

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  readonly code = 'BAD_KEY_FILE';
}

export async function writeKeyFile(path: string, keys: KeyPair = generateKeyPair()): Promise<KeyPair> {
  const file: KeyFile = {
    type: 'ed25519',
    publicKey: toHex(keys.publicKey),
    secretKey: toHex(keys.secretKey),
  };
  await writeFile(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return keys;
}

export async function readKeyFile(path: string): Promise<KeyPair> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    throw new KeyFileError(
      `cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(raw) as Partial<KeyFile>;
  } catch {
    throw new KeyFileError(`${path} is not a key file (not JSON)`);
  }
  if (parsed.type !== 'ed25519' || typeof parsed.secretKey !== 'string') {
    throw new KeyFileError(`${path} is not an ed25519 key file`);
  }
  let secretKey: Uint8Array;
  try {
    secretKey = fromHex(parsed.secretKey, 32, 'secretKey');
  } catch {
    throw new KeyFileError(`${path}: secretKey must be 32 bytes of lower-case hex`);
  }
  const publicKey = publicKeyFromSecret(secretKey);
  if (parsed.publicKey !== undefined && parsed.publicKey !== toHex(publicKey)) {
    throw new KeyFileError(`${path}: publicKey does not belong to secretKey`);
  }
  return { secretKey, publicKey };
}
