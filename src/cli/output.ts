import { Option } from 'commander';

/**
 * Printing for every command: `--json` gives one JSON document on stdout for
 * scripts; otherwise readable lines. Errors never show a stack trace: a code
 * and a message (docs/ERRORS.md), exit status 2 for bad input, 1 for a failed
 * check.
 */
export interface Output {
  json: boolean;
  out(human: string, data: unknown): void;
}

export function output(json: boolean): Output {
  return {
    json,
    out(human, data) {
      process.stdout.write(json ? JSON.stringify(data) + '\n' : human + '\n');
    },
  };
}

/** An error the CLI reports as `error CODE: message` with an exit status. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export function printError(
  json: boolean,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): void {
  if (json) process.stdout.write(JSON.stringify({ ok: false, error: { code, message, ...extra } }) + '\n');
  else process.stderr.write(`error ${code}: ${message}\n`);
}

export const jsonOption = () => new Option('--json', 'print one JSON document for scripts');
