/**
 * Session: a lease kept alive in the background, the liveness every other recipe hangs its
 * keys on (etcd's `concurrency.Session`). Keys written with the session's lease vanish when
 * the session ends: revoked by `close()`, or expired by the server when keep-alives stop
 * (the process died, or was cut off for longer than the TTL).
 *
 * The `lost` signal fires *before* the server could have expired the lease. The client's
 * `Lease` computes its deadline from when each keep-alive was *sent* (etcd's lessor restarts
 * the TTL no earlier than when it processes the request, which is after we sent it), minus a
 * safety margin; clientv3 counts from when the answer was *received*, which is late by the
 * round trip and by however long the answer was delayed. So a recipe that stops believing it
 * holds a lock when `lost` fires stops before the server hands the lock to somebody else.
 *
 *   const session = await Session.create(client, { ttl: 10 });
 *   session.on('lost', (err) => stopEverything(err));
 *   ...
 *   await session.close();            // revokes: every key of the session is deleted now
 */
import { EventEmitter } from 'node:events';
import { LeaseNotFoundError, type Client, type Lease, type LeaseLostError } from '@coord/client';
import { SessionClosedError, SessionExpiredError, KeyInUseError } from './errors';
import { leaseKeySuffix } from './keys';

/** etcd's `defaultSessionTTL`: 60 seconds. */
export const DEFAULT_SESSION_TTL_SECONDS = 60;

export interface SessionOptions {
  /** Lease TTL in seconds (default 60, as etcd's). The server may raise it to its minimum. */
  ttl?: number;
  /**
   * Declare the session lost this long before the lease's computed expiry. Default: the
   * client's (10% of the TTL, at most 1000 ms).
   */
  safetyMarginMs?: number;
  /** Deadline of the grant (default: the client's call timeout). */
  timeoutMs?: number;
  /** Aborting before the grant answers cancels `Session.create`. */
  signal?: AbortSignal;
}

export type SessionState =
  /** The lease is granted and kept alive. */
  | 'alive'
  /** The lease expired, was revoked by someone else, or may have expired (deadline passed). */
  | 'lost'
  /** `close()` or `orphan()` was called. */
  | 'closed';

/**
 * A kept-alive lease shared by recipe objects (Mutex, Election, Semaphore, registrations...).
 * Create it with `Session.create()`. One session per participant: two recipe objects of the
 * same session cannot use the same key (see `KeyInUseError`).
 */
export class Session extends EventEmitter {
  /** The lease's ID. */
  readonly leaseId: bigint;
  /** The TTL the server granted, in seconds. */
  readonly ttl: bigint;
  private current: SessionState = 'alive';
  private readonly controller = new AbortController();
  private readonly claimed = new Set<string>();

  private constructor(
    /** The client every recipe of this session talks through. */
    readonly client: Client,
    /** The client's kept-alive lease behind the session. */
    readonly lease: Lease,
    leaseId: bigint,
  ) {
    super();
    this.leaseId = leaseId;
    this.ttl = lease.ttl ?? lease.requestedTtl;
    // The lease may already be lost when we get here (e.g. revoked right after the grant).
    if (lease.state === 'lost') queueMicrotask(() => this.onLeaseLost(lease.lostReason));
    else lease.once('lost', (err: LeaseLostError) => this.onLeaseLost(err));
    // `client.close()` stops every keep-alive without a 'lost' event (the lease is 'closed').
    // Nobody renews the lease any more, so the server will expire it: notice within a quarter
    // of the TTL, well before the earliest expiry (two thirds of a TTL after the close, since a
    // keep-alive goes out every third of one).
    const periodMs = Math.max(100, (Number(this.ttl) * 1000) / 4);
    this.watchdog = setInterval(() => {
      if (this.current !== 'alive') return this.stopWatchdog();
      if (lease.state === 'closed' || lease.state === 'revoked') {
        this.onLeaseLost(undefined, 'the client stopped keeping the lease alive (was the client closed?)');
      }
    }, periodMs);
    this.watchdog.unref();
  }

  private watchdog: NodeJS.Timeout | undefined;

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  /** Grant a lease and keep it alive. Rejects with the grant's error. */
  static async create(client: Client, options: SessionOptions = {}): Promise<Session> {
    const ttl = options.ttl ?? DEFAULT_SESSION_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new TypeError(`ttl must be a positive whole number of seconds, got ${ttl}`);
    const lease = client.lease(ttl, { safetyMarginMs: options.safetyMarginMs, timeoutMs: options.timeoutMs, signal: options.signal });
    const id = await lease.grant();
    return new Session(client, lease, id);
  }

  get state(): SessionState {
    return this.current;
  }

  /** True while the lease is believed to exist. */
  get alive(): boolean {
    return this.current === 'alive';
  }

  /**
   * Aborted when the session ends, for any reason: lost (reason `SessionExpiredError`) or
   * closed (reason `SessionClosedError`). Pass it to work that must stop with the session.
   */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Milliseconds until the client would declare the lease lost (0 once ended). */
  get remainingMs(): number {
    return this.current === 'alive' ? this.lease.remainingMs : 0;
  }

  /** The lease ID as etcd's recipes put it in key names (Go's `%x`). */
  get leaseHex(): string {
    return leaseKeySuffix(this.leaseId);
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

  /** Throw the reason the session ended, if it has. */
  throwIfEnded(): void {
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  /**
   * End the session and revoke its lease: every key attached to it is deleted at once
   * (etcd's `Session.Close`). Recipe objects see their signals abort with
   * `SessionClosedError` *before* the revoke is sent. A lease already gone is not an error.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.end('closed', new SessionClosedError());
    // Revoke even after a loss: a lease declared lost by its deadline may still exist, and
    // revoking it frees its keys now instead of one TTL later.
    // etcd revokes with a timeout of the TTL; a failed revoke leaves the lease to expire.
    const timeoutMs = options.timeoutMs ?? Math.min(Number(this.ttl) * 1000, this.client.options.callTimeoutMs);
    try {
      await this.lease.revoke({ timeoutMs });
    } catch (err) {
      if (!(err instanceof LeaseNotFoundError)) throw err;
    }
  }

  /**
   * Stop keeping the lease alive without revoking it (etcd's `Orphan`): its keys stay until
   * the server expires the lease, one TTL from the last keep-alive.
   */
  orphan(): void {
    this.end('closed', new SessionClosedError('orphaned'));
    this.lease.close();
  }

  /**
   * @internal Reserve `key` for one recipe object of this session. etcd's recipes name keys by
   * lease, so a second Mutex of the same session and name would find "its" key already there
   * and believe it holds the lock too. Returns the release function.
   */
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

  private onLeaseLost(err: LeaseLostError | undefined, details?: string): void {
    if (this.current !== 'alive') return;
    const why =
      details ?? (err?.reason === 'deadline' ? 'no keep-alive was acknowledged in time; the lease may have expired' : (err?.message ?? 'lease lost'));
    const lost = new SessionExpiredError(`lease ${this.leaseHex}: ${why}`, { cause: err });
    this.end('lost', lost);
    this.emit('lost', lost);
  }

  private end(state: 'lost' | 'closed', reason: Error): void {
    if (this.current !== 'alive') return;
    this.current = state;
    this.stopWatchdog();
    this.controller.abort(reason);
    if (state === 'closed') this.emit('closed');
  }
}
