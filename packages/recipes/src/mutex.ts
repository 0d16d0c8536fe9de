/**
 * Mutex: a distributed lock with a fair queue and a fencing token, laid out exactly as etcd's
 * `concurrency.Mutex` so that `etcdctl lock NAME`, Go programs and coord contend for the same
 * lock.
 *
 * Layout: each contender's key is `<name>/<lease id in %x>` (see keys.ts), attached to its
 * session's lease, with an empty value. The holder is the key with the lowest create revision.
 *
 * Algorithm (etcd's, with the gaps closed):
 * 1. One txn creates our key if absent and reads the first key of the prefix; if that is ours,
 *    we hold the lock (one RPC when uncontended).
 * 2. Otherwise we wait until no key with a lower create revision remains, watching only our
 *    immediate predecessor's delete (wait.ts): waiters queue in create-revision order (first
 *    come, first served) and an unlock wakes exactly one waiter.
 * 3. Before returning we read our key back: if it is gone (session expired, or deleted by an
 *    operator while we waited) we fail with `SessionExpiredError` / `LockLostError` instead of
 *    returning a lock we do not hold (etcd 3.4 added the same check).
 * 4. Waiting stops with the session: if the session is lost or closed meanwhile, `lock()`
 *    rejects with its reason at once (etcd's Mutex keeps waiting on a dead session).
 *
 * While held, the lock is lost when the session ends or the key is deleted (hold.ts): the
 * mutex's `signal` aborts with a `LockLostError` and `lost` is emitted. Because the session
 * declares itself lost before the server could expire its lease, a holder that stops when
 * `signal` aborts stops before the next contender can be granted the lock.
 *
 * Fencing: `fencingToken` is our key's create revision. Tokens of successive holders strictly
 * increase (a holder's key was created after every key it waited for, and later keys get later
 * revisions). Pass the token to the resource you protect so it can refuse stale holders, or
 * guard etcd writes with `isOwner()` / `txnIfOwner()`, which compare the create revision on the
 * server, so a write from a holder that lost the lock fails even if the holder does not know yet.
 */
import { EventEmitter } from 'node:events';
import {
  compare,
  type Compare,
  type Op,
  type ResponseHeader,
  type TxnCallOptions,
  type TxnResult,
} from '@coord/client';
import { LockBusyError, LockLostError, NotLockedError, SessionExpiredError, type LostReason } from './errors';
import { Hold } from './hold';
import { releaseRetrying } from './release';
import { leaseKey, recipePrefix } from './keys';
import type { Session } from './session';
import { dropTicket, takeTicket } from './ticket';
import { WaitScope, waitForPredecessors, type WaitOptions } from './wait';

export type MutexState = 'idle' | 'locking' | 'held' | 'unlocking';

/** What a successful `lock()` returns, and what `withLock(fn)` passes to `fn`. */
export interface LockInfo {
  /** The lock key, `<name>/<lease hex>`. */
  readonly key: string;
  /** The key's create revision: strictly greater than every earlier holder's. */
  readonly fencingToken: bigint;
  /** The header of the read that confirmed the acquisition. */
  readonly header: ResponseHeader;
  /** Aborted (reason: `LockLostError`) if the lock is lost; also aborted when it is released. */
  readonly signal: AbortSignal;
}

export type LockOptions = WaitOptions;

/** How long a best-effort cleanup (deleting our key after a failed wait) may take. */
const CLEANUP_TIMEOUT_MS = 5000;

export class Mutex extends EventEmitter {
  /** `<name>/`: every contender's key is under it. */
  readonly prefix: string;
  /** This session's key: `<name>/<lease hex>`. */
  readonly key: string;
  private current: MutexState = 'idle';
  private hold: Hold | undefined;
  private header: ResponseHeader | undefined;
  private releaseClaim: (() => void) | undefined;
  private lostError: LockLostError | undefined;

  constructor(
    readonly session: Session,
    /** The lock's name, as given to `etcdctl lock NAME`. */
    readonly name: string,
  ) {
    super();
    this.prefix = recipePrefix(name);
    this.key = leaseKey(name, session.leaseId);
  }

  get state(): MutexState {
    return this.current;
  }

  /** True while this mutex believes it holds the lock. */
  get held(): boolean {
    return this.current === 'held';
  }

  /** The create revision of our key while held (undefined otherwise). */
  get fencingToken(): bigint | undefined {
    return this.current === 'held' ? this.hold?.createRevision : undefined;
  }

  /** The signal of the current hold (see `LockInfo.signal`); undefined when not held. */
  get signal(): AbortSignal | undefined {
    return this.current === 'held' ? this.hold?.signal : undefined;
  }

  /** Why the last hold was lost, if it was. Cleared by the next `lock()`. */
  get lostReason(): LockLostError | undefined {
    return this.lostError;
  }

  override on(event: 'lost', listener: (err: LockLostError) => void): this;
  override on(event: 'acquired', listener: (info: LockInfo) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'lost', listener: (err: LockLostError) => void): this;
  override once(event: 'acquired', listener: (info: LockInfo) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /**
   * Acquire the lock, waiting in create-revision order. Rejects with `WaitTimeoutError`
   * after `timeoutMs`, the client's `AbortError` when `signal` aborts, `SessionExpiredError` /
   * `SessionClosedError` when the session ends meanwhile, or `LockBusyError` if this object is
   * already locking or holding. A failed wait deletes our queued key.
   */
  async lock(options: LockOptions = {}): Promise<LockInfo> {
    return this.acquire(options, false) as Promise<LockInfo>;
  }

  /**
   * Acquire the lock only if nobody holds it or waits before us: true when acquired. When not,
   * our key is removed again and false is returned (etcd's `TryLock` returns `ErrLocked`).
   */
  async tryLock(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<boolean> {
    return (await this.acquire(options, true)) !== undefined;
  }

  /**
   * Release the lock: delete our key if it is still the one we created. No-op when not held.
   * If the delete fails (e.g. unreachable server) the mutex stays held and the error is
   * thrown, so the caller may retry; the lock is released anyway when the session ends.
   */
  async unlock(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.current !== 'held') {
      if (this.current === 'locking' || this.current === 'unlocking') throw new LockBusyError(`unlock during ${this.current}`);
      return;
    }
    const hold = this.hold!;
    this.current = 'unlocking';
    hold.beginRelease();
    try {
      await dropTicket(this.session.client, this.key, hold.createRevision, this.session.leaseId, options.timeoutMs);
    } catch (err) {
      hold.cancelRelease();
      // The key may still be ours on the server: keep believing we hold it, unless lost meanwhile.
      if (this.current === 'unlocking') this.current = hold.active ? 'held' : 'idle';
      throw err;
    }
    hold.release(new NotLockedError('released'));
    this.finishHold();
  }

  /**
   * Run `fn` while holding the lock and release it afterwards, also when `fn` throws. `fn`
   * gets the lock's key, fencing token and `signal` (aborted if the lock is lost: stop then).
   * If the lock was lost while `fn` ran, rejects with the `LockLostError` even if `fn`
   * resolved, since the critical section was not fully protected.
   */
  async withLock<T>(fn: (lock: LockInfo) => Promise<T> | T, options: LockOptions = {}): Promise<T> {
    const info = await this.lock(options);
    let result: T;
    try {
      result = await fn(info);
    } catch (err) {
      await this.release().catch(() => undefined);
      throw err;
    }
    const lost = info.signal.aborted ? info.signal.reason : undefined;
    await this.release();
    if (lost instanceof LockLostError) throw lost;
    return result;
  }

  /** withLock's release: retried while held and the session lives (release.ts says why). */
  private release(): Promise<void> {
    return releaseRetrying(() => this.unlock(), () => this.current === 'held', () => this.session.alive);
  }

  /**
   * A compare that holds only while our key exists with the create revision we acquired it
   * with (etcd's `Mutex.IsOwner`). Throws `NotLockedError` when not held.
   */
  isOwner(): Compare {
    const token = this.fencingToken;
    if (token === undefined) throw new NotLockedError(this.key);
    return compare.create(this.key, '=', token);
  }

  /**
   * A transaction that runs `ops` only if we still own the lock, checked by the server. When
   * the compare fails the lock is gone: the mutex is declared lost (reason `key-deleted`) and
   * the result has `succeeded: false`. Throws `NotLockedError` when not held.
   */
  async txnIfOwner(ops: Op[], options: Omit<TxnCallOptions, 'compare' | 'success'> & { compare?: Compare[] } = {}): Promise<TxnResult> {
    const hold = this.hold;
    const guard = this.isOwner();
    const res = await this.session.client.txn({ ...options, compare: [guard, ...(options.compare ?? [])], success: ops });
    if (!res.succeeded && hold) {
      // With extra compares, find out whether ours is the one that failed.
      let gone = true;
      if ((options.compare ?? []).length > 0) {
        const kv = await this.session.client.get(this.key).catch(() => null);
        gone = kv !== null && (kv === undefined || kv.createRevision !== hold.createRevision);
      }
      if (gone) hold.lose('key-deleted', undefined);
    }
    return res;
  }

  // ---- internals -----------------------------------------------------------------------------

  private async acquire(options: WaitOptions, tryOnly: boolean): Promise<LockInfo | undefined> {
    if (this.current !== 'idle') throw new LockBusyError(`${this.key} is ${this.current}`);
    this.session.throwIfEnded();
    this.releaseClaim = this.session.claim(this.key);
    this.current = 'locking';
    this.lostError = undefined;
    const scope = new WaitScope(`lock ${this.name}`, options, [this.session.signal]);
    let createRevision: bigint | undefined;
    try {
      const ticket = await takeTicket(this.session, this.prefix, this.key, '', 1, scope.signal);
      createRevision = ticket.createRevision;
      let header = ticket.header;
      if (!ticket.acquired) {
        if (tryOnly) {
          await dropTicket(this.session.client, this.key, createRevision, this.session.leaseId, options.timeoutMs);
          this.finishHold();
          return undefined;
        }
        await waitForPredecessors(this.session.client, this.prefix, createRevision, scope.signal);
        // Our key must still be there with our revision: the session may have expired, or
        // somebody deleted the key, while we waited (then a later waiter may hold the lock).
        const mine = await this.session.client.getRange({ key: this.key, signal: scope.signal });
        const kv = mine.kvs[0];
        if (!kv || kv.createRevision !== createRevision) {
          scope.check();
          throw this.session.alive ? new LockLostError(this.key, 'key-deleted') : new SessionExpiredError(this.key);
        }
        header = mine.header;
      }
      scope.check();
      return this.startHold(createRevision, header);
    } catch (err) {
      const e = scope.error(err);
      // etcd: "release lock key if wait failed". Our key would block every later waiter
      // until the session ends. Skipped when the session has ended (its keys go with it).
      if (this.session.alive) {
        await dropTicket(this.session.client, this.key, createRevision, this.session.leaseId, CLEANUP_TIMEOUT_MS).catch(() => undefined);
      }
      this.finishHold();
      throw e;
    } finally {
      scope.dispose();
    }
  }

  private startHold(createRevision: bigint, header: ResponseHeader): LockInfo {
    this.header = header;
    const hold = new Hold(this.session, this.key, createRevision, header.revision + 1n, {
      error: (reason: LostReason, cause: unknown) => new LockLostError(this.key, reason, { cause }),
      lost: (err) => {
        if (this.hold !== hold) return;
        this.lostError = err as LockLostError;
        this.finishHold();
        this.emit('lost', err);
      },
    });
    this.hold = hold;
    this.current = 'held';
    const info: LockInfo = { key: this.key, fencingToken: createRevision, header, signal: hold.signal };
    this.emit('acquired', info);
    return info;
  }

  private finishHold(): void {
    this.current = 'idle';
    this.hold = undefined;
    this.releaseClaim?.();
    this.releaseClaim = undefined;
  }

  /** The header of the read that confirmed the last acquisition (etcd's `Mutex.Header`). */
  get lastHeader(): ResponseHeader | undefined {
    return this.header;
  }
}
