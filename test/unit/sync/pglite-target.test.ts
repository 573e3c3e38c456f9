import { describe, expect, it } from 'vitest';
import { PGLITE_SHARED_BUFFERS, PgliteTarget } from '../../../src/sync/pglite-target.js';

describe('PgliteTarget buffer pool', () => {
  it('starts PGlite with the default buffer pool, or the one asked for', async () => {
    for (const [asked, want] of [
      [undefined, PGLITE_SHARED_BUFFERS],
      ['64MB', '64MB'],
    ] as const) {
      const t = await PgliteTarget.open({
        dataDir: 'memory://',
        ...(asked === undefined ? {} : { sharedBuffers: asked }),
      });
      try {
        const { rows } = await t.query<{ shared_buffers: string }>('SHOW shared_buffers');
        expect(rows[0]?.shared_buffers).toBe(want);
      } finally {
        await t.close();
      }
    }
  }, 60_000);

  it('refuses a size Postgres would not read as one, before starting anything', async () => {
    for (const bad of ['384', '384 MB', "1GB'; fsync = 'off", '0MB']) {
      await expect(PgliteTarget.open({ dataDir: 'memory://', sharedBuffers: bad })).rejects.toThrow(
        /sharedBuffers must look like/,
      );
    }
  });
});
