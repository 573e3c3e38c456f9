import type { Message } from '../consensus/index.js';

const decoder = new TextDecoder();

/** One transcript line per message, etcd-interaction-test style: `n1->n2 app t3 prev 5@2 [6@3 7@3] commit 5`. */
export function describeMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} t${m.term}`];
  switch (m.type) {
    case 'app':
      parts.push(`prev ${m.index}@${m.logTerm}`);
      if (m.entries.length > 0) {
        const first = m.entries[0];
        const last = m.entries[m.entries.length - 1];
        parts.push(
          m.entries.length <= 2
            ? `[${m.entries.map((e) => `${e.index}@${e.term}`).join(' ')}]`
            : `[${first?.index}@${first?.term}..${last?.index}@${last?.term}]`,
        );
      }
      parts.push(`commit ${m.commit}`);
      break;
    case 'appResp':
      parts.push(m.reject ? `REJECT ${m.index} hint ${m.rejectHint}@${m.logTerm}` : `ok ${m.index}`);
      break;
    case 'vote':
    case 'preVote':
      parts.push(`last ${m.index}@${m.logTerm}${m.transfer === true ? ' (transfer)' : ''}`);
      break;
    case 'voteResp':
    case 'preVoteResp':
      parts.push(m.reject ? 'REJECT' : 'granted');
      break;
    case 'heartbeat':
      parts.push(`commit ${m.commit}`);
      break;
    case 'snap':
      if (m.snapshot !== undefined) parts.push(`snapshot ${m.snapshot.meta.index}@${m.snapshot.meta.term}`);
      break;
    case 'readIndexResp':
      parts.push(`index ${m.index}`);
      break;
    case 'heartbeatResp':
    case 'readIndex':
    case 'timeoutNow':
    case 'transferLeader':
      break;
  }
  if (m.context !== undefined && m.context.length > 0 && m.type !== 'transferLeader') {
    parts.push(`ctx ${decoder.decode(m.context)}`);
  }
  return parts.join(' ');
}

/** Keeps the last `size` lines, for the tail of a failing run's transcript. */
export class TraceTail {
  private readonly lines: string[] = [];
  constructor(private readonly size: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.size * 2) this.lines.splice(0, this.lines.length - this.size);
  }
  get tail(): string[] {
    return this.lines.slice(-this.size);
  }
}
