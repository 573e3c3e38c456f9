import pino, { type Logger } from 'pino';

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
