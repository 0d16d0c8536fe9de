/**
 * RedisMutex: a distributed lock over Redis with a fair queue and a fencing token, shaped like
 * the etcd-backed `Mutex` (same method, option, event and error names) so callers can switch.
 *
 * Layout and algorithm: see keys.ts and queue.ts. In short, a ZSET queue of session tokens and
 * a holder record; a release hands the lock to the first live waiter atomically (one Lua
 * script), with the next value of an INCR counter as its fencing token, and wakes that waiter
 * alone through its own pub/sub channel.
 *
 * Fencing: `fencingToken` strictly increases from holder to holder *as long as the counter
 * survives* (see "Redis backend" in docs/RECIPES.md: an asynchronous-replication failover can
 * lose recent increments and hand out a token again). Pass it to the resource you protect. For
 * writes to the same Redis, `evalIfOwner(lua, keys, args)` runs your script only while the
 * holder record still names this session with this token and the session key exists, checked
 * atomically by Redis, so a holder that lost the lock cannot write even if it does not know yet.
 *
 * Differences from the etcd Mutex:
 * - keys are not shared with `etcdctl lock` (this is Redis); `key` names the holder record;
 * - `isOwner()` is a server round trip returning a boolean (etcd's returns a txn Compare);
 *   `txnIfOwner` is `evalIfOwner` (a Lua script, since Redis has no etcd-style txn);
 * - there is no `lastHeader` (Redis has no revisions);
 * - a holder record deleted by an operator is noticed at the next heartbeat (TTL / 3), not at once.
 */
import { EventEmitter } from 'node:events';
import { LockBusyError, LockLostError, NotLockedError, type LostReason } from '../errors';
import { WaitScope, type WaitOptions } from '../wait';
import { RedisHold } from './hold';
import type { QueueKeys } from './keys';
import { TicketQueue } from './queue';
import { RedisScripts } from './scripts';
import type { RedisSession } from './session';
import { releaseRetrying } from '../release';

export type RedisMutexState = 'idle' | 'locking' | 'held' | 'unlocking';

/** What a successful `lock()` returns, and what `withLock(fn)` passes to `fn`. */
export interface RedisLockInfo {
  /** The holder record's key (`<namespace>mutex:{<name>}:holder`). */
  readonly key: string;
  /** From the lock's INCR counter: greater than every earlier holder's (see the file comment). */
  readonly fencingToken: bigint;
  /** Aborted (reason: `LockLostError`) if the lock is lost; also aborted when it is released. */
  readonly signal: AbortSignal;
}

export type RedisLockOptions = WaitOptions;

/** How long a best-effort cleanup (leaving the queue after a failed wait) may take. */
const CLEANUP_TIMEOUT_MS = 5000;

export class RedisMutex extends EventEmitter {
  /** The holder record's key. */
  readonly key: string;
  readonly keys: QueueKeys;
  private readonly queue: TicketQueue;
  private current: RedisMutexState = 'idle';
  private hold: RedisHold | undefined;
  private releaseClaim: (() => void) | undefined;
  private lostError: LockLostError | undefined;

  constructor(
    readonly session: RedisSession,
    /** The lock's name. */
    readonly name: string,
  ) {
    super();
    this.keys = session.keys.queue('mutex', name);
    this.key = this.keys.holder;
    this.queue = new TicketQueue(session, this.keys, false);
  }

  get state(): RedisMutexState {
    return this.current;
  }

  /** True while this mutex believes it holds the lock. */
  get held(): boolean {
    return this.current === 'held';
  }

  /** The fencing token while held (undefined otherwise). */
  get fencingToken(): bigint | undefined {
    return this.current === 'held' ? this.hold?.fence : undefined;
  }

  /** The signal of the current hold; undefined when not held. */
  get signal(): AbortSignal | undefined {
    return this.current === 'held' ? this.hold?.signal : undefined;
  }

  /** Why the last hold was lost, if it was. Cleared by the next `lock()`. */
  get lostReason(): LockLostError | undefined {
    return this.lostError;
  }

  override on(event: 'lost', listener: (err: LockLostError) => void): this;
  override on(event: 'acquired', listener: (info: RedisLockInfo) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'lost', listener: (err: LockLostError) => void): this;
  override once(event: 'acquired', listener: (info: RedisLockInfo) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /**
   * Acquire the lock, waiting in arrival order. Rejects with `WaitTimeoutError` after
   * `timeoutMs`, the client's `AbortError` when `signal` aborts, `SessionExpiredError` /
   * `SessionClosedError` when the session ends meanwhile, or `LockBusyError` if this object is
   * already locking or holding. A failed wait leaves the queue.
   */
  async lock(options: RedisLockOptions = {}): Promise<RedisLockInfo> {
    return (await this.acquire(options, false)) as RedisLockInfo;
  }

  /** Acquire only if nobody holds the lock or waits for it: true when acquired. */
  async tryLock(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<boolean> {
    return (await this.acquire(options, true)) !== undefined;
  }

  /**
   * Release the lock (hand it to the next waiter). No-op when not held. If the script fails
   * (unreachable server) the mutex stays held and the error is thrown, so the caller may retry;
   * the lock is released anyway when the session ends.
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
      await this.queue.release(hold.fence, options.timeoutMs);
    } catch (err) {
      hold.cancelRelease();
      if (this.current === 'unlocking') this.current = hold.active ? 'held' : 'idle';
      throw err;
    }
    hold.release(new NotLockedError('released'));
    this.finishHold();
  }

  /**
   * Run `fn` while holding the lock and release it afterwards, also when `fn` throws. If the
   * lock was lost while `fn` ran, rejects with the `LockLostError` even if `fn` resolved.
   */
  async withLock<T>(fn: (lock: RedisLockInfo) => Promise<T> | T, options: RedisLockOptions = {}): Promise<T> {
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

  /** withLock's release: retried while held and the session lives (../release.ts says why). */
  private release(): Promise<void> {
    return releaseRetrying(() => this.unlock(), () => this.current === 'held', () => this.session.alive);
  }

  /**
   * Ask Redis whether this mutex holds the lock now: the holder record names our session with
   * our fencing token and our session key exists. False when not held locally.
   */
  async isOwner(): Promise<boolean> {
    const hold = this.hold;
    if (this.current !== 'held' || !hold) return false;
    const owned = await this.queue.isHolder(hold.fence);
    if (!owned) hold.lose('key-deleted', undefined);
    return owned;
  }

  /**
   * The arguments of OWNER_GUARD_LUA for your own scripts: KEYS[1] = `holderKey`, KEYS[2] =
   * `sessionKey`, ARGV[1] = `token`, ARGV[2] = `fence`. Throws `NotLockedError` when not held.
   */
  ownerGuard(): { holderKey: string; sessionKey: string; token: string; fence: string } {
    const fence = this.fencingToken;
    if (fence === undefined) throw new NotLockedError(this.key);
    return { holderKey: this.keys.holder, sessionKey: this.session.key, token: this.session.id, fence: fence.toString() };
  }

  /**
   * Run the Lua `body` (with its own KEYS and ARGV, numbered from 1) only if we still own the
   * lock, checked atomically by Redis (see OWNER_GUARD_LUA). When the check fails the lock is
   * gone: the mutex is declared lost (reason `key-deleted`) and `succeeded` is false.
   * Throws `NotLockedError` when not held.
   */
  async evalIfOwner(body: string, keys: readonly string[] = [], args: readonly (string | number | Buffer)[] = []): Promise<{ succeeded: boolean; result: unknown }> {
    const hold = this.hold;
    const fence = this.fencingToken;
    if (fence === undefined || !hold) throw new NotLockedError(this.key);
    const { ok, result } = await RedisScripts.of(this.session.redis).guarded(this.keys.holder, this.session.key, this.session.id, fence, body, keys, args);
    if (!ok) hold.lose('key-deleted', undefined);
    return { succeeded: ok, result };
  }

  // ---- internals -----------------------------------------------------------------------------

  private async acquire(options: WaitOptions, tryOnly: boolean): Promise<RedisLockInfo | undefined> {
    if (this.current !== 'idle') throw new LockBusyError(`${this.key} is ${this.current}`);
    this.session.throwIfEnded();
    this.releaseClaim = this.session.claim(this.key);
    this.current = 'locking';
    this.lostError = undefined;
    const scope = new WaitScope(`lock ${this.name}`, options, [this.session.signal]);
    // While waiting, a session close() leaves the queue for us.
    const removeTenant = this.session.addTenant({ addRelease: (p) => this.queue.addRelease(p, undefined) });
    try {
      const got = await this.queue.acquire(tryOnly ? 'try' : 'wait', '', scope.signal);
      scope.check();
      if (!got) {
        this.finishHold();
        return undefined;
      }
      return this.startHold(got.fence);
    } catch (err) {
      const e = scope.error(err);
      // Leave the queue (and release, if the hand-over raced the failure): our place would
      // hold up every later waiter until the session ends. A lost session's key may outlive the loss by the safety margin: withdraw anyway, but
      // do not wait for it (the loss may be a partition, and the key expires by itself).
      const leaving = this.queue.release(undefined, CLEANUP_TIMEOUT_MS).catch(() => undefined);
      if (this.session.alive) await leaving;
      this.finishHold();
      throw e;
    } finally {
      removeTenant();
      scope.dispose();
    }
  }

  private startHold(fence: bigint): RedisLockInfo {
    const queue = this.queue;
    const hold = new RedisHold(
      this.session,
      this.key,
      fence,
      { check: (p) => queue.addCheck(p, fence), release: (p) => queue.addRelease(p, fence) },
      {
        error: (reason: LostReason, cause: unknown) => new LockLostError(this.key, reason, { cause }),
        lost: (err) => {
          if (this.hold !== hold) return;
          this.lostError = err as LockLostError;
          this.finishHold();
          this.emit('lost', err);
        },
      },
    );
    this.hold = hold;
    this.current = 'held';
    const info: RedisLockInfo = { key: this.key, fencingToken: fence, signal: hold.signal };
    this.emit('acquired', info);
    return info;
  }

  private finishHold(): void {
    this.current = 'idle';
    this.hold = undefined;
    this.releaseClaim?.();
    this.releaseClaim = undefined;
  }
}
