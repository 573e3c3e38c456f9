import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { NodeStatus, SubmitResult } from '../../api/node-api.js';
import { toHex } from '../../codec/index.js';
import { signAdminRequest, signTransaction } from '../../ledger/index.js';
import { readKeyFile } from '../../node/keyfile.js';
import { submitOverP2P } from '../../network/index.js';
import { api } from '../http.js';
import { CliError, jsonOption, output } from '../output.js';
import { nodeOption } from './args.js';

export function registerClient(program: Command, setExit: (code: number) => void): void {
  program
    .command('status')
    .description("a node's view: role, term, leader, commit/applied index, height, members")
    .addOption(nodeOption())
    .addOption(jsonOption())
    .action(async (opts: { node: string; json?: boolean }) => {
      const s = await api<NodeStatus>(opts.node, 'v1/status');
      const lines = [
        `node ${s.nodeId} (${s.role}, term ${s.term}) on ${s.chainId}`,
        `leader ${s.leader ?? 'none'}`,
        `height ${s.height} ${s.headHash}`,
        `commit ${s.commitIndex} applied ${s.appliedIndex} mempool ${s.mempool}`,
        ...s.members.map(
          (m) =>
            `  ${m.nodeId.slice(0, 16)}… ${m.role}${m.connected ? '' : ' (disconnected)'}${m.match === undefined ? '' : ` match ${m.match}`}`,
        ),
      ];
      output(opts.json === true).out(lines.join('\n'), s);
    });

  program
    .command('submit')
    .description('submit a signed transaction (JSON file, or - for stdin) and wait for its receipt')
    .argument('<file>', 'transaction JSON (as printed by bitnexus tx), or - for stdin')
    .addOption(nodeOption())
    .option('--p2p <multiaddr>', 'submit over libp2p to this multiaddr instead of HTTP')
    .option('--no-wait', 'return once accepted, without waiting for the receipt')
    .option('--timeout <ms>', 'how long to wait for the receipt', '10000')
    .addOption(jsonOption())
    .action(
      async (
        file: string,
        opts: { node: string; p2p?: string; wait: boolean; timeout: string; json?: boolean },
      ) => {
        const text =
          file === '-'
            ? await readStdin()
            : await readFile(file, 'utf8').catch(() => {
                throw new CliError('IO_ERROR', `cannot read ${file}`);
              });
        let tx: unknown;
        try {
          tx = JSON.parse(text);
        } catch {
          throw new CliError('MALFORMED_JSON', `${file === '-' ? 'stdin' : file} is not JSON`);
        }
        const timeoutMs = Number(opts.timeout);
        let result: SubmitResult;
        if (opts.p2p !== undefined) {
          const resp = await submitOverP2P(
            opts.p2p,
            Buffer.from(JSON.stringify({ tx, wait: opts.wait, timeoutMs })),
            { timeoutMs: timeoutMs + 5000 },
          );
          const body = JSON.parse(Buffer.from(resp).toString('utf8')) as SubmitResult & {
            error?: { code: string; message: string; details?: unknown };
          };
          if (body.error)
            throw new CliError(
              body.error.code,
              `${body.error.message}${body.error.details ? ' ' + JSON.stringify(body.error.details) : ''}`,
              1,
            );
          result = body;
        } else {
          const q = opts.wait
            ? `v1/transactions?wait=commit&timeoutMs=${timeoutMs}`
            : 'v1/transactions?wait=none';
          result = await api<SubmitResult>(opts.node, q, {
            method: 'POST',
            body: tx,
            timeoutMs: timeoutMs + 5000,
          });
        }
        const human = result.receipt
          ? `${result.receipt.code} ${result.id} at height ${result.receipt.height} index ${result.receipt.index}${result.receipt.existing ? ` (existing ${result.receipt.existing})` : ''}`
          : `${result.status} ${result.id}`;
        output(opts.json === true).out(human, result);
        // recorded, but the ledger refused it (e.g. INSUFFICIENT_BALANCE): a failed transaction for scripts
        if (result.receipt && result.receipt.code !== 'OK') setExit(1);
      },
    );

  const members = program
    .command('members')
    .description('change the network membership (operator-signed ledger transactions)');
  for (const [action, kind, what] of [
    ['add', 'member.add', 'add a node; it joins Raft as a learner and catches up'],
    ['promote', 'member.promote', 'make a learner a voting member'],
    ['remove', 'member.remove', 'remove a node from the network'],
  ] as const) {
    members
      .command(action)
      .description(what)
      .requiredOption('--key <file>', "an operator's key file")
      .requiredOption('--member <nodeId>', "the node's public key (hex)")
      .addOption(nodeOption())
      .addOption(jsonOption())
      .action(async (opts: { key: string; member: string; node: string; json?: boolean }) => {
        const keys = await readKeyFile(opts.key);
        const status = await api<NodeStatus>(opts.node, 'v1/status');
        const tx = signTransaction(
          {
            v: 1,
            kind,
            chainId: status.chainId,
            signer: toHex(keys.publicKey),
            nonce: randomUUID(),
            timestamp: Date.now(),
            payload: { node: opts.member },
          },
          keys.secretKey,
        );
        const r = await api<SubmitResult>(opts.node, 'v1/transactions?wait=commit', {
          method: 'POST',
          body: tx,
        });
        if (r.receipt?.code !== 'OK')
          throw new CliError(r.receipt?.code ?? 'FAILED', `${kind} was recorded with ${r.receipt?.code}`, 1);
        output(opts.json === true).out(`${kind} ${opts.member} committed at height ${r.receipt.height}`, r);
      });
  }

  program
    .command('leader')
    .description('leadership')
    .command('transfer')
    .description('ask the leader to hand leadership to another voter (operator-signed)')
    .requiredOption('--key <file>', "an operator's key file")
    .requiredOption('--to <nodeId>', 'the voter to transfer to')
    .addOption(nodeOption())
    .addOption(jsonOption())
    .action(async (opts: { key: string; to: string; node: string; json?: boolean }) => {
      const keys = await readKeyFile(opts.key);
      const status = await api<NodeStatus>(opts.node, 'v1/status');
      const req = signAdminRequest(
        {
          v: 1,
          kind: 'leader.transfer',
          chainId: status.chainId,
          signer: toHex(keys.publicKey),
          nonce: randomUUID(),
          timestamp: Date.now(),
          payload: { to: opts.to },
        },
        keys.secretKey,
      );
      const r = await api<{ detail?: string }>(opts.node, 'v1/admin', { method: 'POST', body: req });
      output(opts.json === true).out(r.detail ?? 'ok', r);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
