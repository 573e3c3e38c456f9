import type { Command } from 'commander';
import type { CheckReport, SearchResult, SyncServiceStatus } from '../../sync/index.js';
import { api } from '../http.js';
import { jsonOption, output } from '../output.js';
import { intArg, intInRange, MAX_TIMER_MS, nodeOption } from './args.js';

interface SearchOpts {
  node: string;
  k?: string;
  merchant?: string;
  affiliate?: string;
  status: string[];
  currency?: string;
  from?: string;
  to?: string;
  minAmount?: string;
  maxAmount?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** a 64-hex id, shortened for a line of output */
const short = (hex: string) => hex.slice(0, 12);

/**
 * The query string of GET /v1/search. Values go to the node as typed (dates,
 * amounts, statuses): it validates them and answers 400 BAD_REQUEST naming
 * the parameter, so the two never disagree on what is valid.
 */
export function searchPath(text: string, opts: Omit<SearchOpts, 'node' | 'json'>): string {
  const params = new URLSearchParams();
  if (text !== '') params.set('q', text);
  if (opts.k !== undefined) params.set('k', String(intArg(opts.k, '--k')));
  for (const [name, value] of [
    ['merchant', opts.merchant],
    ['affiliate', opts.affiliate],
    ['currency', opts.currency],
    ['from', opts.from],
    ['to', opts.to],
    ['minAmount', opts.minAmount],
    ['maxAmount', opts.maxAmount],
  ] as const)
    if (value !== undefined) params.set(name, value);
  for (const status of opts.status) params.append('status', status);
  const query = params.toString();
  return query === '' ? 'v1/search' : `v1/search?${query}`;
}

function formatHits(result: SearchResult, text: string): string {
  const lines = result.hits.map((hit, i) => {
    const score = text === '' ? '' : `${hit.score.toFixed(4)}  `;
    const description = hit.description === '' ? `order ${hit.orderId}` : hit.description;
    return `${String(i + 1).padStart(3)}. ${score}${short(hit.id)}  ${hit.amount} ${hit.currency}  ${hit.status.padEnd(8)}  ${description}`;
  });
  if (lines.length === 0) lines.push('no matches');
  if (text !== '' && !result.vectorUsed)
    lines.push(`(text matches only: ${result.vectorError ?? 'the vector search did not answer'})`);
  return lines.join('\n');
}

/** `bitnexus sync status` without --json (exported for tests). */
export function formatStatus(s: SyncServiceStatus): string {
  const ix = s.index;
  const lines = [
    `mirror ${s.state} at height ${s.height} ${s.hash}`,
    `lag ${s.lagBlocks} block${s.lagBlocks === 1 ? '' : 's'}, ${s.lagSeconds} s`,
    `rows written ${s.rowsWritten}, errors ${s.errors}`,
  ];
  if (s.lastError !== undefined) lines.push(`last error: ${s.lastError}`);
  lines.push(
    `index ${ix.state}: ${ix.embedder} (dimension ${ix.dimension})`,
    `  embedded through ${ix.throughHeight}/${ix.throughIndex}, text through ${ix.textThroughHeight}/${ix.textThroughIndex}`,
    `  ${ix.embedded} embedded, errors ${ix.errors}`,
    `  HNSW index: ${ix.vectorIndex === 'none' ? 'none yet (search scans exactly)' : ix.vectorIndex}` +
      (ix.vectorIndexBuilding === undefined ? '' : `, building ${ix.vectorIndexBuilding} in the background`),
  );
  if (ix.lastError !== undefined) lines.push(`  last error: ${ix.lastError}`);
  const m = s.maintenance;
  if (m.serverAutovacuum === true) lines.push("maintenance: the server's autovacuum");
  else {
    const why = m.serverAutovacuum === false ? ' (autovacuum is off on the server)' : '';
    lines.push(
      `maintenance${why}: ${m.analyzed} tables analyzed, ${m.vacuumed} vacuumed` +
        // PGlite's (a real Postgres checkpoints by itself): none is none to speak of
        (m.checkpoints > 0 ? `, ${m.checkpoints} checkpoint${m.checkpoints === 1 ? '' : 's'}` : '') +
        ` in ${m.rounds} rounds, ${m.failed} failed`,
    );
  }
  if (m.lastError !== undefined) lines.push(`  last error: ${m.lastError}`);
  return lines.join('\n');
}

function formatCheck(r: CheckReport): string {
  const summary =
    `${r.blocksChecked} blocks, ${r.transactionsChecked} transactions checked ` +
    `(mirror height ${r.mirrorHeight}, chain height ${r.chainHeight}); ` +
    (r.stateChecked
      ? 'state rows compared'
      : r.mirrorHeight < r.chainHeight
        ? 'state rows not compared (the mirror is behind the head)'
        : 'state rows not compared (the chain or the mirror moved on while they were read; run it again)');
  if (r.ok) return `OK: the mirror matches the chain. ${summary}`;
  const d = r.difference;
  const where = d === undefined ? '' : d.height < 0 ? ' in the state tables' : ` at height ${d.height}`;
  const what =
    d === undefined ? 'a difference' : `${d.what}${where}: expected ${d.expected}, mirror has ${d.actual}`;
  return `FAILED: ${what}\n${summary}`;
}

export function registerSearch(program: Command, setExit: (code: number) => void): void {
  program
    .command('search')
    .description("find commissions by text and meaning in a node's Postgres/pgvector mirror")
    .argument(
      '[text]',
      'free text, a commission id or an order id; empty: the newest matching the filters',
      '',
    )
    .option('--k <n>', 'hits wanted (1-100, default 10)')
    .option('--merchant <key>', 'merchant public key or registered name')
    .option('--affiliate <key>', 'affiliate public key or registered name')
    .option(
      '--status <status>',
      'pending, approved, voided or reversed (repeat, or separate with commas)',
      collect,
      [],
    )
    .option('--currency <code>', 'ISO 4217 code')
    .option('--from <date>', 'recorded at or after: Unix ms or ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z)')
    .option('--to <date>', 'recorded before: Unix ms or ISO 8601')
    .option('--min-amount <n>', 'smallest amount in minor units')
    .option('--max-amount <n>', 'largest amount in minor units')
    .addOption(nodeOption())
    .addOption(jsonOption())
    .action(async (text: string, opts: SearchOpts) => {
      const result = await api<SearchResult>(opts.node, searchPath(text.trim(), opts));
      output(opts.json === true).out(formatHits(result, text.trim()), result);
    });

  const sync = program.command('sync').description("a node's Postgres/pgvector mirror of the chain");

  sync
    .command('status')
    .description("the mirror's cursor, lag, state, rows written and embedding index")
    .addOption(nodeOption())
    .addOption(jsonOption())
    .action(async (opts: { node: string; json?: boolean }) => {
      const status = await api<SyncServiceStatus>(opts.node, 'v1/sync/status');
      output(opts.json === true).out(formatStatus(status), status);
    });

  sync
    .command('check')
    .description("compare the mirror with the node's chain: block hashes, transaction rows, state rows")
    .addOption(nodeOption())
    .option('--timeout <ms>', 'how long to wait for the report (it reads the whole mirror)', '600000')
    .option(
      '--require-state',
      'fail (exit 1) unless the state rows were compared too: they are only when the mirror is at the head throughout',
    )
    .addOption(jsonOption())
    .action(async (opts: { node: string; timeout: string; requireState?: boolean; json?: boolean }) => {
      const timeoutMs = intInRange(opts.timeout, '--timeout', 1, MAX_TIMER_MS);
      const report = await api<CheckReport>(opts.node, 'v1/sync/check', { timeoutMs });
      // a node under steady load has its mirror a group commit behind at almost every instant
      const incomplete = report.ok && !report.stateChecked && opts.requireState === true;
      const human =
        formatCheck(report) +
        (incomplete
          ? '\nFAILED: --require-state, and the state rows were not compared (run it on a quiet or stopped node)'
          : '');
      // like verify: a failed check goes to stderr, and the exit status is 1
      if ((!report.ok || incomplete) && opts.json !== true) process.stderr.write(human + '\n');
      else output(opts.json === true).out(human, report);
      if (!report.ok || incomplete) setExit(1);
    });
}
