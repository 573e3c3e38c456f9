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
  const program = new Command('bitnexus')
    .description('BitNexus Ledger: a Raft-replicated ledger of signed affiliate commissions')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
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
    const json = argv.includes('--json');
    if (err instanceof CommanderError) {
      // help and version are "errors" to commander with exit code 0
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      printError(json, err.code, err.message);
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
