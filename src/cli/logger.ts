import pino, { type Logger } from 'pino';
import { CliError } from './output.js';

/**
 * The levels `--log-level` (and `$LOG_LEVEL`) take: pino's, from the most to the least verbose.
 * `fatal` and `silent` are pino's too (silent: nothing at all), accepted though not advertised.
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
const ALSO_ACCEPTED = ['fatal', 'silent'];

/**
 * A log level given by `source` (`--log-level`, or `$LOG_LEVEL` when that option is left at its
 * default), checked before any logger is made: a bad one is the caller's INVALID_ARGUMENT, not
 * pino's "default level:… must be included in custom levels" reported as INTERNAL.
 */
export function checkLogLevel(level: string, source: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(level) && !ALSO_ACCEPTED.includes(level))
    throw new CliError(
      'INVALID_ARGUMENT',
      `${source} must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`,
    );
  return level;
}

/** One root logger per process: JSON lines, pretty only on a terminal. Never logs secrets. */
export function rootLogger(level: string): Logger {
  if (process.stdout.isTTY) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ level });
}
