import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { toHex } from '../../codec/index.js';
import {
  decodeTx,
  parseBlock,
  parseTransaction,
  signTransaction,
  type PayloadByKind,
  type TxKind,
  type UnsignedTx,
} from '../../ledger/index.js';
import { readKeyFile } from '../../node/keyfile.js';
import { CliError, jsonOption, output, readError } from '../output.js';
import { intArg } from './args.js';

interface CommonOpts {
  key: string;
  chainId?: string;
  genesis?: string;
  nonce?: string;
  timestamp?: string;
  json?: boolean;
}

type Fields = Record<string, string | string[] | undefined>;

interface KindSpec<K extends TxKind> {
  kind: K;
  description: string;
  options: [flags: string, description: string, required: boolean][];
  payload(f: Fields, signer: string): PayloadByKind[K];
}

const s = (f: Fields, k: string): string => f[k] as string;

const SPECS: KindSpec<TxKind>[] = [
  {
    kind: 'participant.register',
    description: 'operator registers a merchant or affiliate',
    options: [
      ['--participant <key>', 'public key (hex) of the participant', true],
      ['--role <role>', 'merchant or affiliate', true],
      ['--name <name>', 'display name', true],
    ],
    payload: (f) => ({
      participant: s(f, 'participant'),
      role: s(f, 'role') as 'merchant',
      name: s(f, 'name'),
    }),
  },
  {
    kind: 'commission.record',
    description: 'merchant records a pending commission for an order',
    options: [
      ['--affiliate <key>', 'public key (hex) of the affiliate', true],
      ['--amount <minor>', 'amount in minor units (integer)', true],
      ['--currency <code>', 'ISO 4217 currency code', true],
      ['--order-id <id>', "the merchant's order id (idempotency key)", true],
      ['--description <text>', 'searchable description', false],
      ['--metadata <k=v...>', 'metadata entries', false],
      ['--merchant <key>', 'merchant key (default: the signer)', false],
    ],
    payload: (f, signer) => {
      const p: PayloadByKind['commission.record'] = {
        merchant: (f.merchant as string | undefined) ?? signer,
        affiliate: s(f, 'affiliate'),
        amount: s(f, 'amount'),
        currency: s(f, 'currency'),
        orderId: s(f, 'orderId'),
        description: (f.description as string | undefined) ?? '',
      };
      const md = f.metadata as string[] | undefined;
      if (md !== undefined) {
        p.metadata = {};
        for (const kv of md) {
          const eq = kv.indexOf('=');
          if (eq <= 0)
            throw new CliError('INVALID_ARGUMENT', `--metadata takes key=value, got ${JSON.stringify(kv)}`);
          p.metadata[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
      }
      return p;
    },
  },
  {
    kind: 'commission.approve',
    description: 'merchant (or operator) approves a pending commission',
    options: [['--commission <id>', 'commission id (the id of its commission.record transaction)', true]],
    payload: (f) => ({ commission: s(f, 'commission') }),
  },
  {
    kind: 'commission.reverse',
    description: 'merchant (or operator) voids or claws back a commission, fully or in part',
    options: [
      ['--commission <id>', 'commission id', true],
      ['--amount <minor>', 'amount to reverse, in minor units', true],
      ['--reason <text>', 'why', true],
    ],
    payload: (f) => ({ commission: s(f, 'commission'), amount: s(f, 'amount'), reason: s(f, 'reason') }),
  },
  {
    kind: 'payout.record',
    description: "operator records a payout to an affiliate from a merchant's approved balance",
    options: [
      ['--merchant <key>', 'merchant key', true],
      ['--affiliate <key>', 'affiliate key', true],
      ['--amount <minor>', 'amount in minor units', true],
      ['--currency <code>', 'ISO 4217 currency code', true],
      ['--reference <ref>', 'payment reference', true],
    ],
    payload: (f) => ({
      merchant: s(f, 'merchant'),
      affiliate: s(f, 'affiliate'),
      amount: s(f, 'amount'),
      currency: s(f, 'currency'),
      reference: s(f, 'reference'),
    }),
  },
  ...(['member.add', 'member.promote', 'member.remove'] as const).map((kind): KindSpec<TxKind> => ({
    kind,
    description: {
      'member.add': 'operator adds a node to the network (it joins Raft as a learner)',
      'member.promote': 'operator promotes a learner node to a voting member',
      'member.remove': 'operator removes a node from the network',
    }[kind],
    options: [['--node <key>', 'public key (hex) of the node (see its node.key)', true]],
    payload: (f) => ({ node: s(f, 'node') }),
  })),
];

export function registerTx(program: Command): void {
  const tx = program
    .command('tx')
    .description('build and sign a transaction offline and print it as JSON (the id goes to stderr)');
  for (const spec of SPECS) {
    const cmd = tx
      .command(spec.kind)
      .description(spec.description)
      .requiredOption('--key <file>', 'key file of the signer')
      .option('--chain-id <id>', 'chain id of the network')
      .option('--genesis <file>', 'read the chain id from this genesis.json')
      .option('--nonce <nonce>', 'idempotency key, unique per signer (default: a random UUID)')
      .option('--timestamp <ms>', 'Unix ms (default: now)')
      .addOption(jsonOption());
    for (const [flags, description, required] of spec.options) {
      if (required) cmd.requiredOption(flags, description);
      else cmd.option(flags, description);
    }
    cmd.action(async (opts: CommonOpts & Fields) => {
      const keys = await readKeyFile(opts.key);
      const signer = toHex(keys.publicKey);
      const chainId = await resolveChainId(opts);
      const unsigned = {
        v: 1,
        kind: spec.kind,
        chainId,
        signer,
        nonce: opts.nonce ?? randomUUID(),
        timestamp: opts.timestamp === undefined ? Date.now() : intArg(opts.timestamp, '--timestamp'),
        payload: spec.payload(opts, signer),
      } as UnsignedTx;
      // Validate exactly as a node would before signing, so mistakes surface here.
      const signed = parseTransaction(signTransaction(unsigned, keys.secretKey), chainId);
      const id = decodeTx(signed).id;
      process.stderr.write(`id ${id}\n`);
      output(opts.json === true).out(JSON.stringify(signed, null, 2), signed);
    });
  }
}

async function resolveChainId(opts: CommonOpts): Promise<string> {
  if (opts.chainId !== undefined) return opts.chainId;
  if (opts.genesis === undefined) throw new CliError('INVALID_ARGUMENT', 'give --chain-id or --genesis');
  let raw: string;
  try {
    raw = await readFile(opts.genesis, 'utf8');
  } catch (err) {
    throw readError(opts.genesis, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new CliError('MALFORMED_JSON', `${opts.genesis} is not JSON`);
  }
  return parseBlock(json).header.chainId;
}
