/**
 * Watch: many watchers multiplexed over one bidirectional `etcdserverpb.Watch/Watch` stream
 * per client, opened when the first watcher is created and closed when the last one ends.
 *
 * What etcd 3.4 does on that stream (checked against the reference binary; the tests in
 * test/watch*.test.ts pin it down):
 * - Creates carry no watch_id; the server assigns one and answers creates in the order they
 *   were sent (`created: true`). So we pipeline creates and match answers first-in first-out.
 *   A refused create comes back `created && canceled` with watch_id -1 and a `cancel_reason`
 *   (e.g. "mvcc: watcher range is empty").
 * - A create whose start revision is already compacted is accepted (`created`), then a second
 *   message cancels it with `compact_revision` set (and a header whose revision is 0).
 * - All events of one revision (e.g. one txn) travel in one response: history catch-up splits
 *   batches only between revisions, and with `fragment: true` a large response is split into
 *   parts (`fragment: true` on all but the last) that we join again before delivering.
 * - A progress request is answered with watch_id -1: meant for every watcher of the stream.
 *   In 3.4 that answer can overtake events still queued for a watcher that is catching up
 *   (etcd issue #15220), so it is delivered but never used as a resume point.
 * - A cancel request is acknowledged with `canceled: true` for that id; an unknown id is
 *   ignored. IDs are never reused within one stream.
 *
 * Resume. Each watcher remembers `nextRevision`, the first revision it has not yet received:
 * its start revision; or, when it asked for "from now", the create answer's header revision
 * plus one (etcd starts such a watch at exactly that revision); then the last received
 * event's mod revision plus one. When the stream breaks (server restart, UNAVAILABLE,
 * failover to another endpoint) every watcher is created again on a new stream from
 * `nextRevision`, so nothing is lost; events below `nextRevision` that still arrive are
 * dropped, so nothing is duplicated. If that revision has been compacted meanwhile, the
 * watcher ends with `WatchCompactedError` (the caller must re-read and watch again). The
 * stream is retried forever with capped exponential backoff while watchers remain, except
 * after errors that would repeat (permission denied, unauthenticated, invalid argument, ...),
 * which end every watcher.
 *
 * Back-pressure. One slow consumer must not grow memory without bound, and a shared stream
 * cannot be paused for one watcher. Each watcher holds at most `queuedResponsesMax`
 * undelivered responses (default 1000). When a response arrives for a full queue, we drop it
 * (nextRevision is not advanced past it), cancel that watch on the server and stop taking its
 * responses. When the consumer has drained the queue to half, the watch is created again from
 * `nextRevision` and the server replays the missed events from its history: the same
 * catch-up path etcd uses for slow watchers. Nothing is lost unless the history is compacted
 * while the consumer lags, which surfaces as `WatchCompactedError`. Memory per watcher is
 * bounded by `queuedResponsesMax` responses (each response by the server's max message size).
 */
import * as grpc from '@grpc/grpc-js';
import type { ConnectionPool } from './connection';
import {
  AbortError,
  ClientClosedError,
  DeadlineExceededError,
  EtcdError,
  Status,
  UnavailableError,
  WatchCanceledError,
  WatchCompactedError,
  fromGrpcError,
} from './errors';
import { fromWire, int64ToWire } from './int64';
import { decodeHeader, decodeKeyValue, resolveRange, type RangeSelector } from './ops';
import type { Bytes, CallOptions, Int64Input, KeyValue, ResponseHeader } from './types';
import type { WireKeyValue, WireResponseHeader } from './wire';

// ---- wire shapes of etcdserverpb.Watch ----------------------------------------------------

interface WireWatchCreateRequest {
  key: Buffer;
  range_end?: Buffer;
  start_revision?: string;
  progress_notify?: boolean;
  filters?: number[];
  prev_kv?: boolean;
  fragment?: boolean;
}

type WireWatchRequest =
  | { create_request: WireWatchCreateRequest }
  | { cancel_request: { watch_id: string } }
  | { progress_request: Record<string, never> };

interface WireEvent {
  type: number;
  kv: WireKeyValue | null;
  prev_kv: WireKeyValue | null;
}

interface WireWatchResponse {
  header: WireResponseHeader | null;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: WireEvent[];
}

/** watch_id of answers addressed to the whole stream (progress) or to no watcher (refused create). */
const STREAM_WATCH_ID = '-1';
const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;

// ---- public types ------------------------------------------------------------------------

export type WatchEventType = 'put' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  /** For a delete: the key, with `modRevision` the revision of the delete and an empty value. */
  kv: KeyValue;
  /** The pair before this event, when `prevKv` was requested and the key existed. */
  prevKv?: KeyValue;
}

/** One `WatchResponse`, fragments already joined. */
export interface WatchResponse {
  header: ResponseHeader;
  /**
   * The server's ID of the watch that produced it (-1n for a stream-wide progress answer).
   * It changes when the watcher is resumed on a new stream.
   */
  watchId: bigint;
  /** In revision order; all events of one revision are in the same response. */
  events: WatchEvent[];
  /** Always 0n here: a compaction ends the iteration with `WatchCompactedError`. */
  compactRevision: bigint;
  /** Always false here: a cancel ends the iteration (cleanly, or with an error). */
  canceled: boolean;
  /**
   * True for a progress notification (no events): with `progressNotify`, the watcher has
   * seen every event up to `header.revision`; after `watchProgress()`, see that method.
   */
  progressNotify: boolean;
}

export interface WatchOptions extends RangeSelector {
  /** The key, or the start of the range with `rangeEnd | prefix | fromKey`. */
  key: Bytes;
  /** Watch from this revision, replaying history (0 or absent: from now on). */
  startRevision?: Int64Input;
  /** Include the previous key-value pair in each event. */
  prevKv?: boolean;
  /** Do not send put events. */
  noPut?: boolean;
  /** Do not send delete events. */
  noDelete?: boolean;
  /** Ask the server for periodic empty responses while nothing happens (etcd: every 10 min). */
  progressNotify?: boolean;
  /** Let the server split large responses (they are joined again before delivery). */
  fragment?: boolean;
  /** Aborting cancels the watcher; iteration then throws `AbortError`. */
  signal?: AbortSignal;
  /** Undelivered responses held for this watcher before back-pressure applies. Default 1000. */
  queuedResponsesMax?: number;
}

export const DEFAULT_WATCH_QUEUED_RESPONSES_MAX = 1000;

/** Stream reconnection backoff: 50 ms doubling up to this cap, with jitter. */
const RECONNECT_BACKOFF_MS_MAX = 2000;
const RECONNECT_BACKOFF_MS_MIN = 50;

/** gRPC codes after which a new stream would fail the same way: end the watchers instead. */
const HALT_CODES: ReadonlySet<number> = new Set([
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.PERMISSION_DENIED,
  Status.UNAUTHENTICATED,
  Status.UNIMPLEMENTED,
  Status.FAILED_PRECONDITION,
  Status.OUT_OF_RANGE,
]);

function decodeEvent(e: WireEvent): WatchEvent {
  const out: WatchEvent = {
    type: e.type === 1 ? 'delete' : 'put',
    kv: decodeKeyValue(e.kv ?? ({} as WireKeyValue)),
  };
  if (e.prev_kv) out.prevKv = decodeKeyValue(e.prev_kv);
  return out;
}

/** The error a server-side cancel ends a watcher with. */
function cancelError(r: WireWatchResponse, requested: bigint): EtcdError {
  const compact = fromWire(r.compact_revision);
  if (compact > 0n) return new WatchCompactedError(compact, requested);
  return new WatchCanceledError(r.cancel_reason || 'etcdserver: watch canceled', Status.CANCELLED);
}

type WatcherState =
  /** Wants a create on the next (or current) stream. */
  | 'idle'
  /** Create sent on the current stream, answer pending. */
  | 'creating'
  /** Created on the current stream; `serverId` is set. */
  | 'active'
  /** Back-pressure: cancelled on the server until the consumer drains its queue. */
  | 'paused'
  /** Ended: cancelled, failed or aborted. */
  | 'done';

interface Waiter {
  resolve(result: IteratorResult<WatchResponse>): void;
  reject(err: unknown): void;
}

/**
 * One watch: an async iterable of responses. Created by `client.watch()`; the server-side
 * watch is requested at once, so events after that moment are captured even before the
 * iteration starts. Iterate it once (`for await`); breaking out of the loop cancels it.
 */
export class Watcher implements AsyncIterableIterator<WatchResponse> {
  readonly key: Buffer;
  /** Exclusive end of the watched range; undefined for a single key. */
  readonly rangeEnd: Buffer | undefined;

  /** @internal */ state: WatcherState = 'idle';
  /** @internal The server's ID on the current stream. */ serverId: string | undefined;
  /** @internal First revision not yet received; 0n until bound ("from now" before the first create answer). */
  nextRevision: bigint;
  /** @internal Parts of a fragmented response, until its last part arrives. */ fragments: WireEvent[] | undefined;

  private readonly queue: WatchResponse[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly queuedMax: number;
  private readonly request: Omit<WireWatchCreateRequest, 'start_revision'>;
  private failure: unknown;
  private created = false;
  private readyWaiters: { resolve(): void; reject(err: unknown): void }[] = [];
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort: (() => void) | undefined;

  /** @internal Use `client.watch()`. */
  constructor(
    private readonly hub: Watches,
    options: WatchOptions,
  ) {
    if (!options || options.key === undefined) throw new TypeError('watch needs options.key');
    const range = resolveRange(options.key, options);
    this.key = range.key;
    this.rangeEnd = range.rangeEnd;
    const start = options.startRevision === undefined ? 0n : BigInt(int64ToWire(options.startRevision, 'startRevision'));
    if (start < 0n) throw new TypeError(`startRevision must be >= 0, got ${start}`);
    this.nextRevision = start;
    const max = options.queuedResponsesMax ?? DEFAULT_WATCH_QUEUED_RESPONSES_MAX;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`queuedResponsesMax must be a positive integer, got ${max}`);
    this.queuedMax = max;
    const filters: number[] = [];
    if (options.noPut) filters.push(FILTER_NOPUT);
    if (options.noDelete) filters.push(FILTER_NODELETE);
    this.request = {
      key: range.key,
      range_end: range.rangeEnd,
      progress_notify: options.progressNotify === true,
      filters,
      prev_kv: options.prevKv === true,
      fragment: options.fragment === true,
    };
    this.signal = options.signal;
    if (this.signal) {
      if (this.signal.aborted) {
        this.state = 'done';
        this.failure = new AbortError(this.signal.reason);
        return;
      }
      this.onAbort = () => this.abort();
      this.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** The server's ID for this watch on the current stream (undefined while not created). */
  get id(): bigint | undefined {
    return this.serverId === undefined ? undefined : BigInt(this.serverId);
  }

  /** True once the watcher has ended (cancelled, failed, aborted or the client closed). */
  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * The revision every event up to which has been received (queued or delivered); a re-create
   * starts after it. 0n before the server bound a "from now" watch.
   */
  get lastRevision(): bigint {
    return this.nextRevision > 0n ? this.nextRevision - 1n : 0n;
  }

  /**
   * Resolves once the server has created the watch the first time: from then on no event is
   * missed. Rejects if the watcher ends before that (refused, aborted, cancelled, closed).
   */
  ready(): Promise<void> {
    if (this.created) return Promise.resolve();
    if (this.state === 'done') {
      return Promise.reject(this.failure ?? new WatchCanceledError('the watcher was cancelled before the server created it', Status.CANCELLED));
    }
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Stop watching: the iteration ends (done) after nothing more; queued responses are dropped. */
  cancel(): void {
    if (this.state === 'done') return;
    this.queue.length = 0;
    this.finish(undefined);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchResponse> {
    return this;
  }

  next(): Promise<IteratorResult<WatchResponse>> {
    const value = this.queue.shift();
    if (value !== undefined) {
      this.maybeResume();
      return Promise.resolve({ value, done: false });
    }
    if (this.state === 'done') {
      if (this.failure !== undefined) {
        const f = this.failure;
        this.failure = undefined;
        return Promise.reject(f);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Called by `break` in a `for await` loop: cancels the watcher. */
  return(): Promise<IteratorResult<WatchResponse>> {
    this.cancel();
    this.failure = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  // ---- called by the hub ----------------------------------------------------------------

  /** @internal The create request for the current `nextRevision`. */
  createRequest(): WireWatchCreateRequest {
    return { ...this.request, start_revision: this.nextRevision > 0n ? this.nextRevision.toString() : undefined };
  }

  /** @internal The server created the watch with this id. */
  onCreated(serverId: string, header: ResponseHeader): void {
    this.state = 'active';
    this.serverId = serverId;
    // "From now": etcd starts the watch at the store revision of this answer plus one.
    if (this.nextRevision === 0n) this.nextRevision = header.revision + 1n;
    if (!this.created) {
      this.created = true;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    }
  }

  /** @internal The stream broke: nothing is pending on the server any more. */
  onStreamLost(): void {
    this.serverId = undefined;
    this.fragments = undefined;
    if (this.state === 'creating' || this.state === 'active') this.state = 'idle';
  }

  /** @internal A response for this watcher's server id (not created, not canceled). */
  onResponse(r: WireWatchResponse): void {
    if (this.state !== 'active') return;
    let wire = r.events ?? [];
    if (r.fragment) {
      (this.fragments ??= []).push(...wire);
      return;
    }
    if (this.fragments) {
      wire = this.fragments.concat(wire);
      this.fragments = undefined;
    }
    const header = decodeHeader(r.header);
    const base = { header, watchId: fromWire(r.watch_id), compactRevision: 0n, canceled: false };
    if (wire.length === 0) {
      // A progress notification: every event up to header.revision was sent before it.
      // Like clientv3 we resume from header.revision (not +1): an event at exactly that
      // revision would be sent again and dropped by the filter below.
      if (!this.enqueue({ ...base, events: [], progressNotify: true }, false)) return;
      if (header.revision > this.nextRevision) this.nextRevision = header.revision;
      return;
    }
    // After a resume the server may send again what we already have: drop it.
    const events = wire.map(decodeEvent).filter((e) => e.kv.modRevision >= this.nextRevision);
    if (events.length === 0) return;
    if (!this.enqueue({ ...base, events, progressNotify: false }, true)) return;
    this.nextRevision = events[events.length - 1].kv.modRevision + 1n;
  }

  /** @internal A stream-wide progress answer (watch_id -1): delivered, never a resume point. */
  onProgressBroadcast(header: ResponseHeader): void {
    if (this.state !== 'active') return;
    this.enqueue({ header, watchId: -1n, events: [], compactRevision: 0n, canceled: false, progressNotify: true }, false);
  }

  /** @internal End with an error (server cancel, compaction, halt error, client closed). */
  fail(err: unknown): void {
    if (this.state === 'done') return;
    this.finish(err);
  }

  // ---- internals -------------------------------------------------------------------------

  /** Queue a response; false when it was dropped (full queue: events pause the watcher). */
  private enqueue(res: WatchResponse, pauseIfFull: boolean): boolean {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve({ value: res, done: false });
      return true;
    }
    if (this.queue.length >= this.queuedMax) {
      if (pauseIfFull) this.hub.pause(this);
      return false;
    }
    this.queue.push(res);
    return true;
  }

  /** After back-pressure: re-create once the consumer has drained the queue to half. */
  private maybeResume(): void {
    if (this.state === 'paused' && this.queue.length <= this.queuedMax / 2) this.hub.resume(this);
  }

  private abort(): void {
    if (this.state === 'done') return;
    this.queue.length = 0;
    this.finish(new AbortError(this.signal?.reason));
  }

  private finish(err: unknown): void {
    this.state = 'done';
    this.fragments = undefined;
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    this.hub.remove(this);
    const readyErr = err ?? new WatchCanceledError('the watcher was cancelled before the server created it', Status.CANCELLED);
    for (const w of this.readyWaiters.splice(0)) w.reject(readyErr);
    const waiters = this.waiters.splice(0);
    // Waiters exist only while the queue is empty: the first gets the error, if any.
    if (err !== undefined && waiters.length > 0) {
      waiters.shift()!.reject(err);
    } else if (err !== undefined) {
      this.failure = err;
    }
    for (const w of waiters) w.resolve({ value: undefined, done: true });
  }
}

interface ProgressWaiter {
  resolve(header: ResponseHeader): void;
  reject(err: unknown): void;
  /** Sent on the current stream, so the next stream-wide answer is this one's. */
  sent: boolean;
  /** Gave up (timeout, abort): its answer, if it comes, is consumed and ignored. */
  settled: boolean;
}

interface ActiveStream {
  readonly call: grpc.ClientDuplexStream<WireWatchRequest, WireWatchResponse>;
  readonly endpoint: string;
  ended: boolean;
}

/**
 * The Watch service of one client (`client.watches`): owns the shared stream and every
 * watcher on it. Use `client.watch()` and `client.watchProgress()`.
 */
export class Watches {
  private readonly watchers = new Set<Watcher>();
  /** Creates sent on the current stream, in order; their answers come back in this order. */
  private readonly pendingCreates: Watcher[] = [];
  private readonly byServerId = new Map<string, Watcher>();
  private progressWaiters: ProgressWaiter[] = [];
  private stream: ActiveStream | undefined;
  private connecting = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private opened = 0;

  constructor(private readonly pool: ConnectionPool) {}

  /** How many gRPC watch streams this client has opened so far (one at a time). */
  get streamsOpened(): number {
    return this.opened;
  }

  /** Watchers not yet ended. */
  get size(): number {
    return this.watchers.size;
  }

  /** Start watching a key or range. See `WatchOptions` and the file comment. */
  watch(options: WatchOptions): Watcher {
    if (this.closed || this.pool.isClosed) throw new ClientClosedError();
    const w = new Watcher(this, options);
    if (w.done) return w; // signal already aborted
    this.watchers.add(w);
    if (this.stream) this.sendCreate(w);
    else this.connect();
    return w;
  }

  /**
   * Ask the server for a progress notification on the shared stream (etcd 3.4+). Resolves
   * with the answer's header; every active watcher also receives it as a `progressNotify`
   * response. In etcd 3.4 the revision may run ahead of events still queued for a watcher
   * that is catching up on history (etcd #15220): it is not a resume point.
   */
  progress(options: CallOptions = {}): Promise<ResponseHeader> {
    if (this.closed || this.pool.isClosed) return Promise.reject(new ClientClosedError());
    const timeoutMs = this.pool.deadlineFor(options) - Date.now();
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    return new Promise<ResponseHeader>((resolve, reject) => {
      const settle = () => {
        p.settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (!p.sent) this.progressWaiters = this.progressWaiters.filter((q) => q !== p);
        this.closeIfIdle();
      };
      const p: ProgressWaiter = {
        sent: false,
        settled: false,
        resolve: (h) => {
          settle();
          resolve(h);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
      const onAbort = () => p.reject(new AbortError(signal?.reason));
      const timer = setTimeout(() => p.reject(new DeadlineExceededError('no answer to the watch progress request')), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.progressWaiters.push(p);
      if (this.stream) {
        p.sent = true;
        this.write({ progress_request: {} });
      } else this.connect();
    });
  }

  /** End every watcher (`ClientClosedError`) and the stream. Called by `client.close()`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.closeStream();
    for (const w of [...this.watchers]) w.fail(new ClientClosedError());
    for (const p of this.progressWaiters.splice(0)) if (!p.settled) p.reject(new ClientClosedError());
  }

  // ---- called by watchers -----------------------------------------------------------------

  /** @internal A watcher ended: cancel it on the server, close the stream if it was the last. */
  remove(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    if (w.serverId !== undefined) {
      this.byServerId.delete(w.serverId);
      this.write({ cancel_request: { watch_id: w.serverId } });
      w.serverId = undefined;
    }
    // A watcher still 'creating' stays in pendingCreates; its answer is cancelled on arrival.
    this.closeIfIdle();
  }

  /** @internal Back-pressure: cancel on the server and stop taking its responses. */
  pause(w: Watcher): void {
    if (w.serverId !== undefined) {
      this.byServerId.delete(w.serverId);
      this.write({ cancel_request: { watch_id: w.serverId } });
    }
    w.serverId = undefined;
    w.fragments = undefined;
    w.state = 'paused';
  }

  /** @internal The consumer caught up: create the watch again from its next revision. */
  resume(w: Watcher): void {
    if (w.state !== 'paused') return;
    w.state = 'idle';
    if (this.stream) this.sendCreate(w);
    else this.connect();
  }

  // ---- the stream ---------------------------------------------------------------------------

  private needsStream(): boolean {
    return !this.closed && (this.watchers.size > 0 || this.progressWaiters.some((p) => !p.settled));
  }

  private closeIfIdle(): void {
    if (!this.needsStream()) {
      this.closeStream();
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
  }

  private connect(): void {
    if (this.stream || this.connecting || this.retryTimer || !this.needsStream()) return;
    this.connecting = true;
    const deadline = Date.now() + this.pool.options.callTimeoutMs;
    this.pool.ready(deadline).then(
      (index) => {
        this.connecting = false;
        this.open(index);
      },
      (err: unknown) => {
        this.connecting = false;
        if (err instanceof ClientClosedError || this.closed) return this.close();
        this.scheduleReconnect();
      },
    );
  }

  private scheduleReconnect(): void {
    if (this.retryTimer || !this.needsStream()) return;
    const base = Math.min(RECONNECT_BACKOFF_MS_MAX, RECONNECT_BACKOFF_MS_MIN * 2 ** Math.min(this.failures, 16));
    this.failures++;
    const delay = base / 2 + Math.random() * (base / 2);
    // Not unref'd: a process waiting on a watcher must stay alive while we reconnect.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private open(index: number): void {
    if (this.stream || !this.needsStream()) return;
    if (this.pool.isClosed) return this.close();
    const raw = this.pool.raw(index);
    const method = raw.watch.Watch as (metadata: grpc.Metadata, options: grpc.CallOptions) => ActiveStream['call'];
    const call = method.call(raw.watch, new grpc.Metadata(), {});
    const s: ActiveStream = { call, endpoint: raw.target, ended: false };
    this.stream = s;
    this.opened++;
    call.on('data', (r: WireWatchResponse) => {
      if (this.stream === s) this.onResponse(r);
    });
    call.on('error', (err: Error) => this.onStreamEnd(s, err));
    call.on('end', () => this.onStreamEnd(s, undefined));
    for (const w of this.watchers) if (w.state === 'idle') this.sendCreate(w);
    for (const p of this.progressWaiters) {
      if (p.settled || p.sent) continue;
      p.sent = true;
      this.write({ progress_request: {} });
    }
  }

  private closeStream(): void {
    const s = this.stream;
    this.stream = undefined;
    this.pendingCreates.length = 0;
    this.byServerId.clear();
    for (const w of this.watchers) w.onStreamLost();
    for (const p of this.progressWaiters) p.sent = false;
    this.progressWaiters = this.progressWaiters.filter((p) => !p.settled);
    if (s && !s.ended) {
      s.ended = true;
      s.call.cancel();
    }
  }

  private onStreamEnd(s: ActiveStream, err: Error | undefined): void {
    if (s.ended) return;
    s.ended = true;
    if (this.stream !== s) return;
    this.closeStream();
    const e = err ? fromGrpcError(err) : new UnavailableError(`the watch stream to ${s.endpoint} was closed by the server`);
    if (HALT_CODES.has(e.code)) {
      for (const w of [...this.watchers]) w.fail(e);
      for (const p of [...this.progressWaiters]) if (!p.settled) p.reject(e);
      return;
    }
    this.scheduleReconnect();
  }

  private write(req: WireWatchRequest): void {
    const s = this.stream;
    if (!s || s.ended) return;
    try {
      s.call.write(req);
    } catch {
      // The call already failed; its 'error' event resumes everything on a new stream.
    }
  }

  private sendCreate(w: Watcher): void {
    w.state = 'creating';
    this.pendingCreates.push(w);
    this.write({ create_request: w.createRequest() });
  }

  private onResponse(r: WireWatchResponse): void {
    this.failures = 0;
    if (r.created) return this.onCreated(r);
    if (r.watch_id === STREAM_WATCH_ID) return this.onProgress(r);
    const w = this.byServerId.get(r.watch_id);
    if (!w) return; // a watch we cancelled; late responses and the cancel's answer land here
    if (r.canceled) {
      this.byServerId.delete(r.watch_id);
      w.serverId = undefined;
      w.fail(cancelError(r, w.nextRevision));
      return;
    }
    w.onResponse(r);
  }

  private onCreated(r: WireWatchResponse): void {
    const w = this.pendingCreates.shift();
    if (!w) return; // an answer to no create of ours: not etcd's protocol; ignore it
    if (r.canceled) {
      if (w.state !== 'done') w.fail(cancelError(r, w.nextRevision));
      return;
    }
    if (w.state === 'done') {
      // Cancelled while its create was in flight.
      this.write({ cancel_request: { watch_id: r.watch_id } });
      return;
    }
    this.byServerId.set(r.watch_id, w);
    w.onCreated(r.watch_id, decodeHeader(r.header));
  }

  private onProgress(r: WireWatchResponse): void {
    const header = decodeHeader(r.header);
    const i = this.progressWaiters.findIndex((p) => p.sent);
    if (i >= 0) {
      const [p] = this.progressWaiters.splice(i, 1);
      if (!p.settled) p.resolve(header);
    }
    for (const w of this.watchers) w.onProgressBroadcast(header);
    this.closeIfIdle();
  }
}
