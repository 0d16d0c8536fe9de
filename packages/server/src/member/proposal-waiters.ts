/**
 * Clients waiting for their proposals, keyed by request ID (etcd's wait.Wait): a proposal
 * may be forwarded to the leader and come back in the log at an index nobody predicted,
 * so the ID inside the entry, not the index, finds the waiter when any member applies it.
 *
 * Each waiter has a deadline (etcd's request timeout: 5 s + 2 election timeouts); a sweep
 * fails the overdue ones with "request timed out" (or "... possibly due to previous
 * leader failure" when the leader changed meanwhile), as etcd does.
 */
import { EtcdError } from '../errors';

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
  readonly deadline: number;
  readonly leaderEpoch: number;
}

export class ProposalWaiters {
  private readonly waiters = new Map<bigint, Waiter>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Bumped at every leader change. */
  private leaderEpoch = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly capacity: number,
  ) {}

  start(sweepIntervalMs: number): void {
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepIntervalMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.waiters.size;
  }

  get full(): boolean {
    return this.waiters.size >= this.capacity;
  }

  /** Registers a waiter; the promise settles when `trigger` or `fail` is called for `id`, or at the deadline. */
  wait(id: bigint): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs, leaderEpoch: this.leaderEpoch });
    });
  }

  has(id: bigint): boolean {
    return this.waiters.has(id);
  }

  trigger(id: bigint, value: unknown): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.resolve(value);
  }

  fail(id: bigint, err: Error): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.reject(err);
  }

  leaderChanged(): void {
    this.leaderEpoch++;
  }

  private sweep(now: number): void {
    // Insertion order is deadline order (one fixed timeout): stop at the first one not due.
    for (const [id, w] of this.waiters) {
      if (w.deadline > now) break;
      this.waiters.delete(id);
      w.reject(new EtcdError(w.leaderEpoch !== this.leaderEpoch ? 'timeoutDueToLeaderFail' : 'timeout'));
    }
  }

  failAll(err: Error): void {
    clearInterval(this.sweeper);
    for (const [, w] of this.waiters) w.reject(err);
    this.waiters.clear();
  }
}
