import type { Command } from 'commander';
import { runNode, type RunOptions } from '../../node/process.js';
import { CliError } from '../output.js';
import { intArg } from './args.js';
import { rootLogger } from '../logger.js';

/** Exit status of a node that stopped on a fatal error (a broken invariant, a storage failure). */
export const FATAL_EXIT = 70;

export function registerStart(program: Command, setExit: (code: number) => void): void {
  program
    .command('start')
    .description('run a ledger node until SIGINT/SIGTERM')
    .requiredOption('--config <file>', "the node's config.json (made by bitnexus init)")
    .option('--log-level <level>', 'trace, debug, info, warn, error', process.env.LOG_LEVEL ?? 'info')
    .option(
      '--postgres-url <url>',
      'mirror the chain into this Postgres with pgvector (default: embedded PGlite in the data directory)',
    )
    .option('--no-mirror', 'run without a Postgres mirror (no search)')
    .option('--embedder-url <url>', 'an OpenAI-compatible /v1/embeddings server for the vector index')
    .option('--embedder-model <name>', 'model name for --embedder-url')
    .option('--embedder-dimension <n>', 'output size of that model')
    .action(
      async (opts: {
        config: string;
        logLevel: string;
        postgresUrl?: string;
        mirror: boolean;
        embedderUrl?: string;
        embedderModel?: string;
        embedderDimension?: string;
      }) => {
        const logger = rootLogger(opts.logLevel);
        let resolveDone: (code: number) => void = () => undefined;
        const done = new Promise<number>((r) => (resolveDone = r));
        const run: RunOptions = { noMirror: !opts.mirror };
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
        const running = await runNode(
          opts.config,
          logger,
          (err) => {
            logger.fatal({ err: err.message }, 'fatal error; stopping');
            resolveDone(FATAL_EXIT);
          },
          run,
        );
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
      },
    );
}
