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
};

describe('bitnexus sync status (readable output)', () => {
  it('shows a PGlite mirror’s maintenance, and its last error', () => {
    const text = formatStatus({
      ...status,
      maintenance: { rounds: 30, analyzed: 7, vacuumed: 2, failed: 1, lastError: 'PGlite is closed' },
    });
    expect(text).toContain('maintenance (PGlite): 7 tables analyzed, 2 vacuumed in 30 rounds, 1 failed');
    expect(text).toContain('  last error: PGlite is closed');
  });

  it('has no maintenance line for a real Postgres (autovacuum runs there)', () => {
    const text = formatStatus(status);
    expect(text).toContain('mirror ok at height 12');
    expect(text).not.toContain('maintenance');
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
