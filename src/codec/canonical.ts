import { CodecError } from './errors.js';

/** The values that may appear in anything hashed or signed. No floats, ever. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * RFC 8785 (JSON Canonicalization Scheme) restricted to integers: object keys
 * sorted by UTF-16 code units, no white space, strings escaped as ECMAScript's
 * JSON.stringify does (which is what RFC 8785 §3.2.2.2 prescribes). Numbers must
 * be safe integers (|n| ≤ 2^53 − 1); anything that would need a float or an
 * exponent is refused so that every implementation agrees on the bytes.
 */
export function canonicalize(value: unknown): string {
  const fast = writeFast(value);
  if (fast !== undefined) return fast;
  // Refused somewhere: the careful writer names the place.
  const out: string[] = [];
  write(value, out, '$');
  return out.join('');
}

/**
 * The hot path: the same bytes as `write`, without building a path for every
 * value; undefined when anything would be refused (then `write` says why).
 */
function writeFast(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return Number.isSafeInteger(value) && !Object.is(value, -0) ? String(value) : undefined;
    case 'string':
      return isWellFormed(value) ? JSON.stringify(value) : undefined;
    case 'object': {
      if (Array.isArray(value)) {
        let s = '[';
        for (let i = 0; i < value.length; i++) {
          const item = writeFast(value[i]);
          if (item === undefined) return undefined;
          s += i > 0 ? ',' + item : item;
        }
        return s + ']';
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return undefined;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let s = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const v = record[key];
        if (v === undefined || !isWellFormed(key)) return undefined;
        const item = writeFast(v);
        if (item === undefined) return undefined;
        s += (i > 0 ? ',' : '') + JSON.stringify(key) + ':' + item;
      }
      return s + '}';
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      return undefined;
  }
  return undefined;
}

const encoder = new TextEncoder();

/** UTF-8 bytes of the canonical form. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value));
}

function write(value: unknown, out: string[], path: string): void {
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isSafeInteger(value) || Object.is(value, -0)) {
        throw new CodecError('CODEC_NOT_INTEGER', `${path}: only safe integers may be canonicalised`);
      }
      out.push(String(value));
      return;
    case 'string':
      if (!isWellFormed(value)) {
        throw new CodecError('CODEC_BAD_STRING', `${path}: string holds a lone surrogate`);
      }
      out.push(JSON.stringify(value));
      return;
    case 'object': {
      if (Array.isArray(value)) {
        out.push('[');
        value.forEach((item, i) => {
          if (i > 0) out.push(',');
          write(item, out, `${path}[${i}]`);
        });
        out.push(']');
        return;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new CodecError('CODEC_BAD_TYPE', `${path}: only plain objects may be canonicalised`);
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      out.push('{');
      let first = true;
      for (const key of keys) {
        const v = record[key];
        if (v === undefined) {
          throw new CodecError('CODEC_BAD_TYPE', `${path}.${key}: undefined is not a JSON value`);
        }
        if (!isWellFormed(key)) {
          throw new CodecError('CODEC_BAD_STRING', `${path}: key holds a lone surrogate`);
        }
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(key), ':');
        write(v, out, `${path}.${key}`);
      }
      out.push('}');
      return;
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      throw new CodecError('CODEC_BAD_TYPE', `${path}: ${typeof value} is not a JSON value`);
  }
}

function isWellFormed(s: string): boolean {
  // String.prototype.isWellFormed is ES2024; Node 22 has it.
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}
