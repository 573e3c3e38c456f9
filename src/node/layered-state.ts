import type { StateRecord, StateView } from '../ledger/index.js';

/**
 * The state a leader's log will produce: the applied state with the writes of
 * every block proposed but not yet applied layered on top, oldest first. The
 * leader builds the next block against it; when a block is applied its layer
 * is dropped (its writes are now in the base).
 */
export class LayeredState implements StateView {
  private layers: { height: number; writes: ReadonlyMap<string, StateRecord> }[] = [];

  constructor(private readonly base: StateView) {}

  get(key: string): StateRecord | undefined {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const v = this.layers[i]!.writes.get(key);
      if (v !== undefined) return v;
    }
    return this.base.get(key);
  }

  push(height: number, writes: ReadonlyMap<string, StateRecord>): void {
    this.layers.push({ height, writes });
  }

  /** drop layers of blocks at or below `height` (applied now) */
  dropThrough(height: number): void {
    this.layers = this.layers.filter((l) => l.height > height);
  }

  clear(): void {
    this.layers = [];
  }

  get depth(): number {
    return this.layers.length;
  }
}
