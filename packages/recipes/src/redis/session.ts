/**
 * RedisSession: the Redis backend's lease. A random token whose key
 * (`<namespace>session:<token>`) carries a TTL, kept alive by heartbeats (PEXPIRE every third of
 * the TTL). Every recipe object records its session's token next to what it holds or waits for,
 * and every script treats a token whose session key is gone as gone: so a session's locks,
 * leaderships, candidacies and registrations all end when its key expires, as an etcd lease's
 * keys do.
 *
 * The `lost` signal fires *before* Redis could expire the key. The deadline is counted from when
 * the last acknowledged heartbeat was *sent*: Redis restarts the TTL when it runs the PEXPIRE,
 * which is after we sent it, so `sent + TTL - margin` comes before the earliest possible expiry.
 * (The same rule as the etcd session's; see ../session.ts.) A heartbeat that finds the key gone
 * (expired, or deleted by an operator: the analogue of a revoked lease) declares the session
 * lost at once.
 *
 * Each heartbeat also checks, in the same pipeline, that every hold of the session (a lock, a
 * leadership, a registration) is still recorded on the server; one that is not (an operator
 * deleted it, or another process took the registration over) is declared lost with reason
 * `key-deleted`. The etcd backend learns that at once from a watch; here it takes up to one
 * heartbeat interval (TTL / 3).
 *
 *   const session = await RedisSession.create(redis, { ttl: 10 });
 *   session.on('lost', (err) => stopEverything(err));
 *   await session.close();          // releases what it holds (waiters are handed the locks), deletes its key
 *
 * Not like etcd: the TTL is not granted by a server (no minimum TTL); a session object is bound
 * to one ioredis client; `ttl` is a number of seconds (fractions allowed), not a bigint.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ChainableCommander, Redis } from 'ioredis';
import { KeyInUseError, SessionClosedError, SessionExpiredError } from '../errors';
import { DEFAULT_REDIS_NAMESPACE, RedisKeys } from './keys';
import type { SessionState } from '../session';

/** Like etcd's `defaultSessionTTL`: 60 seconds. */
export const DEFAULT_REDIS_SESSION_TTL_SECONDS = 60;

export interface RedisSessionOptions {
  /** TTL of the session key in seconds (default 60); at least 0.3. */
  ttl?: number;
  /** Declare the session lost this long before its computed expiry. Default: 10% of the TTL, at most 1000 ms. */
  safetyMarginMs?: number;
  /** Key namespace (default `coord:`); every participant of a recipe must use the same. */
  namespace?: string;
  /** Give up creating the key after this many milliseconds (default: wait as long as ioredis does). */
  timeoutMs?: number;
  /** Aborting before the key is created cancels `create`. */
  signal?: AbortSignal;
}

/**
 * @internal Something a session must look after: a hold (checked by every heartbeat) or a wait
 * (only released on close).
 */
export interface SessionTenant {
  /** Add the command that checks the tenant is still recorded; the reply goes to the callback. */
  addCheck?(p: ChainableCommander): (reply: unknown) => void;
  /** Add the command that releases the tenant's server state on `close()`. */
  addRelease(p: ChainableCommander): void;
}

const now = () => performance.now();

/** Race `p` against `signal` (the command itself cannot be cancelled in ioredis). */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export class RedisSession extends EventEmitter {
  /** The session's random token: what the recipes' scripts record. */
  readonly id: string;
  /** The session key (without the client's keyPrefix). */
  readonly key: string;
  /** TTL in seconds. */
  readonly ttl: number;
  readonly ttlMs: number;
  readonly keys: RedisKeys;
  private readonly marginMs: number;
  private current: SessionState = 'alive';
  private readonly controller = new AbortController();
  private readonly claimed = new Set<string>();
  private readonly tenants = new Set<SessionTenant>();
  private deadlineAt: number;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private paused = false;

  private constructor(
    /** The client every recipe of this session talks through. */
    readonly redis: Redis,
    id: string,
    keys: RedisKeys,
    ttl: number,
    marginMs: number,
    sentAt: number,
  ) {
    super();
    this.id = id;
    this.keys = keys;
    this.key = keys.session(id);
    this.ttl = ttl;
    this.ttlMs = Math.round(ttl * 1000);
    this.marginMs = marginMs;
    this.deadlineAt = sentAt + this.ttlMs - marginMs;
    this.armDeadline();
    this.heartbeatTimer = setInterval(() => this.beat(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.heartbeatTimer.unref();
  }

  /** Create the session key (`SET NX PX`) and start the heartbeats. */
  static async create(redis: Redis, options: RedisSessionOptions = {}): Promise<RedisSession> {
    const ttl = options.ttl ?? DEFAULT_REDIS_SESSION_TTL_SECONDS;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0.3) throw new TypeError(`ttl must be a number of seconds >= 0.3, got ${ttl}`);
    const ttlMs = Math.round(ttl * 1000);
    const marginMs = options.safetyMarginMs ?? Math.min(1000, Math.round(ttlMs / 10));
    if (!Number.isFinite(marginMs) || marginMs < 0 || marginMs > ttlMs / 2) {
      throw new TypeError(`safetyMarginMs must be between 0 and half the TTL (${ttlMs / 2} ms), got ${marginMs}`);
    }
    const keys = new RedisKeys(redis, options.namespace ?? DEFAULT_REDIS_NAMESPACE);
    const id = randomBytes(12).toString('hex');
    const sentAt = now();
    const value = JSON.stringify({ host: hostname(), pid: process.pid, ttlMs });
    const signals = [...(options.signal ? [options.signal] : []), ...(options.timeoutMs !== undefined ? [AbortSignal.timeout(options.timeoutMs)] : [])];
    const ok = await raceSignal(redis.set(keys.session(id), value, 'PX', ttlMs, 'NX'), signals.length > 0 ? AbortSignal.any(signals) : undefined);
    // A random 96-bit token cannot collide; a refusal means something is badly wrong.
    if (ok !== 'OK') throw new Error(`redis: could not create session key ${keys.session(id)}`);
    return new RedisSession(redis, id, keys, ttl, marginMs, sentAt);
  }

  get state(): SessionState {
    return this.current;
  }

  get alive(): boolean {
    return this.current === 'alive';
  }

  /** The namespace of the session's keys. */
  get namespace(): string {
    return this.keys.namespace;
  }

  /** Aborted when the session ends: lost (`SessionExpiredError`) or closed (`SessionClosedError`). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Milliseconds until the session would be declared lost (0 once ended). */
  get remainingMs(): number {
    return this.current === 'alive' ? Math.max(0, this.deadlineAt - now()) : 0;
  }

  override on(event: 'lost', listener: (err: SessionExpiredError) => void): this;
  override on(event: 'closed', listener: () => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'lost', listener: (err: SessionExpiredError) => void): this;
  override once(event: 'closed', listener: () => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  throwIfEnded(): void {
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  /**
   * End the session: signals abort with `SessionClosedError` first, then one pipeline releases
   * everything the session holds or waits for (so waiters are handed locks and watchers see
   * instances go at once, not one TTL later) and deletes the session key. Also after a loss:
   * the key may still exist. A failed or timed-out cleanup leaves it all to expire with the key.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    const tenants = [...this.tenants];
    this.end('closed', new SessionClosedError());
    const p = this.redis.pipeline();
    for (const t of tenants) t.addRelease(p);
    p.del(this.key);
    const timeoutMs = options.timeoutMs ?? Math.min(this.ttlMs, 5000);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis: session close timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([p.exec(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop the heartbeats without deleting anything (etcd's `Orphan`): all expires one TTL later. */
  orphan(): void {
    this.end('closed', new SessionClosedError('orphaned'));
  }

  /**
   * Stop (true) or resume (false) sending heartbeats, keeping everything else as it is: for
   * tests and fault drills (what a long GC pause or a partition looks like to the server).
   */
  pauseHeartbeats(paused: boolean): void {
    this.paused = paused;
  }

  /** @internal Reserve `key` for one recipe object of this session (see `KeyInUseError`). */
  claim(key: string): () => void {
    if (this.claimed.has(key)) throw new KeyInUseError(key);
    this.claimed.add(key);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.claimed.delete(key);
    };
  }

  /** @internal Look after `tenant` until the returned function is called. */
  addTenant(tenant: SessionTenant): () => void {
    this.tenants.add(tenant);
    return () => void this.tenants.delete(tenant);
  }

  /** @internal Send a heartbeat now (tests; also used after creating a hold). */
  beat(): void {
    if (this.current !== 'alive' || this.inFlight || this.paused) return;
    const sentAt = now();
    const p = this.redis.pipeline();
    p.pexpire(this.key, this.ttlMs);
    const callbacks: ((reply: unknown) => void)[] = [];
    for (const t of this.tenants) if (t.addCheck) callbacks.push(t.addCheck(p));
    this.inFlight = true;
    p.exec().then(
      (results) => {
        this.inFlight = false;
        if (this.current !== 'alive' || !results) return;
        const [err, extended] = results[0];
        if (err) return; // the deadline decides
        if (Number(extended) !== 1) {
          this.onLost(`session key ${this.key} is gone (expired, or deleted by someone)`);
          return;
        }
        this.deadlineAt = sentAt + this.ttlMs - this.marginMs;
        this.armDeadline();
        callbacks.forEach((cb, i) => {
          const [e, reply] = results[i + 1];
          if (!e) cb(reply);
        });
      },
      () => {
        this.inFlight = false;
      },
    );
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (now() >= this.deadlineAt) this.onLost('no heartbeat was acknowledged in time; the session key may have expired');
      else this.armDeadline();
    }, Math.max(0, this.deadlineAt - now()));
    this.deadlineTimer.unref();
  }

  private onLost(why: string): void {
    if (this.current !== 'alive') return;
    const lost = new SessionExpiredError(`redis session ${this.id}: ${why}`);
    this.end('lost', lost);
    this.emit('lost', lost);
  }

  private end(state: 'lost' | 'closed', reason: Error): void {
    if (this.current !== 'alive') return;
    this.current = state;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.heartbeatTimer = this.deadlineTimer = undefined;
    this.controller.abort(reason);
    if (state === 'closed') this.emit('closed');
  }
}
