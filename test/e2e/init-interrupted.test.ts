import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../support/cli.js';

/**
 * `bitnexus init` stopped half way by a real signal leaves no network folder and no part of one
 * (docs/OPERATIONS.md "A new network"). A 99-node init takes about a second, so the signal
 * lands while it writes the nodes' stores: once node-30's config is written, wherever init
 * writes it (the network folder itself, or the staging folder beside it).
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bitnexus-init-cut-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function interrupted(name: string, signal: NodeJS.Signals) {
  const parent = join(dir, name);
  await mkdir(parent);
  const target = join(parent, 'net');
  const child = spawn(
    process.execPath,
    [BIN, 'init', '--dir', target, '--nodes', '99', '--chain-id', 'cut-net', '--base-port', '20000'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, sig) => r({ code, signal: sig })),
  );
  const staging = join(parent, `.net.init-${child.pid}-tmp`);
  const deadline = Date.now() + 20_000;
  while (
    !(await exists(join(target, 'node-30', 'config.json'))) &&
    !(await exists(join(staging, 'node-30', 'config.json')))
  ) {
    if (Date.now() > deadline) throw new Error(`init never got half way: ${stderr}`);
    await sleep(5);
  }
  child.kill(signal);
  const exit = await exited;
  return { parent, target, staging, exit, stdout, stderr };
}

describe('bitnexus init stopped half way by a signal', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s: exit %i, no network folder and no staging folder left', async (signal, code) => {
    const r = await interrupted(signal, signal);
    expect(await readdir(r.parent)).toEqual([]);
    expect(r.exit, r.stderr).toEqual({ code, signal: null });
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `error INTERRUPTED: init was interrupted by ${signal}; ${r.target} was not created\n`,
    );
  });

  it('kill -9 leaves only a staging folder named after the folder and the pid; the next init removes it', async () => {
    const r = await interrupted('SIGKILL', 'SIGKILL');
    expect(r.exit.signal).toBe('SIGKILL');
    expect(await readdir(r.parent)).toEqual([`.net.init-${r.staging.split('.init-')[1]}`]);
    const again = await runCli(['init', '--dir', r.target, '--nodes', '2', '--chain-id', 'cut-net']);
    expect(again.code, again.stderr).toBe(0);
    expect(await readdir(r.parent)).toEqual(['net']);
    expect((await readdir(r.target)).sort()).toEqual(['genesis.json', 'node-1', 'node-2', 'operator.key']);
  });
});
