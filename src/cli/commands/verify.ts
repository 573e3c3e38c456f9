import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { verifyChain } from '../../audit/index.js';
import { CHAIN_DIR } from '../../node/config.js';
import { LevelStore } from '../../storage/index.js';
import { CliError, jsonOption, output } from '../output.js';
import { progressBar } from '../progress.js';
import { intArg } from './args.js';

/**
 * The most signature worker threads --threads takes. Beyond it the main thread, which reads and
 * re-executes every block, is the bottleneck however many check signatures; and a typo (--threads
 * 1000) should not start a thousand threads.
 */
const MAX_THREADS = 64;

export function registerVerify(program: Command, setExit: (code: number) => void): void {
  program
    .command('verify')
    .description(
      "audit a node's stored chain offline: links, roots, signatures, re-execution, stores, invariants",
    )
    .requiredOption('--data-dir <dir>', "the node's data directory (stop the node first, or verify a copy)")
    .option(
      '--threads <n>',
      `signature-checking worker threads, besides the main thread, 0–${MAX_THREADS} (default: one per core but one, at least 1; 0 = none)`,
    )
    .option(
      '--genesis <hash>',
      "the network's genesis block hash, as its operators publish it: a chain with another genesis fails (GENESIS_MISMATCH)",
    )
    .addOption(jsonOption())
    .action(async (opts: { dataDir: string; threads?: string; genesis?: string; json?: boolean }) => {
      // checked before the store is opened: bad input is refused without touching it
      const threads = opts.threads === undefined ? undefined : threadsArg(opts.threads);
      if (opts.genesis !== undefined && !/^[0-9a-fA-F]{64}$/.test(opts.genesis))
        throw new CliError('INVALID_ARGUMENT', '--genesis must be a block hash: 64 hex digits');
      const location = await chainLocation(opts.dataDir);
      let kv: LevelStore;
      try {
        kv = await LevelStore.open(location, { createIfMissing: false });
      } catch (err) {
        const cause =
          (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code ?? '';
        const msg =
          cause === 'LEVEL_LOCKED'
            ? 'is in use by a running node: stop it or verify a copy'
            : `cannot be opened (${cause || (err as Error).message})`;
        throw new CliError('STORE_UNAVAILABLE', `${location} ${msg}`);
      }
      const bar = progressBar('verifying');
      let report;
      try {
        const vopts: Parameters<typeof verifyChain>[1] = { onProgress: (h, last) => bar.update(h, last) };
        if (threads !== undefined) vopts.threads = threads;
        if (opts.genesis !== undefined) vopts.genesisHash = opts.genesis;
        report = await verifyChain(kv, vopts);
      } finally {
        bar.done();
        await kv.close();
      }
      const rate = report.seconds > 0 ? Math.round(report.transactions / report.seconds) : 0;
      const human = report.ok
        ? `ok: ${report.blocks} blocks, ${report.transactions} transactions verified up to height ${report.height} in ${report.seconds.toFixed(2)} s (${rate} tx/s)\n` +
          `  chain ${report.chainId}, genesis ${report.genesisHash}${opts.genesis === undefined ? ' (not pinned: compare it with the one your network publishes, or pass --genesis)' : ' (as given)'}\n` +
          `  head ${report.headHash}`
        : `FAILED ${report.failure!.code}: ${report.failure!.message}`;
      if (!report.ok && !opts.json) process.stderr.write(human + '\n');
      else output(opts.json === true).out(human, report);
      if (!report.ok) setExit(1);
    });
}

function threadsArg(value: string): number {
  const n = intArg(value, '--threads');
  if (n < 0 || n > MAX_THREADS)
    throw new CliError('INVALID_ARGUMENT', `--threads must be between 0 and ${MAX_THREADS}, got ${n}`);
  return n;
}

async function chainLocation(dataDir: string): Promise<string> {
  const nested = join(dataDir, CHAIN_DIR);
  try {
    await access(nested);
    return nested;
  } catch {
    try {
      await access(join(dataDir, 'CURRENT'));
      return dataDir;
    } catch {
      // one level too high (a node's folder, net/node-3, instead of its data directory)
      const below = join(dataDir, 'data');
      const hint = (await holdsChainStore(below)) ? `; did you mean ${below}?` : '';
      throw new CliError('NOT_A_DATA_DIR', `${dataDir} holds no chain store (expected ${nested})${hint}`);
    }
  }
}

async function holdsChainStore(dataDir: string): Promise<boolean> {
  for (const p of [join(dataDir, CHAIN_DIR), join(dataDir, 'CURRENT')]) {
    try {
      await access(p);
      return true;
    } catch {
      // not this one
    }
  }
  return false;
}
