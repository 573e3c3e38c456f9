import { isIP } from 'node:net';

/**
 * Whom a per-source cap counts a peer against (the HTTP API's connections
 * and event streams, the P2P layer's non-member connections): an IPv4
 * address as it is (also when it comes IPv4-mapped, `::ffff:a.b.c.d`), or an
 * IPv6 address's /64 (`2001:db8:0:1::/64`), which one host or site usually
 * holds whole. Anything else (not an IP address) is returned lower-cased.
 */
export function ipSource(address: string): string {
  const bare = (address.split('%')[0] ?? '').toLowerCase(); // zone id: fe80::1%eth0
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (isIP(bare) !== 6) return bare;
  const [head = '', tail = ''] = bare.split('::');
  const part = (text: string): string[] => {
    if (text === '') return [];
    return text.split(':').flatMap((h) => {
      if (!h.includes('.')) return [h];
      const [a = 0, b = 0, c = 0, d = 0] = h.split('.').map(Number);
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    });
  };
  const front = part(head);
  const back = bare.includes('::') ? part(tail) : [];
  const groups = [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
