import type {
  AdminResult,
  BalanceView,
  LedgerNodeApi,
  NodeStatus,
  ParticipantView,
  SubmitResult,
  TransactionView,
} from '../../../src/api/node-api.js';
import { acceptTransaction, type Block, type DecodedTx, type Receipt } from '../../../src/ledger/index.js';
import type {
  CheckReport,
  SearchHit,
  SearchRequest,
  SearchResult,
  SyncServiceStatus,
} from '../../../src/sync/index.js';
import { keyFor, pub, TestChain, tx } from '../../support/ledger-fixture.js';

type Key = ReturnType<typeof keyFor>;

/** A block subscription, kept as the node keeps it: the next height it wants, replaying or live. */
export interface Subscriber {
  next: number;
  live: boolean;
  onBlock: (block: Block, hash: string) => void | Promise<void>;
}

/**
 * A LedgerNodeApi over a real in-memory chain (test/support), with every
 * behaviour the API tests need to steer: submit/admin outcomes, health,
 * readiness, and block subscriptions they can count.
 */
export class FakeNode implements LedgerNodeApi {
  readonly chainId: string;
  readonly nodeId: string;
  readonly blocks: { block: Block; hash: string }[] = [];
  readonly transactions = new Map<string, TransactionView>();
  readonly participants = new Map<string, ParticipantView>();
  readonly balances = new Map<string, BalanceView[]>();
  readonly subscribers = new Set<Subscriber>();
  readonly submitCalls: { tx: unknown; wait: boolean; timeoutMs: number; signal: AbortSignal | undefined }[] =
    [];
  readonly adminCalls: unknown[] = [];
  healthy = true;
  checks: Record<string, { ok: boolean; detail?: string }> = { leader: { ok: true }, caughtUp: { ok: true } };
  term = 3;

  /** default: parse with the ledger's own validator, then commit at once */
  submitImpl: (tx: unknown, opts: { wait: boolean; timeoutMs: number }) => Promise<SubmitResult> = (
    value,
    opts,
  ) => {
    const dtx = acceptTransaction(value, this.chainId);
    const known = this.transactions.get(dtx.id);
    if (known !== undefined)
      return Promise.resolve({
        id: dtx.id,
        status: 'committed',
        receipt: known.receipt,
        blockHash: known.blockHash,
      });
    if (!opts.wait) return Promise.resolve({ id: dtx.id, status: 'accepted' });
    return this.commit([dtx]).then(() => {
      const view = this.transactions.get(dtx.id)!;
      return { id: dtx.id, status: 'committed', receipt: view.receipt, blockHash: view.blockHash };
    });
  };
  adminImpl: (request: unknown) => Promise<AdminResult> = () =>
    Promise.resolve({ ok: true, action: 'transfer-leadership', detail: 'to node-2' });

  // The mirror: a node with one mirrored commission, caught up. Tests replace these.
  readonly searchCalls: SearchRequest[] = [];
  searchImpl: (request: SearchRequest) => Promise<SearchResult> = () =>
    Promise.resolve({ hits: [this.hit()], vectorUsed: true });
  syncStatusImpl: () => SyncServiceStatus | undefined = () => ({
    state: 'ok',
    height: this.height,
    hash: this.blocks.at(-1)!.hash,
    lagBlocks: 0,
    lagSeconds: 0,
    rowsWritten: 42,
    errors: 0,
    index: {
      state: 'ok',
      embedder: 'hash-v1:d384:n3-4',
      dimension: 384,
      throughHeight: this.height,
      throughIndex: 0,
      textThroughHeight: this.height,
      textThroughIndex: 0,
      embedded: 1,
      vectorIndex: 'halfvec',
      errors: 0,
    },
    maintenance: { rounds: 3, analyzed: 0, vacuumed: 0, checkpoints: 0, failed: 0, serverAutovacuum: true },
  });
  syncCheckImpl: () => Promise<CheckReport> = () =>
    Promise.resolve({
      ok: true,
      chainHeight: this.height,
      mirrorHeight: this.height,
      blocksChecked: this.height + 1,
      transactionsChecked: 2,
      stateChecked: true,
    });

  private constructor(
    readonly tc: TestChain,
    readonly merchant: Key,
    readonly affiliate: Key,
  ) {
    this.chainId = tc.fx.config.chainId;
    this.nodeId = pub(tc.fx.node);
  }

  /** genesis, then one block registering a merchant and an affiliate */
  static async create(): Promise<FakeNode> {
    const tc = await TestChain.create();
    const node = new FakeNode(tc, keyFor('shop'), keyFor('aff'));
    node.blocks.push({ block: tc.fx.genesis.block, hash: tc.fx.genesis.hash });
    const register = (k: Key, role: 'merchant' | 'affiliate', name: string) =>
      tx('participant.register', tc.fx.operator, { participant: pub(k), role, name });
    await node.commit([
      register(node.merchant, 'merchant', 'shop'),
      register(node.affiliate, 'affiliate', 'aff'),
    ]);
    const operator = pub(tc.fx.operator);
    node.participants.set(operator, { key: operator, role: 'operator', name: 'operator', since: 0 });
    node.participants.set(pub(node.merchant), {
      key: pub(node.merchant),
      role: 'merchant',
      name: 'shop',
      since: 1,
    });
    node.participants.set(pub(node.affiliate), {
      key: pub(node.affiliate),
      role: 'affiliate',
      name: 'aff',
      since: 1,
    });
    node.balances.set(pub(node.affiliate), [{ currency: 'EUR', pending: '1200', payable: '0', paid: '0' }]);
    return node;
  }

  /** a fresh, valid commission.record by the merchant */
  commissionTx(orderId: string): DecodedTx {
    return tx('commission.record', this.merchant, {
      merchant: pub(this.merchant),
      affiliate: pub(this.affiliate),
      amount: '1200',
      currency: 'EUR',
      orderId,
      description: `order ${orderId}`,
      metadata: { campaign: 'autumn', channel: 'newsletter' },
    });
  }

  /** a search hit for a commission of this node's merchant and affiliate */
  hit(overrides: Partial<SearchHit> = {}): SearchHit {
    return {
      id: 'c'.repeat(64),
      score: 1 / 61 + 1 / 62,
      matchedBy: ['text', 'vector'],
      distance: 0.25,
      merchant: pub(this.merchant),
      merchantName: 'shop',
      affiliate: pub(this.affiliate),
      affiliateName: 'aff',
      currency: 'EUR',
      amount: '1200',
      approved: '0',
      reversed: '0',
      status: 'pending',
      orderId: 'o-1',
      description: 'order o-1',
      metadata: { campaign: 'autumn' },
      recordedHeight: 2,
      recordedAt: 1_700_000_000_000,
      updatedHeight: 2,
      ...overrides,
    };
  }

  /** commit a block and tell the subscribers */
  async commit(txs: DecodedTx[]): Promise<Receipt[]> {
    const block = this.tc.block(txs);
    const receipts = await this.tc.chain.commit(block);
    this.record(block.block, block.hash, receipts);
    for (const s of [...this.subscribers]) {
      if (!s.live || s.next !== block.block.header.height) continue;
      s.next++;
      void s.onBlock(block.block, block.hash);
    }
    return receipts;
  }

  private record(block: Block, hash: string, receipts: Receipt[]): void {
    this.blocks.push({ block, hash });
    block.txs.forEach((signed, i) => {
      const receipt = receipts[i]!;
      if (!this.transactions.has(receipt.tx))
        this.transactions.set(receipt.tx, { id: receipt.tx, tx: signed, receipt, blockHash: hash });
    });
  }

  get height(): number {
    return this.blocks.length - 1;
  }

  submit(
    value: unknown,
    opts: { wait: boolean; timeoutMs: number; signal?: AbortSignal },
  ): Promise<SubmitResult> {
    this.submitCalls.push({ tx: value, wait: opts.wait, timeoutMs: opts.timeoutMs, signal: opts.signal });
    return this.submitImpl(value, opts);
  }

  getTransaction(id: string): Promise<TransactionView | undefined> {
    return Promise.resolve(this.transactions.get(id));
  }

  getBlock(height: number): Promise<Block | undefined> {
    return Promise.resolve(this.blocks[height]?.block);
  }

  getParticipant(key: string): ParticipantView | undefined {
    return this.participants.get(key);
  }

  getAffiliateBalances(key: string): BalanceView[] | undefined {
    return this.balances.get(key);
  }

  status(): NodeStatus {
    return {
      nodeId: this.nodeId,
      chainId: this.chainId,
      role: 'leader',
      term: this.term,
      leader: this.nodeId,
      commitIndex: 10,
      appliedIndex: 10,
      height: this.height,
      headHash: this.blocks.at(-1)!.hash,
      mempool: 0,
      members: [
        { nodeId: this.nodeId, role: 'voter', match: 10, next: 11, state: 'replicate', connected: true },
      ],
    };
  }

  subscribeBlocks(after: number, onBlock: (block: Block, hash: string) => void | Promise<void>): () => void {
    const s: Subscriber = { next: Math.max(0, after + 1), live: false, onBlock };
    this.subscribers.add(s);
    void this.replay(s);
    return () => this.subscribers.delete(s);
  }

  /** Like the node: the blocks already committed, each taken before the next (backpressure), then live ones. */
  private async replay(s: Subscriber): Promise<void> {
    while (this.subscribers.has(s) && s.next <= this.height) {
      const { block, hash } = this.blocks[s.next]!;
      s.next++;
      await s.onBlock(block, hash);
    }
    s.live = true;
  }

  health(): { ok: boolean } {
    return { ok: this.healthy };
  }

  readiness(): { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } {
    return { ready: Object.values(this.checks).every((c) => c.ok), checks: this.checks };
  }

  admin(request: unknown): Promise<AdminResult> {
    this.adminCalls.push(request);
    return this.adminImpl(request);
  }

  search(request: SearchRequest): Promise<SearchResult> {
    this.searchCalls.push(request);
    return this.searchImpl(request);
  }

  syncStatus(): SyncServiceStatus | undefined {
    return this.syncStatusImpl();
  }

  syncCheck(): Promise<CheckReport> {
    return this.syncCheckImpl();
  }
}
