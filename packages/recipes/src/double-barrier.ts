/**
 * DoubleBarrier: `count` participants enter together and leave together (etcd's
 * `contrib/recipes.DoubleBarrier`, Curator's DistributedDoubleBarrier).
 *
 * Layout (etcd's, with our key naming): under `<key>/waiters/` one key per participant,
 * `<key>/waiters/<lease id in %x>`, with its session's lease; and `<key>/ready`, put by the
 * participant that completes the count.
 *
 * - enter(): create our waiter key; if we are the `count`-th, put `ready`; otherwise wait for
 *   the put of `ready` (watched from our key's revision, so a put after we joined is never
 *   missed). More than `count` waiters: `TooManyClientsError` (our key is removed).
 * - leave(): the waiter with the lowest create revision leaves last: it waits for the others'
 *   keys to go, highest first; every other waiter deletes its key and waits for the lowest's
 *   delete. The last one deletes `ready`, resetting the barrier. Because keys carry session
 *   leases, a participant that dies is removed by the server and the others are not stuck.
 */
import { compare, op, WatchCompactedError, type KeyValue } from '@coord/client';
import { LockBusyError, TooManyClientsError } from './errors';
import { leaseKeySuffix } from './keys';
import type { Session } from './session';
import { WaitScope, waitForDelete, type WaitOptions } from './wait';

export class DoubleBarrier {
  private readonly waiters: string;
  private readonly ready: string;
  /** Our waiter key. */
  readonly myKey: string;
  private entered = false;
  private releaseClaim: (() => void) | undefined;

  constructor(
    readonly session: Session,
    readonly key: string,
    readonly count: number,
  ) {
    if (typeof key !== 'string' || key.length === 0) throw new TypeError('DoubleBarrier needs a non-empty key');
    if (!Number.isSafeInteger(count) || count < 1) throw new TypeError(`count must be a positive integer, got ${count}`);
    this.waiters = `${key}/waiters/`;
    this.ready = `${key}/ready`;
    this.myKey = this.waiters + leaseKeySuffix(session.leaseId);
  }

  /** Wait until `count` participants have entered. */
  async enter(options: WaitOptions = {}): Promise<void> {
    if (this.entered || this.releaseClaim) throw new LockBusyError(`${this.myKey} already entered`);
    this.session.throwIfEnded();
    const client = this.session.client;
    this.releaseClaim = this.session.claim(this.myKey);
    const scope = new WaitScope(`enter ${this.key}`, options, [this.session.signal]);
    try {
      const res = await client.txn({
        compare: [compare.create(this.myKey, '=', 0)],
        success: [op.put(this.myKey, '', { lease: this.session.leaseId }), op.get(this.waiters, { prefix: true, countOnly: true })],
        failure: [op.get(this.myKey), op.get(this.waiters, { prefix: true, countOnly: true })],
        signal: scope.signal,
      });
      const got = res.responses[1];
      const n = got.op === 'range' ? Number(got.count) : 0;
      const mine = res.responses[0];
      const myRev = res.succeeded ? res.header.revision : mine.op === 'range' && mine.kvs[0] ? mine.kvs[0].createRevision : res.header.revision;
      if (n > this.count) {
        await client.delete(this.myKey);
        throw new TooManyClientsError(`${n} waiters for a count of ${this.count}`);
      }
      if (n === this.count) {
        await client.put(this.ready, '', { signal: scope.signal });
      } else {
        await this.waitForReady(myRev, scope.signal);
      }
      this.entered = true;
    } catch (err) {
      this.releaseClaim?.();
      this.releaseClaim = undefined;
      throw scope.error(err);
    } finally {
      scope.dispose();
    }
  }

  /** Wait until every participant has called `leave()` (or died). */
  async leave(options: WaitOptions = {}): Promise<void> {
    const client = this.session.client;
    const scope = new WaitScope(`leave ${this.key}`, options);
    try {
      // Each pass follows the delete of another participant's key: bounded by `count`.
      for (;;) {
        const res = await client.getRange({ key: this.waiters, prefix: true, sortTarget: 'create', sortOrder: 'ascend', signal: scope.signal });
        const kvs = res.kvs;
        const mine = kvs.find((kv) => kv.keyString() === this.myKey);
        if (!mine) break;
        if (kvs.length === 1) {
          // The last one out resets the barrier.
          await client.txn({ success: [op.delete(this.ready), op.delete(this.myKey)], signal: scope.signal });
          break;
        }
        const lowest = kvs[0];
        const highest: KeyValue = kvs[kvs.length - 1];
        if (mine === lowest) {
          await waitForDelete(client, highest.key, res.header.revision + 1n, scope.signal);
          continue;
        }
        const del = await client.delete(this.myKey, { signal: scope.signal });
        await waitForDelete(client, lowest.key, del.header.revision + 1n, scope.signal);
        break;
      }
      this.entered = false;
      this.releaseClaim?.();
      this.releaseClaim = undefined;
    } catch (err) {
      throw scope.error(err);
    } finally {
      scope.dispose();
    }
  }

  private async waitForReady(fromRevision: bigint, signal: AbortSignal): Promise<void> {
    const client = this.session.client;
    let start = fromRevision;
    // Each pass ends with the put, or re-reads after a compaction.
    for (;;) {
      const watcher = client.watch({ key: this.ready, startRevision: start, noDelete: true, signal });
      try {
        for await (const r of watcher) if (r.events.length > 0) return;
        signal.throwIfAborted();
      } catch (err) {
        if (!(err instanceof WatchCompactedError)) throw err;
        const res = await client.getRange({ key: this.ready, signal });
        if (res.kvs[0] && res.kvs[0].modRevision >= fromRevision) return;
        start = res.header.revision + 1n;
      } finally {
        watcher.cancel();
      }
    }
  }
}
