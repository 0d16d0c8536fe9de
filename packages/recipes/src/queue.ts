/**
 * Queue: a FIFO work queue in the store (etcd's `contrib/recipes.Queue`). Items are keys under
 * `<name>/`, ordered by create revision; `dequeue()` removes the first item atomically, so each
 * item goes to exactly one consumer.
 *
 * Layout: `<name>/<16 hex digits of time><8 hex digits of randomness>` holding the item. The
 * name only has to be unique (enqueue creates it with a create-revision-0 guard and retries on
 * the rare collision); order comes from the create revision, not from the name. (etcd's
 * recipe derives a sequence number from the last key, which needs a guard key `__<name>`; the
 * create revision is already a sequence, so we do without.)
 *
 * dequeue: read the first item; delete it with a txn guarded by its mod revision; if another
 * consumer got it first the guard fails and we read again. When the queue is empty, watch the
 * prefix (puts only) from the read's revision + 1 and try again when something arrives.
 */
import { randomBytes } from 'node:crypto';
import { compare, op, WatchCompactedError, type Client, type Int64Input } from '@coord/client';
import { recipePrefix } from './keys';
import { WaitScope, type WaitOptions } from './wait';

/** Give up enqueueing after this many name collisions in a row (they need equal clocks and 32 random bits). */
const ENQUEUE_ATTEMPTS_MAX = 8;

export interface QueueItem {
  readonly key: string;
  readonly value: Buffer;
  /** The item's create revision: its place in the queue. */
  readonly createRevision: bigint;
}

export class Queue {
  readonly prefix: string;

  constructor(
    readonly client: Client,
    readonly name: string,
  ) {
    this.prefix = recipePrefix(name);
  }

  /** Append an item. With `lease`, the item vanishes with that lease. */
  async enqueue(value: string | Buffer, options: { lease?: Int64Input; timeoutMs?: number } = {}): Promise<QueueItem> {
    for (let attempt = 0; attempt < ENQUEUE_ATTEMPTS_MAX; attempt++) {
      const key = this.prefix + Date.now().toString(16).padStart(16, '0') + randomBytes(4).toString('hex');
      const res = await this.client.txn({
        compare: [compare.create(key, '=', 0)],
        success: [op.put(key, value, { lease: options.lease })],
        timeoutMs: options.timeoutMs,
      });
      if (res.succeeded) return { key, value: Buffer.from(value), createRevision: res.header.revision };
    }
    throw new Error(`queue ${this.name}: could not find a free item name in ${ENQUEUE_ATTEMPTS_MAX} attempts`);
  }

  /** Remove and return the first item, waiting for one if the queue is empty. */
  async dequeue(options: WaitOptions = {}): Promise<QueueItem> {
    const scope = new WaitScope(`dequeue ${this.name}`, options);
    try {
      // Each pass either takes an item, loses a race for one (another consumer took it), or
      // waits for a put: bounded by the items and puts that happen meanwhile.
      for (;;) {
        const got = await this.takeFirst(scope.signal);
        if (got.item) return got.item;
        if (got.raced) continue;
        await this.waitForPut(got.revision + 1n, scope.signal);
      }
    } catch (err) {
      throw scope.error(err);
    } finally {
      scope.dispose();
    }
  }

  /** Remove and return the first item, or undefined when the queue is empty. */
  async tryDequeue(options: { signal?: AbortSignal } = {}): Promise<QueueItem | undefined> {
    const signal = options.signal ?? new AbortController().signal;
    for (;;) {
      const got = await this.takeFirst(signal);
      if (!got.raced) return got.item;
    }
  }

  /** How many items are queued. */
  async length(options: { signal?: AbortSignal } = {}): Promise<number> {
    const res = await this.client.getRange({ key: this.prefix, prefix: true, countOnly: true, ...options });
    return Number(res.count);
  }

  private async takeFirst(signal: AbortSignal): Promise<{ item?: QueueItem; raced: boolean; revision: bigint }> {
    const res = await this.client.getRange({ key: this.prefix, prefix: true, sortTarget: 'create', sortOrder: 'ascend', limit: 1, signal });
    const kv = res.kvs[0];
    if (!kv) return { raced: false, revision: res.header.revision };
    const del = await this.client.txn({ compare: [compare.mod(kv.key, '=', kv.modRevision)], success: [op.delete(kv.key)], signal });
    if (!del.succeeded) return { raced: true, revision: del.header.revision };
    return { item: { key: kv.keyString(), value: kv.value, createRevision: kv.createRevision }, raced: false, revision: del.header.revision };
  }

  private async waitForPut(startRevision: bigint, signal: AbortSignal): Promise<void> {
    const watcher = this.client.watch({ key: this.prefix, prefix: true, startRevision, noDelete: true, signal });
    try {
      for await (const r of watcher) if (r.events.length > 0) return;
      signal.throwIfAborted();
    } catch (err) {
      if (err instanceof WatchCompactedError) return; // read again
      throw err;
    } finally {
      watcher.cancel();
    }
  }
}
