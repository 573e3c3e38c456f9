import { CliError } from '../output.js';

export function intArg(value: string, name: string): number {
  if (!/^-?\d+$/.test(value))
    throw new CliError('INVALID_ARGUMENT', `${name} must be an integer, got ${JSON.stringify(value)}`);
  return Number(value);
}
