import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { NodeStatus, SubmitResult } from '../../api/node-api.js';
import { CodecError, parseJsonStrict, toHex } from '../../codec/index.js';
import { parseTransaction, signAdminRequest, signTransaction } from '../../ledger/index.js';
import { readKeyFile } from '../../node/keyfile.js';
import { SUBMIT_TIMEOUT } from '../../api/schemas.js';
import {
  checkSubmitAddress,
  FrameTooLargeError,
  NetworkConfigError,
  ProtocolViolationError,
  RemoteError,
  RequestTimeoutError,
  submitOverP2P,
} from '../../network/index.js';
import { api, nodeUrl } from '../http.js';
import { CliError, jsonOption, output, readError } from '../output.js';
import { intInRange, MAX_TIMER_MS, nodeIdArg, nodeOption } from './args.js';

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
            `  ${m.nodeId} ${m.role}${m.connected ? '' : ' (disconnected)'}${m.match === undefined ? '' : ` match ${m.match}`}`,
        ),
        ...(s.membershipWaiting ?? []).map((w) => `membership change waits: ${w}`),
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
    .option(
      '--timeout <ms>',
      `how long the node waits for the receipt, ${SUBMIT_TIMEOUT.min}–${SUBMIT_TIMEOUT.max}`,
      String(SUBMIT_TIMEOUT.default),
    )
    .addOption(jsonOption())
    .action(
      async (
        file: string,
        opts: { node: string; p2p?: string; wait: boolean; timeout: string; json?: boolean },
      ) => {
        // arguments first: bad input is refused before any file or node is touched
        const timeoutMs = intInRange(opts.timeout, '--timeout', SUBMIT_TIMEOUT.min, SUBMIT_TIMEOUT.max);
        if (opts.p2p !== undefined) checkP2pAddress(opts.p2p);
        else nodeUrl(opts.node);
        const text =
          file === '-'
            ? await readStdin()
            : await readFile(file, 'utf8').catch((err: unknown) => {
                throw readError(file, err);
              });
        let tx: unknown;
        const source = file === '-' ? 'stdin' : file;
        try {
          // refused as the node would: re-serialised here, a duplicate key would vanish unseen
          tx = parseJsonStrict(text);
        } catch (err) {
          throw new CliError(
            'MALFORMED_JSON',
            err instanceof CodecError
              ? `${source} names the same key twice in one object`
              : `${source} is not JSON`,
          );
        }
        // checked as a node checks it, before anything is sent (a key file would send its secret)
        checkTransaction(tx, file === '-' ? 'stdin holds' : `${file} is`);
        let result: SubmitResult;
        if (opts.p2p !== undefined) {
          const address = opts.p2p;
          // the node gives up after timeoutMs and answers TIMEOUT; the client waits a little longer
          const clientTimeoutMs = timeoutMs + 5000;
          const resp = await submitOverP2P(
            address,
            Buffer.from(JSON.stringify({ tx, wait: opts.wait, timeoutMs })),
            { timeoutMs: clientTimeoutMs },
          ).catch((err: unknown) => {
            throw p2pError(err, address, clientTimeoutMs);
          });
          let body: SubmitResult & {
            error?: { code: string; message: string; field?: unknown; details?: unknown };
          };
          try {
            body = JSON.parse(Buffer.from(resp).toString('utf8')) as typeof body;
          } catch {
            throw new CliError('BAD_RESPONSE', `${address} answered the submit with non-JSON`);
          }
          if (body.error) {
            const { code, message, field, details } = body.error;
            throw new CliError(code, message, 1, {
              ...(typeof field === 'string' ? { field } : {}),
              ...(details === undefined ? {} : { details }),
            });
          }
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
      .option(
        '--settle-timeout <ms>',
        "after the commit, how long to wait for Raft's configuration to follow (0: do not wait)",
        String(SETTLE_TIMEOUT_MS),
      )
      .addOption(jsonOption())
      .action(async (opts: MembersOptions) => {
        const member = nodeIdArg(opts.member, '--member');
        const settleMs = intInRange(opts.settleTimeout, '--settle-timeout', 0, MAX_TIMER_MS);
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
            payload: { node: member },
          },
          keys.secretKey,
        );
        const r = await api<SubmitResult>(opts.node, 'v1/transactions?wait=commit', {
          method: 'POST',
          body: tx,
        });
        if (r.receipt?.code !== 'OK')
          throw new CliError(r.receipt?.code ?? 'FAILED', `${kind} was recorded with ${r.receipt?.code}`, 1);
        const committed = `${kind} ${opts.member} committed at height ${r.receipt.height}`;
        if (settleMs === 0) {
          output(opts.json === true).out(committed, r);
          return;
        }
        // The ledger has it (durable, exit 0 either way); Raft's configuration follows afterwards,
        // driven by the leader one change at a time, and a change may wait.
        const f = await raftFollows(opts.node, kind, member, settleMs);
        const raft = { followed: f.followed, ...(f.waiting ? { waiting: f.waiting } : {}) };
        output(opts.json === true).out(`${committed}; ${f.human}`, { ...r, raft });
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
      const to = nodeIdArg(opts.to, '--to');
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
          payload: { to },
        },
        keys.secretKey,
      );
      const r = await api<{ detail?: string }>(opts.node, 'v1/admin', { method: 'POST', body: req });
      output(opts.json === true).out(r.detail ?? 'ok', r);
    });
}

interface MembersOptions {
  key: string;
  member: string;
  node: string;
  settleTimeout: string;
  json?: boolean;
}

/** `members * --settle-timeout`'s default (ms) */
const SETTLE_TIMEOUT_MS = 15_000;
/** how often `members *` asks --node's status while it waits for Raft to follow */
const SETTLE_POLL_MS = 250;
/** one status request's own limit while waiting (the wait as a whole is --settle-timeout) */
const SETTLE_REQUEST_MS = 5_000;

type MemberKind = 'member.add' | 'member.promote' | 'member.remove';

/** What Raft's configuration will wait for, per change (src/node/ledger-node.ts reconcileMembership). */
const FOLLOWS_WHEN: Record<MemberKind, string> = {
  'member.add': 'the leader adds it (learners are added without waiting)',
  'member.promote': 'the learner has caught up and is connected, and the voters keep a live majority',
  'member.remove': 'the other voters have a live majority (the down voters are back)',
};

/** Whether a node's Raft configuration (its status `members`) shows the change made. */
function hasFollowed(kind: MemberKind, member: string, s: NodeStatus): boolean {
  const m = s.members.find((x) => x.nodeId === member);
  if (kind === 'member.remove') return m === undefined;
  if (kind === 'member.promote') return m?.role === 'voter';
  return m !== undefined;
}

/**
 * After a membership transaction committed: poll `node`'s status every SETTLE_POLL_MS, for at
 * most `settleMs`, until its Raft configuration shows the change. Says what Raft made of the
 * member, or why it has not followed yet as far as is known: the leader's reasons
 * (`membershipWaiting`) when `node` leads, else what `node` sees and that its leader knows why.
 * Never throws a node's error: the commit stands whatever the status says.
 */
async function raftFollows(
  node: string,
  kind: MemberKind,
  member: string,
  settleMs: number,
): Promise<{ followed: boolean; waiting?: string[]; human: string }> {
  const deadline = Date.now() + settleMs;
  let last: NodeStatus | undefined;
  let failure: string | undefined;
  for (;;) {
    try {
      const left = deadline - Date.now();
      last = await api<NodeStatus>(node, 'v1/status', {
        timeoutMs: Math.min(SETTLE_REQUEST_MS, Math.max(1000, left)),
      });
      failure = undefined;
      if (Array.isArray(last.members) && hasFollowed(kind, member, last)) {
        const role = last.members.find((m) => m.nodeId === member)?.role;
        return { followed: true, human: `Raft: ${member} is now ${role ? `a ${role}` : 'removed'}` };
      }
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      failure = `${err.code}: ${err.message}`;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(SETTLE_POLL_MS, left)));
  }
  const head = `Raft has not followed yet after ${settleMs / 1000} s`;
  const when = `it will when ${FOLLOWS_WHEN[kind]}`;
  const shows = '`bitnexus status` shows it';
  const leaderShows = "the leader's `bitnexus status` shows why";
  if (failure !== undefined || last === undefined || !Array.isArray(last.members))
    return {
      followed: false,
      human: `${head}: ${node} did not answer its status (${failure ?? 'no members in its answer'}); ${when} — ${shows}`,
    };
  const m = last.members.find((x) => x.nodeId === member);
  const lists = m ? `lists ${member} as a ${m.role}` : `does not list ${member}`;
  // a removed node may never hear from Raft that it was removed: the leader stops sending to it
  const self =
    kind === 'member.remove' && last.nodeId === member
      ? ` (it is the node removed, which may never hear of its removal: ask another member)`
      : '';
  if (last.role === 'leader') {
    const waiting = last.membershipWaiting?.length ? last.membershipWaiting : undefined;
    const why = waiting
      ? waiting.join('; ')
      : `the leader ${lists} and names no reason (the change may be under way)`;
    return { followed: false, ...(waiting ? { waiting } : {}), human: `${head}: ${why}; ${when} — ${shows}` };
  }
  const leader = last.leader === null ? 'no leader is known' : `the leader ${last.leader} knows why`;
  return {
    followed: false,
    human: `${head}: ${node} (a ${last.role}) ${lists}${self}; ${leader}; ${when} — ${leaderShows}`,
  };
}

/**
 * What `submit` sends, checked as a node checks its structure (the ledger's own parser, any chain
 * id: the node names a wrong one): a ValidationError names the code and field, exit 2, and
 * nothing is sent. A key file (it has a `secretKey`) is named as such, without echoing it: sent,
 * its secret would cross the network. `what` is "FILE is" or "stdin holds".
 */
export function checkTransaction(value: unknown, what: string): void {
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, 'secretKey'))
    throw new CliError(
      'INVALID_ARGUMENT',
      `${what} a key file, not a transaction; nothing was sent (sign a transaction with bitnexus tx … --key <key file> and submit what it prints)`,
    );
  try {
    parseTransaction(value);
  } catch (err) {
    // a kind or version this CLI does not know may be one a newer node does: the node decides
    const code = (err as { code?: unknown }).code;
    if (code === 'UNKNOWN_KIND' || code === 'UNSUPPORTED_VERSION') return;
    throw err;
  }
}

/** `--p2p ADDRESS`: a multiaddr whose /p2p/ part, if any, is a peer id (checked before dialling). */
export function checkP2pAddress(address: string): void {
  try {
    checkSubmitAddress(address);
  } catch (err) {
    throw new CliError('INVALID_ARGUMENT', `--p2p: ${(err as Error).message}`);
  }
}

/** libp2p's and Node's names for a peer that could not be reached or dropped the connection. */
const TRANSPORT_ERRORS = new Set([
  'AbortError',
  'ConnectionClosedError',
  'ConnectionClosingError',
  'ConnectionFailedError',
  'DialError',
  'EncryptionFailedError',
  'InvalidCryptoExchangeError',
  'MuxerClosedError',
  'MuxerUnavailableError',
  'StreamAbortedError',
  'StreamResetError',
  'StreamStateError',
  'TimeoutError',
  'UnexpectedPeerError',
  'UnsupportedProtocolError',
]);

/**
 * What `submitOverP2P` threw, as the CLI reports it (exported for tests): a bad address is the
 * caller's INVALID_ARGUMENT; a peer that cannot be reached, is not who the address says, or drops
 * the exchange is NODE_UNREACHABLE; a node's refusal keeps the node's code (exit 1). Anything else
 * is returned unchanged and ends as INTERNAL.
 */
export function p2pError(err: unknown, address: string, timeoutMs: number): unknown {
  if (!(err instanceof Error)) return err;
  const unreachable = (why: string) => new CliError('NODE_UNREACHABLE', `${address}: ${why}`);
  if (err instanceof NetworkConfigError) return new CliError('INVALID_ARGUMENT', `--p2p: ${err.message}`);
  if (err instanceof FrameTooLargeError)
    return new CliError('INVALID_ARGUMENT', `the transaction is too large to submit: ${err.message}`);
  if (err instanceof RemoteError) return new CliError(err.code, err.message, 1);
  if (err instanceof ProtocolViolationError)
    return new CliError('BAD_RESPONSE', `${address} broke the submit protocol: ${err.message}`);
  if (err instanceof RequestTimeoutError)
    return unreachable(
      `no answer within ${timeoutMs} ms (if the node got the transaction it may still commit; resubmitting the same file is safe)`,
    );
  if (err.name === 'NoValidAddressesError')
    return new CliError(
      'INVALID_ARGUMENT',
      `--p2p: ${address} is not an address this client can dial (/ip4|/ip6|/dns4/HOST/tcp/PORT[/p2p/PEER_ID])`,
    );
  if (err.name === 'EncryptionFailedError' && /does not match/.test(err.message))
    return unreachable(`the peer's identity did not match the /p2p/ id in the address (${err.message})`);
  if (err.name === 'EncryptionFailedError')
    return unreachable(`the libp2p handshake failed; is this the node's libp2p port? (${err.message})`);
  if (err.name === 'UnsupportedProtocolError')
    return unreachable(`the peer does not serve the BitNexus submit protocol (${err.message})`);
  if (err instanceof AggregateError && err.errors[0] !== undefined)
    return p2pError(err.errors[0], address, timeoutMs);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return unreachable(`cannot connect (${code})`);
  if (TRANSPORT_ERRORS.has(err.name)) return unreachable(`${err.name}: ${err.message}`);
  return err;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
