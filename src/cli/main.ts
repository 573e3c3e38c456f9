import { Command, CommanderError } from 'commander';
import { CodecError } from '../codec/index.js';
import { ValidationError } from '../ledger/index.js';
import { InitError } from '../node/init.js';
import { KeyFileError } from '../node/keyfile.js';
import { CliError, printError } from './output.js';
import { registerInit } from './commands/init.js';
import { registerKeys } from './commands/keys.js';
import { registerTx } from './commands/tx.js';
import { registerVerify } from './commands/verify.js';
import { registerStart } from './commands/start.js';
import { registerDevnet } from './commands/devnet.js';
import { registerClient } from './commands/client.js';
import { registerSearch } from './commands/search.js';

/**
 * `bitnexus`: the operator's and auditor's command line. Every command takes
 * `--json` for scripts. Returns the exit status: 0 success, 1 a check failed
 * (verify), 2 bad input or an error.
 */
export async function main(argv: string[]): Promise<number> {
  const json = jsonRequested(argv.slice(2));
  // Set before the commands are registered: commander copies these settings into each one.
  // A usage error (unknown command or option, missing argument) is INVALID_ARGUMENT like any
  // other bad input: `error INVALID_ARGUMENT: …` and the help on stderr, or with --json only
  // the JSON document on stdout (printed below, once commander has given up).
  const program = new Command('bitnexus')
    .description('BitNexus Ledger: a Raft-replicated ledger of signed affiliate commissions')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => {
        if (!json) write(`error ${USAGE_ERROR}: ${usageMessage(str)}\n`);
      },
    })
    .showHelpAfterError(!json);
  const state = { exitCode: 0 };
  const setExit = (code: number) => {
    state.exitCode = code;
  };
  registerKeys(program);
  registerInit(program);
  registerTx(program);
  registerVerify(program, setExit);
  registerStart(program, setExit);
  registerDevnet(program);
  registerClient(program, setExit);
  registerSearch(program, setExit);
  try {
    await program.parseAsync(argv);
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are "errors" to commander with exit code 0
      if (err.exitCode === 0) return 0;
      if (json) {
        const message =
          err.code === 'commander.help' ? 'a command is needed (see --help)' : usageMessage(err.message);
        printError(true, USAGE_ERROR, message);
      }
      return 2;
    }
    if (err instanceof CliError) {
      printError(json, err.code, err.message, err.extra);
      return err.exitCode;
    }
    if (err instanceof ValidationError) {
      printError(json, err.code, err.message, err.field === undefined ? {} : { field: err.field });
      return 2;
    }
    if (err instanceof CodecError || err instanceof InitError || err instanceof KeyFileError) {
      printError(json, err.code, err.message);
      return 2;
    }
    printError(json, 'INTERNAL', err instanceof Error ? err.message : String(err));
    return 2;
  }
}

/** The code of a usage error, as for any other bad argument. */
const USAGE_ERROR = 'INVALID_ARGUMENT';

/** `--json` anywhere among the options (not after `--`, where it would be an operand). */
export function jsonRequested(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/** commander's "error: unknown option '--x'\n" without the prefix and the newline. */
function usageMessage(text: string): string {
  return text.replace(/^error: /, '').trim();
}
