import { constants } from 'node:os';
import { InitError } from '../node/init.js';
import { CliError } from './output.js';

/**
 * An init stopped by a signal (initNetwork's InitError INTERRUPTED, its `signal` aborted with
 * the signal's name as the reason) as the CLI reports it: CliError INTERRUPTED with exit status
 * 128 + the signal's number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as the signal
 * itself would have ended the process. Any other error is returned unchanged. `bitnexus init`
 * and `bitnexus devnet` (when it inits the folder) both report it so.
 */
export function initInterrupted(err: unknown, stop: AbortSignal): unknown {
  if (!(err instanceof InitError) || err.code !== 'INTERRUPTED') return err;
  const signal = constants.signals[stop.reason as NodeJS.Signals] as number | undefined;
  return new CliError('INTERRUPTED', err.message, signal === undefined ? 2 : 128 + signal);
}
