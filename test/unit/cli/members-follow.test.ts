// `members add|promote|remove` report whether Raft's configuration followed the committed ledger
// change: the leader changes Raft's configuration afterwards, one change at a time, and a change
// may wait (a learner not caught up, voters without a live majority).
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { NodeStatus, PeerProgress } from '../../../src/api/node-api.js';
import { writeKeyFile } from '../../../src/node/keyfile.js';
import { jsonError, run } from './helpers.js';

let dir: string;
let keyFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bitnexus-cli-members-'));
  keyFile = join(dir, 'operator.key');
  await writeKeyFile(keyFile);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const LEADER = 'a1'.repeat(32);
const OTHER = 'b2'.repeat(32);
const MEMBER = 'c3'.repeat(32);

function status(members: PeerProgress[], extra: Partial<NodeStatus> = {}): NodeStatus {
  return {
    nodeId: LEADER,
    chainId: 'follow-net',
    role: 'leader',
    term: 2,
    leader: LEADER,
    commitIndex: 9,
    appliedIndex: 9,
    height: 3,
    headHash: 'ef'.repeat(32),
    mempool: 0,
    members,
    ...extra,
  };
}

const voter = (nodeId: string): PeerProgress => ({ nodeId, role: 'voter', connected: true });
const learner = (nodeId: string): PeerProgress => ({ nodeId, role: 'learner', connected: true });
const BASE = [voter(LEADER), voter(OTHER)];

interface ChangingNode {
  url: string;
  /** GET /v1/status requests after the transaction was committed */
  polls: number;
  /** when each of those polls arrived (ms) */
  pollTimes: number[];
  requests: { method: string; path: string }[];
  close(): Promise<void>;
}

/**
 * A fake node whose /v1/status changes over time: `before` until the transaction is posted, then
 * `after(n)` for the n-th status request since (1, 2, …), a 503 where that is undefined. The POST
 * commits at height 7.
 */
async function changingNode(
  before: NodeStatus,
  after: (poll: number) => NodeStatus | undefined,
): Promise<ChangingNode> {
  const node: ChangingNode = {
    url: '',
    polls: 0,
    pollTimes: [],
    requests: [],
    close: () => Promise.resolve(),
  };
  let committed = false;
  const server = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => {
      node.requests.push({ method: req.method ?? '', path: req.url ?? '' });
      let body: unknown;
      if (req.method === 'POST' && req.url?.startsWith('/v1/transactions')) {
        committed = true;
        body = { id: 'ab'.repeat(32), status: 'committed', receipt: { code: 'OK', height: 7, index: 0 } };
      } else if (req.url === '/v1/status') {
        if (committed) {
          node.polls++;
          node.pollTimes.push(Date.now());
          body = after(node.polls);
          if (body === undefined) {
            res.writeHead(503, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: { code: 'NOT_READY', message: 'busy' } }));
            return;
          }
        } else body = before;
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  node.url = `http://127.0.0.1:${port}`;
  node.close = () => new Promise<void>((r) => server.close(() => r()));
  return node;
}

const args = (action: string, node: ChangingNode, ...more: string[]) => [
  'members',
  action,
  '--key',
  keyFile,
  '--member',
  MEMBER,
  '--node',
  node.url,
  ...more,
];

describe('members add|promote|remove wait for Raft to follow', () => {
  it('followed at once: says what Raft made of the member', async () => {
    const cases = [
      ['add', BASE, [...BASE, learner(MEMBER)], 'member.add', 'is now a learner'],
      ['promote', [...BASE, learner(MEMBER)], [...BASE, voter(MEMBER)], 'member.promote', 'is now a voter'],
      ['remove', [...BASE, voter(MEMBER)], BASE, 'member.remove', 'is now removed'],
    ] as const;
    for (const [action, before, after, kind, now] of cases) {
      const node = await changingNode(status([...before]), () => status([...after]));
      try {
        const r = await run(args(action, node));
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.stdout).toBe(`${kind} ${MEMBER} committed at height 7; Raft: ${MEMBER} ${now}\n`);
        expect(node.polls).toBe(1);
      } finally {
        await node.close();
      }
    }
  });

  it('followed at once, --json: the submit result with raft.followed true', async () => {
    const node = await changingNode(status([...BASE, voter(MEMBER)]), () => status(BASE));
    try {
      const r = await run(args('remove', node, '--json'));
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(doc).toEqual({
        id: 'ab'.repeat(32),
        status: 'committed',
        receipt: { code: 'OK', height: 7, index: 0 },
        raft: { followed: true },
      });
    } finally {
      await node.close();
    }
  });

  it('followed after a few polls, about every 250 ms', async () => {
    const before = status([...BASE, learner(MEMBER)]);
    const node = await changingNode(before, (n) => (n < 4 ? before : status([...BASE, voter(MEMBER)])));
    try {
      const r = await run(args('promote', node));
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(
        `member.promote ${MEMBER} committed at height 7; Raft: ${MEMBER} is now a voter\n`,
      );
      expect(node.polls).toBe(4);
      const gaps = node.pollTimes.slice(1).map((t, i) => t - node.pollTimes[i]!);
      for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(200);
      for (const gap of gaps) expect(gap).toBeLessThan(2000);
    } finally {
      await node.close();
    }
  });

  it('a status poll that fails is retried until the deadline', async () => {
    const node = await changingNode(status([...BASE, learner(MEMBER)]), (n) =>
      n < 3 ? undefined : status([...BASE, voter(MEMBER)]),
    );
    try {
      const r = await run(args('promote', node));
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(
        `member.promote ${MEMBER} committed at height 7; Raft: ${MEMBER} is now a voter\n`,
      );
      expect(node.polls).toBe(3);
    } finally {
      await node.close();
    }
  });

  it('not followed, --node never answers the status: says so, exit 0', async () => {
    const node = await changingNode(status(BASE), () => undefined);
    try {
      const r = await run(args('add', node, '--settle-timeout', '300'));
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(
        `member.add ${MEMBER} committed at height 7; Raft has not followed yet after 0.3 s: ` +
          `${node.url} did not answer its status (NOT_READY: busy); ` +
          'it will when the leader adds it (learners are added without waiting) — `bitnexus status` shows it\n',
      );
    } finally {
      await node.close();
    }
  });

  it('not followed within --settle-timeout, --node the leader: its reasons, exit 0', async () => {
    const reason = `remove ${MEMBER.slice(0, 12)}: the other voters have no live majority`;
    const waiting = status([...BASE, voter(MEMBER)], { membershipWaiting: [reason] });
    const node = await changingNode(status([...BASE, voter(MEMBER)]), () => waiting);
    try {
      const started = Date.now();
      const r = await run(args('remove', node, '--settle-timeout', '700'));
      const took = Date.now() - started;
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(
        `member.remove ${MEMBER} committed at height 7; Raft has not followed yet after 0.7 s: ${reason}; ` +
          'it will when the other voters have a live majority (the down voters are back) — `bitnexus status` shows it\n',
      );
      expect(took).toBeGreaterThanOrEqual(650);
      expect(took).toBeLessThan(5000);
      expect(node.polls).toBeGreaterThanOrEqual(2);

      const j = await run(args('remove', node, '--settle-timeout', '300', '--json'));
      expect(j.status).toBe(0);
      const doc = JSON.parse(j.stdout) as { receipt: unknown; raft: unknown };
      expect(doc.receipt).toEqual({ code: 'OK', height: 7, index: 0 });
      expect(doc.raft).toEqual({ followed: false, waiting: [reason] });
    } finally {
      await node.close();
    }
  });

  it('not followed, --node a follower: what it knows, and that the leader says why', async () => {
    const follower = status([...BASE, learner(MEMBER)], { nodeId: OTHER, role: 'follower' });
    const node = await changingNode(follower, () => follower);
    try {
      const r = await run(args('promote', node, '--settle-timeout', '300'));
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(
        `member.promote ${MEMBER} committed at height 7; Raft has not followed yet after 0.3 s: ` +
          `${node.url} (a follower) lists ${MEMBER} as a learner; the leader ${LEADER} knows why; ` +
          `it will when the learner has caught up and is connected, and the voters keep a live majority — ` +
          "the leader's `bitnexus status` shows why\n",
      );
      const j = await run(args('promote', node, '--settle-timeout', '300', '--json'));
      expect((JSON.parse(j.stdout) as { raft: unknown }).raft).toEqual({ followed: false });
    } finally {
      await node.close();
    }
  });

  it('--settle-timeout 0: does not wait, prints only the commit', async () => {
    const node = await changingNode(status(BASE), () => status(BASE));
    try {
      const r = await run(args('add', node, '--settle-timeout', '0'));
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`member.add ${MEMBER} committed at height 7\n`);
      expect(node.polls).toBe(0);
      const j = await run(args('add', node, '--settle-timeout', '0', '--json'));
      expect(JSON.parse(j.stdout)).toEqual({
        id: 'ab'.repeat(32),
        status: 'committed',
        receipt: { code: 'OK', height: 7, index: 0 },
      });
      // one status request per run, for the chain id
      expect(node.requests.filter((q) => q.path === '/v1/status')).toHaveLength(2);
    } finally {
      await node.close();
    }
  });

  it.each(['-1', 'soon', '1.5', '2147483648'])(
    '--settle-timeout %s is INVALID_ARGUMENT, exit 2, nothing sent',
    async (value) => {
      const node = await changingNode(status(BASE), () => status(BASE));
      try {
        const r = await run(args('remove', node, '--settle-timeout', value, '--json'));
        expect(r.status).toBe(2);
        expect(jsonError(r.stdout, 'INVALID_ARGUMENT')).toContain('--settle-timeout must be');
        expect(node.requests).toEqual([]);
      } finally {
        await node.close();
      }
    },
  );
});

describe('bitnexus status', () => {
  it("prints the leader's waiting membership changes", async () => {
    const reason = `promote ${MEMBER.slice(0, 12)}: not caught up and connected yet`;
    const s = status([...BASE, learner(MEMBER)], { membershipWaiting: [reason] });
    const node = await changingNode(s, () => s);
    try {
      const r = await run(['status', '--node', node.url]);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`\n  ${MEMBER} learner\nmembership change waits: ${reason}\n`);
      const plain = await changingNode(status(BASE), () => status(BASE));
      try {
        const p = await run(['status', '--node', plain.url]);
        expect(p.stdout).not.toContain('waits');
      } finally {
        await plain.close();
      }
    } finally {
      await node.close();
    }
  });
});
