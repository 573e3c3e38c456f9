import { Option, type Command } from 'commander';
import { runNode, StartError, type RunningNode, type RunOptions } from '../../node/process.js';
import { CliError } from '../output.js';
import { intArg } from './args.js';
import { checkLogLevel, LOG_LEVELS, rootLogger } from '../logger.js';

/** Exit status of a node that stopped on a fatal error (a broken invariant, a storage failure). */
export const FATAL_EXIT = 70;

export function registerStart(program: Command, setExit: (code: number) => void): void {
  program
    .command('start')
    .description('run a ledger node until SIGINT/SIGTERM')
    .requiredOption('--config <file>', "the node's config.json (made by bitnexus init)")
    .addOption(
      new Option('--log-level <level>', LOG_LEVELS.join(', ')).default(
        process.env.LOG_LEVEL ?? 'info',
        '$LOG_LEVEL, else info',
      ),
    )
    .option(
      '--postgres-url <url>',
      'mirror the chain into this Postgres with pgvector (default: embedded PGlite in the data directory)',
    )
    .option('--no-mirror', 'run without a Postgres mirror (no search)')
    .option('--embedder-url <url>', 'an OpenAI-compatible /v1/embeddings server for the vector index')
    .option('--embedder-model <name>', 'model name for --embedder-url')
    .option('--embedder-dimension <n>', 'output size of that model')
    .action(
      async (
        opts: {
          config: string;
          logLevel: string;
          postgresUrl?: string;
          mirror: boolean;
          embedderUrl?: string;
          embedderModel?: string;
          embedderDimension?: string;
        },
        cmd: Command,
      ) => {
        // checked first: a bad level (given, or the default from $LOG_LEVEL) is INVALID_ARGUMENT
        const fromEnv =
          cmd.getOptionValueSource('logLevel') === 'default' && process.env.LOG_LEVEL !== undefined;
        const logger = rootLogger(
          checkLogLevel(opts.logLevel, fromEnv ? '$LOG_LEVEL (the default of --log-level)' : '--log-level'),
        );
        let resolveDone: (code: number) => void = () => undefined;
        const done = new Promise<number>((r) => (resolveDone = r));
        // Stop requests count from the first moment, also while the node starts (runNode then
        // closes what it has opened and returns as soon as it can).
        const startup = new AbortController();
        const stop = (why: Record<string, string>) => {
          if (!startup.signal.aborted) logger.info(why, 'stopping');
          startup.abort();
          resolveDone(0);
        };
        const onSigint = () => stop({ signal: 'SIGINT' });
        const onSigterm = () => stop({ signal: 'SIGTERM' });
        // Started with an IPC channel (by `bitnexus devnet`): the parent going away, even by kill -9,
        // closes the channel, and the node stops as on SIGTERM instead of running on unsupervised.
        const supervised = typeof process.send === 'function';
        const onDisconnect = () => stop({ reason: 'the parent process went away' });
        process.once('SIGINT', onSigint);
        process.once('SIGTERM', onSigterm);
        if (supervised) {
          process.once('disconnect', onDisconnect);
          if (!process.connected) onDisconnect(); // gone before this listener was in place
        }
        try {
          const run: RunOptions = { noMirror: !opts.mirror, signal: startup.signal };
          if (opts.postgresUrl !== undefined) run.postgresUrl = opts.postgresUrl;
          if (opts.embedderUrl !== undefined) {
            if (opts.embedderModel === undefined || opts.embedderDimension === undefined) {
              throw new CliError(
                'INVALID_ARGUMENT',
                '--embedder-url needs --embedder-model and --embedder-dimension',
              );
            }
            run.embedder = {
              url: opts.embedderUrl,
              model: opts.embedderModel,
              dimension: intArg(opts.embedderDimension, '--embedder-dimension'),
            };
          }
          let running: RunningNode;
          try {
            running = await runNode(
              opts.config,
              logger,
              (err) => {
                logger.fatal({ err: err.message }, 'fatal error; stopping');
                resolveDone(FATAL_EXIT);
              },
              run,
            );
          } catch (err) {
            if (err instanceof StartError && err.code === 'STOPPED') {
              logger.info('stopped while starting');
              logger.flush();
              return;
            }
            if (err instanceof StartError) throw new CliError(err.code, err.message);
            throw err;
          }
          // tell a supervising devnet that this process (not another one on the port) serves
          if (supervised && process.connected)
            process.send?.({ type: 'serving', url: running.url }, undefined, undefined, () => undefined);
          const code = await done;
          await running
            .stop()
            .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'error while stopping'));
          logger.flush();
          setExit(code);
        } finally {
          process.removeListener('SIGINT', onSigint);
          process.removeListener('SIGTERM', onSigterm);
          // with no 'disconnect' listener the IPC channel no longer keeps this process alive
          process.removeListener('disconnect', onDisconnect);
        }
      },
    );
}
