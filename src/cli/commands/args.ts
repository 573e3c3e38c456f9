import { Option } from 'commander';
import { CliError } from '../output.js';

export function intArg(value: string, name: string): number {
  if (!/^-?\d+$/.test(value))
    throw new CliError('INVALID_ARGUMENT', `${name} must be an integer, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Where client commands send requests: `--node URL`, default `$BITNEXUS_NODE`, else the first devnet node. */
export function nodeOption(): Option {
  return new Option('--node <url>', 'node HTTP URL').default(
    process.env.BITNEXUS_NODE ?? 'http://127.0.0.1:7100',
  );
}
