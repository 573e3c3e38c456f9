#!/usr/bin/env node
// The CLI is compiled from src/cli by `npm run build`; this shim keeps the
// package's bin stable whatever the build layout.

// Checked before anything is loaded: on an older Node the CLI would fail later, half way
// through a command (e.g. "Promise.withResolvers is not a function").
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  const message = `bitnexus needs Node.js 22 or later; ${process.execPath} is v${process.versions.node} (use node_modules/.bin/node, which npm ci installs, or an npm script)`;
  if (process.argv.slice(2).includes('--json'))
    process.stdout.write(JSON.stringify({ ok: false, error: { code: 'UNSUPPORTED_NODE', message } }) + '\n');
  else process.stderr.write(`error UNSUPPORTED_NODE: ${message}\n`);
  process.exit(2);
}

const { main } = await import('../dist/src/cli/main.js');
process.exitCode = await main(process.argv);
