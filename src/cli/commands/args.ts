import { Option } from 'commander';
import { isNodeId } from '../../network/identity.js';
import { basePortProblem } from '../../node/init.js';
import { CliError } from '../output.js';

export function intArg(value: string, name: string): number {
  if (!/^-?\d+$/.test(value))
    throw new CliError('INVALID_ARGUMENT', `${name} must be an integer, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n))
    throw new CliError('INVALID_ARGUMENT', `${name} is out of range, got ${value}`);
  return n;
}

/** An integer option that must lie in [min, max]. */
export function intInRange(value: string, name: string, min: number, max: number): number {
  const n = intArg(value, name);
  if (n < min || n > max)
    throw new CliError('INVALID_ARGUMENT', `${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** The longest wait a timer can take (2^31 − 1 ms, about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Where client commands send requests: `--node URL`, default `$BITNEXUS_NODE`, else the first devnet node. */
export function nodeOption(): Option {
  return new Option('--node <url>', 'node HTTP URL').default(
    process.env.BITNEXUS_NODE ?? 'http://127.0.0.1:7100',
  );
}

/**
 * A node id option (`members * --member`, `leader transfer --to`): 64 lower-case hex digits, as
 * `bitnexus status` prints it. Checked before anything is read or sent, so a shortened or
 * mistyped id is the caller's INVALID_ARGUMENT, not a node's BAD_HEX.
 */
export function nodeIdArg(value: string, name: string): string {
  const given = `${JSON.stringify(value)} (${value.length} characters)`;
  if (!isNodeId(value))
    throw new CliError(
      'INVALID_ARGUMENT',
      `${name} must be a node id: 64 lower-case hex digits, as bitnexus status prints it; got ${given}`,
    );
  return value;
}

/** `--nodes` of init (and devnet when it creates a network): 1–99. */
export function nodesArg(value: string): number {
  return intInRange(value, '--nodes', 1, 99);
}

/**
 * `--base-port` of init (and devnet when it creates a network) for `nodes` nodes: node i takes
 * base + 2(i−1) for HTTP and the next port for libp2p. From 1024 (below are the privileged
 * ports) up to where the last node's ports still fit (the bound src/node/init.ts checks).
 */
export function basePortArg(value: string, nodes: number): number {
  const n = intArg(value, '--base-port');
  const problem = basePortProblem(n, nodes);
  if (problem !== undefined) throw new CliError('INVALID_ARGUMENT', problem);
  return n;
}
