import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SyncServiceStatus } from '../sync/index.js';

/**
 * The `code` label of `bitnexus_http_refused_total`: a request Node's HTTP
 * parser refused before any route, by the error code it was answered with
 * (docs/ERRORS.md), or `UNANSWERED` when no answer could be written (the
 * connection already destroyed or no longer writable, or an answer under way
 * on it). A fixed set: every value is there, at 0, from the start.
 */
export const HTTP_REFUSAL_CODES = [
  'REQUEST_TIMEOUT',
  'HEADERS_TOO_LARGE',
  'BAD_HTTP_REQUEST',
  'UNANSWERED',
] as const;
export type HttpRefusalCode = (typeof HTTP_REFUSAL_CODES)[number];

/**
 * What the node and the API report. Injected; `null` means metrics are off.
 * prom-client stays behind this interface (createPromMetrics), so the rest of
 * the code never touches a metrics library.
 */
export interface NodeMetrics {
  setTerm(term: number): void;
  setCommitIndex(index: number): void;
  setAppliedIndex(index: number): void;
  setHeight(height: number): void;
  setIsLeader(isLeader: boolean): void;
  /** blocks proposed by this node as leader */
  incProposals(n?: number): void;
  observeBlockTxs(n: number): void;
  /** submit → receipt, measured by the node for every waiting submitter (HTTP or P2P) */
  observeCommitLatency(seconds: number): void;
  observeFsync(seconds: number): void;
  setPeers(n: number): void;
  setMempool(n: number): void;
  /** one finished HTTP request; `route` is the route pattern (`/v1/blocks/:height`), never the raw URL */
  observeHttpRequest(method: string, route: string, status: number, seconds: number): void;
  /** one request Node's HTTP parser refused before any route (HTTP_REFUSAL_CODES) */
  incHttpRefused(code: HttpRefusalCode): void;
  /** +1 when an SSE client connects, −1 when it goes */
  addSseClients(delta: number): void;
  /**
   * The Postgres mirror's latest status (docs/SYNC.md), as the mirror thread
   * reports it (every 500 ms and after each batch); undefined when the node
   * runs without one or it has gone (its series are then removed).
   */
  setMirror(status: SyncServiceStatus | undefined): void;
  /** the Prometheus text exposition of everything above and the process metrics */
  scrape(): Promise<{ contentType: string; text: string }>;
}

export interface PromMetricsOptions {
  /** constant labels on every series, e.g. `{ node: '<node id prefix>' }` */
  labels?: Record<string, string>;
  /** process metrics (CPU, memory, event loop lag, GC); default true */
  processMetrics?: boolean;
  prefix?: string;
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const TX_BUCKETS = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 4096];

/**
 * prom-client implementation with its own Registry (never the global one, so
 * several nodes can run in one process in tests).
 */
export function createPromMetrics(opts: PromMetricsOptions = {}): {
  metrics: NodeMetrics;
  registry: Registry;
} {
  const registry = new Registry();
  if (opts.labels !== undefined) registry.setDefaultLabels(opts.labels);
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const p = opts.prefix ?? 'bitnexus_';
  const registers = [registry];

  const gauge = (name: string, help: string) => new Gauge({ name: p + name, help, registers });
  const term = gauge('raft_term', 'Current Raft term');
  const commitIndex = gauge('raft_commit_index', 'Highest Raft log index known committed');
  const appliedIndex = gauge('raft_applied_index', 'Highest Raft log index applied to the ledger');
  const isLeader = gauge('raft_is_leader', '1 when this node is the Raft leader');
  const height = gauge('chain_height', 'Height of the last applied block');
  const peers = gauge('peers_connected', 'Connected cluster peers');
  const mempool = gauge('mempool_transactions', 'Transactions waiting in the mempool');
  const sseClients = gauge('sse_clients', 'Open /v1/events streams');
  const proposals = new Counter({
    name: p + 'blocks_proposed_total',
    help: 'Blocks proposed as leader',
    registers,
  });
  const blockTxs = new Histogram({
    name: p + 'block_transactions',
    help: 'Transactions per committed block',
    buckets: TX_BUCKETS,
    registers,
  });
  const commitLatency = new Histogram({
    name: p + 'commit_latency_seconds',
    help: 'Time from transaction submission to its receipt',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const fsync = new Histogram({
    name: p + 'storage_fsync_seconds',
    help: 'Duration of synced storage writes (Raft log and hard state)',
    buckets: FSYNC_BUCKETS,
    registers,
  });
  const httpRequests = new Counter({
    name: p + 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: p + 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const httpRefused = new Counter({
    name: p + 'http_refused_total',
    help: 'HTTP requests refused by the HTTP parser before any route, by error code (UNANSWERED: no answer could be written)',
    labelNames: ['code'] as const,
    registers,
  });
  for (const code of HTTP_REFUSAL_CODES) httpRefused.inc({ code }, 0);

  const setMirror = mirrorMetrics(p, registry);

  const metrics: NodeMetrics = {
    setTerm: (v) => term.set(v),
    setCommitIndex: (v) => commitIndex.set(v),
    setAppliedIndex: (v) => appliedIndex.set(v),
    setHeight: (v) => height.set(v),
    setIsLeader: (v) => isLeader.set(v ? 1 : 0),
    incProposals: (n = 1) => proposals.inc(n),
    observeBlockTxs: (n) => blockTxs.observe(n),
    observeCommitLatency: (s) => commitLatency.observe(s),
    observeFsync: (s) => fsync.observe(s),
    setPeers: (n) => peers.set(n),
    setMempool: (n) => mempool.set(n),
    observeHttpRequest: (method, route, status, seconds) => {
      const labels = { method, route, status: String(status) };
      httpRequests.inc(labels);
      httpDuration.observe(labels, seconds);
    },
    incHttpRefused: (code) => httpRefused.inc({ code }),
    addSseClients: (delta) => sseClients.inc(delta),
    setMirror,
    scrape: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
  };
  return { metrics, registry };
}

const MIRROR_STATES = ['ok', 'degraded', 'stopped'] as const;

/**
 * The mirror's series, registered when the first status arrives and removed
 * when the mirror goes (a node without a mirror has none). The status carries
 * totals since the mirror thread started; the counters follow them by
 * increments.
 */
function mirrorMetrics(p: string, registry: Registry): (status: SyncServiceStatus | undefined) => void {
  const registers = [registry];
  /** names of the series registered, to remove them when the mirror goes */
  let names: string[] = [];
  const create = () => {
    const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) => {
      names.push(p + name);
      return new Gauge<L>({ name: p + name, help, labelNames, registers });
    };
    const counter = (name: string, help: string) => {
      names.push(p + name);
      return new Counter({ name: p + name, help, registers });
    };
    return {
      state: gauge('mirror_state', '1 for the state the Postgres mirror is in (ok, degraded, stopped)', [
        'state',
      ] as const),
      height: gauge('mirror_height', 'Height of the last block mirrored into Postgres'),
      lagBlocks: gauge('mirror_lag_blocks', 'Committed blocks not yet mirrored into Postgres'),
      lagSeconds: gauge(
        'mirror_lag_seconds',
        'Age of the oldest committed block not yet mirrored into Postgres (0 when caught up)',
      ),
      rows: counter('mirror_rows_written_total', 'Rows the mirror inserted or updated in Postgres'),
      errors: counter('mirror_errors_total', 'Failed attempts of the mirror to write to Postgres'),
      indexThrough: gauge(
        'mirror_index_through_height',
        'Block of the last commission in each search index (text: full-text, vectors: current embedder)',
        ['index'] as const,
      ),
      embedded: counter('mirror_embedded_total', 'Commissions embedded by the search indexer'),
      indexErrors: counter('mirror_index_errors_total', 'Failed steps of the search indexer'),
      analyzed: counter(
        'mirror_tables_analyzed_total',
        "Tables of the mirror analyzed by the node's own maintenance (PGlite, or a Postgres with autovacuum off)",
      ),
      vacuumed: counter(
        'mirror_tables_vacuumed_total',
        "Tables of the mirror vacuumed by the node's own maintenance (PGlite, or a Postgres with autovacuum off)",
      ),
      checkpoints: counter(
        'mirror_checkpoints_total',
        "Checkpoints of a PGlite mirror by the node's own maintenance (PGlite has no checkpointer)",
      ),
      maintenanceErrors: counter(
        'mirror_maintenance_errors_total',
        'Failed maintenance rounds of the mirror',
      ),
      last: {
        rows: 0,
        errors: 0,
        embedded: 0,
        indexErrors: 0,
        analyzed: 0,
        vacuumed: 0,
        checkpoints: 0,
        maintenanceErrors: 0,
      },
    };
  };
  let m: ReturnType<typeof create> | undefined;
  const follow = (c: Counter, key: keyof NonNullable<typeof m>['last'], total: number) => {
    const last = m!.last;
    // a restarted mirror thread counts from 0 again
    const delta = total >= last[key] ? total - last[key] : total;
    if (delta > 0) c.inc(delta);
    last[key] = total;
  };
  return (s) => {
    if (!s) {
      for (const name of names) registry.removeSingleMetric(name);
      names = [];
      m = undefined;
      return;
    }
    m ??= create();
    for (const st of MIRROR_STATES) m.state.set({ state: st }, s.state === st ? 1 : 0);
    m.height.set(s.height);
    m.lagBlocks.set(s.lagBlocks);
    m.lagSeconds.set(s.lagSeconds);
    follow(m.rows, 'rows', s.rowsWritten);
    follow(m.errors, 'errors', s.errors);
    m.indexThrough.set({ index: 'text' }, s.index.textThroughHeight);
    m.indexThrough.set({ index: 'vectors' }, s.index.throughHeight);
    follow(m.embedded, 'embedded', s.index.embedded);
    follow(m.indexErrors, 'indexErrors', s.index.errors);
    follow(m.analyzed, 'analyzed', s.maintenance.analyzed);
    follow(m.vacuumed, 'vacuumed', s.maintenance.vacuumed);
    follow(m.checkpoints, 'checkpoints', s.maintenance.checkpoints);
    follow(m.maintenanceErrors, 'maintenanceErrors', s.maintenance.failed);
  };
}
