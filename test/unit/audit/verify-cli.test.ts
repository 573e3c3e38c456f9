import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/cli/main.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** Run the CLI, returning its exit status and what it wrote to stderr. */
async function run(args: string[]): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const status = await main(['node', 'bitnexus', ...args]);
  return { status, stderr };
}

describe('bitnexus verify --threads', () => {
  it('refuses a negative count or one above 64, before looking at the data directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-verify-cli-'));
    try {
      for (const n of ['-1', '65', '100000']) {
        const r = await run(['verify', '--data-dir', dir, '--threads', n]);
        expect(r.status, n).toBe(2);
        expect(r.stderr, n).toContain(`error INVALID_ARGUMENT: --threads must be between 0 and 64, got ${n}`);
      }
      expect((await run(['verify', '--data-dir', dir, '--threads', 'two'])).stderr).toContain(
        'error INVALID_ARGUMENT: --threads must be an integer',
      );
      // in range: on to the data directory (here not one)
      for (const n of ['0', '64']) {
        const r = await run(['verify', '--data-dir', dir, '--threads', n]);
        expect(r.status, n).toBe(2);
        expect(r.stderr, n).toContain('error NOT_A_DATA_DIR');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
