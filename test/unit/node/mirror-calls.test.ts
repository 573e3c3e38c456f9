import type { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerMirror } from '../../../src/node/mirror.js';
import type { ToWorker } from '../../../src/node/mirror-protocol.js';
import { FollowedChain, pgliteDir, until, within } from '../sync/helpers.js';

/**
 * Searches handed to the mirror thread (src/node/mirror.ts): a thread that
 * does not answer must not collect them without bound, nor keep a caller
 * waiting for ever. The thread runs the build (dist/), as in a node.
 */

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A mirror whose thread gets no search until the test lets it (`deliver`):
 * a thread stuck in a long statement.
 */
async function stalledMirror(
  limits: Parameters<typeof WorkerMirror.start>[4],
): Promise<{ mirror: WorkerMirror; held: () => number; deliver: () => void }> {
  const fc = await FollowedChain.create();
  const dir = await pgliteDir();
  cleanups.push(() => dir.remove());
  const mirror = await WorkerMirror.start(
    fc.tc.chain,
    pino({ level: 'silent' }),
    { pgliteDir: dir.dataDir },
    null,
    limits,
  );
  cleanups.push(() => within(mirror.close(), 20_000, 'close()'));
  await until('a first status', () => mirror.status() !== undefined);
  const worker = (mirror as unknown as { worker: Worker }).worker;
  const post = worker.postMessage.bind(worker);
  const held: ToWorker[] = [];
  worker.postMessage = (m: ToWorker) => {
    if (m.type === 'call') held.push(m);
    else post(m);
  };
  return {
    mirror,
    held: () => held.length,
    deliver: () => {
      for (const m of held.splice(0)) post(m);
    },
  };
}

const unavailable = { name: 'SyncError', code: 'MIRROR_UNAVAILABLE' };

describe('WorkerMirror searches', () => {
  it('gives up on a search the thread does not answer in time, and drops its late answer', async () => {
    const { mirror, held, deliver } = await stalledMirror({ searchTimeoutMs: 200 });
    const started = Date.now();
    await expect(within(mirror.search({ q: 'slow' }), 5_000, 'search()')).rejects.toMatchObject(unavailable);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(held()).toBe(1);
    // the thread answers after all: nobody waits for it any more, and the next search is answered
    deliver();
    const calls = (mirror as unknown as { calls: Map<number, unknown> }).calls;
    await until('the late answer', () => calls.size === 0, 10_000);
    const next = mirror.search({ q: 'next' });
    deliver();
    await expect(within(next, 10_000, 'search()')).resolves.toMatchObject({ hits: [] });
  });

  it('refuses a search at once while the thread holds its limit of unanswered ones', async () => {
    const { mirror, held, deliver } = await stalledMirror({ searchTimeoutMs: 60_000, maxPendingSearches: 3 });
    const waiting = [mirror.search({ q: 'a' }), mirror.search({ q: 'b' }), mirror.search({ q: 'c' })];
    await expect(within(mirror.search({ q: 'd' }), 1_000, 'the 4th search()')).rejects.toMatchObject(
      unavailable,
    );
    expect(held()).toBe(3);
    deliver();
    for (const w of waiting) await expect(within(w, 10_000, 'search()')).resolves.toMatchObject({ hits: [] });
    // answered: room again
    const again = mirror.search({ q: 'e' });
    deliver();
    await expect(within(again, 10_000, 'search()')).resolves.toMatchObject({ hits: [] });
  });

  it('a search timed out but still running on the thread counts against the limit until it answers', async () => {
    const { mirror, deliver } = await stalledMirror({ searchTimeoutMs: 100, maxPendingSearches: 2 });
    const late = [mirror.search({ q: 'a' }), mirror.search({ q: 'b' })];
    for (const l of late) await expect(within(l, 5_000, 'search()')).rejects.toMatchObject(unavailable);
    await expect(within(mirror.search({ q: 'c' }), 1_000, 'search()')).rejects.toMatchObject(unavailable);
    deliver();
    const calls = (mirror as unknown as { calls: Map<number, unknown> }).calls;
    await until('the late answers', () => calls.size === 0, 10_000);
    const next = mirror.search({ q: 'd' });
    deliver();
    await expect(within(next, 10_000, 'search()')).resolves.toMatchObject({ hits: [] });
  });
});
