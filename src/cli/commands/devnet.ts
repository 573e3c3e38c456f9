import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { access, open, readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { decodeBlock, parseBlock } from '../../ledger/index.js';
import { peerIdFromNodeId } from '../../network/identity.js';
import { raceAbort } from '../../network/wait.js';
import { RAFT_DIR, readNodeConfig, resolveIn, type NodeConfig } from '../../node/config.js';
import { initNetwork, writeFoundingRaftState } from '../../node/init.js';
import { initInterrupted } from '../interrupted.js';
import { CliError, jsonOption, output, readError } from '../output.js';
import { checkLogLevel } from '../logger.js';
import { basePortArg, nodesArg } from './args.js';

const BIN = fileURLToPath(new URL('../../../../bin/bitnexus.js', import.meta.url));

/** How long every node together may take from spawn to serving as itself. */
const STARTUP_MS = 30_000;
/** After SIGTERM, how long a node may take to stop before it gets SIGKILL. */
const STOP_GRACE_MS = 10_000;

/** How this machine reaches a node listening on `host`: one listening on every interface (init --hosts) on the loopback. */
const reachable = (host: string) => (host === '0.0.0.0' ? '127.0.0.1' : host);

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** the process could not be started at all */
  error?: Error;
}

interface DevnetNode {
  name: string;
  nodeId: string;
  url: string;
  /** the node's libp2p address with its peer id, as `bitnexus submit --p2p` takes it */
  p2p: string;
  log: string;
  /** where this run's output starts in the (appended) log file */
  logOffset: number;
  child: ChildProcess;
  exited: Promise<Exit>;
  /** resolves when the child itself says it serves (over the IPC channel) */
  serving: Promise<void>;
  /** why the last readiness probe failed, for a timeout message */
  problem: string;
}

/**
 * `bitnexus devnet` (what `npm start` runs). Each node is a `bitnexus start`
 * child with an IPC channel: when devnet goes away, even by kill -9, the
 * channel closes and the nodes stop themselves. Each node writes straight to
 * its own node.log (no pipe through devnet). A node counts as up once it has
 * said over that channel that it serves and its HTTP URL answers as that node
 * (/v1/status nodeId). A node that exits stops the devnet: while starting
 * with exit status 2, later with exit status 1, naming the node and its log.
 */
export function registerDevnet(program: Command): void {
  program
    .command('devnet')
    .description(
      'a local network: init if needed, start every node as its own process, stop them all on Ctrl-C or when one exits',
    )
    .option('--nodes <n>', 'number of nodes (when creating)', '3')
    .option('--dir <dir>', 'network folder', '.devnet')
    .option('--base-port <port>', 'first port (when creating)', '7100')
    .addOption(jsonOption())
    .action(async (opts: { nodes: string; dir: string; basePort: string; json?: boolean }) => {
      // every node is a `bitnexus start` that takes $LOG_LEVEL: a bad one is refused here, once
      if (process.env.LOG_LEVEL !== undefined)
        checkLogLevel(process.env.LOG_LEVEL, "$LOG_LEVEL (the nodes' --log-level)");
      const dir = resolve(opts.dir);
      const o = output(opts.json === true);
      // Ctrl-C / SIGTERM from here on stops the init of a new folder (which then removes what it
      // wrote), or the children, also while they start. The reason is the signal's name.
      const stopAsked = new AbortController();
      // More signals meanwhile change nothing (an init cleaning up, nodes stopping), as in `init`.
      const onSignal = (signal: NodeJS.Signals) => {
        if (!stopAsked.signal.aborted) stopAsked.abort(signal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const nodes: DevnetNode[] = [];
      // ends the readiness probes however the start ends
      const probes = new AbortController();
      try {
        if (!(await exists(join(dir, 'genesis.json')))) {
          const count = nodesArg(opts.nodes);
          // stopped by a signal, init leaves nothing, and devnet exits as `bitnexus init` does
          await initNetwork({
            dir,
            nodes: count,
            chainId: 'bitnexus-devnet',
            basePort: basePortArg(opts.basePort, count),
            signal: stopAsked.signal,
          }).catch((err: unknown) => {
            throw initInterrupted(err, stopAsked.signal);
          });
        }
        // before anything is started: never a network with members missing
        await checkBeforeStart(dir);
        const names = await nodeNames(dir);
        await refound(dir, names);
        for (const name of names) {
          if (stopAsked.signal.aborted) break;
          nodes.push(await spawnNode(dir, name));
        }
        if (stopAsked.signal.aborted) return;

        const startup = AbortSignal.any([stopAsked.signal, probes.signal, AbortSignal.timeout(STARTUP_MS)]);
        const outcome = await Promise.race([
          Promise.all(nodes.map((n) => whenReady(n, startup))).then(
            () => ({ kind: 'ready' }) as const,
            () => ({ kind: 'aborted' }) as const,
          ),
          firstExit(nodes),
        ]);
        if (stopAsked.signal.aborted) return;
        if (outcome.kind === 'exited') {
          throw new CliError(
            'NODE_EXITED',
            `${await exitReport(outcome.node, outcome.exit, ' while starting')}; stopped the other nodes`,
            2,
          );
        }
        if (outcome.kind === 'aborted') {
          const late = nodes.filter((n) => n.problem !== '');
          throw new CliError(
            'NODE_TIMEOUT',
            `not ready within ${STARTUP_MS / 1000} s, stopped the devnet: ${late
              .map((n) => `${n.name}: ${n.problem} (log ${n.log})`)
              .join('; ')}`,
            2,
          );
        }

        o.out(
          [
            `devnet ${dir}: ${nodes.length} nodes up (logs in ${dir}/node-*/node.log)`,
            ...nodes.map((n) => `${n.name}  ${n.url}  ${n.p2p}`),
            'Ctrl-C stops them all; if one of them exits, the others are stopped too',
          ].join('\n'),
          {
            ok: true,
            dir,
            nodes: nodes.map((n) => ({ name: n.name, url: n.url, p2p: n.p2p, pid: n.child.pid })),
          },
        );

        const stopped = new Promise<void>((r) =>
          stopAsked.signal.addEventListener('abort', () => r(), { once: true }),
        );
        const later = await Promise.race([stopped, firstExit(nodes)]);
        if (later !== undefined && !stopAsked.signal.aborted) {
          throw new CliError(
            'NODE_EXITED',
            `${await exitReport(later.node, later.exit, '')}; stopped the devnet`,
            1,
          );
        }
      } finally {
        probes.abort();
        await stopAll(nodes);
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    });
}

async function spawnNode(dir: string, name: string): Promise<DevnetNode> {
  const configPath = join(dir, name, 'config.json');
  let cfg: NodeConfig;
  let url: string;
  let p2p: string;
  try {
    cfg = JSON.parse(await readFile(configPath, 'utf8')) as NodeConfig;
    url = `http://${reachable(cfg.http.host)}:${cfg.http.port}`;
    const listen = cfg.p2p.listen.replace(
      /^\/ip4\/([^/]+)\//,
      (_, host: string) => `/ip4/${reachable(host)}/`,
    );
    p2p = `${listen}/p2p/${peerIdFromNodeId(cfg.nodeId).toString()}`;
  } catch (err) {
    throw new CliError('BAD_CONFIG', `${configPath}: ${(err as Error).message}`);
  }
  // The node writes to its log file itself: nothing is lost when devnet goes away.
  const log = join(dir, name, 'node.log');
  const fd = openSync(log, 'a');
  let child: ChildProcess;
  let logOffset: number;
  try {
    logOffset = fstatSync(fd).size;
    child = spawn(process.execPath, [BIN, 'start', '--config', configPath], {
      stdio: ['ignore', fd, fd, 'ipc'],
    });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<Exit>((r) => {
    child.once('exit', (code, signal) => r({ code, signal }));
    child.on('error', (error) => {
      if (child.pid === undefined) r({ code: null, signal: null, error });
    });
  });
  const serving = new Promise<void>((r) =>
    child.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'serving') r();
    }),
  );
  return {
    name,
    nodeId: cfg.nodeId,
    url,
    p2p,
    log,
    logOffset,
    child,
    exited,
    serving,
    problem: 'not started yet',
  };
}

/** The node's own process serves, and its URL answers as this node (not something else on the port). */
async function whenReady(n: DevnetNode, signal: AbortSignal): Promise<void> {
  n.problem = 'its process has not reported serving yet';
  await raceAbort(n.serving, signal);
  await waitHealthy(n.url, n.nodeId, signal, (p) => (n.problem = p));
  n.problem = '';
}

/** The first node to exit, with how it exited. */
function firstExit(nodes: DevnetNode[]) {
  return Promise.race(
    nodes.map((node) => node.exited.then((exit) => ({ kind: 'exited', node, exit }) as const)),
  );
}

/** "node-2 exited with code 2 while starting: ADDRESS_IN_USE: … (log …)" */
async function exitReport(n: DevnetNode, exit: Exit, when: string): Promise<string> {
  const how =
    exit.error !== undefined
      ? `could not be started (${exit.error.message})`
      : exit.signal !== null
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
  const last = await lastError(n.log, n.logOffset);
  return `${n.name} ${how}${when}${last === undefined ? '' : `; its last error: ${last.replace(/^error /, '')}`} (log ${n.log})`;
}

/** The last error this run of the node wrote to its log: a CLI `error CODE: …` line or a pino error/fatal. */
export async function lastError(log: string, from: number): Promise<string | undefined> {
  let text: string;
  try {
    const f = await open(log, 'r');
    try {
      const { size } = await f.stat();
      const start = Math.max(from, size - 16_384);
      const buf = Buffer.alloc(size - start);
      await f.read(buf, 0, buf.length, start);
      text = buf.toString('utf8');
    } finally {
      await f.close();
    }
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').reverse()) {
    if (/^error [A-Z_]+: /.test(line)) return line;
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
      if ((entry.level ?? 0) >= 50)
        return `${entry.msg ?? ''}${typeof entry.err === 'string' ? `: ${entry.err}` : ''}`;
    } catch {
      // a line cut at the window's start
    }
  }
  return undefined;
}

/** SIGTERM every node still running, SIGKILL after STOP_GRACE_MS; resolves when all have exited. */
async function stopAll(nodes: DevnetNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async ({ child, exited }) => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(kill);
      }
      if (child.connected) child.disconnect();
    }),
  );
}

/**
 * What devnet checks of an existing folder before it starts anything: a whole network
 * (checkWholeNetwork), unless a devnet has run in it. Once one has, its members may have changed
 * since genesis (a founding member removed and its folder deleted, a node's folder reused for a
 * new key), and each node checks its own files as it starts.
 */
export async function checkBeforeStart(dir: string): Promise<void> {
  if (!(await hasRun(dir))) await checkWholeNetwork(dir);
}

/** Whether a devnet has run in `dir`: a node-N/node.log (only devnet writes one; init never). */
async function hasRun(dir: string): Promise<boolean> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const name of entries)
    if (/^node-\d+$/.test(name) && (await exists(join(dir, name, 'node.log')))) return true;
  return false;
}

async function nodeNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (let i = 1; await exists(join(dir, `node-${i}`, 'config.json')); i++) names.push(`node-${i}`);
  return names;
}

/**
 * A devnet whose nodes' data were all deleted (to start it afresh) is a new
 * network: write its founding Raft state again, as init did. One node's data
 * deleted alone is that node's loss, and it must not found the network again:
 * it waits to be sent the log (docs/OPERATIONS.md).
 */
export async function refound(dir: string, names: readonly string[]): Promise<void> {
  const dataDirs: string[] = [];
  for (const name of names) {
    const config = await readNodeConfig(join(dir, name, 'config.json'));
    dataDirs.push(resolveIn(config.baseDir, config.dataDir));
  }
  for (const d of dataDirs) if (await exists(join(d, RAFT_DIR))) return;
  const members = await genesisMembers(dir);
  for (const d of dataDirs) await writeFoundingRaftState(d, members);
}

/** The founding members `dir`/genesis.json names, in order (init's node-1, node-2, …). */
async function genesisMembers(dir: string): Promise<readonly string[]> {
  const genesis = decodeBlock(parseBlock(JSON.parse(await readFile(join(dir, 'genesis.json'), 'utf8'))));
  return genesis.block.config?.members ?? [];
}

/**
 * Refuses (INCOMPLETE_NETWORK) a folder that holds only part of a network. Whole, every member
 * genesis.json names (the i-th, as init wrote them) has what `bitnexus start` needs in its
 * node-<i> folder: config.json naming it as its nodeId, and the key file and genesis file that
 * config names. An init of an older version (not all or nothing) stopped half way left folders
 * with less (a genesis naming 3 members, configs for two of them, or a config cut short):
 * started, such a network runs with members missing, and without a majority never elects a
 * leader. Only presence is checked here; each node checks what its files hold as it starts
 * (src/node/process.ts). A node's data directory may be missing: deleted, it is that node's loss,
 * or a new devnet when every node's is (refound), not part of a network.
 */
export async function checkWholeNetwork(dir: string): Promise<void> {
  const incomplete = (what: string) =>
    new CliError(
      'INCOMPLETE_NETWORK',
      `${dir} is not a whole network: ${what}; an init of an older version that was stopped half way leaves such a folder: delete it and run devnet again`,
    );
  const io = (err: unknown) => typeof (err as NodeJS.ErrnoException).syscall === 'string';
  const genesisPath = join(dir, 'genesis.json');
  let members: readonly string[];
  try {
    members = await genesisMembers(dir);
  } catch (err) {
    if (io(err)) throw readError(genesisPath, err);
    throw incomplete(`genesis.json is not a genesis block (${(err as Error).message})`);
  }
  if (members.length === 0) throw incomplete('genesis.json names no members');
  const short = (id: unknown) => (typeof id === 'string' ? `${id.slice(0, 16)}…` : JSON.stringify(id));
  const shown = (path: string) => {
    const rel = relative(dir, path);
    return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
  };
  for (const [i, member] of members.entries()) {
    const name = `node-${i + 1}`;
    const configPath = join(dir, name, 'config.json');
    let config: Awaited<ReturnType<typeof readNodeConfig>>;
    try {
      config = await readNodeConfig(configPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR')
        throw incomplete(`genesis.json names ${members.length} members but ${name} has no config.json`);
      if (io(err)) throw readError(configPath, err);
      throw incomplete(`${name}/config.json is not JSON (${(err as Error).message})`);
    }
    if (config.nodeId !== member)
      throw incomplete(
        `genesis.json names ${short(member)} as member ${i + 1}, but ${name}/config.json is node ${short(config.nodeId)}`,
      );
    // a field that is not a path is the node's BAD_CONFIG as it starts
    for (const [field, what] of [
      ['keyFile', 'key file'],
      ['genesisFile', 'genesis file'],
    ] as const) {
      const file = config[field] as unknown;
      if (typeof file !== 'string' || file === '') continue;
      const path = resolveIn(config.baseDir, file);
      if (!(await exists(path))) throw incomplete(`${name}'s ${what} ${shown(path)} is missing`);
    }
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls until `url` is alive (/healthz) and answers as `nodeId` (/v1/status);
 * rejects with the signal's reason once `signal` aborts. `onProblem` hears why
 * each failed probe failed.
 */
export async function waitHealthy(
  url: string,
  nodeId: string,
  signal: AbortSignal,
  onProblem: (problem: string) => void = () => undefined,
): Promise<void> {
  while (true) {
    signal.throwIfAborted();
    const probe = AbortSignal.any([signal, AbortSignal.timeout(1000)]);
    try {
      const health = await fetch(`${url}/healthz`, { signal: probe });
      if (!health.ok) onProblem(`${url}/healthz answered ${health.status}`);
      else {
        const status = await fetch(`${url}/v1/status`, { signal: probe });
        const body = status.ok ? ((await status.json()) as { nodeId?: unknown }) : {};
        if (body.nodeId === nodeId) return;
        onProblem(
          status.ok
            ? `${url} answers as ${typeof body.nodeId === 'string' ? `node ${body.nodeId.slice(0, 16)}…` : 'something else'}, not ${nodeId.slice(0, 16)}…`
            : `${url}/v1/status answered ${status.status}`,
        );
      }
    } catch (err) {
      signal.throwIfAborted();
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      onProblem(`no answer at ${url} (${cause ?? (err as Error).message})`);
    }
    await sleep(100, undefined, { signal });
  }
}
