import type { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerMirror } from '../../../src/node/mirror.js';
import { record, register } from './chains.js';
import { FollowedChain, pgliteDir, until, within } from './helpers.js';

/**
 * The node's side of its mirror thread (src/node/mirror.ts): a thread that
 * dies, and the chain-store walk a check makes through the node's thread.
 * The thread runs the build (dist/), as in a node.
 */

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startMirror(fc: FollowedChain): Promise<{ mirror: WorkerMirror; worker: Worker }> {
  const dir = await pgliteDir();
  cleanups.push(() => dir.remove());
  const mirror = await WorkerMirror.start(fc.tc.chain, pino({ level: 'silent' }), { pgliteDir: dir.dataDir });
  cleanups.push(() => within(mirror.close(), 20_000, 'close()'));
  await until('a first status', () => mirror.status() !== undefined);
  return { mirror, worker: (mirror as unknown as { worker: Worker }).worker };
}

describe('WorkerMirror', () => {
  it('reports a mirror thread that died as stopped, fails calls at once and closes', async () => {
    const fc = await FollowedChain.create();
    const { mirror, worker } = await startMirror(fc);
    expect(mirror.status()?.state).toBe('ok');
    await worker.terminate(); // an uncaught error, an out-of-memory abort, …
    await within(
      until('state stopped', () => mirror.status()?.state === 'stopped', 5_000),
      6_000,
      'status',
    );
    const s = mirror.status()!;
    expect(s.lastError).toMatch(/^MIRROR_UNAVAILABLE: the mirror thread exited/);
    expect(s.index.state).toBe('stopped');
    const unavailable = { name: 'SyncError', code: 'MIRROR_UNAVAILABLE' };
    await expect(within(mirror.search({ q: 'x' }), 2_000, 'search()')).rejects.toMatchObject(unavailable);
    await expect(within(mirror.check(), 2_000, 'check()')).rejects.toMatchObject(unavailable);
    mirror.committed(fc.height + 1); // the node goes on committing: nothing to post to, no throw
    await within(mirror.close(), 2_000, 'close()');
  });

  it('walks the chain store a page at a time for a check, and runs one check at a time', async () => {
    const fc = await FollowedChain.create();
    const p = await register(fc, ['Page Shop'], ['Page Blog']);
    const recs = Array.from({ length: 1_100 }, () => record(p.merchants[0]!, p.affiliates[0]!));
    for (let i = 0; i < recs.length; i += 550) await fc.append(...recs.slice(i, i + 550));
    const { mirror, worker } = await startMirror(fc);
    // every answer the node's thread posts to a walk of the chain store
    const walkAnswers: number[] = [];
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (m: { type?: string; value?: unknown }, transfer?: never) => {
      const v = m.value as { entries?: unknown[] } | unknown[] | undefined;
      if (m.type === 'kv' && Array.isArray(v)) walkAnswers.push(v.length);
      else if (m.type === 'kv' && v && Array.isArray((v as { entries?: unknown[] }).entries))
        walkAnswers.push((v as { entries: unknown[] }).entries.length);
      post(m, transfer);
    };
    mirror.committed(fc.height);
    await until('the mirror to catch up', () => mirror.status()?.height === fc.height);

    const [first, second] = await Promise.allSettled([mirror.check(), mirror.check()]);
    expect(second).toMatchObject({
      status: 'rejected',
      reason: { name: 'SyncError', code: 'CHECK_IN_PROGRESS' },
    });
    expect(first).toMatchObject({ status: 'fulfilled', value: { ok: true, stateChecked: true } });
    // 1,100 commission records under one prefix: more than one page, none above the limit
    expect(Math.max(...walkAnswers)).toBe(1_000);
    expect(walkAnswers.filter((n) => n === 1_000).length).toBeGreaterThanOrEqual(1);
    // once it is done, the next check runs
    await expect(mirror.check()).resolves.toMatchObject({ ok: true, stateChecked: true });
  });
});
