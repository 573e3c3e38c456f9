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

/**
 * What an error carries besides its code and message, as a node's error does (docs/ERRORS.md,
 * "The error shape"): the field at fault, and extra data for some codes (REJECTED's
 * `receiptCode`, TIMEOUT's transaction `id`).
 */
export interface ErrorExtra {
  field?: string;
  details?: unknown;
}

/** An error the CLI reports as `error CODE: message` with an exit status. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 2,
    readonly extra: ErrorExtra = {},
  ) {
    super(message);
  }
}

/**
 * With --json, one document `{ ok: false, error: { code, message, field?, details? } }` on
 * stdout, each part in its own member; otherwise `error CODE: message` on stderr, with the
 * details (if any) appended as JSON for a human to read.
 */
export function printError(json: boolean, code: string, message: string, extra: ErrorExtra = {}): void {
  const error: { code: string; message: string } & ErrorExtra = { code, message };
  if (extra.field !== undefined) error.field = extra.field;
  if (extra.details !== undefined) error.details = extra.details;
  if (json) process.stdout.write(JSON.stringify({ ok: false, error }) + '\n');
  else
    process.stderr.write(
      `error ${code}: ${message}${extra.details === undefined ? '' : ` ${JSON.stringify(extra.details)}`}\n`,
    );
}

/**
 * IO_ERROR for a file the CLI could not read, with the system's reason:
 * `cannot read net/genesis.jsn (ENOENT: no such file or directory)`.
 */
export function readError(path: string, err: unknown): CliError {
  return new CliError('IO_ERROR', `cannot read ${path} (${systemReason(err)})`);
}

/** "ENOENT: no such file or directory" from Node's "ENOENT: no such file or directory, open 'x'". */
export function systemReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && err.message.startsWith(`${code}: `))
    return err.message.replace(/, \w+( '.*')?$/s, '');
  return err.message;
}

export const jsonOption = () => new Option('--json', 'print one JSON document for scripts');
