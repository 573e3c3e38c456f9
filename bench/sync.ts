/**
 * npm run bench:sync — the Postgres + pgvector mirror (docs/SYNC.md). For each
 * target (the machine's Postgres and PGlite) it prints:
 *  1. backfill rate: a sink attached late mirrors the whole chain (decode,
 *     re-execute, compare receipts, write rows) — target ≥ 20,000 tx/s into
 *     the real Postgres;
 *  2. rates of the background search indexer: full-text documents, and
 *     embeddings with the HNSW index built over the backlog in one go;
 *  3. recall@10 of the HNSW index against an exact scan (enable_indexscan =
 *     off) over N embedded commissions — target ≥ 0.95;
 *  4. hybrid search latency p50/p95 (full-text + vector + fusion, a third of
 *     the queries with typos, a third with filters) — target p95 ≤ 20 ms.
 * Options: --n N commissions (default 100000), --pglite-n N (default: --n),
 * --block N transactions per block (default 2000), --queries N (default 200),
 * --targets postgres,pglite, --pg-url URL (an admin URL; a scratch database
 * is created and dropped), --m and --efc (HNSW build parameters, default 24, 100).
 * The sink's lag at a cluster's full commit rate needs the running node; it
 * is measured by the node's benchmark, not here.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { toHex } from '../src/codec/index.js';
import { generateKeyPair, type KeyPair } from '../src/crypto/index.js';
import {
  buildBlock,
  createGenesisBlock,
  decodeBlock,
  decodeTx,
  DEFAULT_PARAMS,
  signTransaction,
  type DecodedTx,
  type GenesisConfig,
  type PayloadByKind,
  type TxKind,
  type UnsignedTx,
} from '../src/ledger/index.js';
import { LedgerChain } from '../src/node/ledger-chain.js';
import { LevelStore } from '../src/storage/index.js';
import {
  ChainStoreSource,
  SearchIndexer,
  embedderIndexName,
  HashingEmbedder,
  PgliteTarget,
  PostgresSink,
  PostgresTarget,
  search,
  type SearchRequest,
  type SqlTarget,
} from '../src/sync/index.js';
import { vectorLiteral } from '../src/sync/indexer.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

const N = Number(arg('--n', '100000'));
const PGLITE_N = Number(arg('--pglite-n', String(N)));
const BLOCK = Number(arg('--block', '2000'));
const QUERIES = Number(arg('--queries', '200'));
const TARGETS = arg('--targets', 'postgres,pglite').split(',');
const HNSW_M = Number(arg('--m', '24'));
const HNSW_EFC = Number(arg('--efc', '100'));
const PG_URL = arg('--pg-url', process.env.BITNEXUS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Deterministic PRNG (mulberry32), so every run mirrors the same texts. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rnd = prng(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const W = {
  brand:
    'Nordwind Bella Alpen Lumen Terra Nova Vento Kobalt Sonne Polar Fjord Azur Atlas Orion Vega Borealis Cedar Maple Granite Coral'.split(
      ' ',
    ),
  trade: 'Outdoor Cucina Electronics Fashion Living Sports Garden Books Toys Beauty'.split(' '),
  blog: 'TravelBlog CookingCorner GadgetReviews TrailRunner HomeHacks StyleDiary KidsCorner FitLife GreenThumb PageTurner'.split(
    ' ',
  ),
  person: 'Maria Tom Aisha Lukas Chen Sofia Jonas Emma Noah Lea Omar Yuki'.split(' '),
  adj: 'waterproof lightweight foldable wireless stainless ergonomic organic vintage compact insulated rechargeable handmade reusable portable adjustable breathable durable premium classic modern'.split(
    ' ',
  ),
  material: 'leather cotton bamboo steel aluminium wool silicone oak ceramic glass carbon linen'.split(' '),
  product:
    'hiking boots tent backpack sleeping-bag espresso-machine pasta-maker headphones keyboard charger blender jacket sneakers yoga-mat cookbook lamp sofa drill kettle camera smartwatch bicycle helmet stroller perfume scarf'.split(
      ' ',
    ),
  audience: 'women men kids travellers students families beginners professionals'.split(' '),
  campaign: 'spring summer autumn winter black-friday newsletter launch clearance'.split(' '),
};

function description(): string {
  const product = pick(W.product).replace('-', ' ');
  return `${pick(W.adj)} ${pick(W.material)} ${product} for ${pick(W.audience)}`;
}

function typo(text: string): string {
  return text
    .split(' ')
    .map((w) => {
      if (w.length < 5 || rnd() < 0.4) return w;
      const i = 1 + Math.floor(rnd() * (w.length - 2));
      return rnd() < 0.5
        ? w.slice(0, i) + w.slice(i + 1)
        : w.slice(0, i) + w[i + 1]! + w[i]! + w.slice(i + 2);
    })
    .join(' ');
}

interface BenchChain {
  source: ChainStoreSource;
  chain: LedgerChain;
  txCount: number;
  commissions: number;
  merchantNames: string[];
}

async function buildChain(commissions: number): Promise<BenchChain> {
  const t0 = performance.now();
  const operator = generateKeyPair();
  const node = generateKeyPair();
  const start = Date.now() - 60_000;
  const config: GenesisConfig = {
    chainId: 'bitnexus-bench',
    createdAt: start,
    operators: [toHex(operator.publicKey)],
    members: [toHex(node.publicKey)],
    params: { ...DEFAULT_PARAMS, maxBlockTxs: Math.max(BLOCK, DEFAULT_PARAMS.maxBlockTxs) },
  };
  // the node's chain store: LevelDB in a temp directory
  const dir = await mkdtemp(join(tmpdir(), 'bitnexus-bench-chain-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const chain = await LedgerChain.open(await LevelStore.open(dir));
  cleanups.push(() => chain.close());
  await chain.commit(decodeBlock(createGenesisBlock(config, operator.secretKey)), { checkSignatures: false });
  let nonce = 0;
  let time = start;
  const mk = <K extends TxKind>(kind: K, signer: KeyPair, payload: PayloadByKind[K]): DecodedTx =>
    decodeTx(
      signTransaction(
        {
          v: 1,
          kind,
          chainId: config.chainId,
          signer: toHex(signer.publicKey),
          nonce: `s${++nonce}`,
          timestamp: time,
          payload,
        } as UnsignedTx,
        signer.secretKey,
      ),
    );
  const merchantNames = Array.from(
    { length: 40 },
    (_, i) => `${W.brand[i % W.brand.length]} ${W.trade[i % 10]}`,
  );
  const merchants = merchantNames.map(() => generateKeyPair());
  const affiliates = Array.from({ length: 300 }, () => generateKeyPair());
  const queue: DecodedTx[] = [
    ...merchants.map((m, i) =>
      mk('participant.register', operator, {
        participant: toHex(m.publicKey),
        role: 'merchant',
        name: merchantNames[i]!,
      }),
    ),
    ...affiliates.map((a, i) =>
      mk('participant.register', operator, {
        participant: toHex(a.publicKey),
        role: 'affiliate',
        name: `${W.blog[i % W.blog.length]} ${W.person[i % W.person.length]} ${i}`,
      }),
    ),
  ];
  const recorded: { id: string; m: KeyPair }[] = [];
  let made = 0;
  while (made < commissions) {
    const mi = Math.floor(rnd() * merchants.length);
    const m = merchants[mi]!;
    const t = mk('commission.record', m, {
      merchant: toHex(m.publicKey),
      affiliate: toHex(pick(affiliates).publicKey),
      amount: String(100 + Math.floor(rnd() * 50_000)),
      currency: rnd() < 0.7 ? 'EUR' : 'USD',
      orderId: `o-${made}`,
      description: description(),
      metadata: { campaign: pick(W.campaign), channel: rnd() < 0.5 ? 'blog' : 'newsletter' },
    });
    queue.push(t);
    recorded.push({ id: t.id, m });
    made++;
    if (made % 5 === 0) {
      const c = recorded[recorded.length - 3]!;
      queue.push(mk('commission.approve', c.m, { commission: c.id }));
    }
  }
  for (let off = 0; off < queue.length; off += BLOCK) {
    time += 100;
    const block = buildBlock(chain.state, queue.slice(off, off + BLOCK), {
      timestamp: time,
      term: 1,
      proposerSecretKey: node.secretKey,
    });
    await chain.commit(block, { checkSignatures: false });
  }
  console.log(
    `chain: ${fmt(queue.length)} transactions (${fmt(commissions)} commissions) in ${chain.height} blocks of ${BLOCK}, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return {
    source: new ChainStoreSource(chain.store, () => chain.height),
    chain,
    txCount: queue.length,
    commissions,
    merchantNames,
  };
}

const cleanups: (() => Promise<void>)[] = [];

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function benchTarget(name: string, target: SqlTarget, bc: BenchChain): Promise<void> {
  console.log(`\n— ${name} —`);
  // 1. backfill
  let t = performance.now();
  const sink = new PostgresSink({ source: bc.source, target, maxBatchTxs: 10_000, maxBatchBlocks: 50 });
  sink.start();
  await sink.waitForHeight(bc.chain.height, 3_600_000);
  await sink.stop();
  let s = (performance.now() - t) / 1000;
  console.log(
    `backfill: ${fmt(bc.txCount)} transactions, ${fmt(sink.status().rowsWritten)} rows in ${s.toFixed(1)} s = ${fmt(bc.txCount / s)} tx/s` +
      (name === 'postgres' ? ' (target ≥ 20,000 tx/s)' : ''),
  );

  // 2. the search indexer: full-text documents, then embeddings (HNSW built in one go after the backlog)
  const embedder = new HashingEmbedder();
  const indexer = new SearchIndexer({
    target,
    embedder,
    batchSize: 1000,
    textBatchSize: 5000,
    hnsw: { m: HNSW_M, efConstruction: HNSW_EFC },
    buildMemory: name === 'postgres' ? '1GB' : '512MB',
  });
  t = performance.now();
  let texts = 0;
  for (let n = 1; n > 0; texts += n) n = await indexer.textStep();
  s = (performance.now() - t) / 1000;
  console.log(`full-text index: ${fmt(texts)} commissions in ${s.toFixed(1)} s = ${fmt(texts / s)}/s`);
  t = performance.now();
  let embedded = 0;
  for (let n = 1; n > 0; embedded += n) n = await indexer.embedStep();
  s = (performance.now() - t) / 1000;
  console.log(
    `embeddings (${embedder.id}) + HNSW (m=${HNSW_M}, ef_construction=${HNSW_EFC}): ${fmt(embedded)} commissions in ${s.toFixed(1)} s = ${fmt(embedded / s)}/s`,
  );
  await target.query('ANALYZE');

  // 3. recall@10: HNSW vs exact
  const d = embedder.dimension;
  const lit = `'${embedder.id}'`;
  const knn = `SELECT commission_id, embedding::vector(${d}) <=> $1::vector(${d}) AS distance
               FROM commission_embeddings WHERE embedder = ${lit}
               ORDER BY embedding::vector(${d}) <=> $1::vector(${d}) LIMIT 10`;
  const queries = Array.from({ length: QUERIES }, () => (rnd() < 0.5 ? description() : typo(description())));
  const vectors = await embedder.embed(queries);
  const plan = await target.query<Record<string, string>>(
    `EXPLAIN ${knn.replaceAll('$1', `'${vectorLiteral(vectors[0]!)}'`)}`,
  );
  const planText = plan.rows.map((x) => Object.values(x)[0]).join(' / ');
  if (!planText.includes(embedderIndexName(embedder.id)))
    console.log(`  warning: k-NN plan does not use the HNSW index: ${planText}`);
  type Hit = { commission_id: string; distance: number };
  const exact: Hit[][] = [];
  const exactTimes: number[] = [];
  for (const v of vectors) {
    const te = performance.now();
    exact.push(
      await target.transaction(async (tx) => {
        await tx.query(`SET LOCAL enable_indexscan = off`);
        return (await tx.query<Hit>(knn, [vectorLiteral(v)])).rows;
      }),
    );
    exactTimes.push(performance.now() - te);
  }
  for (const ef of [40, 64, 100, 200]) {
    let byId = 0;
    let byDistance = 0;
    const times: number[] = [];
    for (const [i, v] of vectors.entries()) {
      const te = performance.now();
      const approx = await target.transaction(async (tx) => {
        await tx.query(`SELECT set_config('hnsw.ef_search', $1, true)`, [String(ef)]);
        return (await tx.query<Hit>(knn, [vectorLiteral(v)])).rows;
      });
      times.push(performance.now() - te);
      const truth = exact[i]!;
      const ids = new Set(truth.map((h) => h.commission_id));
      const kth = Number(truth[truth.length - 1]?.distance ?? 0);
      byId += approx.filter((h) => ids.has(h.commission_id)).length / Math.max(1, truth.length);
      // ann-benchmarks' rule: a neighbour as close as the exact 10th (within 0.1 %) is a correct answer
      byDistance +=
        approx.filter((h) => Number(h.distance) <= kth * 1.001 + 1e-9).length / Math.max(1, truth.length);
    }
    console.log(
      `recall@10 at hnsw.ef_search=${ef}: ${(byDistance / vectors.length).toFixed(3)} (by id ${(byId / vectors.length).toFixed(3)}), ` +
        `p50 ${quantile(times, 0.5).toFixed(1)} ms` +
        (ef === 40 ? ` — exact scan p50 ${quantile(exactTimes, 0.5).toFixed(1)} ms; target ≥ 0.95` : '') +
        (ef === 100 ? ' (what search uses)' : ''),
    );
  }

  // 4. hybrid search latency
  const reqs: SearchRequest[] = Array.from({ length: QUERIES }, (_, i) => {
    const q = i % 3 === 1 ? typo(description()) : description();
    if (i % 3 !== 2) return { q, k: 10 };
    return {
      q,
      k: 10,
      filters:
        i % 2 === 0
          ? { merchant: pick(bc.merchantNames), status: 'approved' as const }
          : { currency: 'USD', minAmount: '10000', maxAmount: '30000' },
    };
  });
  for (const r of reqs.slice(0, 10)) await search(target, embedder, r); // warm up
  const times: number[] = [];
  const byKind = new Map<string, number[]>();
  let short = 0;
  for (const [i, r] of reqs.entries()) {
    const t1 = performance.now();
    const hits = await search(target, embedder, r);
    const ms = performance.now() - t1;
    times.push(ms);
    const kind = ['plain', 'typo', i % 2 === 0 ? 'merchant+status' : 'currency+amount'][i % 3]!;
    byKind.set(kind, [...(byKind.get(kind) ?? []), ms]);
    if (hits.length < 10) short++;
  }
  const kinds = [...byKind]
    .map(([kind, ts]) => `${kind} ${quantile(ts, 0.5).toFixed(1)}/${quantile(ts, 0.95).toFixed(1)}`)
    .join(', ');
  console.log(
    `hybrid search over ${fmt(bc.commissions)} commissions: p50 ${quantile(times, 0.5).toFixed(1)} ms, p95 ${quantile(times, 0.95).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms (target p95 ≤ 20 ms; ${short} of ${reqs.length} returned < 10 hits)\n  p50/p95 by kind: ${kinds}`,
  );
}

console.log(
  `bench:sync — ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores, node ${process.version}`,
);
const chains = new Map<number, BenchChain>();
const chainOf = async (n: number) => {
  let c = chains.get(n);
  if (!c) chains.set(n, (c = await buildChain(n)));
  return c;
};

if (TARGETS.includes('postgres')) {
  const bc = await chainOf(N);
  const name = `bitnexus_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  const target = new PostgresTarget({ url: url.toString(), queryTimeoutMs: 3_600_000 });
  try {
    const v = await admin.query<{ version: string }>(`SELECT version()`);
    console.log(`\npostgres: ${v.rows[0]?.version.split(' on ')[0]}`);
    await benchTarget('postgres', target, bc);
  } finally {
    await target.close();
    if (process.argv.includes('--keep')) console.log(`kept database ${name}`);
    else await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

if (TARGETS.includes('pglite')) {
  const bc = await chainOf(PGLITE_N);
  const dir = await mkdtemp(join(tmpdir(), 'bitnexus-bench-pglite-'));
  const target = await PgliteTarget.open({ dataDir: join(dir, 'db') });
  try {
    await benchTarget('pglite', target, bc);
  } finally {
    await target.close();
    await rm(dir, { recursive: true, force: true });
  }
}

for (const c of cleanups.reverse()) await c();
