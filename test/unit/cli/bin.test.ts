// bin/bitnexus.js is the one file of the CLI that runs before dist/ is loaded: when dist/ is
// missing or half-built, it must still answer with a code and a message, never a stack trace.
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const SHIM = fileURLToPath(new URL('../../../bin/bitnexus.js', import.meta.url));
let root: string | undefined;

afterEach(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
  root = undefined;
});

/** A copy of bin/ in a fresh folder laid out as the package is (ESM), with `dist` files as given. */
async function install(dist: Record<string, string>): Promise<string> {
  root = await mkdtemp(join(tmpdir(), 'bitnexus-bin-'));
  await mkdir(join(root, 'bin'));
  await copyFile(SHIM, join(root, 'bin', 'bitnexus.js'));
  await writeFile(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
  for (const [path, text] of Object.entries(dist)) {
    await mkdir(join(root, 'dist', path, '..'), { recursive: true });
    await writeFile(join(root, 'dist', path), text);
  }
  return join(root, 'bin', 'bitnexus.js');
}

function runShim(bin: string, args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bin/bitnexus.js without a usable dist/', () => {
  it('dist/ missing: error INTERNAL saying to run npm run build, exit 2, no stack trace', async () => {
    const bin = await install({});
    const r = runShim(bin, ['status']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error INTERNAL: \S+\/dist\/ is missing or incomplete: run npm run build \(Cannot find module .*main\.js.*\)\n$/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('with --json: one JSON document on stdout, nothing on stderr', async () => {
    const bin = await install({});
    const r = runShim(bin, ['status', '--json']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!) as { ok: boolean; error: { code: string; message: string } };
    expect(doc.ok).toBe(false);
    expect(doc.error.code).toBe('INTERNAL');
    expect(doc.error.message).toContain('is missing or incomplete: run npm run build');
  });

  it.each([
    [
      'a module main.js imports is missing',
      "import './commands/init.js';\nexport const main = async () => 0;\n",
      'init.js',
    ],
    ['main.js is cut short', 'export async function main(argv) {\n  return ', 'Unexpected end of input'],
  ])('half-built (%s): the same error, with the import’s message', async (_what, text, why) => {
    const bin = await install({ 'src/cli/main.js': text });
    const r = runShim(bin, ['verify', '--data-dir', 'x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error INTERNAL: .*is missing or incomplete: run npm run build \(/);
    expect(r.stderr).toContain(why);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a complete dist/ runs as before', async () => {
    const bin = await install({ 'src/cli/main.js': 'export const main = async (argv) => argv.length;\n' });
    const r = runShim(bin, ['a', 'b', 'c']);
    expect(r.status).toBe(5);
    expect(r.stderr).toBe('');
  });
});
