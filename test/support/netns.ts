import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { NodeConfig } from '../../src/node/config.js';
import { processAlive } from '../../src/util/process-alive.js';
import type { Devnet } from './devnet.js';

/**
 * Network namespaces for end-to-end partition tests (Linux, as root; `ip`
 * from iproute2). Each node of a devnet runs in a namespace of its own,
 * joined to one bridge in the test's namespace by a veth pair:
 *
 *   test process (10.213.X.1 on the bridge) ── bridge ── veth ── ns of node i (10.213.X.(10 + i))
 *
 * Cutting links uses blackhole routes inside the namespaces: packets from a
 * node to a node it is cut off from are dropped where they are sent, in both
 * directions, and nothing else changes. The test process still reaches every
 * node's HTTP API, so it can watch both sides of a partition. Connections
 * that were open stay open and go silent, as in a real partition; new ones
 * fail at once.
 *
 * Names carry a random tag, so runs side by side never collide, and
 * `destroy()` removes everything it made (call it in afterAll).
 */
export class Namespaces {
  private readonly cuts = new Set<string>();

  private constructor(
    private readonly tag: string,
    private readonly subnet: string,
    readonly count: number,
  ) {}

  /** Makes the bridge, and one namespace with its veth pair per node. */
  static create(count: number): Namespaces {
    removeStale();
    const tag = randomBytes(3).toString('hex');
    // 10.213.0.0/16, a /24 per set of namespaces: private, and one no interface here has yet
    const taken = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
    let subnet: string;
    do subnet = `10.213.${1 + (randomBytes(1)[0]! % 250)}`;
    while (taken.includes(` ${subnet}.`));
    const ns = new Namespaces(tag, subnet, count);
    try {
      ip('link', 'add', ns.bridge, 'type', 'bridge');
      // where br_netfilter is loaded (Docker hosts), bridged packets would pass iptables' FORWARD
      tryIp('link', 'set', ns.bridge, 'type', 'bridge', 'nf_call_iptables', '0');
      ip('addr', 'add', `${subnet}.1/24`, 'dev', ns.bridge);
      ip('link', 'set', ns.bridge, 'up');
      for (let i = 0; i < count; i++) {
        const name = ns.name(i);
        ip('netns', 'add', name);
        ip('link', 'add', `bnx${tag}h${i}`, 'type', 'veth', 'peer', 'name', `bnx${tag}n${i}`);
        ip('link', 'set', `bnx${tag}h${i}`, 'master', ns.bridge);
        ip('link', 'set', `bnx${tag}h${i}`, 'up');
        ip('link', 'set', `bnx${tag}n${i}`, 'netns', name);
        ip('-n', name, 'addr', 'add', `${ns.address(i)}/24`, 'dev', `bnx${tag}n${i}`);
        ip('-n', name, 'link', 'set', `bnx${tag}n${i}`, 'up');
        ip('-n', name, 'link', 'set', 'lo', 'up');
      }
    } catch (err) {
      ns.destroy();
      throw err;
    }
    return ns;
  }

  get bridge(): string {
    return `bnx${this.tag}br`;
  }

  /** the namespace of node i */
  name(i: number): string {
    return `bnx-${process.pid}-${this.tag}-${i}`;
  }

  /** node i's address */
  address(i: number): string {
    return `${this.subnet}.${10 + i}`;
  }

  /** The command prefix that runs a program inside node i's namespace. */
  exec(i: number): string[] {
    return ['ip', 'netns', 'exec', this.name(i)];
  }

  /** Cut every link between node a and node b, both ways. */
  cut(a: number, b: number): void {
    const key = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (this.cuts.has(key)) return;
    this.cuts.add(key); // before the routes: heal() removes whatever part of it was made
    ip('-n', this.name(a), 'route', 'add', 'blackhole', `${this.address(b)}/32`);
    ip('-n', this.name(b), 'route', 'add', 'blackhole', `${this.address(a)}/32`);
  }

  /** Cut node i off from every other node (the test process still reaches it). */
  isolate(i: number): void {
    for (let j = 0; j < this.count; j++) if (j !== i) this.cut(i, j);
  }

  /** Restore every link that was cut. */
  heal(): void {
    for (const key of [...this.cuts]) {
      const [a, b] = key.split('-').map(Number) as [number, number];
      this.cuts.delete(key);
      // a route that is not there (a cut half made) is no failure; one still there after is
      tryIp('-n', this.name(a), 'route', 'del', 'blackhole', `${this.address(b)}/32`);
      tryIp('-n', this.name(b), 'route', 'del', 'blackhole', `${this.address(a)}/32`);
    }
    for (let i = 0; i < this.count; i++) {
      const routes = execFileSync('ip', ['-n', this.name(i), 'route', 'show', 'type', 'blackhole'], {
        encoding: 'utf8',
      });
      if (routes.trim() !== '') throw new Error(`${this.name(i)} still cuts: ${routes.trim()}`);
    }
  }

  /**
   * Moves a devnet (made by Devnet.create, not yet started) into the
   * namespaces: each node listens on its own address, names its peers by
   * theirs, and starts inside its namespace.
   */
  async place(net: Devnet): Promise<void> {
    if (net.nodes.length !== this.count)
      throw new Error(`${net.nodes.length} nodes, ${this.count} namespaces`);
    const moved = net.nodes.map((node, i) => {
      const http = new URL(node.url);
      const p2pPort = /\/tcp\/(\d+)/.exec(node.p2p)?.[1];
      if (p2pPort === undefined) throw new Error(`no TCP port in ${node.p2p}`);
      return {
        url: `http://${this.address(i)}:${http.port}`,
        p2p: `/ip4/${this.address(i)}/tcp/${p2pPort}`,
        port: Number(http.port),
      };
    });
    for (let i = 0; i < net.nodes.length; i++) {
      const node = net.nodes[i]!;
      const config = JSON.parse(await readFile(node.config, 'utf8')) as NodeConfig;
      config.http = { ...config.http, host: this.address(i), port: moved[i]!.port };
      config.p2p = { ...config.p2p, listen: moved[i]!.p2p };
      config.peers = config.peers.map((peer) => {
        const j = net.nodes.findIndex((n) => n.nodeId === peer.nodeId);
        if (j < 0) throw new Error(`peer ${peer.nodeId} is not a node of the devnet`);
        return { ...peer, http: moved[j]!.url, p2p: moved[j]!.p2p };
      });
      await writeFile(node.config, JSON.stringify(config, null, 2));
    }
    net.nodes.forEach((node, i) => {
      node.url = moved[i]!.url;
      node.p2p = moved[i]!.p2p;
    });
    net.spawnPrefix = (i) => this.exec(i);
  }

  /** Removes the namespaces (and their veth pairs) and the bridge; never throws. */
  destroy(): void {
    for (let i = 0; i < this.count; i++) {
      tryIp('netns', 'del', this.name(i)); // takes the namespace's end of the veth pair, and so the pair
      tryIp('link', 'del', `bnx${this.tag}h${i}`); // a pair whose end never moved into it
    }
    tryIp('link', 'del', this.bridge);
  }
}

/**
 * Whether this machine can make namespaces (root, iproute2, a kernel with
 * network namespaces): the reason it cannot, or undefined when it can.
 */
export function namespacesUnavailable(): string | undefined {
  const probe = `bnx-probe-${randomBytes(3).toString('hex')}`;
  try {
    ip('netns', 'add', probe);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    tryIp('netns', 'del', probe);
  }
}

/**
 * Removes what a test process that died without destroy() left behind (its
 * namespaces name its pid), so runs that were killed do not pile up.
 */
function removeStale(): void {
  let list: string;
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch {
    return;
  }
  for (const m of list.matchAll(/^bnx-(\d+)-([0-9a-f]{6})-\d+/gm)) {
    const [name, pid, tag] = m as unknown as [string, string, string];
    if (processAlive(Number(pid))) continue;
    tryIp('netns', 'del', name);
    tryIp('link', 'del', `bnx${tag}br`);
  }
}

function ip(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (err as Error).message}`);
  }
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}
