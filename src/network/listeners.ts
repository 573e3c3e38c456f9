import type { Logger } from 'pino';

/**
 * A set of callbacks for one kind of event. A callback that throws is logged
 * and the others still run: a bug above the network layer must not tear down
 * a stream or the process.
 */
export class Listeners<Args extends unknown[]> {
  readonly #handlers = new Set<(...args: Args) => void>();

  constructor(
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  add(handler: (...args: Args) => void): () => void {
    this.#handlers.add(handler);
    return () => {
      this.#handlers.delete(handler);
    };
  }

  get size(): number {
    return this.#handlers.size;
  }

  emit(...args: Args): void {
    for (const handler of this.#handlers) {
      try {
        handler(...args);
      } catch (err) {
        this.logger.error({ err }, `${this.what} handler threw`);
      }
    }
  }
}
