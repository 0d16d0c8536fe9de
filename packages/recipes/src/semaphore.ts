/**
 * Semaphore: at most `limit` holders at a time (Curator's InterProcessSemaphoreV2; etcd's
 * recipes have none). Built like the Mutex, of which it is the generalisation:
 *
 * Layout: each participant's key is `<name>/<lease id in %x>` with its session's lease; its
 * value is the limit it was created with (decimal), for diagnostics. The holders are the
 * `limit` keys with the lowest create revisions. Every participant must use the same limit
 * (as with Curator's; nothing enforces it).
 *
 * Waiting without a herd. Watching one predecessor is not enough here (with limit 2 and
 * holders h1, h2, a waiter watching h1 would miss h2's release), and watching the whole prefix
 * wakes every waiter on every release. Instead, with k = the number of keys created before ours:
 * - k < limit: we hold.
 * - k = limit (the first waiter): watch deletes under the prefix and wake on the delete of one
 *   of those `limit` keys; then read again.
 * - k > limit: watch only our immediate predecessor, for its delete *or a put*; then read again.
 * A waiter that is admitted after waiting re-puts its own key (same value and lease, create
 * revision unchanged): that put wakes its successor, which may now be the first waiter. So a
 * release wakes the first waiter, whose admission wakes the next one: O(1) wake-ups per release,
 * and no read by anybody else.
 *
 * A permit is lost like a Mutex hold (session lost or key deleted: `lost`, `signal`); its
 * create revision is a token that grows with every admission, but unlike the Mutex's it is
 * not a fencing token for a single resource (up to `limit` holders are legitimate at once).
 */
import { EventEmitter } from 'node:events';
import {
  compare,
  op,
  WatchCompactedError,
  type Client,
  type Compare,
  type KeyValue,
  type ResponseHeader,
  type WatchOptions,
} from '@coord/client';
import { LockBusyError, LockLostError, NotLockedError, SessionExpiredError, type LostReason } from './errors';
import { Hold } from './hold';
import { leaseKey, recipePrefix } from './keys';
import type { Session } from './session';
import { dropTicket, takeTicket } from './ticket';
import { WaitScope, type WaitOptions } from './wait';

/** Watch until an event's key satisfies `wake` (true), or the history is compacted (false). */
async function watchUntil(client: Client, options: WatchOptions & { signal: AbortSignal }, wake: (key: string) => boolean): Promise<boolean> {
  const watcher = client.watch(options);
  try {
    for await (const r of watcher) if (r.events.some((e) => wake(e.kv.keyString('latin1')))) return true;
    options.signal.throwIfAborted();
    return false;
  } catch (err) {
    if (err instanceof WatchCompactedError) return false;
    throw err;
  } finally {
    watcher.cancel();
  }
}

export interface Permit {
  readonly key: string;
  readonly createRevision: bigint;
  readonly header: ResponseHeader;
  /** Aborted (reason: `LockLostError`) if the permit is lost; also when released. */
  readonly signal: AbortSignal;
}

const CLEANUP_TIMEOUT_MS = 5000;

export class Semaphore extends EventEmitter {
  readonly prefix: string;
  readonly key: string;
  private current: 'idle' | 'acquiring' | 'held' | 'releasing' = 'idle';
  private hold: Hold | undefined;
  private releaseClaim: (() => void) | undefined;

  constructor(
    readonly session: Session,
    readonly name: string,
    /** How many may hold at once. */
    readonly limit: number,
  ) {
    super();
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError(`limit must be a positive integer, got ${limit}`);
    this.prefix = recipePrefix(name);
    this.key = leaseKey(name, session.leaseId);
  }

  get state(): 'idle' | 'acquiring' | 'held' | 'releasing' {
    return this.current;
  }

  get held(): boolean {
    return this.current === 'held';
  }

  override on(event: 'lost', listener: (err: LockLostError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  /** Wait for a permit. Errors as `Mutex.lock()`; a failed wait removes our key. */
  async acquire(options: WaitOptions = {}): Promise<Permit> {
    return (await this.take(options, false))!;
  }

  /** Take a permit only if one is free now; false otherwise (our key is removed again). */
  async tryAcquire(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<boolean> {
    return (await this.take(options, true)) !== undefined;
  }

  /** Give the permit back. No-op when not held. */
  async release(options: { timeoutMs?: number } = {}): Promise<void> {
    const hold = this.hold;
    if (this.current !== 'held' || !hold) {
      if (this.current === 'acquiring' || this.current === 'releasing') throw new LockBusyError(`release during ${this.current}`);
      return;
    }
    this.current = 'releasing';
    hold.beginRelease();
    try {
      await dropTicket(this.session.client, this.key, hold.createRevision, this.session.leaseId, options.timeoutMs);
    } catch (err) {
      hold.cancelRelease();
      if (this.current === 'releasing') this.current = hold.active ? 'held' : 'idle';
      throw err;
    }
    hold.release(new NotLockedError('released'));
    this.finish();
  }

  /** Run `fn` with a permit, releasing it afterwards (see `Mutex.withLock`). */
  async withPermit<T>(fn: (permit: Permit) => Promise<T> | T, options: WaitOptions = {}): Promise<T> {
    const permit = await this.acquire(options);
    let result: T;
    try {
      result = await fn(permit);
    } catch (err) {
      await this.release().catch(() => undefined);
      throw err;
    }
    const lost = permit.signal.aborted ? permit.signal.reason : undefined;
    await this.release();
    if (lost instanceof LockLostError) throw lost;
    return result;
  }

  /** A compare that holds while our permit's key exists with its create revision. */
  isHolder(): Compare {
    const hold = this.hold;
    if (this.current !== 'held' || !hold) throw new NotLockedError(this.key);
    return compare.create(this.key, '=', hold.createRevision);
  }

  /** The current holders (the first `limit` keys by create revision). */
  async holders(options: { signal?: AbortSignal } = {}): Promise<KeyValue[]> {
    const res = await this.session.client.getRange({ key: this.prefix, prefix: true, sortTarget: 'create', sortOrder: 'ascend', limit: this.limit, ...options });
    return res.kvs;
  }

  private async take(options: WaitOptions, tryOnly: boolean): Promise<Permit | undefined> {
    if (this.current !== 'idle') throw new LockBusyError(`${this.key} is ${this.current}`);
    this.session.throwIfEnded();
    this.releaseClaim = this.session.claim(this.key);
    this.current = 'acquiring';
    const scope = new WaitScope(`acquire ${this.name}`, options, [this.session.signal]);
    let createRevision: bigint | undefined;
    try {
      const ticket = await takeTicket(this.session, this.prefix, this.key, String(this.limit), this.limit, scope.signal);
      createRevision = ticket.createRevision;
      let header = ticket.header;
      if (!ticket.acquired) {
        if (tryOnly) {
          await dropTicket(this.session.client, this.key, createRevision, this.session.leaseId, options.timeoutMs);
          this.finish();
          return undefined;
        }
        await this.waitForSlot(createRevision, scope.signal);
        // Wake our successor (see the file comment): a put of our key as it is.
        await this.session.client.txn({
          compare: [compare.create(this.key, '=', createRevision)],
          success: [op.put(this.key, String(this.limit), { lease: this.session.leaseId })],
          signal: scope.signal,
        });
        const mine = await this.session.client.getRange({ key: this.key, signal: scope.signal });
        const kv = mine.kvs[0];
        if (!kv || kv.createRevision !== createRevision) {
          scope.check();
          throw this.session.alive ? new LockLostError(this.key, 'key-deleted') : new SessionExpiredError(this.key);
        }
        header = mine.header;
      }
      scope.check();
      const rev = createRevision;
      const hold = new Hold(this.session, this.key, rev, header.revision + 1n, {
        error: (reason: LostReason, cause: unknown) => new LockLostError(this.key, reason, { cause }),
        lost: (err) => {
          if (this.hold !== hold) return;
          this.finish();
          this.emit('lost', err);
        },
      });
      this.hold = hold;
      this.current = 'held';
      return { key: this.key, createRevision: rev, header, signal: hold.signal };
    } catch (err) {
      const e = scope.error(err);
      if (this.session.alive) {
        await dropTicket(this.session.client, this.key, createRevision, this.session.leaseId, CLEANUP_TIMEOUT_MS).catch(() => undefined);
      }
      this.finish();
      throw e;
    } finally {
      scope.dispose();
    }
  }

  /** Wait until fewer than `limit` keys precede ours (see the file comment). */
  private async waitForSlot(myRevision: bigint, signal: AbortSignal): Promise<void> {
    const client = this.session.client;
    // Each pass follows the delete of a predecessor, or a put by the one before us, or a
    // compaction: predecessors only go, and each one re-puts at most once.
    for (;;) {
      signal.throwIfAborted();
      const res = await client.getRange({
        key: this.prefix,
        prefix: true,
        maxCreateRevision: myRevision - 1n,
        sortTarget: 'create',
        sortOrder: 'descend',
        limit: this.limit + 1,
        keysOnly: true,
        signal,
      });
      const before = res.kvs.length;
      if (before < this.limit) return;
      const from = res.header.revision + 1n;
      if (before === this.limit) {
        const holders = new Set(res.kvs.map((kv) => kv.keyString('latin1')));
        await watchUntil(client, { key: this.prefix, prefix: true, startRevision: from, noPut: true, signal }, (key) => holders.has(key));
      } else {
        await watchUntil(client, { key: res.kvs[0].key, startRevision: from, signal }, () => true);
      }
    }
  }

  private finish(): void {
    this.current = 'idle';
    this.hold = undefined;
    this.releaseClaim?.();
    this.releaseClaim = undefined;
  }
}
