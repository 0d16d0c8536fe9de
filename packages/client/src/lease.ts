/**
 * Leases: the unary calls of `etcdserverpb.Lease` (grant, revoke, timeToLive, leases), a
 * one-shot keep-alive, and `Lease`, a lease the client keeps alive on one shared
 * `LeaseKeepAlive` stream and declares lost as soon as it can no longer be sure it exists.
 *
 * When is a lease lost? etcd's lessor (on the leader) sets a lease's expiry to
 * "now + TTL" when it *processes* a grant or keep-alive, which is no earlier than the moment
 * we sent it. So if a keep-alive sent at time S was acknowledged with TTL T, the lease
 * exists at least until S + T (by our clock, give or take clock-rate drift). We declare the
 * lease lost at `S + T - safetyMargin` for the latest acknowledged S, unless a later
 * acknowledgement moved that deadline, or at once when a keep-alive is answered with TTL 0
 * (expired, or revoked by anyone). Counting from when the answer was *received* (as clientv3
 * does) would be wrong by the round trip and by however long the answer was delayed: a holder
 * could go on believing it holds a lock the server has already released.
 *
 * Keep-alives are sent about every TTL/3 and at once whenever the stream (re)connects; the
 * stream fails over to the other endpoints with capped backoff while any lease is kept alive.
 * etcd answers a stream's keep-alives in order, so each lease matches answers to its send
 * times first-in first-out; requests unanswered when a stream breaks are forgotten (they
 * never extend the deadline).
 *
 * Calls that change state (grant, revoke) follow the client's rule for writes: failover only
 * before the request may have been sent. timeToLive, leases and keepAliveOnce are retried on
 * other endpoints after UNAVAILABLE (a keep-alive is idempotent).
 */
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { ConnectionPool } from './connection';
import {
  AbortError,
  ClientClosedError,
  DeadlineExceededError,
  LeaseLostError,
  LeaseNotFoundError,
  Status,
  UnavailableError,
  fromGrpcError,
  type EtcdError,
} from './errors';
import { fromWire, int64ToWire, toInt64 } from './int64';
import type { KV, PutCallOptions } from './kv';
import { decodeHeader, type PutResult } from './ops';
import type { Bytes, CallOptions, Int64Input, ResponseHeader } from './types';
import type { WireInt64, WireResponseHeader } from './wire';

// ---- wire shapes of etcdserverpb.Lease ------------------------------------------------------

interface WireLeaseGrantResponse {
  header: WireResponseHeader | null;
  ID: WireInt64;
  TTL: WireInt64;
  error: string;
}

interface WireLeaseRevokeResponse {
  header: WireResponseHeader | null;
}

interface WireLeaseTimeToLiveResponse {
  header: WireResponseHeader | null;
  ID: WireInt64;
  TTL: WireInt64;
  grantedTTL: WireInt64;
  keys: Buffer[];
}

interface WireLeaseLeasesResponse {
  header: WireResponseHeader | null;
  leases: { ID: WireInt64 }[];
}

interface WireLeaseKeepAliveRequest {
  ID: WireInt64;
}

interface WireLeaseKeepAliveResponse {
  header: WireResponseHeader | null;
  ID: WireInt64;
  TTL: WireInt64;
}

type KeepAliveCall = grpc.ClientDuplexStream<WireLeaseKeepAliveRequest, WireLeaseKeepAliveResponse>;

const READ = { idempotent: true } as const;
/** Not retried after it may have reached a server (see connection.ts). */
const WRITE = { idempotent: false } as const;

/** Safety margin default: 10% of the TTL, at most this much. */
export const LEASE_SAFETY_MARGIN_MS_MAX = 1000;
const RECONNECT_BACKOFF_MS_MIN = 50;
const RECONNECT_BACKOFF_MS_MAX = 2000;
/** The keep-alive period is TTL/3, but never shorter than this. */
const KEEPALIVE_PERIOD_MS_MIN = 100;

/** A monotonic clock: wall-clock steps must not move lease deadlines. */
const now = (): number => performance.now();

function callOf(o: CallOptions | undefined): CallOptions {
  return { signal: o?.signal, timeoutMs: o?.timeoutMs };
}

// ---- IDs as etcdctl prints them -------------------------------------------------------------

/**
 * A lease ID as etcdctl prints it (Go's `%016x`): 16 lowercase hex digits, zero-padded, e.g.
 * `694d6280d047720f`. etcd only hands out positive IDs; a negative one prints as Go does
 * (`-` then the magnitude, padded to 16 characters in all).
 */
export function leaseIdToHex(id: Int64Input): string {
  const n = toInt64(id, 'lease id');
  if (n < 0n) return '-' + (-n).toString(16).padStart(15, '0');
  return n.toString(16).padStart(16, '0');
}

/** Parse a lease ID as etcdctl accepts it (hex, optional sign; `0x` tolerated) into an exact int64. */
export function parseLeaseId(text: string): bigint {
  if (typeof text !== 'string') throw new TypeError(`lease id must be a hex string, got ${typeof text}`);
  const m = /^([+-]?)(?:0x)?([0-9a-fA-F]+)$/.exec(text.trim());
  if (!m) throw new TypeError(`lease id must be hexadecimal (like 694d6280d047720f), got ${JSON.stringify(text)}`);
  const n = BigInt('0x' + m[2]) * (m[1] === '-' ? -1n : 1n);
  return toInt64(n, 'lease id');
}

// ---- results --------------------------------------------------------------------------------

export interface LeaseGrantOptions extends CallOptions {
  /** Ask for this ID (0 or absent: the server picks one). */
  id?: Int64Input;
}

export interface LeaseGrantResult {
  header: ResponseHeader;
  id: bigint;
  /** The TTL granted, in seconds (etcd raises it to its minimum, about 1.5 election timeouts). */
  ttl: bigint;
}

export interface LeaseRevokeResult {
  header: ResponseHeader;
}

export interface LeaseTimeToLiveOptions extends CallOptions {
  /** Also list the keys attached to the lease. */
  keys?: boolean;
}

export interface LeaseTimeToLiveResult {
  header: ResponseHeader;
  id: bigint;
  /** Remaining seconds; -1n when the lease does not exist (expired, revoked or never granted). */
  ttl: bigint;
  /** The TTL the lease was granted with (0n when it does not exist). */
  grantedTtl: bigint;
  /** Attached keys, when `keys` was requested. */
  keys: Buffer[];
}

export interface LeaseLeasesResult {
  header: ResponseHeader;
  /** IDs of every lease the cluster knows. */
  leases: bigint[];
}

export interface LeaseKeepAliveResult {
  header: ResponseHeader;
  id: bigint;
  /** The lease's TTL in seconds, its countdown restarted. */
  ttl: bigint;
}

export interface LeaseOptions {
  /** Ask for this ID (default: the server picks one). */
  id?: Int64Input;
  /** Keep the lease alive on the shared stream (default true). */
  keepAlive?: boolean;
  /**
   * Declare the lease lost this long before its computed expiry. Default: 10% of the TTL,
   * at most 1000 ms.
   */
  safetyMarginMs?: number;
  /** Deadline of the grant call (default: the client's `callTimeoutMs`). */
  timeoutMs?: number;
  /** Aborting before the grant answers cancels it (the lease is then lost: 'grant-failed'). */
  signal?: AbortSignal;
}

export type LeaseState =
  /** The grant is in flight. */
  | 'granting'
  /** Granted and kept alive (or, with `keepAlive: false`, granted). */
  | 'alive'
  /** Declared lost: see `LeaseLostError.reason`. */
  | 'lost'
  /** `revoke()` was called. */
  | 'revoked'
  /** `close()` was called: no longer kept alive, not revoked. */
  | 'closed';

// ---- the keep-alive stream ------------------------------------------------------------------

/** One `LeaseKeepAlive` stream shared by every kept-alive lease of a client. */
class KeepAliveStream {
  private readonly leases = new Map<string, Lease>();
  private call: KeepAliveCall | undefined;
  private connecting = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  opened = 0;

  constructor(private readonly pool: ConnectionPool) {}

  register(lease: Lease, id: bigint): void {
    if (this.closed) return;
    this.leases.set(id.toString(), lease);
    if (this.call) lease.onStreamOpen();
    else this.connect();
  }

  unregister(id: bigint | undefined): void {
    if (id === undefined || !this.leases.delete(id.toString())) return;
    if (this.leases.size === 0) this.shutdown();
  }

  /** Send a keep-alive now; false when no stream is open (one is being opened). */
  send(id: bigint): boolean {
    const call = this.call;
    if (!call) {
      this.connect();
      return false;
    }
    try {
      call.write({ ID: id.toString() });
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.closed = true;
    this.leases.clear();
    this.shutdown();
  }

  private shutdown(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const call = this.call;
    this.call = undefined;
    call?.cancel();
  }

  private connect(): void {
    if (this.closed || this.call || this.connecting || this.retryTimer || this.leases.size === 0) return;
    this.connecting = true;
    this.pool.ready(Date.now() + this.pool.options.callTimeoutMs).then(
      (index) => {
        this.connecting = false;
        this.open(index);
      },
      () => {
        this.connecting = false;
        this.scheduleReconnect();
      },
    );
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer || this.leases.size === 0) return;
    const base = Math.min(RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_MIN * 2 ** Math.min(this.failures, 16));
    this.failures++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, base / 2 + Math.random() * (base / 2));
  }

  private open(index: number): void {
    if (this.closed || this.call || this.leases.size === 0 || this.pool.isClosed) return;
    const raw = this.pool.raw(index);
    const method = raw.lease.LeaseKeepAlive as (metadata: grpc.Metadata, options: grpc.CallOptions) => KeepAliveCall;
    const call = method.call(raw.lease, new grpc.Metadata(), {});
    this.call = call;
    this.opened++;
    let ended = false;
    const onEnd = () => {
      if (ended) return;
      ended = true;
      if (this.call !== call) return; // we closed it
      this.call = undefined;
      for (const lease of this.leases.values()) lease.onStreamLost();
      this.scheduleReconnect();
    };
    call.on('data', (r: WireLeaseKeepAliveResponse) => {
      if (this.call !== call) return;
      this.failures = 0;
      this.leases.get(fromWire(r.ID).toString())?.onKeepAliveResponse(r);
    });
    call.on('error', onEnd);
    call.on('end', onEnd);
    for (const lease of [...this.leases.values()]) lease.onStreamOpen();
  }
}

// ---- the service ----------------------------------------------------------------------------

/**
 * The Lease service of one client (`client.leases`). Flat shortcuts on the client:
 * `leaseGrant`, `leaseRevoke`, `leaseTimeToLive`, `leaseLeases`, `leaseKeepAliveOnce`, `lease`.
 */
export class Leases {
  /** @internal */
  readonly keepAliveStream: KeepAliveStream;
  private readonly live = new Set<Lease>();

  constructor(
    private readonly pool: ConnectionPool,
    /** @internal */ readonly kv: KV,
  ) {
    this.keepAliveStream = new KeepAliveStream(pool);
  }

  /** Grant a lease of `ttlSeconds` (optionally with a chosen ID). */
  async grant(ttlSeconds: Int64Input, options: LeaseGrantOptions = {}): Promise<LeaseGrantResult> {
    const req = { TTL: int64ToWire(ttlSeconds, 'ttlSeconds'), ID: options.id === undefined ? '0' : int64ToWire(options.id, 'id') };
    const r = await this.pool.unary<typeof req, WireLeaseGrantResponse>('lease', 'LeaseGrant', req, WRITE, callOf(options));
    if (r.error) throw fromGrpcError({ code: Status.UNKNOWN, details: r.error });
    return { header: decodeHeader(r.header), id: fromWire(r.ID), ttl: fromWire(r.TTL) };
  }

  /** Revoke a lease: every key attached to it is deleted. `LeaseNotFoundError` if it does not exist. */
  async revoke(id: Int64Input, options: CallOptions = {}): Promise<LeaseRevokeResult> {
    const req = { ID: int64ToWire(id, 'id') };
    const r = await this.pool.unary<typeof req, WireLeaseRevokeResponse>('lease', 'LeaseRevoke', req, WRITE, callOf(options));
    return { header: decodeHeader(r.header) };
  }

  /** Remaining and granted TTL, and optionally the attached keys. TTL is -1n for an unknown lease. */
  async timeToLive(id: Int64Input, options: LeaseTimeToLiveOptions = {}): Promise<LeaseTimeToLiveResult> {
    const req = { ID: int64ToWire(id, 'id'), keys: options.keys === true };
    const r = await this.pool.unary<typeof req, WireLeaseTimeToLiveResponse>('lease', 'LeaseTimeToLive', req, READ, callOf(options));
    return {
      header: decodeHeader(r.header),
      id: fromWire(r.ID),
      ttl: fromWire(r.TTL),
      grantedTtl: fromWire(r.grantedTTL),
      keys: r.keys ?? [],
    };
  }

  /** Every lease the cluster knows. */
  async list(options: CallOptions = {}): Promise<LeaseLeasesResult> {
    const r = await this.pool.unary<object, WireLeaseLeasesResponse>('lease', 'LeaseLeases', {}, READ, callOf(options));
    return { header: decodeHeader(r.header), leases: (r.leases ?? []).map((l) => fromWire(l.ID)) };
  }

  /**
   * Renew a lease once, on a short-lived stream of its own (clientv3's KeepAliveOnce).
   * Rejects with `LeaseNotFoundError` when the lease does not exist (TTL 0).
   */
  async keepAliveOnce(id: Int64Input, options: CallOptions = {}): Promise<LeaseKeepAliveResult> {
    const r = await this.keepAliveOnceRaw(toInt64(id, 'id'), options);
    if (r.ttl <= 0n) throw new LeaseNotFoundError('etcdserver: requested lease not found', Status.NOT_FOUND);
    return r;
  }

  /**
   * A lease kept alive by this client: granted now, renewed about every TTL/3, with a `lost`
   * signal. See `Lease`.
   */
  lease(ttlSeconds: Int64Input, options: LeaseOptions = {}): Lease {
    if (this.pool.isClosed) throw new ClientClosedError();
    return new Lease(this, toInt64(ttlSeconds, 'ttlSeconds'), options);
  }

  /** Stop every keep-alive (leases are not revoked; they expire). Called by `client.close()`. */
  close(): void {
    for (const l of [...this.live]) l.close();
    this.keepAliveStream.close();
  }

  /** @internal */
  track(lease: Lease, on: boolean): void {
    if (on) this.live.add(lease);
    else this.live.delete(lease);
  }

  /** @internal One keep-alive with failover; TTL 0 is returned, not thrown. */
  async keepAliveOnceRaw(id: bigint, options: CallOptions = {}): Promise<LeaseKeepAliveResult> {
    const deadline = this.pool.deadlineFor(options);
    const signal = options.signal;
    const tried = new Set<number>();
    let lastError: EtcdError | undefined;
    for (let attempt = 0; attempt < this.pool.options.endpoints.length; attempt++) {
      let index: number;
      try {
        index = await this.pool.ready(deadline, signal, tried);
      } catch (err) {
        if (lastError && err instanceof UnavailableError) throw lastError;
        throw err;
      }
      try {
        return await this.keepAliveOn(index, id, deadline, signal);
      } catch (err) {
        const e = err as EtcdError;
        if (e.code !== Status.UNAVAILABLE || e instanceof AbortError) throw e;
        tried.add(index);
        lastError = e;
      }
    }
    throw lastError ?? new UnavailableError();
  }

  private keepAliveOn(index: number, id: bigint, deadline: number, signal: AbortSignal | undefined): Promise<LeaseKeepAliveResult> {
    const raw = this.pool.raw(index);
    const method = raw.lease.LeaseKeepAlive as (metadata: grpc.Metadata, options: grpc.CallOptions) => KeepAliveCall;
    const call = method.call(raw.lease, new grpc.Metadata(), { deadline });
    return new Promise<LeaseKeepAliveResult>((resolve, reject) => {
      let done = false;
      const finish = (err: unknown, res?: LeaseKeepAliveResult) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
        if (err) reject(err);
        else resolve(res as LeaseKeepAliveResult);
      };
      const onAbort = () => finish(new AbortError(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      call.on('data', (r: WireLeaseKeepAliveResponse) =>
        finish(undefined, { header: decodeHeader(r.header), id: fromWire(r.ID), ttl: fromWire(r.TTL) }),
      );
      call.on('error', (err: grpc.ServiceError) => {
        if (err.code === Status.DEADLINE_EXCEEDED) {
          finish(new DeadlineExceededError(`deadline exceeded calling lease.LeaseKeepAlive on ${raw.target}`, { cause: err }));
        } else finish(fromGrpcError(err));
      });
      call.on('end', () => finish(new UnavailableError(`the keep-alive stream to ${raw.target} ended without an answer`)));
      call.write({ ID: id.toString() });
    });
  }
}

// ---- a kept-alive lease ---------------------------------------------------------------------

/**
 * A lease kept alive by the client. Created by `client.lease(ttl)`; the grant is sent at
 * once (`await lease.grant()` for the ID). While it is alive a keep-alive goes out about every
 * TTL/3. It is declared **lost** (state 'lost', `lease.signal` aborted with a
 * `LeaseLostError`, event `lost`) when a keep-alive is answered with TTL 0, when no
 * keep-alive was acknowledged in time (see the file comment), or when the grant fails.
 * `revoke()` and `close()` end it without raising `lost`.
 *
 *   const lease = client.lease(10);
 *   lease.on('lost', (err) => stopWork(err));
 *   await lease.put('service/a', addr);       // attached to the lease
 *   doWork({ signal: lease.signal });
 */
export class Lease extends EventEmitter {
  /** The TTL asked for, in seconds. */
  readonly requestedTtl: bigint;
  private current: LeaseState = 'granting';
  private leaseId: bigint | undefined;
  private grantedTtl: bigint | undefined;
  private readonly controller = new AbortController();
  private readonly granted: Promise<bigint>;
  private readonly keepAlive: boolean;
  private readonly marginMsOption: number | undefined;
  /** Monotonic ms after which the lease is declared lost. */
  private deadline = 0;
  /** Send times (monotonic ms) of keep-alives unanswered on the current stream, oldest first. */
  private inflight: number[] = [];
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private lostError: LeaseLostError | undefined;

  /** @internal Use `client.lease()`. */
  constructor(
    private readonly owner: Leases,
    ttlSeconds: bigint,
    options: LeaseOptions,
  ) {
    super();
    if (ttlSeconds <= 0n) throw new TypeError(`ttlSeconds must be positive, got ${ttlSeconds}`);
    const margin = options.safetyMarginMs;
    if (margin !== undefined && (typeof margin !== 'number' || !Number.isFinite(margin) || margin < 0)) {
      throw new TypeError(`safetyMarginMs must be a non-negative number of milliseconds, got ${margin}`);
    }
    this.requestedTtl = ttlSeconds;
    this.keepAlive = options.keepAlive !== false;
    this.marginMsOption = margin;
    owner.track(this, true);
    const sentAt = now();
    this.granted = owner
      .grant(ttlSeconds, { id: options.id, timeoutMs: options.timeoutMs, signal: options.signal })
      .then(
        (res) => {
          this.leaseId = res.id;
          this.grantedTtl = res.ttl;
          if (this.current === 'granting') {
            this.current = 'alive';
            this.extendDeadline(sentAt, res.ttl);
            if (this.keepAlive) {
              owner.keepAliveStream.register(this, res.id);
              this.scheduleKeepAlive();
            }
          }
          return res.id;
        },
        (err: unknown) => {
          this.lose('grant-failed', `granting the lease failed: ${err instanceof Error ? err.message : String(err)}`, err);
          throw err;
        },
      );
    // Callers see the rejection through grant(); the lost event reports it too.
    this.granted.catch(() => undefined);
  }

  /** The lease ID, once granted. */
  get id(): bigint | undefined {
    return this.leaseId;
  }

  /** The TTL the server granted (and last reported), in seconds, once granted. */
  get ttl(): bigint | undefined {
    return this.grantedTtl;
  }

  get state(): LeaseState {
    return this.current;
  }

  /** Aborted (reason: `LeaseLostError`) when the lease is lost. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the lease was lost, if it was. */
  get lostReason(): LeaseLostError | undefined {
    return this.lostError;
  }

  /** Milliseconds until the client would declare the lease lost (0 when not alive). */
  get remainingMs(): number {
    return this.current === 'alive' ? Math.max(0, this.deadline - now()) : 0;
  }

  override on(event: 'lost', listener: (err: LeaseLostError) => void): this;
  override on(event: 'keepalive', listener: (res: LeaseKeepAliveResult) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'lost', listener: (err: LeaseLostError) => void): this;
  override once(event: 'keepalive', listener: (res: LeaseKeepAliveResult) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /** The lease ID, waiting for the grant. Rejects with the grant's error. */
  grant(): Promise<bigint> {
    return this.granted;
  }

  /** Attach a key to this lease (waits for the grant). */
  async put(key: Bytes, value: Bytes, options: Omit<PutCallOptions, 'lease'> = {}): Promise<PutResult> {
    const id = await this.grant();
    return this.owner.kv.put(key, value, { ...options, lease: id });
  }

  /**
   * Renew once now, on a stream of its own, and move the deadline. Rejects with
   * `LeaseNotFoundError` (and declares the lease lost) when the server no longer has it.
   */
  async keepAliveOnce(options: CallOptions = {}): Promise<LeaseKeepAliveResult> {
    const id = await this.grant();
    const sentAt = now();
    const res = await this.owner.keepAliveOnceRaw(id, options);
    if (res.ttl <= 0n) {
      this.lose('expired', `lease ${leaseIdToHex(id)} expired or was revoked`);
      throw new LeaseNotFoundError('etcdserver: requested lease not found', Status.NOT_FOUND);
    }
    if (this.current === 'alive') this.extendDeadline(sentAt, res.ttl);
    return res;
  }

  /** Stop keeping the lease alive and revoke it (its keys are deleted). */
  async revoke(options: CallOptions = {}): Promise<LeaseRevokeResult | undefined> {
    if (this.current === 'revoked') return undefined;
    this.end('revoked');
    let id: bigint;
    try {
      id = await this.granted;
    } catch {
      return undefined; // never granted: nothing to revoke
    }
    return this.owner.revoke(id, options);
  }

  /** Stop keeping the lease alive without revoking it: it expires after its TTL. */
  close(): void {
    if (this.current === 'granting' || this.current === 'alive') this.end('closed');
  }

  // ---- called by the keep-alive stream -----------------------------------------------------

  /** @internal A (new) stream is open: renew at once, our previous requests are gone. */
  onStreamOpen(): void {
    this.inflight = [];
    this.sendKeepAlive();
  }

  /** @internal The stream broke: unanswered requests will never be answered. */
  onStreamLost(): void {
    this.inflight = [];
  }

  /** @internal */
  onKeepAliveResponse(r: WireLeaseKeepAliveResponse): void {
    const sentAt = this.inflight.shift();
    if (this.current !== 'alive') return;
    const ttl = fromWire(r.TTL);
    if (ttl <= 0n) {
      this.lose('expired', `lease ${leaseIdToHex(this.leaseId ?? 0n)} expired or was revoked (keep-alive answered TTL 0)`);
      return;
    }
    this.grantedTtl = ttl;
    if (sentAt !== undefined) this.extendDeadline(sentAt, ttl);
    this.emit('keepalive', { header: decodeHeader(r.header), id: fromWire(r.ID), ttl });
  }

  // ---- internals -----------------------------------------------------------------------------

  private marginMs(ttl: bigint): number {
    return this.marginMsOption ?? Math.min(LEASE_SAFETY_MARGIN_MS_MAX, (Number(ttl) * 1000) / 10);
  }

  private periodMs(): number {
    return Math.max(KEEPALIVE_PERIOD_MS_MIN, (Number(this.grantedTtl ?? this.requestedTtl) * 1000) / 3);
  }

  private sendKeepAlive(): void {
    if (this.current !== 'alive' || this.leaseId === undefined) return;
    const sentAt = now();
    if (this.owner.keepAliveStream.send(this.leaseId)) this.inflight.push(sentAt);
  }

  private scheduleKeepAlive(): void {
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = setTimeout(() => {
      this.keepAliveTimer = undefined;
      if (this.current !== 'alive') return;
      this.sendKeepAlive();
      this.scheduleKeepAlive();
    }, this.periodMs());
  }

  /** An acknowledgement of a request sent at `sentAt` with `ttl`: the server holds it at least until sentAt + ttl. */
  private extendDeadline(sentAt: number, ttl: bigint): void {
    const candidate = sentAt + Number(ttl) * 1000 - this.marginMs(ttl);
    if (candidate <= this.deadline) return;
    this.deadline = candidate;
    this.armDeadline();
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.current !== 'alive') return;
      if (now() < this.deadline) return this.armDeadline();
      this.lose('deadline', `no keep-alive of lease ${leaseIdToHex(this.leaseId ?? 0n)} was acknowledged in time; it may have expired`);
    }, Math.max(0, this.deadline - now()));
  }

  private lose(reason: LeaseLostError['reason'], details: string, cause?: unknown): void {
    if (this.current !== 'granting' && this.current !== 'alive') return;
    this.end('lost');
    const err = new LeaseLostError(this.leaseId, reason, details, cause === undefined ? undefined : { cause });
    this.lostError = err;
    this.controller.abort(err);
    this.emit('lost', err);
  }

  private end(state: 'lost' | 'revoked' | 'closed'): void {
    this.current = state;
    if (this.keepAliveTimer) clearTimeout(this.keepAliveTimer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.keepAliveTimer = undefined;
    this.deadlineTimer = undefined;
    this.inflight = [];
    this.owner.keepAliveStream.unregister(this.leaseId);
    this.owner.track(this, false);
  }
}
