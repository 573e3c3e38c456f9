import { setMaxListeners } from 'node:events';
import { RequestTimeoutError } from './errors.js';

/** Waits `ms`, or less if `signal` aborts; never rejects (loops check `signal.aborted`). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A wake-up call for one waiting loop: `wait` resolves on the next `notify`,
 * after `ms`, or when `signal` aborts, whichever is first. A notify with no
 * waiter is remembered, so a wake-up between two waits is not lost.
 */
export class Wakeup {
  #pending = false;
  #resolve: (() => void) | undefined;

  notify(): void {
    if (this.#resolve !== undefined) {
      const resolve = this.#resolve;
      this.#resolve = undefined;
      resolve();
    } else {
      this.#pending = true;
    }
  }

  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.#resolve === done) this.#resolve = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.#resolve = done;
    });
  }
}

/**
 * A signal that aborts when any of `signals` aborts, or after `ms` with a
 * RequestTimeoutError as its reason. Call `clear()` when the work is done so
 * the timer does not outlive it.
 */
export function deadline(ms: number, ...signals: (AbortSignal | undefined)[]): Deadline {
  const timeout = new AbortController();
  const timer = setTimeout(() => {
    timeout.abort(new RequestTimeoutError(`timed out after ${ms} ms`));
  }, ms);
  timer.unref();
  const signal = AbortSignal.any([timeout.signal, ...signals.filter((s) => s !== undefined)]);
  setMaxListeners(Infinity, signal);
  return { signal, clear: () => clearTimeout(timer) };
}

export interface Deadline {
  signal: AbortSignal;
  clear(): void;
}

/** Rejects with the signal's reason as soon as it aborts; lets a handler that ignores its signal be abandoned. */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(toError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(toError(err));
      },
    );
  });
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
