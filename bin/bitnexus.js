#!/usr/bin/env node
// The CLI is compiled from src/cli by `npm run build`; this shim keeps the
// package's bin stable whatever the build layout.
import { fileURLToPath } from 'node:url';

// Checked before anything is loaded: on an older Node the CLI would fail later, half way
// through a command (e.g. "Promise.withResolvers is not a function").
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  fail(
    'UNSUPPORTED_NODE',
    `bitnexus needs Node.js 22 or later; ${process.execPath} is v${process.versions.node} (use node_modules/.bin/node, which npm ci installs, or an npm script)`,
  );
}

// dist/ is what `npm run build` makes: missing or half-built (an import fails, or a file is cut
// short), the CLI says so as an error of its own, never with a stack trace (docs/ERRORS.md §4).
let main;
try {
  ({ main } = await import('../dist/src/cli/main.js'));
} catch (err) {
  const dist = fileURLToPath(new URL('../dist/', import.meta.url));
  const why = err instanceof Error ? err.message : String(err);
  fail('INTERNAL', `${dist} is missing or incomplete: run npm run build (${why})`);
}
process.exitCode = await main(process.argv);

/** `error CODE: message` on stderr, or with --json one JSON document on stdout; exit status 2. */
function fail(code, message) {
  if (process.argv.slice(2).includes('--json'))
    process.stdout.write(JSON.stringify({ ok: false, error: { code, message } }) + '\n');
  else process.stderr.write(`error ${code}: ${message}\n`);
  process.exit(2);
}
