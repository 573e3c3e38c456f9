import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { peerIdFromNodeId } from '../../network/identity.js';
import type { NodeConfig } from '../../node/config.js';
import { initNetwork } from '../../node/init.js';
import { jsonOption, output } from '../output.js';
import { intArg } from './args.js';

const BIN = fileURLToPath(new URL('../../../../bin/bitnexus.js', import.meta.url));

/** How this machine reaches a node listening on `host`: one listening on every interface (init --hosts) on the loopback. */
const reachable = (host: string) => (host === '0.0.0.0' ? '127.0.0.1' : host);

export function registerDevnet(program: Command): void {
  program
    .command('devnet')
    .description(
      'a local network: init if needed, start every node as its own process, stop them all on Ctrl-C',
    )
    .option('--nodes <n>', 'number of nodes (when creating)', '3')
    .option('--dir <dir>', 'network folder', '.devnet')
    .option('--base-port <port>', 'first port (when creating)', '7100')
    .addOption(jsonOption())
    .action(async (opts: { nodes: string; dir: string; basePort: string; json?: boolean }) => {
      const dir = resolve(opts.dir);
      const o = output(opts.json === true);
      if (!(await exists(join(dir, 'genesis.json')))) {
        await initNetwork({
          dir,
          nodes: intArg(opts.nodes, '--nodes'),
          chainId: 'bitnexus-devnet',
          basePort: intArg(opts.basePort, '--base-port'),
        });
      }
      const names = await nodeNames(dir);
      const children: ChildProcess[] = [];
      const urls: string[] = [];
      /** each node's libp2p address with its peer id, as `bitnexus submit --p2p` takes it */
      const p2p: string[] = [];
      // Ctrl-C from here on stops the children too, also while they start
      let stopRequested = false;
      let resolveStop: () => void = () => undefined;
      const stopped = new Promise<void>((r) => (resolveStop = r));
      const stop = () => {
        stopRequested = true;
        resolveStop();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const stopChildren = () =>
        Promise.all(
          children.map(
            (c) =>
              new Promise<void>((r) => {
                if (c.exitCode !== null || c.signalCode !== null) return r();
                c.once('exit', () => r());
                c.kill('SIGTERM');
                setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
              }),
          ),
        );
      for (const name of names) {
        const configPath = join(dir, name, 'config.json');
        const cfg = JSON.parse(await readFile(configPath, 'utf8')) as NodeConfig;
        const log = createWriteStream(join(dir, name, 'node.log'), { flags: 'a' });
        const child = spawn(process.execPath, [BIN, 'start', '--config', configPath], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout?.pipe(log);
        child.stderr?.pipe(log);
        children.push(child);
        urls.push(`http://${reachable(cfg.http.host)}:${cfg.http.port}`);
        const listen = cfg.p2p.listen.replace(
          /^\/ip4\/([^/]+)\//,
          (_, host: string) => `/ip4/${reachable(host)}/`,
        );
        p2p.push(`${listen}/p2p/${peerIdFromNodeId(cfg.nodeId).toString()}`);
      }
      try {
        await Promise.race([Promise.all(urls.map((u) => waitHealthy(u, 30_000))), stopped]);
      } catch (err) {
        await stopChildren(); // a node that never became healthy: leave nothing running
        throw err;
      }
      if (stopRequested) {
        await stopChildren();
        return;
      }
      o.out(
        [
          `devnet ${dir}: ${names.length} nodes up (logs in ${dir}/node-*/node.log)`,
          ...names.map((n, i) => `${n}  ${urls[i]}  ${p2p[i]}`),
          'Ctrl-C stops them all',
        ].join('\n'),
        { ok: true, dir, nodes: names.map((n, i) => ({ name: n, url: urls[i], p2p: p2p[i] })) },
      );
      await stopped;
      await stopChildren();
    });
}

async function nodeNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (let i = 1; await exists(join(dir, `node-${i}`, 'config.json')); i++) names.push(`node-${i}`);
  return names;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

export async function waitHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become healthy within ${timeoutMs} ms`);
}
