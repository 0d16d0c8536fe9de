/**
 * Endpoints, channels and the unary call path with failover.
 *
 * Each endpoint gets one gRPC channel (one HTTP/2 connection) shared by all services. A call
 * goes to the endpoint that last worked; if it cannot be used we try the others in order.
 * A call has two phases and failover differs between them:
 *
 * 1. Connect: wait until the endpoint's channel is READY (at most `dialTimeoutMs` per
 *    endpoint in the first pass; a channel already in TRANSIENT_FAILURE is skipped at once).
 *    Nothing has been sent yet, so moving on to the next endpoint is safe for every call.
 *    If no endpoint is ready after one pass, we wait for whichever becomes READY first,
 *    until the call's deadline (gRPC keeps reconnecting in the background).
 * 2. Send: once a request is on the wire, an UNAVAILABLE answer (connection lost, "no
 *    leader", "leader changed", "request timed out", ...) does not tell us whether the
 *    server applied it. Idempotent calls (range, status, hashKV, memberList) are then
 *    retried on the next endpoint. Non-idempotent ones (put, delete, txn, compact) are NOT:
 *    retrying a write that may already have been applied can apply it twice (a second put
 *    bumps the version and revision; a txn's compare may now fail or, worse, succeed on
 *    different state). The error is surfaced and the caller decides.
 */
import * as grpc from '@grpc/grpc-js';
import {
  AbortError,
  ClientClosedError,
  DeadlineExceededError,
  EtcdError,
  Status,
  UnavailableError,
  fromGrpcError,
} from './errors';
import type { CallOptions } from './types';
import { createRawClients, type RawClients, type ServiceName, type UnaryCallback } from './wire';

export interface ClientOptions {
  /** `host:port`, `http://host:port` or `https://host:port` (TLS). At least one. */
  endpoints: string[];
  /** How long the first pass waits for one endpoint to connect before trying the next. Default 3000. */
  dialTimeoutMs?: number;
  /** Default deadline of every call, connect and failover included. Default 5000. */
  callTimeoutMs?: number;
  /** Channel credentials; default insecure, or TLS with system roots for `https://` endpoints. */
  credentials?: grpc.ChannelCredentials;
  /** Extra gRPC channel options, merged over ours. */
  channelOptions?: grpc.ChannelOptions;
}

export interface ResolvedOptions {
  readonly endpoints: readonly string[];
  readonly dialTimeoutMs: number;
  readonly callTimeoutMs: number;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 3000;
export const DEFAULT_CALL_TIMEOUT_MS = 5000;
const WATCH_SLICE_MS = 200;

/** Channel options: etcd's defaults for message sizes, and short reconnect backoff for failover. */
const BASE_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // clientv3 allows receiving up to MaxInt32; a large range must not fail on the client.
  'grpc.max_receive_message_length': 2 ** 31 - 1,
  'grpc.max_send_message_length': 2 ** 31 - 1,
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 2000,
};

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}

interface Target {
  target: string;
  tls: boolean;
}

/** `http://h:p` → `h:p`; `https://h:p` → `h:p` with TLS; `h:p` and `unix:` pass through. */
export function parseEndpoint(endpoint: string): Target {
  if (typeof endpoint !== 'string' || endpoint.trim() === '') {
    throw new TypeError(`endpoint must be a non-empty string, got ${JSON.stringify(endpoint)}`);
  }
  const e = endpoint.trim();
  const m = /^(https?):\/\/([^/]+)\/?$/.exec(e);
  if (m) return { target: m[2], tls: m[1] === 'https' };
  if (/^[a-z]+:\/\//i.test(e)) throw new TypeError(`unsupported endpoint scheme: ${endpoint}`);
  return { target: e, tls: false };
}

/** One endpoint and its lazily created channel and service clients. */
class Endpoint {
  private clients: RawClients | undefined;

  constructor(
    readonly address: string,
    private readonly target: Target,
    private readonly credentials: grpc.ChannelCredentials,
    private readonly channelOptions: grpc.ChannelOptions,
  ) {}

  raw(): RawClients {
    if (!this.clients) this.clients = createRawClients(this.target.target, this.credentials, this.channelOptions);
    return this.clients;
  }

  close(): void {
    this.clients?.channel.close();
  }
}

function abortReason(signal: AbortSignal): AbortError {
  return new AbortError(signal.reason);
}

/** Policy for a unary call. */
export interface UnaryPolicy {
  /** Safe to send twice: retried on another endpoint after UNAVAILABLE. */
  idempotent: boolean;
}

/**
 * The endpoints of one client. Unary calls go through `unary()`; streaming services (Watch,
 * Lease keep-alive) will use `ready()` to get a connected endpoint and own their stream.
 */
export class ConnectionPool {
  readonly options: ResolvedOptions;
  private readonly endpoints: Endpoint[];
  private preferred = 0;
  private closed = false;

  constructor(options: ClientOptions) {
    if (!options || !Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw new TypeError('options.endpoints must be a non-empty array of "host:port" strings');
    }
    const targets = options.endpoints.map(parseEndpoint);
    this.options = Object.freeze({
      endpoints: Object.freeze([...options.endpoints]),
      dialTimeoutMs: positiveMs(options.dialTimeoutMs, DEFAULT_DIAL_TIMEOUT_MS, 'dialTimeoutMs'),
      callTimeoutMs: positiveMs(options.callTimeoutMs, DEFAULT_CALL_TIMEOUT_MS, 'callTimeoutMs'),
    });
    const channelOptions = { ...BASE_CHANNEL_OPTIONS, ...options.channelOptions };
    this.endpoints = targets.map((t, i) => {
      const credentials =
        options.credentials ?? (t.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
      return new Endpoint(options.endpoints[i], t, credentials, channelOptions);
    });
  }

  /** The endpoint the next call will try first (the one that last worked). */
  get activeEndpoint(): string {
    return this.endpoints[this.preferred].address;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Raw service clients of one endpoint (default: the active one). Creating them does not connect. */
  raw(endpoint: number | string = this.preferred): RawClients {
    this.assertOpen();
    const index = typeof endpoint === 'number' ? endpoint : this.endpoints.findIndex((e) => e.address === endpoint);
    const ep = this.endpoints[index];
    if (!ep) throw new RangeError(`no such endpoint: ${endpoint}`);
    return ep.raw();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ep of this.endpoints) ep.close();
  }

  /** Deadline (epoch ms) for a call with these options. */
  deadlineFor(call: CallOptions | undefined): number {
    return Date.now() + positiveMs(call?.timeoutMs, this.options.callTimeoutMs, 'timeoutMs');
  }

  /**
   * A connected endpoint: the preferred one if it connects, else the others in order, else
   * the first to become READY before the deadline. Safe for any call: nothing is sent.
   */
  async ready(deadline: number, signal?: AbortSignal, exclude: ReadonlySet<number> = new Set()): Promise<number> {
    this.assertOpen();
    if (signal?.aborted) throw abortReason(signal);
    const n = this.endpoints.length;
    const failures: string[] = [];
    const candidates: number[] = [];
    for (let i = 0; i < n; i++) {
      const index = (this.preferred + i) % n;
      if (!exclude.has(index)) candidates.push(index);
    }
    // Fast path, the common case: the preferred endpoint is connected.
    const first = candidates[0];
    if (first === this.preferred && this.endpoints[first].raw().channel.getConnectivityState(false) === grpc.connectivityState.READY) {
      return first;
    }
    // Pass 1: each candidate in turn, bounded by the dial timeout, failing fast on TRANSIENT_FAILURE.
    for (const index of candidates) {
      const dialDeadline = Math.min(deadline, Date.now() + this.options.dialTimeoutMs);
      const outcome = await this.waitReady(index, dialDeadline, signal, true);
      if (outcome === 'ready') return index;
      failures.push(`${this.endpoints[index].address}: ${outcome}`);
      if (Date.now() >= deadline) break;
    }
    // Pass 2: wait for any candidate to (re)connect until the call's deadline.
    if (candidates.length > 0 && Date.now() < deadline) {
      let winner = -1;
      const stop = () => winner >= 0;
      await Promise.all(
        candidates.map((i) =>
          this.waitReady(i, deadline, signal, false, stop).then((outcome) => {
            if (outcome === 'ready' && winner < 0) winner = i;
          }),
        ),
      );
      if (winner >= 0) return winner;
      failures.push(`none connected within the deadline`);
    }
    throw new UnavailableError(`no endpoint is available (${failures.join('; ') || 'none to try'})`);
  }

  /**
   * Run a unary call with failover (see the file comment for which calls are retried and why).
   */
  async unary<Req, Res>(
    service: ServiceName,
    method: string,
    request: Req,
    policy: UnaryPolicy,
    call?: CallOptions,
  ): Promise<Res> {
    const deadline = this.deadlineFor(call);
    const signal = call?.signal;
    const sentTo = new Set<number>();
    let lastError: EtcdError | undefined;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      let index: number;
      try {
        index = await this.ready(deadline, signal, sentTo);
      } catch (err) {
        // Out of endpoints to connect to: the last server answer is more telling than ours.
        if (lastError && err instanceof UnavailableError) throw lastError;
        throw err;
      }
      try {
        const res = await this.invoke<Req, Res>(index, service, method, request, deadline, signal);
        this.preferred = index;
        return res;
      } catch (err) {
        const e = err as EtcdError;
        const unavailable = e.code === Status.UNAVAILABLE && !(e instanceof AbortError);
        // The member is suspect: start the next call elsewhere. (A write is still not resent.)
        if (unavailable && index === this.preferred) this.preferred = (index + 1) % this.endpoints.length;
        if (!policy.idempotent || !unavailable) throw e;
        // A read is safe to send again, to another member.
        sentTo.add(index);
        lastError = e;
      }
    }
    throw lastError ?? new UnavailableError();
  }

  private invoke<Req, Res>(
    index: number,
    service: ServiceName,
    method: string,
    request: Req,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const client = this.endpoints[index].raw()[service] as unknown as Record<string, unknown>;
    const fn = client[method];
    if (typeof fn !== 'function') return Promise.reject(new TypeError(`unknown method ${service}.${method}`));
    return new Promise<Res>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const callback: UnaryCallback<Res> = (err, res) => {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        if (err) {
          if (signal?.aborted && err.code === Status.CANCELLED) reject(abortReason(signal));
          else if (err.code === Status.DEADLINE_EXCEEDED && !err.details.startsWith('etcdserver')) {
            reject(new DeadlineExceededError(`deadline exceeded calling ${service}.${method} on ${this.endpoints[index].address}`, { cause: err }));
          } else reject(fromGrpcError(err));
        } else resolve(res as Res);
      };
      const grpcCall = (fn as (...a: unknown[]) => grpc.ClientUnaryCall).call(
        client,
        request,
        new grpc.Metadata(),
        { deadline },
        callback,
      );
      if (signal) {
        onAbort = () => grpcCall.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  /**
   * Wait until endpoint `index` is READY. Resolves with 'ready' or a short reason; rejects only
   * on abort or close. With `failFast`, TRANSIENT_FAILURE (connection refused, reset, ...) ends
   * the wait; `stop()` ends it early with 'stopped'. We watch the channel in slices of
   * `WATCH_SLICE_MS` because grpc-js cannot unregister a watcher and keeps its timer alive
   * until the given deadline: a long deadline would hold the process open after we are done.
   */
  private waitReady(
    index: number,
    deadline: number,
    signal: AbortSignal | undefined,
    failFast: boolean,
    stop: () => boolean = () => false,
  ): Promise<string> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.closed) return Promise.reject(new ClientClosedError());
    const channel = this.endpoints[index].raw().channel;
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = (outcome: string | Error) => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const onAbort = () => finish(abortReason(signal as AbortSignal));
      signal?.addEventListener('abort', onAbort, { once: true });
      const check = () => {
        if (done) return;
        if (this.closed) return finish(new ClientClosedError());
        if (stop()) return finish('stopped');
        const state = channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) return finish('ready');
        if (state === grpc.connectivityState.SHUTDOWN) return finish(new ClientClosedError());
        if (failFast && state === grpc.connectivityState.TRANSIENT_FAILURE) return finish('connection failed');
        const now = Date.now();
        if (now >= deadline) return finish('connect timed out');
        channel.watchConnectivityState(state, Math.min(deadline, now + WATCH_SLICE_MS), () => check());
      };
      check();
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new ClientClosedError();
  }
}
