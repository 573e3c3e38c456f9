import { SyncError } from './errors.js';
import {
  checkSchemaName,
  MAINTENANCE_TIMEOUT_MS,
  searchPathFor,
  type SqlExecutor,
  type SqlTarget,
} from './target.js';

/**
 * Versioned schema migrations, applied at start. Each runs in its own
 * transaction together with its row in `schema_migrations`, under an
 * advisory lock, so two processes starting at once apply it once and a crash
 * leaves either all of a migration or none of it. Never edit a migration that
 * has shipped: add the next version. docs/SYNC.md describes the schema.
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

const ZERO_HASH = '0'.repeat(64);

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'mirror tables, cursor, full-text and vector search',
    statements: [
      // pgvector may already live elsewhere (Supabase: `extensions`); then this is a no-op
      `CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public`,
      `CREATE TABLE sync_cursor (
         id boolean PRIMARY KEY DEFAULT true CHECK (id),
         height bigint NOT NULL,
         hash text NOT NULL,
         chain_id text,
         block_time timestamptz,
         updated_at timestamptz NOT NULL DEFAULT now()
       )`,
      // height -1 with the genesis prevHash: the first block to mirror is genesis
      `INSERT INTO sync_cursor (id, height, hash) VALUES (true, -1, '${ZERO_HASH}')`,
      `CREATE TABLE blocks (
         height bigint PRIMARY KEY,
         hash text NOT NULL UNIQUE,
         prev_hash text NOT NULL,
         chain_id text NOT NULL,
         block_time timestamptz NOT NULL,
         term bigint NOT NULL,
         proposer text NOT NULL,
         tx_count integer NOT NULL,
         tx_root text NOT NULL,
         ledger_root text NOT NULL,
         ledger_size bigint NOT NULL,
         signature text NOT NULL,
         config jsonb,
         mirrored_at timestamptz NOT NULL DEFAULT now()
       )`,
      // one row per transaction of a block, with its receipt (the chain keeps both per (height, index))
      `CREATE TABLE transactions (
         height bigint NOT NULL,
         idx integer NOT NULL,
         tx_id text NOT NULL,
         kind text NOT NULL,
         signer text NOT NULL,
         nonce text NOT NULL,
         tx_time timestamptz NOT NULL,
         payload jsonb NOT NULL,
         signature text NOT NULL,
         code text NOT NULL,
         commission_id text,
         existing text,
         PRIMARY KEY (height, idx)
       )`,
      `CREATE INDEX transactions_tx_id ON transactions (tx_id)`,
      `CREATE VIEW receipts AS
         SELECT height, idx, tx_id, code, commission_id, existing FROM transactions`,
      `CREATE TABLE participants (
         key text PRIMARY KEY,
         role text NOT NULL,
         name text NOT NULL,
         since_height bigint NOT NULL,
         tx_id text
       )`,
      `CREATE TABLE commissions (
         id text PRIMARY KEY,
         merchant text NOT NULL,
         merchant_name text NOT NULL,
         affiliate text NOT NULL,
         affiliate_name text NOT NULL,
         currency text NOT NULL,
         amount numeric(20, 0) NOT NULL,
         approved numeric(20, 0) NOT NULL,
         reversed numeric(20, 0) NOT NULL,
         status text NOT NULL,
         order_id text NOT NULL,
         description text NOT NULL,
         metadata jsonb NOT NULL,
         metadata_text text NOT NULL,
         recorded_height bigint NOT NULL,
         recorded_index integer NOT NULL,
         recorded_at timestamptz NOT NULL,
         updated_height bigint NOT NULL,
         updated_at timestamptz NOT NULL
       ) WITH (fillfactor = 85)`,
      `CREATE UNIQUE INDEX commissions_recorded ON commissions (recorded_height, recorded_index)`,
      `CREATE INDEX commissions_merchant ON commissions (merchant, recorded_at)`,
      `CREATE INDEX commissions_affiliate ON commissions (affiliate, recorded_at)`,
      `CREATE INDEX commissions_order_id ON commissions (order_id)`,
      // the search index is derived data, kept by the background indexer (see indexer.ts), not by the sink
      `CREATE TABLE commission_text (
         commission_id text PRIMARY KEY,
         search_tsv tsvector NOT NULL
       )`,
      `CREATE INDEX commission_text_search_tsv ON commission_text USING gin (search_tsv)`,
      `CREATE TABLE search_progress (
         job text PRIMARY KEY,
         through_height bigint NOT NULL,
         through_index integer NOT NULL
       )`,
      `INSERT INTO search_progress (job, through_height, through_index) VALUES ('text', -1, -1)`,
      `CREATE TABLE commission_embeddings (
         commission_id text PRIMARY KEY,
         embedder text NOT NULL,
         -- no fixed size: embedders of any dimension share the column (each has its own partial
         -- index). Full precision; Postgres indexes it as halfvec, PGlite as vector (target.ts VectorIndexType).
         embedding vector NOT NULL,
         embedded_at timestamptz NOT NULL DEFAULT now()
       )`,
      `CREATE TABLE embedders (
         id text PRIMARY KEY,
         dimension integer NOT NULL,
         index_name text NOT NULL,
         through_height bigint NOT NULL DEFAULT -1,
         through_index integer NOT NULL DEFAULT -1,
         activated_at timestamptz NOT NULL DEFAULT now()
       )`,
      `CREATE TABLE pair_balances (
         merchant text NOT NULL,
         affiliate text NOT NULL,
         currency text NOT NULL,
         pending numeric(20, 0) NOT NULL,
         approved numeric(20, 0) NOT NULL,
         clawed_back numeric(20, 0) NOT NULL,
         paid numeric(20, 0) NOT NULL,
         payable numeric(20, 0) GENERATED ALWAYS AS (approved - clawed_back - paid) STORED,
         updated_height bigint NOT NULL,
         PRIMARY KEY (merchant, affiliate, currency)
       )`,
      `CREATE INDEX pair_balances_affiliate ON pair_balances (affiliate, currency)`,
      `CREATE TABLE account_balances (
         side text NOT NULL CHECK (side IN ('merchant', 'affiliate')),
         participant text NOT NULL,
         currency text NOT NULL,
         pending numeric(20, 0) NOT NULL,
         balance numeric(20, 0) NOT NULL,
         paid numeric(20, 0) NOT NULL,
         updated_height bigint NOT NULL,
         PRIMARY KEY (side, participant, currency)
       )`,
      `CREATE TABLE currency_totals (
         currency text PRIMARY KEY,
         merchant_pending numeric(20, 0) NOT NULL,
         affiliate_pending numeric(20, 0) NOT NULL,
         merchant_liabilities numeric(20, 0) NOT NULL,
         affiliate_balances numeric(20, 0) NOT NULL,
         merchant_paid numeric(20, 0) NOT NULL,
         affiliate_paid numeric(20, 0) NOT NULL,
         updated_height bigint NOT NULL
       )`,
    ],
  },
  {
    version: 2,
    name: 'full-text index with a small pending list',
    statements: [
      // New GIN entries wait in an unsorted pending list that every search scans in full until
      // (auto)vacuum or an insert past gin_pending_list_limit (4 MB by default) merges it; PGlite
      // never autovacuums, so searches scanned up to 4 MB per query. 64 kB keeps that scan to a few
      // pages and still merges in bulk (fastupdate = off would insert ~5x slower).
      `ALTER INDEX commission_text_search_tsv SET (gin_pending_list_limit = 64)`,
      `SELECT gin_clean_pending_list('commission_text_search_tsv'::regclass)`,
    ],
  },
  {
    version: 3,
    name: 'room for HOT updates of the balance rows',
    statements: [
      // Every batch updates thousands of balance rows (each changed pair, account and total once).
      // None of the updated columns is indexed, so with free space on the page Postgres updates in
      // place of a new index entry (HOT); full pages (the default fillfactor 100) force an insert
      // into every index per update. Applies to pages written from now on.
      `ALTER TABLE pair_balances SET (fillfactor = 70)`,
      `ALTER TABLE account_balances SET (fillfactor = 70)`,
      `ALTER TABLE currency_totals SET (fillfactor = 50)`,
    ],
  },
  {
    version: 4,
    name: "a commission's fixed filter columns beside its full-text entry",
    statements: [
      // Search under a filter tested it on each full-text match's commission row (an index lookup
      // and a heap page per match: a common word with a currency filter read ~26,000 buffers).
      // These fields never change once a commission is recorded, so the indexer copies them beside
      // the tsvector and search tests them there; only status, which changes, needs the commission.
      `ALTER TABLE commission_text
         ADD COLUMN merchant text, ADD COLUMN affiliate text, ADD COLUMN currency text,
         ADD COLUMN amount numeric(20, 0), ADD COLUMN recorded_at timestamptz`,
      `UPDATE commission_text t
         SET merchant = c.merchant, affiliate = c.affiliate, currency = c.currency, amount = c.amount,
             recorded_at = c.recorded_at
         FROM commissions c WHERE c.id = t.commission_id`,
      `ALTER TABLE commission_text
         ALTER COLUMN merchant SET NOT NULL, ALTER COLUMN affiliate SET NOT NULL,
         ALTER COLUMN currency SET NOT NULL, ALTER COLUMN amount SET NOT NULL,
         ALTER COLUMN recorded_at SET NOT NULL`,
    ],
  },
  {
    version: 5,
    name: 'status in the merchant and affiliate indexes',
    statements: [
      // Search counts a merchant's or affiliate's commissions under the other filters (the
      // candidates it scores exactly); with status only in the table, that read a heap page per
      // commission of the merchant to test it (4,300 of 8,300 buffers of a merchant+status search
      // at 100,000 commissions; 5,100 with it in the index). The price: a status change is no
      // longer a HOT update, so it adds an entry to each of the table's indexes (vacuum removes
      // the old ones; on PGlite the node's maintenance runs it).
      `DROP INDEX commissions_merchant`,
      `CREATE INDEX commissions_merchant ON commissions (merchant, status, recorded_at)`,
      `DROP INDEX commissions_affiliate`,
      `CREATE INDEX commissions_affiliate ON commissions (affiliate, status, recorded_at)`,
    ],
  },
  {
    version: 6,
    name: 'merchant and affiliate indexes cover the candidates of a search',
    statements: [
      // A search under a merchant or affiliate filter lists that party's commissions first (its
      // candidates, scored exactly when they are few): their ids, tested against the status,
      // time, currency and amount filters. From an index that holds the id and those columns
      // that is an index-only scan; before, it read one heap page per candidate (1,013 of 5,179 buffers and
      // 8.7 of 31 ms for a merchant with 1,022 approved commissions on PGlite; 42 buffers and
      // 2.8 ms with these). The price is size: with INCLUDE columns btree deduplication is off,
      // ~21 MB per index at 100,000 commissions instead of 2-6 MB. None of these columns changes
      // after insert, so updates that were HOT stay HOT.
      `DROP INDEX commissions_merchant`,
      `CREATE INDEX commissions_merchant ON commissions (merchant, status, recorded_at) INCLUDE (id, currency, amount)`,
      `DROP INDEX commissions_affiliate`,
      `CREATE INDEX commissions_affiliate ON commissions (affiliate, status, recorded_at) INCLUDE (id, currency, amount)`,
    ],
  },
  {
    version: 7,
    name: 'amounts, balances and totals as unbounded numeric',
    statements: [
      // The ledger's balances and totals are sums without bound (each amount < 10^18, any number
      // of them); numeric(20, 0) overflowed at 10^20 (101 commissions of 10^18 - 1) and the batch
      // was refused for good. Dropping a numeric's precision neither rewrites the table nor
      // rebuilds its indexes; only pair_balances is rewritten, because its generated column
      // payable must be dropped to change the columns it is computed from (it comes back last).
      `ALTER TABLE pair_balances DROP COLUMN payable,
         ALTER COLUMN pending TYPE numeric, ALTER COLUMN approved TYPE numeric,
         ALTER COLUMN clawed_back TYPE numeric, ALTER COLUMN paid TYPE numeric,
         ADD COLUMN payable numeric GENERATED ALWAYS AS (approved - clawed_back - paid) STORED`,
      `ALTER TABLE account_balances
         ALTER COLUMN pending TYPE numeric, ALTER COLUMN balance TYPE numeric, ALTER COLUMN paid TYPE numeric`,
      `ALTER TABLE currency_totals
         ALTER COLUMN merchant_pending TYPE numeric, ALTER COLUMN affiliate_pending TYPE numeric,
         ALTER COLUMN merchant_liabilities TYPE numeric, ALTER COLUMN affiliate_balances TYPE numeric,
         ALTER COLUMN merchant_paid TYPE numeric, ALTER COLUMN affiliate_paid TYPE numeric`,
      // one commission's amounts are below 10^18 and fitted; plain numeric too, so that no amount
      // column of the mirror has a bound the ledger does not have
      `ALTER TABLE commissions
         ALTER COLUMN amount TYPE numeric, ALTER COLUMN approved TYPE numeric, ALTER COLUMN reversed TYPE numeric`,
      `ALTER TABLE commission_text ALTER COLUMN amount TYPE numeric`,
    ],
  },
  {
    version: 8,
    name: "U+2400 escaped in the mirror's texts",
    statements: [
      // From this version every text the mirror writes maps U+0000 to U+2400 U+2400 and U+2400 to
      // U+2400 U+2401 (text.ts), since Postgres stores no NUL. Rows written before held U+0000
      // nowhere (it could not be written) and U+2400 as itself: escaped here, so that every U+2400
      // in the mirror starts an escape. Each statement touches only rows that hold one.
      `UPDATE participants SET name = replace(name, chr(9216), chr(9216) || chr(9217))
         WHERE strpos(name, chr(9216)) > 0`,
      `UPDATE commissions SET
         merchant_name = replace(merchant_name, chr(9216), chr(9216) || chr(9217)),
         affiliate_name = replace(affiliate_name, chr(9216), chr(9216) || chr(9217)),
         order_id = replace(order_id, chr(9216), chr(9216) || chr(9217)),
         description = replace(description, chr(9216), chr(9216) || chr(9217)),
         metadata_text = replace(metadata_text, chr(9216), chr(9216) || chr(9217)),
         metadata = replace(metadata::text, chr(9216), chr(9216) || chr(9217))::jsonb
       WHERE strpos(merchant_name || affiliate_name || order_id || description || metadata_text, chr(9216)) > 0`,
      // jsonb's text form writes U+2400 as itself, and only inside strings (keys or values)
      `UPDATE transactions SET payload = replace(payload::text, chr(9216), chr(9216) || chr(9217))::jsonb
         WHERE strpos(payload::text, chr(9216)) > 0`,
      `UPDATE blocks SET config = replace(config::text, chr(9216), chr(9216) || chr(9217))::jsonb
         WHERE strpos(config::text, chr(9216)) > 0`,
    ],
  },
  {
    version: 9,
    name: 'no zero-length embeddings',
    statements: [
      // A text without a word the embedder knows (only stop words or punctuation) embeds to the
      // zero vector, whose cosine distance to anything is NaN: it ranked first or last at random
      // and broke the API's JSON. The indexer no longer stores one; those it stored go.
      `DELETE FROM commission_embeddings WHERE vector_norm(embedding) = 0`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface MigrationReport {
  /** versions applied by this call (empty when the schema was current) */
  applied: number[];
  version: number;
}

/** Serialises migrators of one schema across processes and connections. */
async function lock(tx: SqlExecutor, schema: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`bitnexus-sync-migrate:${schema}`]);
  await tx.query(`SET LOCAL search_path TO ${searchPathFor(schema)}`);
}

export async function migrate(
  target: SqlTarget,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationReport> {
  const schema = checkSchemaName(target.schema);
  await target.transaction(async (tx) => {
    await lock(tx, schema);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await tx.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const applied: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const done = await target.transaction(
      async (tx) => {
        await lock(tx, schema);
        const { rows } = await tx.query<{ version: number }>(
          `SELECT max(version) AS version FROM ${schema}.schema_migrations`,
        );
        const current = rows[0]?.version ?? 0;
        if (current > known) {
          throw new SyncError(
            'SCHEMA_TOO_NEW',
            `schema ${schema} is at version ${current}, this code knows ${known}`,
          );
        }
        const { rows: have } = await tx.query(
          `SELECT 1 FROM ${schema}.schema_migrations WHERE version = $1`,
          [m.version],
        );
        if (have.length > 0) return false;
        for (const sql of m.statements) await tx.query(sql);
        await tx.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`, [
          m.version,
          m.name,
        ]);
        return true;
      },
      // a migration that rebuilds an index takes minutes on a large mirror
      { timeoutMs: MAINTENANCE_TIMEOUT_MS },
    );
    if (done) applied.push(m.version);
  }
  return { applied, version: known };
}
