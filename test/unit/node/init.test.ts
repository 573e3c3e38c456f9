import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../src/node/init.js';
import { LevelRaftStore } from '../../../src/storage/raft/index.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('initNetwork', () => {
  it('refuses a folder holding any file it would write, before writing anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-init-'));
    dirs.push(dir);
    await mkdir(join(dir, 'node-2'));
    await writeFile(join(dir, 'node-2', 'node.key'), 'a key kept from before');
    await expect(initNetwork({ dir, nodes: 3, basePort: 7900, chainId: 'init-test' })).rejects.toMatchObject({
      code: 'FILE_EXISTS',
      message: expect.stringContaining('node-2') as unknown,
    });
    // no operator key, no node-1: the next attempt (in a clean folder) is not blocked by this one
    expect((await readdir(dir)).sort()).toEqual(['node-2']);
    expect(await readdir(join(dir, 'node-2'))).toEqual(['node.key']);
  });

  it("writes each founding node's first Raft state: genesis's members at index 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-init-'));
    dirs.push(dir);
    const net = await initNetwork({ dir, nodes: 3, basePort: 7900, chainId: 'init-test' });
    const members = net.nodes.map((n) => n.nodeId);
    for (const n of ['node-1', 'node-2', 'node-3']) {
      const store = await LevelRaftStore.open(join(dir, n, 'data', 'raft'));
      try {
        const st = await store.load();
        expect(st.snapshot?.meta).toEqual({
          index: 1,
          term: 1,
          confState: { voters: members, learners: [] },
        });
        expect(st.hardState).toEqual({ term: 1, vote: null, commit: 1 });
      } finally {
        await store.close();
      }
    }
  });
});
