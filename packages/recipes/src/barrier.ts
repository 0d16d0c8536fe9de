/**
 * Barrier: one party holds a barrier up, any number wait until it is released (etcd's
 * `contrib/recipes.Barrier`). The barrier is up while its key exists.
 *
 * Layout: the single key `<key>`, empty value. etcd's recipe writes it without a lease; pass a
 * session to `hold()` to attach its lease, so the barrier falls when the holder dies.
 * `wait()` reads the key and, if it exists, watches only that key for its delete from the
 * read's revision + 1 (no gap: a release right after the read is seen).
 */
import { compare, op, type Client } from '@coord/client';
import type { Session } from './session';
import { WaitScope, waitForDelete, type WaitOptions } from './wait';

export class Barrier {
  constructor(
    readonly client: Client,
    /** The barrier's key. */
    readonly key: string,
  ) {
    if (typeof key !== 'string' || key.length === 0) throw new TypeError('Barrier needs a non-empty key');
  }

  /** Raise the barrier; false if it was already up. With `session`, it falls with the session. */
  async hold(options: { session?: Session; timeoutMs?: number } = {}): Promise<boolean> {
    const res = await this.client.txn({
      compare: [compare.create(this.key, '=', 0)],
      success: [op.put(this.key, '', { lease: options.session?.leaseId })],
      timeoutMs: options.timeoutMs,
    });
    return res.succeeded;
  }

  /** Lower the barrier: every waiter proceeds. */
  async release(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.client.delete(this.key, options);
  }

  /** Resolve once the barrier is down (at once if it is not up). */
  async wait(options: WaitOptions = {}): Promise<void> {
    const scope = new WaitScope(`wait on barrier ${this.key}`, options);
    try {
      // Each pass ends when the key is gone, or re-reads after a compaction.
      for (;;) {
        const res = await this.client.getRange({ key: this.key, signal: scope.signal });
        if (res.kvs.length === 0) return;
        if (await waitForDelete(this.client, this.key, res.header.revision + 1n, scope.signal)) return;
      }
    } catch (err) {
      throw scope.error(err);
    } finally {
      scope.dispose();
    }
  }
}
