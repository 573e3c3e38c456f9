import type { Command } from 'commander';
import { runNode } from '../../node/process.js';
import { rootLogger } from '../logger.js';

/** Exit status of a node that stopped on a fatal error (a broken invariant, a storage failure). */
export const FATAL_EXIT = 70;

export function registerStart(program: Command, setExit: (code: number) => void): void {
  program
    .command('start')
    .description('run a ledger node until SIGINT/SIGTERM')
    .requiredOption('--config <file>', "the node's config.json (made by bitnexus init)")
    .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.LOG_LEVEL ?? 'info')
    .action(async (opts: { config: string; logLevel: string }) => {
      const logger = rootLogger(opts.logLevel);
      let resolveDone: (code: number) => void = () => undefined;
      const done = new Promise<number>((r) => (resolveDone = r));
      const running = await runNode(opts.config, logger, (err) => {
        logger.fatal({ err: err.message }, 'fatal error; stopping');
        resolveDone(FATAL_EXIT);
      });
      const onSignal = (sig: string) => {
        logger.info({ signal: sig }, 'stopping');
        resolveDone(0);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const code = await done;
      await running
        .stop()
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'error while stopping'));
      logger.flush();
      setExit(code);
    });
}
