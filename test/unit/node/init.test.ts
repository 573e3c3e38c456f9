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

describe('devnet, started again after its data was deleted', () => {
  it('founds the network again only when every node’s data is gone', async () => {
    const { refound } = await import('../../../src/cli/commands/devnet.js');
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-init-'));
    dirs.push(dir);
    const net = await initNetwork({ dir, nodes: 3, basePort: 7900, chainId: 'init-test' });
    const names = ['node-1', 'node-2', 'node-3'];
    const state = async (n: string) => {
      const store = await LevelRaftStore.open(join(dir, n, 'data', 'raft'));
      try {
        return (await store.load()).snapshot?.meta.confState.voters;
      } finally {
        await store.close();
      }
    };
    // one node's data lost: that node must not found the network again
    await rm(join(dir, 'node-2', 'data'), { recursive: true });
    await refound(dir, names);
    expect(await state('node-2')).toBeUndefined();
    // every node's data deleted: a new devnet, as init made it
    for (const n of names) await rm(join(dir, n, 'data'), { recursive: true, force: true });
    await refound(dir, names);
    for (const n of names) expect(await state(n)).toEqual(net.nodes.map((x) => x.nodeId));
  });
});
