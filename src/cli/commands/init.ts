import type { Command } from 'commander';
import { CHAIN_ID_RE } from '../../ledger/index.js';
import { peerIdFromNodeId } from '../../network/identity.js';
import { initNetwork } from '../../node/init.js';
import { initInterrupted } from '../interrupted.js';
import { CliError, jsonOption, output } from '../output.js';
import { basePortArg, nodesArg } from './args.js';

/** The chain id of every devnet: init's default, kept for devnets and tests. */
const DEVNET_CHAIN_ID = 'bitnexus-devnet';

/** The signals that stop init cleanly (everything it wrote removed). */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a new network: operator key, node keys, genesis, one config per node')
    .requiredOption('--dir <dir>', 'folder for the network (must not hold one already)')
    .option('--nodes <n>', 'number of nodes', '3')
    .option(
      '--chain-id <id>',
      'chain id, bound into every signature: pick a new one per network (the default is every devnet’s too)',
      DEVNET_CHAIN_ID,
    )
    .option(
      '--base-port <port>',
      'first port; node i uses base+2(i-1) for HTTP and the next for libp2p',
      '7100',
    )
    .option(
      '--hosts <names>',
      'comma-separated host names, one per node (containers, separate machines): nodes then listen on all interfaces and dial each other by these names',
    )
    .addOption(jsonOption())
    .action(
      async (
        opts: {
          dir: string;
          nodes: string;
          chainId: string;
          basePort: string;
          hosts?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        if (!CHAIN_ID_RE.test(opts.chainId)) {
          throw new CliError(
            'INVALID_ARGUMENT',
            '--chain-id: lower-case letters, digits, ".", "_" or "-" (at most 64)',
          );
        }
        const nodes = nodesArg(opts.nodes);
        const basePort = basePortArg(opts.basePort, nodes);
        const hosts = opts.hosts === undefined ? {} : { hosts: hostList(opts.hosts) };
        // Ctrl-C, SIGTERM or SIGHUP while init writes: it removes what it wrote and exits with
        // 128 + the signal's number, as the signal would have. More of them meanwhile change
        // nothing (stopping takes a fraction of a second); kill -9 leaves the staging folder,
        // which the next init removes (docs/OPERATIONS.md).
        const stop = new AbortController();
        const onSignal = (signal: NodeJS.Signals) => {
          if (!stop.signal.aborted) stop.abort(signal);
        };
        for (const s of STOP_SIGNALS) process.on(s, onSignal);
        const result = await initNetwork({
          dir: opts.dir,
          nodes,
          chainId: opts.chainId,
          basePort,
          ...hosts,
          signal: stop.signal,
        })
          .catch((err: unknown) => {
            throw fileError(initInterrupted(err, stop.signal));
          })
          .finally(() => {
            for (const s of STOP_SIGNALS) process.removeListener(s, onSignal);
          });
        // A chain id keeps transactions from replaying across networks; the default is shared by
        // every devnet (docs/OPERATIONS.md). Kept as the default, but never silently.
        if (cmd.getOptionValueSource('chainId') === 'default')
          process.stderr.write(
            `warning: no --chain-id given: using ${JSON.stringify(DEVNET_CHAIN_ID)}, the chain id of every devnet; a transaction signed for one network with that id can be replayed on any other. For a network of its own, init a new folder with --chain-id <a new id> (docs/OPERATIONS.md)\n`,
          );
        // the full address, with the peer id that submit --p2p checks the node's identity against
        const nodeList = result.nodes.map((n) => ({
          ...n,
          p2p: `${n.p2p}/p2p/${peerIdFromNodeId(n.nodeId).toString()}`,
        }));
        const lines = [
          `network ${result.chainId} created in ${opts.dir}`,
          `genesis ${result.genesisHash}`,
          `operator ${result.operator} (key: ${opts.dir}/operator.key — keep it safe)`,
          ...nodeList.map((n) => `${n.name} ${n.nodeId} http ${n.http} p2p ${n.p2p}`),
        ];
        output(opts.json === true).out(lines.join('\n'), { ok: true, ...result, nodes: nodeList });
      },
    );
}

/**
 * A file-system failure of init as the CLI reports it: a key or file already there is
 * FILE_EXISTS (init never overwrites a key), any other system error IO_ERROR. Anything else
 * (InitError, a bug) is returned unchanged. (initNetwork reports what fails once it has begun
 * writing as an InitError itself; this covers a failure while it looks at the folder.)
 */
function fileError(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof e.code !== 'string' || e.syscall === undefined) return err;
  const path = e.path ?? 'a file';
  if (e.code === 'EEXIST' && e.syscall === 'mkdir')
    return new CliError('FILE_EXISTS', `${path} exists and is not a folder`);
  if (e.code === 'EEXIST')
    return new CliError('FILE_EXISTS', `${path} exists; init refuses to overwrite it (use an empty folder)`);
  return new CliError('IO_ERROR', `cannot write ${path} (${e.code})`);
}

/** `--hosts a,b,c`: DNS names or IPv4 addresses, as a /dns4 multiaddr and a URL take them. */
function hostList(value: string): string[] {
  const hosts = value.split(',').map((h) => h.trim());
  for (const h of hosts) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(h))
      throw new CliError('INVALID_ARGUMENT', `--hosts: ${JSON.stringify(h)} is not a host name`);
  }
  return hosts;
}
