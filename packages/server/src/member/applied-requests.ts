/**
 * The request IDs of the most recently applied log entries, so an entry whose request is
 * already applied is skipped. Raft §8: the log may hold a command twice (a forwarded
 * proposal duplicated or re-sent on the way to the leader — the simulator logged one twice,
 * seed 17770), and exactly-once is the state machine's job. Every member applies the same
 * log in the same order, so every member keeps the same window; it is part of the snapshot,
 * so a member restored from one skips the same entries as the others. Bounded: a duplicate
 * arrives within the proposals in flight, far fewer than the window.
 */
import { assert } from '../util/assert';

export const APPLIED_REQUESTS_WINDOW = 8192;

export class AppliedRequests {
  private readonly ids = new Set<bigint>();
  private readonly order: bigint[] = [];
  private head = 0;

  constructor(private readonly capacity = APPLIED_REQUESTS_WINDOW) {
    assert(capacity > 0, 'the window holds at least one request');
  }

  has(id: bigint): boolean {
    return this.ids.has(id);
  }

  /** Records an applied request ID (not already recorded), forgetting the oldest beyond the window. */
  add(id: bigint): void {
    assert(!this.ids.has(id), 'a request is recorded once');
    this.ids.add(id);
    this.order.push(id);
    if (this.order.length - this.head > this.capacity) this.ids.delete(this.order[this.head++]);
    // Compact the queue now and then (amortized O(1)).
    if (this.head > this.capacity) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Oldest first. */
  toJSON(): string[] {
    return this.order.slice(this.head).map(String);
  }

  static fromJSON(ids: readonly string[] | undefined, capacity = APPLIED_REQUESTS_WINDOW): AppliedRequests {
    const w = new AppliedRequests(capacity);
    for (const s of ids ?? []) w.add(BigInt(s));
    return w;
  }
}
