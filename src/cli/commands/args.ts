import { Option } from 'commander';
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
