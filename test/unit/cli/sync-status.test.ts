import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../../src/cli/commands/search.js';
import type { SyncServiceStatus } from '../../../src/sync/index.js';

const status: SyncServiceStatus = {
  state: 'ok',
  height: 12,
  hash: 'ab'.repeat(32),
  lagBlocks: 1,
  lagSeconds: 0.2,
  rowsWritten: 300,
  errors: 0,
  index: {
    state: 'ok',
    embedder: 'hash-v1:d384:n3-4',
    dimension: 384,
    throughHeight: 12,
    throughIndex: 0,
    textThroughHeight: 12,
    textThroughIndex: 0,
    embedded: 40,
    vectorIndex: 'vector',
    vectorIndexBuilding: 'halfvec',
    errors: 0,
  },
  maintenance: {
    rounds: 30,
    analyzed: 7,
    vacuumed: 2,
    checkpoints: 3,
    failed: 1,
    lastError: 'PGlite is closed',
  },
};

describe('bitnexus sync status (readable output)', () => {
  it('shows the mirror’s own maintenance, and its last error', () => {
    const text = formatStatus(status);
    expect(text).toContain(
      'maintenance: 7 tables analyzed, 2 vacuumed, 3 checkpoints in 30 rounds, 1 failed',
    );
    expect(text).toContain('  last error: PGlite is closed');
    expect(formatStatus({ ...status, maintenance: { ...status.maintenance, checkpoints: 1 } })).toContain(
      '2 vacuumed, 1 checkpoint in 30 rounds',
    );
  });

  it('says whether a real Postgres’ autovacuum looks after the mirror', () => {
    const off = formatStatus({
      ...status,
      maintenance: {
        rounds: 5,
        analyzed: 3,
        vacuumed: 1,
        checkpoints: 0,
        failed: 0,
        serverAutovacuum: false,
      },
    });
    expect(off).toContain(
      'maintenance (autovacuum is off on the server): 3 tables analyzed, 1 vacuumed in 5 rounds, 0 failed',
    );
    const on = formatStatus({
      ...status,
      maintenance: { rounds: 5, analyzed: 0, vacuumed: 0, checkpoints: 0, failed: 0, serverAutovacuum: true },
    });
    expect(on).toContain('mirror ok at height 12');
    expect(on).toMatch(/^maintenance: the server's autovacuum$/m);
    expect(on).not.toContain('tables analyzed');
  });

  it('names the HNSW index in use, and the one being built', () => {
    expect(formatStatus(status)).toContain('  HNSW index: vector, building halfvec in the background');
    const { vectorIndexBuilding: _, ...built } = status.index;
    expect(formatStatus({ ...status, index: { ...built, vectorIndex: 'halfvec' } })).toMatch(
      /^ {2}HNSW index: halfvec$/m,
    );
    expect(formatStatus({ ...status, index: { ...built, vectorIndex: 'none' } })).toContain(
      'HNSW index: none yet (search scans exactly)',
    );
  });
});
