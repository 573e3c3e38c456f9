import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = process.env.BITNEXUS_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface ClusterOptions {
  /** fsync as a real server does (default false: tests that crash it need no durability from the disk) */
  fsync?: boolean;
  /** more server settings, e.g. { shared_buffers: '1GB' } (bench:sync --pg-cluster) */
  settings?: Record<string, string>;
}

/**
 * A Postgres cluster of its own (initdb in a temp directory, its own port),
 * for tests that stop or crash the database and for benchmarks that want a
 * server configured otherwise: the shared server is never touched. As root,
 * initdb and pg_ctl run as the `postgres` user.
 */
export class ThrowawayCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly opts: ClusterOptions,
  ) {}

  static async available(): Promise<boolean> {
    try {
      await stat(join(BIN, 'initdb'));
      return true;
    } catch {
      return false;
    }
  }

  static async create(opts: ClusterOptions = {}): Promise<ThrowawayCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'bitnexus-pgcluster-'));
    if (process.getuid?.() === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      await chown(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    for (const [k, v] of Object.entries(opts.settings ?? {})) {
      if (!/^[a-z_]+$/.test(k) || !/^[A-Za-z0-9._]+$/.test(v)) throw new Error(`bad setting ${k}=${v}`);
    }
    const c = new ThrowawayCluster(dir, await freePort(), opts);
    await c.pg('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await c.start();
    return c;
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    await this.pg('pg_ctl', [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      [
        `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`,
        `-c fsync=${this.opts.fsync ? 'on' : 'off'}`,
        ...Object.entries(this.opts.settings ?? {}).map(([k, v]) => `-c ${k}=${v}`),
      ].join(' '),
      'start',
    ]);
  }

  /** `immediate` is a crash: no checkpoint, open transactions are lost and recovered from WAL at start. */
  async stop(mode: 'fast' | 'immediate' = 'immediate'): Promise<void> {
    await this.pg('pg_ctl', ['-D', join(this.dir, 'data'), '-m', mode, '-w', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }

  private async pg(tool: string, args: string[]): Promise<void> {
    const bin = join(BIN, tool);
    if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', bin, ...args]);
    else await run(bin, args);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}
