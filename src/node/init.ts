import {
  access,
  constants,
  copyFile,
  cp,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { toHex } from '../codec/index.js';
import { generateKeyPair } from '../crypto/index.js';
import {
  createGenesisBlock,
  decodeBlock,
  DEFAULT_PARAMS,
  encodeBlock,
  type GenesisConfig,
} from '../ledger/index.js';
import { bootstrapState } from '../consensus/index.js';
import { LevelStore } from '../storage/index.js';
import { LevelRaftStore } from '../storage/raft/index.js';
import { CHAIN_DIR, RAFT_DIR, type NodeConfig } from './config.js';
import { writeKeyFile } from './keyfile.js';
import { LedgerChain } from './ledger-chain.js';
import { processAlive } from '../util/process-alive.js';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export interface InitOptions {
  dir: string;
  nodes: number;
  chainId: string;
  /** node i (1-based) listens on HTTP basePort + 2(i−1) and libp2p basePort + 2(i−1) + 1 */
  basePort: number;
  now?: number;
  /**
   * Host names the nodes reach each other by (containers, separate machines),
   * one per node. When given, nodes listen on all interfaces and dial peers at
   * /dns4/<host>/tcp/<port> (/ip4/ for an IPv4 address); otherwise
   * everything is on 127.0.0.1.
   */
  hosts?: string[];
  /**
   * Stops init (the CLI aborts it on Ctrl-C/SIGTERM/SIGHUP): it removes what it wrote and
   * rejects with InitError INTERRUPTED, its message naming the reason when that is a string
   * ("SIGINT"). Once the finished network is being put in place, init finishes instead.
   */
  signal?: AbortSignal;
}

export interface InitResult {
  chainId: string;
  genesisHash: string;
  operator: string;
  nodes: { name: string; nodeId: string; config: string; http: string; p2p: string }[];
}

export class InitError extends Error {
  override readonly name = 'InitError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A founding member's first Raft state (genesis's members at index 1, the
 * state RaftNode builds at bootstrap), written ahead of its first start: a
 * node that finds its Raft store empty waits to be sent the log, so one whose
 * data was lost cannot found the network a second time (docs/OPERATIONS.md).
 */
export async function writeFoundingRaftState(dataDir: string, members: readonly string[]): Promise<void> {
  const raft = await LevelRaftStore.open(join(dataDir, RAFT_DIR));
  try {
    await raft.save(bootstrapState({ voters: [...members], learners: [] }));
  } finally {
    await raft.close();
  }
}

/**
 * Why `basePort` cannot serve `nodes` nodes (each uses 2 ports, the last of
 * them at most 65535; ports below 1024 need privileges), or undefined.
 */
export function basePortProblem(basePort: number, nodes: number): string | undefined {
  const min = 1024;
  const max = 65536 - 2 * nodes;
  if (Number.isInteger(basePort) && basePort >= min && basePort <= max) return undefined;
  return `--base-port must be between ${min} and ${max} for ${nodes} node${nodes === 1 ? '' : 's'} (2 ports each), got ${basePort}`;
}

/**
 * A new network on disk:
 *   DIR/operator.key          the first operator's key (keep it offline)
 *   DIR/genesis.json          the genesis block (config + operator signature)
 *   DIR/node-<i>/node.key     node i's key; its public key is a Raft member and signs blocks
 *   DIR/node-<i>/config.json  node i's config (ports, peers)
 *   DIR/node-<i>/data/chain   node i's chain store, holding genesis
 *   DIR/node-<i>/data/raft    node i's first Raft state (writeFoundingRaftState)
 *
 * All or nothing: it is all written (and fsynced) into a staging folder (stagingName), then put
 * in place; a failure or an interruption (opts.signal) removes the staging folder and rejects
 * with an InitError whose message says that nothing was left (IO_ERROR, FILE_EXISTS,
 * INTERRUPTED, INTERNAL). DIR may exist (it need not be empty) as long as it holds nothing init
 * writes. The paths returned are the final ones, under DIR as given.
 */
export async function initNetwork(opts: InitOptions): Promise<InitResult> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 99) {
    throw new InitError('INVALID_ARGUMENT', '--nodes must be an integer from 1 to 99');
  }
  const portProblem = basePortProblem(opts.basePort, opts.nodes);
  if (portProblem !== undefined) throw new InitError('INVALID_ARGUMENT', portProblem);
  if (opts.hosts !== undefined && opts.hosts.length !== opts.nodes) {
    throw new InitError(
      'INVALID_ARGUMENT',
      `--hosts names ${opts.hosts.length} hosts for ${opts.nodes} nodes`,
    );
  }
  const genesisPath = join(opts.dir, 'genesis.json');
  if (await exists(genesisPath)) {
    throw new InitError('ALREADY_INITIALISED', `${genesisPath} exists: ${opts.dir} already holds a network`);
  }
  // Every file init writes is checked first, so a folder holding one is refused before any work
  // (the final moves into an existing folder would refuse it too, having written nothing there).
  const targets = [join(opts.dir, 'operator.key')];
  for (let i = 1; i <= opts.nodes; i++)
    targets.push(join(opts.dir, `node-${i}`, 'node.key'), join(opts.dir, `node-${i}`, 'config.json'));
  for (const path of targets) {
    if (await exists(path))
      throw new InitError(
        'FILE_EXISTS',
        `${path} exists; init refuses to overwrite it (use an empty folder)`,
      );
  }
  const target = resolve(opts.dir);
  const existed = await isFolder(target, opts.dir);
  if (existed) {
    for (let i = 1; i <= opts.nodes; i++)
      for (const path of [join(opts.dir, `node-${i}`), join(opts.dir, `node-${i}`, 'data')])
        if ((await stat(path).catch(() => undefined))?.isDirectory() === false)
          throw new InitError('FILE_EXISTS', `${path} exists and is not a folder`);
  }
  const interrupted = () => {
    if (opts.signal?.aborted === true) {
      const by = typeof opts.signal.reason === 'string' ? ` by ${opts.signal.reason}` : '';
      throw new InitError('INTERRUPTED', `init was interrupted${by}`);
    }
  };
  interrupted();

  // Everything is written into a staging folder first: beside the new folder (one rename then
  // puts it in place), or inside an existing one (its entries are then moved in, genesis.json
  // last). On any failure or interruption the staging folder goes, and nothing else was touched.
  const stagingIn = existed ? target : dirname(target);
  const staging = join(stagingIn, stagingName(basename(target), process.pid));
  // paths as the caller spelled the folder, never the staging folder's
  const shown = (path: string) => {
    for (const from of [staging, target])
      if (path === from || path.startsWith(from + sep)) return join(opts.dir, relative(from, path));
    return path;
  };
  let madeFrom: string | undefined;
  let staged = false;
  // Two inits of one folder in one process would share a staging folder: the second is refused
  // here, before it owns anything (its own cleanup must not touch the first's).
  if (inUse.has(staging))
    throw new InitError('FILE_EXISTS', `another init of ${opts.dir} is running in this process`);
  inUse.add(staging);
  try {
    if (!existed) madeFrom = await mkdir(stagingIn, { recursive: true });
    await removeStale(dirname(target), basename(target));
    if (existed) await removeStale(target, basename(target));
    // A folder at this process's own staging path was left by an earlier process with the same
    // pid (a container's init runs as pid 1 every time, so one killed init would otherwise block
    // every later one): removeStale skips it, being in use by name; it is stale all the same.
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging);
    staged = true;
    const made = await writeNetwork(staging, opts, interrupted);
    await syncTree(staging);
    interrupted(); // the last moment a signal stops init: from here on it finishes
    if (existed) await moveInto(staging, target, shown);
    else {
      // rename() would silently replace an empty folder made meanwhile (its mode and owner lost)
      if ((await lstat(target).catch(() => undefined)) !== undefined)
        throw new InitError('FILE_EXISTS', `${opts.dir} appeared while init ran; init refuses to replace it`);
      await rename(staging, target);
      await syncFolder(dirname(target)).catch(() => undefined);
    }
    return {
      chainId: opts.chainId,
      genesisHash: made.genesisHash,
      operator: made.operator,
      nodes: made.nodes.map((n) => ({
        name: n.name,
        nodeId: n.nodeId,
        config: join(opts.dir, n.name, 'config.json'),
        http: n.http,
        p2p: n.p2p,
      })),
    };
  } catch (err) {
    const left = await removeStaging(
      staged ? staging : undefined,
      existed ? undefined : { from: madeFrom, to: stagingIn },
    );
    throw failure(err, {
      shown,
      unstaged: (text) => text.split(staging).join(join(opts.dir)),
      outcome: existed ? `nothing was written to ${opts.dir}` : `${opts.dir} was not created`,
      left: left === undefined ? '' : `; could not remove ${staging} (${left}): delete it by hand`,
    });
  } finally {
    inUse.delete(staging);
  }
}

/** The network's files, written into `dir` (an empty folder); `interrupted` throws once init is to stop. */
async function writeNetwork(
  dir: string,
  opts: InitOptions,
  interrupted: () => void,
): Promise<{ genesisHash: string; operator: string; nodes: Omit<InitResult['nodes'][number], 'config'>[] }> {
  const operator = await writeKeyFile(join(dir, 'operator.key'));
  const nodes = [];
  for (let i = 1; i <= opts.nodes; i++) {
    interrupted();
    const name = `node-${i}`;
    await mkdir(join(dir, name, 'data'), { recursive: true });
    const keys = await writeKeyFile(join(dir, name, 'node.key'), generateKeyPair());
    const httpPort = opts.basePort + 2 * (i - 1);
    const host = opts.hosts?.[i - 1];
    nodes.push({
      name,
      nodeId: toHex(keys.publicKey),
      http: { host: host === undefined ? '127.0.0.1' : '0.0.0.0', port: httpPort },
      p2p: `/ip4/${host === undefined ? '127.0.0.1' : '0.0.0.0'}/tcp/${httpPort + 1}`,
      dialHttp: `http://${host ?? '127.0.0.1'}:${httpPort}`,
      dialP2p:
        host === undefined
          ? `/ip4/127.0.0.1/tcp/${httpPort + 1}`
          : `/${IPV4.test(host) ? 'ip4' : 'dns4'}/${host}/tcp/${httpPort + 1}`,
    });
  }
  interrupted();
  const config: GenesisConfig = {
    chainId: opts.chainId,
    createdAt: opts.now ?? Date.now(),
    operators: [toHex(operator.publicKey)],
    members: nodes.map((n) => n.nodeId),
    params: { ...DEFAULT_PARAMS },
  };
  const genesis = createGenesisBlock(config, operator.secretKey);
  await writeFile(join(dir, 'genesis.json'), Buffer.from(encodeBlock(genesis)));
  const decoded = decodeBlock(genesis);
  for (const n of nodes) {
    interrupted();
    const nodeConfig: NodeConfig = {
      nodeId: n.nodeId,
      chainId: opts.chainId,
      keyFile: 'node.key',
      dataDir: 'data',
      genesisFile: '../genesis.json',
      http: n.http,
      p2p: { listen: n.p2p },
      peers: nodes
        .filter((p) => p !== n)
        .map((p) => ({ nodeId: p.nodeId, http: p.dialHttp, p2p: p.dialP2p })),
    };
    await writeFile(join(dir, n.name, 'config.json'), JSON.stringify(nodeConfig, null, 2) + '\n');
    const chain = await LedgerChain.open(await LevelStore.open(join(dir, n.name, 'data', CHAIN_DIR)));
    try {
      await chain.commit(decoded);
    } finally {
      await chain.close();
    }
    await writeFoundingRaftState(join(dir, n.name, 'data'), config.members);
  }
  return {
    genesisHash: decoded.hash,
    operator: toHex(operator.publicKey),
    nodes: nodes.map((n) => ({ name: n.name, nodeId: n.nodeId, http: n.dialHttp, p2p: n.dialP2p })),
  };
}

/** Staging folders this process is filling in: their names hold its pid, yet they are not stale. */
const inUse = new Set<string>();

/**
 * The staging folder of an init of the folder named `base` by process `pid`: `.net.init-4242-tmp`
 * beside a new `net`, or inside an existing one. One left by an init that was killed (kill -9,
 * power loss) holds no usable network; the next init of the same folder removes it.
 */
export function stagingName(base: string, pid: number): string {
  return `.${base}.init-${pid}-tmp`;
}

/** Removes the staging folders of earlier inits of `base` in `folder` whose process is gone. */
async function removeStale(folder: string, base: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return;
  }
  const prefix = `.${base}.init-`;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('-tmp')) continue;
    const pid = name.slice(prefix.length, -'-tmp'.length);
    const path = join(folder, name);
    if (!/^[1-9]\d{0,9}$/.test(pid) || inUse.has(path)) continue;
    // a live process's, unless the pid is ours (then it is not one we are filling: left by an
    // earlier process with this pid, a container's)
    if (Number(pid) !== process.pid && processAlive(Number(pid))) continue;
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Removes the staging folder and, for a new network folder, the parent folders init made for it.
 * Returns why it could not, or undefined.
 */
async function removeStaging(
  staging: string | undefined,
  made?: { from: string | undefined; to: string },
): Promise<string | undefined> {
  if (staging !== undefined) {
    try {
      await rm(staging, { recursive: true, force: true });
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? String(err);
    }
  }
  if (made?.from !== undefined) {
    // from the deepest up to the first one made; rmdir removes only an empty folder
    for (let dir = made.to; ; dir = dirname(dir)) {
      if (!(await succeeds(rmdir(dir))) || dir === made.from) break;
    }
  }
  return undefined;
}

/** `path` a folder (true), absent (false), or something else (FILE_EXISTS, as mkdir would find it). */
async function isFolder(path: string, shown: string): Promise<boolean> {
  try {
    if ((await stat(path)).isDirectory()) return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // absent, or a path through a file (making its parent then says so); a dangling link is there
    if (code === 'ENOTDIR') return false;
    if (code === 'ENOENT' && (await lstat(path).catch(() => undefined)) === undefined) return false;
    if (code !== 'ENOENT') throw err;
  }
  throw new InitError('FILE_EXISTS', `${shown} exists and is not a folder`);
}

/**
 * Moves the finished network from `staging` into the existing folder `target`, never replacing
 * anything: what `target` already has (a file, or a folder where init has a file) is refused
 * before anything moves; folders both have are merged. genesis.json moves last: a folder with
 * one holds a network (devnet starts it, init refuses it). A failing move undoes the earlier ones.
 */
async function moveInto(staging: string, target: string, shown: (path: string) => string): Promise<void> {
  const moves: string[] = [];
  await planMoves(staging, target, '', moves, shown);
  moves.sort((a, b) => Number(a === 'genesis.json') - Number(b === 'genesis.json'));
  const done: { rel: string; how: 'renamed' | 'linked' | 'copied' }[] = [];
  try {
    for (const rel of moves) done.push({ rel, how: await move(join(staging, rel), join(target, rel)) });
  } catch (err) {
    // a renamed folder goes back; a linked or copied file is a second name or a copy: removed
    for (const { rel, how } of done.reverse()) {
      const to = join(target, rel);
      if (how === 'renamed' && (await succeeds(rename(to, join(staging, rel))))) continue;
      await rm(to, { recursive: true, force: true }).catch(() => undefined);
    }
    throw err;
  }
  for (const folder of new Set(moves.map((rel) => dirname(join(target, rel)))))
    await syncFolder(folder).catch(() => undefined);
  // only emptied folders and linked files are left in it
  await rm(staging, { recursive: true, force: true }).catch(() => undefined);
}

async function planMoves(
  from: string,
  to: string,
  rel: string,
  moves: string[],
  shown: (path: string) => string,
): Promise<void> {
  for (const entry of (await readdir(join(from, rel), { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const r = join(rel, entry.name);
    const there = join(to, r);
    if ((await lstat(there).catch(() => undefined)) === undefined) moves.push(r);
    else if (!entry.isDirectory())
      throw new InitError(
        'FILE_EXISTS',
        `${shown(there)} exists; init refuses to overwrite it (use an empty folder)`,
      );
    else if ((await stat(there).catch(() => undefined))?.isDirectory() === true)
      await planMoves(from, to, r, moves, shown);
    else throw new InitError('FILE_EXISTS', `${shown(there)} exists and is not a folder`);
  }
}

/**
 * One entry moved into place without replacing anything there: a file is linked (which fails if
 * the name is taken), a folder renamed (which fails on a folder with entries); across file systems
 * (a folder that is a link to another disk) both are copied and synced.
 */
async function move(from: string, to: string): Promise<'renamed' | 'linked' | 'copied'> {
  const folder = (await lstat(from)).isDirectory();
  try {
    if (!folder) {
      await link(from, to);
      return 'linked';
    }
    await rename(from, to);
    return 'renamed';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (folder ? code !== 'EXDEV' : code === 'EEXIST') throw err;
  }
  if (folder) {
    await cp(from, to, { recursive: true, errorOnExist: true, force: false });
    await syncTree(to);
  } else {
    await copyFile(from, to, constants.COPYFILE_EXCL);
    await syncFile(to);
  }
  return 'copied';
}

/** fsyncs every file and folder under `root`, so that what a rename puts in place is on disk. */
async function syncTree(root: string): Promise<void> {
  const files: string[] = [];
  const folders: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(dir, entry.name));
      else if (entry.isFile()) files.push(join(dir, entry.name));
    }
    folders.push(dir); // after the folders in it
  };
  await walk(root);
  for (let i = 0; i < files.length; i += 32) await Promise.all(files.slice(i, i + 32).map(syncFile));
  for (const dir of folders) await syncFolder(dir);
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs a folder's entries; where the platform cannot (no fsync of a folder), does nothing. */
async function syncFolder(path: string): Promise<void> {
  try {
    await syncFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  }
}

/**
 * What a failure of init, after it began writing, is to the caller: an InitError saying what
 * failed (a file as its final path, never the staging folder's) and that nothing was left behind.
 * EEXIST is FILE_EXISTS (init never overwrites), any other system error IO_ERROR, and so is a
 * LevelDB store that fails (LEVEL_*); anything else (a bug) INTERNAL.
 */
function failure(
  err: unknown,
  how: { shown: (path: string) => string; unstaged: (text: string) => string; outcome: string; left: string },
): InitError {
  let code: string;
  let message: string;
  const sys = systemError(err) ?? systemError((err as Error | undefined)?.cause);
  if (err instanceof InitError) [code, message] = [err.code, err.message];
  else if (sys !== undefined) {
    const path = sys.path === undefined ? 'a file' : how.shown(sys.path);
    if (sys.code === 'EEXIST' || sys.code === 'ENOTEMPTY')
      [code, message] = ['FILE_EXISTS', `${path} exists; init refuses to overwrite it (use an empty folder)`];
    else [code, message] = ['IO_ERROR', `cannot write ${path} (${sys.code})`];
  } else {
    const e = err as { code?: unknown; message?: unknown; cause?: { message?: unknown } } | undefined;
    const why = `${String(e?.message ?? err)}${typeof e?.cause?.message === 'string' ? `: ${e.cause.message}` : ''}`;
    code = typeof e?.code === 'string' && e.code.startsWith('LEVEL_') ? 'IO_ERROR' : 'INTERNAL';
    message = how.unstaged(why);
  }
  const wrapped = new InitError(code, `${message}; ${how.outcome}${how.left}`);
  wrapped.cause = err;
  return wrapped;
}

/** `err` if it is a system call's error (with a code and a syscall), else undefined. */
function systemError(err: unknown): NodeJS.ErrnoException | undefined {
  const e = err as NodeJS.ErrnoException;
  return err instanceof Error && typeof e.code === 'string' && e.syscall !== undefined ? e : undefined;
}

function succeeds(action: Promise<unknown>): Promise<boolean> {
  return action.then(
    () => true,
    () => false,
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
