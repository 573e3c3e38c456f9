// `bitnexus devnet --dir` on a folder that holds only part of a network — what an older,
// non-atomic init left when it was stopped half way (a genesis.json naming 3 members, configs
// for two of them), or a node folder without its key — is refused before any node is started:
// started, such a network runs with nodes missing (and without a majority it never elects a
// leader). Run in this process: every case is refused before devnet spawns anything.
import { access, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBeforeStart, checkWholeNetwork } from '../../../src/cli/commands/devnet.js';
import { initNetwork } from '../../../src/node/init.js';
import { nextBasePort } from '../../support/devnet.js';
import { jsonError, run } from './helpers.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'bitnexus-devnet-folder-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** A whole 3-node network, as init makes it, in its own folder. */
async function network(name: string): Promise<{ dir: string; nodeIds: string[] }> {
  const dir = join(root, name);
  const net = await initNetwork({ dir, nodes: 3, chainId: 'folder-test', basePort: nextBasePort(3) });
  return { dir, nodeIds: net.nodes.map((n) => n.nodeId) };
}

/**
 * `bitnexus devnet --dir <dir> --json` in this process, with how long it took. A devnet that
 * started the nodes after all would run them until stopped: after 5 s it is stopped as Ctrl-C
 * would (its own SIGINT listener called, no signal sent), so that the case fails, not hangs.
 */
async function devnet(dir: string): Promise<{ status: number; stdout: string; stderr: string; ms: number }> {
  const before = new Set(process.listeners('SIGINT'));
  const started = Date.now();
  const stop = setTimeout(() => {
    for (const l of process.listeners('SIGINT')) if (!before.has(l)) l('SIGINT');
  }, 5000);
  try {
    const r = await run(['devnet', '--dir', dir, '--json']);
    return { ...r, ms: Date.now() - started };
  } finally {
    clearTimeout(stop);
  }
}

/** Refused with INCOMPLETE_NETWORK, at once, no node started (devnet opens node.log just before it spawns a node); returns the message. */
async function refused(dir: string): Promise<string> {
  const r = await devnet(dir);
  expect(r.status, r.stdout + r.stderr).toBe(2);
  const message = jsonError(r.stdout, 'INCOMPLETE_NETWORK');
  expect(r.ms).toBeLessThan(2000);
  for (const n of [1, 2, 3]) expect(await exists(join(dir, `node-${n}`, 'node.log'))).toBe(false);
  expect(message).toContain(`${dir} is not a whole network: `);
  expect(message).toContain('delete it and run devnet again');
  return message;
}

describe('devnet --dir on a folder holding part of a network', () => {
  it('a member without its config.json (an older init stopped half way): refused, naming the node', async () => {
    const { dir } = await network('no-config');
    await rm(join(dir, 'node-3', 'config.json'));
    expect(await refused(dir)).toContain('genesis.json names 3 members but node-3 has no config.json');
  });

  it('a member whose node folder is missing altogether: refused the same way', async () => {
    const { dir } = await network('no-folder');
    await rm(join(dir, 'node-2'), { recursive: true });
    expect(await refused(dir)).toContain('genesis.json names 3 members but node-2 has no config.json');
  });

  it('a node folder with its config but no key file: refused, naming the key file', async () => {
    const { dir } = await network('no-key');
    await rm(join(dir, 'node-2', 'node.key'));
    expect(await refused(dir)).toContain(`node-2's key file ${join('node-2', 'node.key')} is missing`);
  });

  it('a config cut short (an older init stopped while writing it): refused, not an INTERNAL error', async () => {
    const { dir } = await network('cut-config');
    await truncate(join(dir, 'node-3', 'config.json'), 20);
    expect(await refused(dir)).toContain('node-3/config.json is not JSON');
  });

  it('a genesis.json cut short: refused', async () => {
    const { dir } = await network('cut-genesis');
    await truncate(join(dir, 'genesis.json'), 100);
    expect(await refused(dir)).toContain('genesis.json is not a genesis block');
  });

  it('a config naming another node than the member genesis.json names for its folder: refused', async () => {
    const { dir, nodeIds } = await network('swapped');
    const path = join(dir, 'node-2', 'config.json');
    const config = JSON.parse(await readFile(path, 'utf8')) as { nodeId: string };
    await writeFile(path, JSON.stringify({ ...config, nodeId: nodeIds[2] }));
    expect(await refused(dir)).toContain(
      `genesis.json names ${nodeIds[1]!.slice(0, 16)}… as member 2, but node-2/config.json is node ${nodeIds[2]!.slice(0, 16)}…`,
    );
  });
});

describe('checkWholeNetwork: what a whole network is', () => {
  it('a folder as init made it is whole', async () => {
    const { dir } = await network('whole');
    await expect(checkWholeNetwork(dir)).resolves.toBeUndefined();
  });

  it('nodes whose data were deleted are whole: devnet founds it again, or the node waits for the log (docs/OPERATIONS.md)', async () => {
    const { dir } = await network('data-deleted');
    await rm(join(dir, 'node-2', 'data'), { recursive: true });
    await expect(checkWholeNetwork(dir)).resolves.toBeUndefined();
    for (const n of [1, 3]) await rm(join(dir, `node-${n}`, 'data'), { recursive: true });
    await expect(checkWholeNetwork(dir)).resolves.toBeUndefined();
  });
});

describe('checkBeforeStart: a folder where a devnet has run', () => {
  it('is not held to its genesis members: a founding member removed later and its folder deleted', async () => {
    const { dir } = await network('has-run');
    await rm(join(dir, 'node-3'), { recursive: true });
    await expect(checkBeforeStart(dir)).rejects.toMatchObject({ code: 'INCOMPLETE_NETWORK' });
    await writeFile(join(dir, 'node-1', 'node.log'), ''); // what devnet writes as it starts a node
    await expect(checkBeforeStart(dir)).resolves.toBeUndefined();
  });
});
