import type { Command } from 'commander';
import { toHex } from '../../codec/index.js';
import { generateKeyPair } from '../../crypto/index.js';
import { writeKeyFile } from '../../node/keyfile.js';
import { CliError, jsonOption, output } from '../output.js';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('manage Ed25519 keys');
  keys
    .command('generate')
    .description('create a new Ed25519 key; with --out, writes a key file (mode 0600), otherwise prints it')
    .option('--out <file>', 'key file to create (refuses to overwrite)')
    .addOption(jsonOption())
    .action(async (opts: { out?: string; json?: boolean }) => {
      const o = output(opts.json === true);
      const pair = generateKeyPair();
      const publicKey = toHex(pair.publicKey);
      if (opts.out === undefined) {
        const file = { type: 'ed25519', publicKey, secretKey: toHex(pair.secretKey) };
        o.out(JSON.stringify(file, null, 2), file);
        return;
      }
      try {
        await writeKeyFile(opts.out, pair);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new CliError('FILE_EXISTS', `${opts.out} exists; refusing to overwrite a key`);
        }
        throw new CliError('IO_ERROR', `cannot write ${opts.out}: ${(err as Error).message}`);
      }
      o.out(publicKey, { publicKey, file: opts.out });
    });
}
