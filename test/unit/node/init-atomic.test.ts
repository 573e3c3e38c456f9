import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type * as FsPromises from 'node:fs/promises';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { initNetwork, type InitOptions } from '../../../src/node/init.js';

/**
 * init leaves all or nothing (docs/OPERATIONS.md "A new network"): a failure half way, or an
 * interruption, leaves no network folder, no part of one and no staging folder, and the next
 * init succeeds. Faults are injected into node:fs/promises, which init and its key files
 * write through: the Nth writeFile (a key, genesis.json or a config) fails as a full disk
 * would, or the rename that puts the finished network in place fails.
 */
const fault = vi.hoisted(() => ({
  /** fail the writeFile call with this (1-based) number; 0: none */
  writeAt: 0,
  /** called instead of failing the write at writeAt */
  onWrite: undefined as (() => void) | undefined,
  writes: 0,
  /** every rename fails */
  rename: false,
  /** linking (or copying) a file whose name ends so fails */
  linkFails: '',
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof FsPromises>();
  const writeFile: typeof real.writeFile = async (...args) => {
    const path = args[0] as string;
    if (fault.writeAt > 0 && ++fault.writes === fault.writeAt) {
      if (fault.onWrite !== undefined) fault.onWrite();
      else
        throw Object.assign(new Error(`ENOSPC: no space left on device, open '${path}'`), {
          code: 'ENOSPC',
          errno: -28,
          syscall: 'open',
          path,
        });
    }
    return real.writeFile(...args);
  };
  const rename: typeof real.rename = async (...args) => {
    const path = args[0] as string;
    if (fault.rename)
      throw Object.assign(new Error(`EIO: i/o error, rename '${path}'`), {
        code: 'EIO',
        errno: -5,
        syscall: 'rename',
        path,
      });
    return real.rename(...args);
  };
  const link: typeof real.link = async (...args) => {
    const path = args[1] as string;
    if (fault.linkFails !== '' && path.endsWith(fault.linkFails))
      throw Object.assign(new Error(`EIO: i/o error, link '${path}'`), {
        code: 'EIO',
        errno: -5,
        syscall: 'link',
        path,
      });
    return real.link(...args);
  };
  const copyFile: typeof real.copyFile = async (...args) => {
    const path = args[1] as string;
    if (fault.linkFails !== '' && path.endsWith(fault.linkFails))
      throw Object.assign(new Error(`EIO: i/o error, copyfile '${path}'`), {
        code: 'EIO',
        errno: -5,
        syscall: 'copyfile',
        path,
      });
    return real.copyFile(...args);
  };
  const mocked = { writeFile, rename, link, copyFile };
  return { ...real, default: { ...real, ...mocked }, ...mocked };
});

const dirs: string[] = [];
afterEach(async () => {
  Object.assign(fault, { writeAt: 0, onWrite: undefined, writes: 0, rename: false, linkFails: '' });
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function scratch(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'bitnexus-init-atomic-'));
  dirs.push(d);
  return d;
}

const opts = (dir: string, extra: Partial<InitOptions> = {}): InitOptions => ({
  dir,
  nodes: 2,
  basePort: 7900,
  chainId: 'init-atomic',
  ...extra,
});

/** Every entry under `root` as "<type> <mode> <path>", sorted by path: what init made. */
async function layout(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (rel: string) => {
    const st = await stat(join(root, rel));
    lines.push(`${st.isDirectory() ? 'd' : 'f'} ${(st.mode & 0o777).toString(8)} ${rel}`);
    if (st.isDirectory())
      for (const e of (await readdir(join(root, rel))).sort()) await walk(rel === '.' ? e : `${rel}/${e}`);
  };
  await walk('.');
  return lines.sort((a, b) => (a.split(' ')[2]! < b.split(' ')[2]! ? -1 : 1));
}

/**
 * The layout init made before it became all-or-nothing (`find . -printf '%y %m %p'` after
 * `bitnexus init --nodes 2`, both into a new folder and into an empty one).
 */
const levelDb = (dir: string) =>
  ['000003.log', 'CURRENT', 'LOCK', 'LOG', 'MANIFEST-000002'].map((f) => `f 644 ${dir}/${f}`);
const OLD_LAYOUT = [
  'd 755 .',
  'f 644 genesis.json',
  ...[1, 2].flatMap((i) => [
    `d 755 node-${i}`,
    `f 644 node-${i}/config.json`,
    `d 755 node-${i}/data`,
    `d 755 node-${i}/data/chain`,
    ...levelDb(`node-${i}/data/chain`),
    `d 755 node-${i}/data/raft`,
    ...levelDb(`node-${i}/data/raft`),
    `f 600 node-${i}/node.key`,
  ]),
  'f 600 operator.key',
];

describe('initNetwork: all or nothing', () => {
  it('makes the same layout as before, in a new folder (parents too) and in an empty one, leaving nothing else', async () => {
    const parent = await scratch();
    const net = await initNetwork(opts(join(parent, 'a', 'net')));
    expect(await layout(join(parent, 'a', 'net'))).toEqual(OLD_LAYOUT);
    expect(await readdir(parent)).toEqual(['a']);
    expect(await readdir(join(parent, 'a'))).toEqual(['net']); // no staging folder left
    // what it returns is as before (the CLI prints it with --json), its paths the final ones
    expect(Object.keys(net)).toEqual(['chainId', 'genesisHash', 'operator', 'nodes']);
    expect(Object.keys(net.nodes[0]!)).toEqual(['name', 'nodeId', 'config', 'http', 'p2p']);
    expect(net.nodes.map((n) => n.config)).toEqual([
      join(parent, 'a', 'net', 'node-1', 'config.json'),
      join(parent, 'a', 'net', 'node-2', 'config.json'),
    ]);
    await mkdir(join(parent, 'empty'));
    await initNetwork(opts(join(parent, 'empty')));
    expect(await layout(join(parent, 'empty'))).toEqual(OLD_LAYOUT);
    expect((await readdir(parent)).sort()).toEqual(['a', 'empty']);
  });

  it('into a folder holding other things (a README, an empty node-1/) adds its files beside them, as before', async () => {
    const dir = await scratch();
    await chmod(dir, 0o755); // mkdtemp made it 0700; init never changes an existing folder's mode
    await writeFile(join(dir, 'README'), 'our network\n');
    await mkdir(join(dir, 'node-1'));
    await initNetwork(opts(dir));
    expect(await layout(dir)).toEqual(
      [...OLD_LAYOUT, 'f 644 README'].sort((a, b) => (a.split(' ')[2]! < b.split(' ')[2]! ? -1 : 1)),
    );
  });

  it.each([1, 2, 3, 4, 5, 6])(
    'a write failing half way (write %i of 6) leaves no folder and no staging folder; init then succeeds',
    async (n) => {
      const parent = await scratch();
      const dir = join(parent, 'net');
      fault.writeAt = n;
      const err = (await initNetwork(opts(dir)).catch((e: unknown) => e)) as Error & { code?: string };
      expect(await readdir(parent)).toEqual([]);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('IO_ERROR');
      expect(err.message).toMatch(/^cannot write .*\(ENOSPC\)/);
      expect(err.message).not.toContain('.init-'); // names the file's place, not the staging folder
      expect(err.message).toContain(`${dir} was not created`);
      fault.writeAt = 0;
      await initNetwork(opts(dir));
      expect(await layout(dir)).toEqual(OLD_LAYOUT);
      expect(await readdir(parent)).toEqual(['net']);
    },
  );

  it('a write failing half way into an existing folder leaves that folder as it was', async () => {
    const dir = await scratch();
    await writeFile(join(dir, 'README'), 'our network\n');
    for (const n of [2, 5]) {
      fault.writes = 0;
      fault.writeAt = n;
      const err = await initNetwork(opts(dir)).catch((e: unknown) => e);
      expect(await readdir(dir)).toEqual(['README']);
      expect(err).toMatchObject({
        code: 'IO_ERROR',
        message: expect.stringContaining(`nothing was written to ${dir}`) as unknown,
      });
    }
  });

  it('a failing rename (the last step) leaves nothing either', async () => {
    const parent = await scratch();
    fault.rename = true;
    await expect(initNetwork(opts(join(parent, 'net')))).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(await readdir(parent)).toEqual([]);
  });

  it('into an existing folder, a move failing at the last file (genesis.json) takes back the ones before', async () => {
    const dir = await scratch();
    await writeFile(join(dir, 'README'), 'our network\n');
    fault.linkFails = 'genesis.json';
    const err = await initNetwork(opts(dir)).catch((e: unknown) => e);
    expect(await readdir(dir)).toEqual(['README']); // no node-1, node-2, operator.key
    expect(err).toMatchObject({
      code: 'IO_ERROR',
      message: `cannot write ${join(dir, 'genesis.json')} (EIO); nothing was written to ${dir}`,
    });
  });

  it('a store that fails to open (LevelDB) is an IO_ERROR naming no staging path; nothing is left', async () => {
    const parent = await scratch();
    // node-2's chain store cannot be opened: a folder where LevelDB's LOCK file goes
    fault.writeAt = 5; // node-1's config.json: by then node-2/data exists in the staging folder
    fault.onWrite = () => {
      const staging = join(parent, `.net.init-${process.pid}-tmp`);
      mkdirSync(join(staging, 'node-2', 'data', 'chain', 'LOCK'), { recursive: true });
    };
    const err = await initNetwork(opts(join(parent, 'net'))).catch((e: unknown) => e);
    expect(await readdir(parent)).toEqual([]);
    expect(err).toMatchObject({
      code: 'IO_ERROR',
      message: `Database failed to open: IO error: ${join(parent, 'net', 'node-2', 'data', 'chain', 'LOCK')}: Is a directory; ${join(parent, 'net')} was not created`,
    });
  });

  it('an obstacle in an existing folder (node-2 a file) is refused before anything is written there', async () => {
    const dir = await scratch();
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'node-2'), 'not a folder');
    const err = await initNetwork(opts(dir)).catch((e: unknown) => e);
    expect(await readdir(dir)).toEqual(['node-2']);
    expect(err).toMatchObject({
      code: 'FILE_EXISTS',
      message: expect.stringContaining(`${join(dir, 'node-2')} exists and is not a folder`) as unknown,
    });
    await rm(join(dir, 'node-2'));
    await initNetwork(opts(dir));
    expect(await layout(dir)).toEqual(OLD_LAYOUT);
  });

  it("a store already in a node's data folder is refused, not written into, and nothing is added", async () => {
    const dir = await scratch();
    await mkdir(join(dir, 'node-2', 'data', 'chain'), { recursive: true });
    await writeFile(join(dir, 'node-2', 'data', 'chain', 'CURRENT'), 'MANIFEST-000009\n');
    const err = await initNetwork(opts(dir)).catch((e: unknown) => e);
    expect(await readdir(dir)).toEqual(['node-2']);
    expect(await readdir(join(dir, 'node-2'))).toEqual(['data']);
    expect(await readdir(join(dir, 'node-2', 'data'))).toEqual(['chain']);
    expect(await readdir(join(dir, 'node-2', 'data', 'chain'))).toEqual(['CURRENT']);
    expect(err).toMatchObject({
      code: 'FILE_EXISTS',
      message: expect.stringContaining(join(dir, 'node-2', 'data', 'chain', 'CURRENT')) as unknown,
    });
  });

  it('stopped by its signal half way (Ctrl-C in the CLI), it removes what it wrote: INTERRUPTED', async () => {
    const parent = await scratch();
    for (const n of [1, 3, 6]) {
      const stop = new AbortController();
      fault.writes = 0;
      fault.writeAt = n;
      fault.onWrite = () => stop.abort('SIGINT');
      await expect(initNetwork(opts(join(parent, 'net'), { signal: stop.signal }))).rejects.toMatchObject({
        code: 'INTERRUPTED',
        message: expect.stringMatching(/^init was interrupted by SIGINT; .*net was not created/) as unknown,
      });
      expect(await readdir(parent)).toEqual([]);
    }
  });

  it("removes a staging folder left by a killed init (its pid is gone), never a live process's", async () => {
    const parent = await scratch();
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    // what init -9'd half way leaves: a staging folder named after the folder and its pid
    const stale = join(parent, `.net.init-${dead}-tmp`);
    await mkdir(join(stale, 'node-1'), { recursive: true });
    await writeFile(join(stale, 'operator.key'), '{}');
    const live = join(parent, `.net.init-${process.ppid}-tmp`);
    await mkdir(live);
    const other = join(parent, `.other.init-${dead}-tmp`); // another folder's: not this init's business
    await mkdir(other);
    await initNetwork(opts(join(parent, 'net')));
    expect((await readdir(parent)).sort()).toEqual(
      ['net', `.net.init-${process.ppid}-tmp`, `.other.init-${dead}-tmp`].sort(),
    );
    expect(await layout(join(parent, 'net'))).toEqual(OLD_LAYOUT);
    // into an existing folder, init stages inside it: a killed one's staging folder is removed there too
    const existing = join(parent, 'existing');
    await mkdir(join(existing, `.existing.init-${dead}-tmp`, 'node-1'), { recursive: true });
    await initNetwork(opts(existing));
    expect((await readdir(existing)).sort()).toEqual(['genesis.json', 'node-1', 'node-2', 'operator.key']);
  });

  it("removes a staging folder at its own pid's path (a container's init is pid 1 every time)", async () => {
    const parent = await scratch();
    const mine = join(parent, `.net.init-${process.pid}-tmp`);
    await mkdir(join(mine, 'node-1'), { recursive: true });
    await initNetwork(opts(join(parent, 'net')));
    expect(await readdir(parent)).toEqual(['net']);
    expect(await layout(join(parent, 'net'))).toEqual(OLD_LAYOUT);
    // and inside an existing folder
    const existing = join(parent, 'existing');
    await mkdir(join(existing, `.existing.init-${process.pid}-tmp`, 'node-1'), { recursive: true });
    await initNetwork(opts(existing));
    expect((await readdir(existing)).sort()).toEqual(['genesis.json', 'node-1', 'node-2', 'operator.key']);
  });

  it('refuses a second init of one folder in the same process, without touching the first', async () => {
    const parent = await scratch();
    const both = await Promise.allSettled([
      initNetwork(opts(join(parent, 'net'))),
      initNetwork(opts(join(parent, 'net'))),
    ]);
    // whichever reaches its staging folder first makes the network; the other is refused
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const second = both.find((r) => r.status === 'rejected');
    expect(second).toMatchObject({
      status: 'rejected',
      reason: {
        code: 'FILE_EXISTS',
        message: `another init of ${join(parent, 'net')} is running in this process`,
      },
    });
    expect(await layout(join(parent, 'net'))).toEqual(OLD_LAYOUT);
  });

  it('refuses to replace a folder made while it ran, and leaves that folder as it was', async () => {
    const parent = await scratch();
    const target = join(parent, 'net');
    fault.writeAt = 6; // the last write: the network is staged, the rename comes next
    fault.onWrite = () => mkdirSync(target, { mode: 0o700 });
    const err = await initNetwork(opts(target)).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'FILE_EXISTS',
      message: `${target} appeared while init ran; init refuses to replace it; ${target} was not created`,
    });
    expect(await readdir(parent)).toEqual(['net']);
    expect(await readdir(target)).toEqual([]);
    expect((await stat(target)).mode & 0o777).toBe(0o700);
  });
});
