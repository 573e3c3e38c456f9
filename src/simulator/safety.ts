import type { Entry, NodeId } from '../storage/raft/types.js';
import type { LogStorage } from '../consensus/index.js';
import { describeEntry } from './kv-store.js';
import { SimViolation } from './violation.js';

type LogView = Pick<LogStorage, 'firstIndex' | 'lastIndex' | 'term'>;

interface CommittedEntry {
  term: number;
  /** Term of the first node seen committing it: an upper bound on the term it was committed in. */
  commitTerm: number;
  by: NodeId;
}

interface AppliedEntry {
  term: number;
  /** KvStore digest after applying it: equal digests mean equal applied prefixes. */
  digest: number;
  by: NodeId;
  what: string;
}

/**
 * The Raft safety properties (Raft paper, Figure 3), checked from the outside
 * against a global record of what any node ever logged, committed or applied.
 * The driver calls these hooks as it processes each Ready; a broken property
 * throws SimViolation at the step where it first became observable.
 */
export class SafetyChecker {
  private readonly leaders = new Map<number, NodeId>();
  /** `${index}:${term}` → fingerprint of the entry and of the term before it. */
  private readonly logged = new Map<string, { fp: number; prevTerm: number; by: NodeId }>();
  private readonly committed: (CommittedEntry | undefined)[] = [];
  private readonly applied: (AppliedEntry | undefined)[] = [];
  private readonly commits = new Map<NodeId, { durable: number; current: number }>();

  /** The highest index any node has committed. */
  get maxCommitted(): number {
    return this.committed.length - 1;
  }

  committedTerm(index: number): number | undefined {
    return this.committed[index]?.term;
  }

  /** Election Safety: at most one leader per term. Leader Completeness, when `node` just became leader. */
  onLeader(node: NodeId, term: number, log: LogView): void {
    const known = this.leaders.get(term);
    if (known !== undefined && known !== node) {
      throw new SimViolation('electionSafety', `${known} and ${node} are both leader of term ${term}`);
    }
    if (known === node) return;
    this.leaders.set(term, node);
    const first = log.firstIndex();
    const last = log.lastIndex();
    for (let i = first; i < this.committed.length; i++) {
      const c = this.committed[i];
      if (c === undefined || c.commitTerm >= term) continue;
      const have = i <= last ? log.term(i) : undefined;
      if (have !== c.term) {
        throw new SimViolation(
          'leaderCompleteness',
          `${node} became leader of term ${term} with ${have === undefined ? 'no entry' : `term ${have}`} at index ${i}, ` +
            `but ${c.by} committed ${i}@${c.term} in term ${c.commitTerm}`,
        );
      }
    }
  }

  /** Log Matching, for entries just appended to `node`'s log (log already holds them). */
  onAppend(node: NodeId, entries: readonly Entry[], log: LogView): void {
    for (const e of entries) {
      if (e.index < log.firstIndex()) continue;
      const prevTerm = log.term(e.index - 1);
      const key = `${e.index}:${e.term}`;
      const fp = fingerprint(e);
      const seen = this.logged.get(key);
      if (seen === undefined) {
        this.logged.set(key, { fp, prevTerm, by: node });
      } else if (seen.fp !== fp || seen.prevTerm !== prevTerm) {
        throw new SimViolation(
          'logMatching',
          `${node} and ${seen.by} both hold an entry ${key} but ` +
            (seen.fp !== fp
              ? 'with different contents'
              : `preceded by terms ${prevTerm} and ${seen.prevTerm}`),
        );
      }
    }
  }

  /** A node's commit index moved (from its hard state); checks monotonicity and that it commits what others did. */
  onCommit(node: NodeId, commit: number, term: number, log: LogView): void {
    const c = this.commits.get(node) ?? { durable: 0, current: 0 };
    this.commits.set(node, c);
    if (commit < c.current) {
      throw new SimViolation('commitRegressed', `${node} commit index went from ${c.current} to ${commit}`);
    }
    if (commit > log.lastIndex()) {
      throw new SimViolation(
        'coreError',
        `${node} commit ${commit} is beyond its persisted log (${log.lastIndex()})`,
      );
    }
    for (let i = Math.max(c.current + 1, log.firstIndex()); i <= commit; i++) {
      const t = log.term(i);
      const known = this.committed[i];
      if (known === undefined) this.committed[i] = { term: t, commitTerm: term, by: node };
      else if (known.term !== t) {
        throw new SimViolation(
          'stateMachineSafety',
          `${node} committed ${i}@${t} but ${known.by} committed ${i}@${known.term}`,
        );
      }
    }
    c.current = commit;
  }

  /** The commit index in a hard state that is now durable. */
  onPersistCommit(node: NodeId, commit: number): void {
    const c = this.commits.get(node) ?? { durable: 0, current: 0 };
    this.commits.set(node, c);
    c.durable = Math.max(c.durable, commit);
  }

  /** A node restarted from its disk: its commit index may not be below what it had persisted. */
  onRestart(node: NodeId, commit: number): void {
    const c = this.commits.get(node) ?? { durable: 0, current: 0 };
    this.commits.set(node, c);
    if (commit < c.durable) {
      throw new SimViolation(
        'commitRegressed',
        `${node} restarted with commit ${commit}, below the ${c.durable} it had persisted`,
      );
    }
    c.current = commit;
  }

  /** State Machine Safety: every node applies the same entry at each index, reaching the same state. */
  onApply(node: NodeId, e: Entry, digest: number): void {
    const known = this.applied[e.index];
    if (known === undefined) {
      this.applied[e.index] = { term: e.term, digest, by: node, what: describeEntry(e) };
    } else if (known.term !== e.term || known.digest !== digest) {
      throw new SimViolation(
        'stateMachineSafety',
        `${node} applied ${describeEntry(e)} but ${known.by} applied ${known.what} (states differ)`,
      );
    }
  }

  /** A node's application state was replaced by a snapshot at `index`. */
  onRestore(node: NodeId, index: number, digest: number): void {
    const known = this.applied[index];
    if (known !== undefined && known.digest !== digest) {
      throw new SimViolation(
        'stateMachineSafety',
        `${node} restored a snapshot at ${index} whose state differs from what ${known.by} applied there`,
      );
    }
  }
}

function fingerprint(e: Entry): number {
  let h = e.type === 'normal' ? 0x811c9dc5 : 0x01000193;
  h = Math.imul(h ^ e.data.length, 0x01000193);
  for (let i = 0; i < e.data.length; i++) h = Math.imul(h ^ (e.data[i] as number), 0x01000193);
  return h >>> 0;
}
