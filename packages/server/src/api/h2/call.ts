/**
 * gRPC calls over an H2Stream, with the subset of @grpc/grpc-js's server call API that
 * coord's services use, so they run unchanged on either transport:
 *
 * - unary and server-streaming: `call.request`, `call.cancelled`, 'cancelled'; unary
 *   handlers answer through `callback(err | null, response)`, errors being
 *   `{ code, details }` (grpc-js's serverErrorToStatus rules);
 * - client- and bidi-streaming: 'data', 'end', 'error', 'close', 'cancelled', 'drain';
 *   `write(msg)` returns false once more than `writeHighWaterMarkBytes` wait for flow-control
 *   window or socket room, and 'drain' follows when they have gone out; `end()` sends
 *   status OK after the queued messages; `destroy(err)` sends err's status; `pause()` stops
 *   'data' (messages wait, uncredited, so the client's stream window bounds them) until
 *   `resume()`.
 *
 * Framing (gRPC over HTTP/2, "Length-Prefixed-Message"): a compressed-flag byte, a 4-byte
 * big-endian length, the message. We offer no compression, so a compressed message is
 * refused as grpc-go refuses it. A message longer than `messageBytesMax` is not buffered:
 * its bytes are dropped as they arrive (and credited) and the handler receives
 * `oversized(length)` in its place (coord's limitRequestSize value, answered with grpc-go's
 * ResourceExhausted text); a message within the limit is copied into its own buffer and
 * decoded with the method's requestDeserialize.
 *
 * Status texts for transport-level failures are grpc-js's (what coord answered before this
 * transport) or grpc-go's (what etcd answers) where grpc-js has none.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { H2Stream, StreamApp } from './connection';
import { H2Error } from './frames';
import { encodeHeaders, HeaderList, percentEncode } from './hpack';

export type MethodKind = 'unary' | 'clientStream' | 'serverStream' | 'bidi';

export interface MethodEntry {
  readonly path: string;
  readonly kind: MethodKind;
  readonly func: (call: ServerCall, callback?: (err: unknown, value?: unknown) => void) => void;
  readonly deserialize: (buf: Buffer) => unknown;
  readonly serialize: (value: unknown) => Buffer | Uint8Array;
}

/** What calls need from their server. */
export interface CallContext {
  readonly messageBytesMax: number;
  /** The request value standing for an oversized message; undefined: the call fails instead. */
  readonly oversized: ((bytes: number, limitBytes: number) => unknown) | undefined;
  readonly writeHighWaterMarkBytes: number;
}

export const Status = grpc.status;

/** `:status 200` (static index 8) and `content-type: application/grpc`. */
export const RESPONSE_HEADERS = encodeHeaders([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);
const TRAILERS_OK = encodeHeaders([['grpc-status', '0']]);
const TRAILERS_ONLY_PREFIX = RESPONSE_HEADERS;
/** grpc-js answers a non-gRPC content type with HTTP 415 and no gRPC status. */
export const HTTP_415 = encodeHeaders([[':status', '415']]);

const errorTrailerCache = new Map<string, Buffer>();
const ERROR_TRAILER_CACHE_MAX = 256;

/** Trailer block for a status; error blocks are cached (servers repeat their errors). */
export function trailerBlock(code: number, details: string): Buffer {
  if (code === Status.OK && details === '') return TRAILERS_OK;
  const key = `${code}\u0000${details}`;
  let b = errorTrailerCache.get(key);
  if (b === undefined) {
    const fields: [string, string][] = [['grpc-status', String(code)]];
    if (details !== '') fields.push(['grpc-message', percentEncode(details)]);
    b = encodeHeaders(fields);
    if (errorTrailerCache.size >= ERROR_TRAILER_CACHE_MAX) errorTrailerCache.clear();
    errorTrailerCache.set(key, b);
  }
  return b;
}

/** grpc-js's serverErrorToStatus: an integer `code` (with string `details`) or UNKNOWN with the message. */
export function errorToStatus(err: unknown): { code: number; details: string } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; details?: unknown; message?: unknown };
  const status = { code: Status.UNKNOWN as number, details: typeof e.message === 'string' ? e.message : 'Unknown Error' };
  if (typeof e.code === 'number' && Number.isInteger(e.code)) {
    status.code = e.code;
    if (typeof e.details === 'string') status.details = e.details;
  }
  return status;
}

const TIMEOUT_UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/** gRPC's grpc-timeout: at most 8 digits and a unit. Returns undefined when malformed. */
export function parseTimeoutMs(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * TIMEOUT_UNITS_MS[m[2]];
}

const PREFIX_BYTES = 5;
const EMPTY = Buffer.alloc(0);
/** Node's setTimeout limit; longer deadlines are not armed (they cannot expire in practice). */
const TIMER_MS_MAX = 2 ** 31 - 1;

export class ServerCall extends EventEmitter implements StreamApp {
  request: unknown = undefined;
  cancelled = false;
  private hasRequest = false;
  /** Status sent (or the stream is gone): nothing more is sent or delivered. */
  private finished = false;
  private headersSent = false;
  private remoteEnded = false;
  private endEmitted = false;
  private closeEmitted = false;
  private paused = false;
  private deliverScheduled = false;
  private needDrain = false;
  /** Messages waiting while paused (or before a 'data' listener), with their wire bytes. */
  private queue: unknown[] = [];
  private queueBytes: number[] = [];
  /** Framing state: the prefix being read, the message being filled, bytes left to drop. */
  private prefix: Buffer | undefined;
  private prefixGot = 0;
  private message: Buffer | undefined;
  private messageGot = 0;
  private discardLeft = 0;
  private timer: NodeJS.Timeout | undefined;
  private deadline = Infinity;
  private metadataCache: grpc.Metadata | undefined;
  private readonly respond = (err: unknown, value?: unknown): void => this.onResponse(err, value);

  constructor(
    private readonly ctx: CallContext,
    private readonly stream: H2Stream,
    private readonly method: MethodEntry,
    private readonly headers: HeaderList,
  ) {
    super();
  }

  /** Starts the call once it is attached to its stream (the stream's `app`). */
  start(timeout: string | undefined, encoding: string | undefined): void {
    if (timeout !== undefined) {
      const ms = parseTimeoutMs(timeout);
      if (ms === undefined) {
        this.sendStatus(Status.INTERNAL, `Invalid grpc-timeout value "${timeout}"`);
        return;
      }
      this.deadline = Date.now() + ms;
      if (ms <= TIMER_MS_MAX) {
        this.timer = setTimeout(() => this.onDeadline(), Math.ceil(ms));
        this.timer.unref();
      }
    }
    this.encoding = encoding;
    const kind = this.method.kind;
    // grpc-js runs streaming-request handlers as soon as the headers are in.
    if (kind === 'bidi' || kind === 'clientStream') this.invoke();
  }
  private encoding: string | undefined;

  // ------------------------------------------------------------------------------------
  // grpc-js call API

  get metadata(): grpc.Metadata {
    if (!this.metadataCache) {
      const md = new grpc.Metadata();
      const h = this.headers;
      for (let i = 0; i < h.length; i += 2) {
        const name = h[i];
        if (name.startsWith(':') || name === 'content-type' || name === 'te' || name === 'grpc-timeout' || name === 'grpc-encoding') continue;
        try {
          if (name.endsWith('-bin')) md.add(name, Buffer.from(h[i + 1], 'base64'));
          else md.add(name, h[i + 1]);
        } catch {
          // grpc-js refuses some names; they are not part of the call's metadata.
        }
      }
      this.metadataCache = md;
    }
    return this.metadataCache;
  }

  getPeer(): string {
    const s = this.stream.conn.socket;
    return `${s.remoteAddress}:${s.remotePort}`;
  }

  getPath(): string {
    return this.method.path;
  }

  getDeadline(): Date | number {
    return this.deadline === Infinity ? Infinity : new Date(this.deadline);
  }

  getHost(): string {
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === ':authority') return h[i + 1];
    return '';
  }

  sendMetadata(): void {
    // Custom response metadata is not needed by coord's services; the headers go out now.
    this.sendResponseHeaders();
  }

  /** Writes a response message; false once the queue is above the high-water mark ('drain' follows). */
  write(value: unknown): boolean {
    if (this.finished) return false;
    let buf: Buffer | Uint8Array;
    try {
      buf = this.method.serialize(value);
    } catch {
      this.sendStatus(Status.INTERNAL, 'Error serializing response');
      return false;
    }
    return this.belowHighWaterMark(this.sendMessage(buf));
  }

  /** write()'s answer for `pending` queued bytes: false (and 'drain' later) above the high-water mark. */
  private belowHighWaterMark(pending: number): boolean {
    if (pending > this.ctx.writeHighWaterMarkBytes) {
      this.needDrain = true;
      this.stream.wantDrain = true;
      return false;
    }
    return true;
  }

  /**
   * Writes messages that are already encoded (byte arrays, not values to serialize) as one
   * run of length-prefixed messages in one DATA payload: a watch fan-out writes hundreds of
   * small responses to a stream per revision. Same return and 'drain' contract as write().
   */
  writeEncoded(messages: readonly Uint8Array[]): boolean {
    if (this.finished) return false;
    let bytes = 0;
    for (const m of messages) bytes += PREFIX_BYTES + m.length;
    const buf = Buffer.allocUnsafe(bytes);
    let off = 0;
    for (const m of messages) {
      buf[off] = 0;
      buf.writeUInt32BE(m.length, off + 1);
      buf.set(m, off + PREFIX_BYTES);
      off += PREFIX_BYTES + m.length;
    }
    this.sendResponseHeaders();
    return this.belowHighWaterMark(this.stream.sendData(buf));
  }

  /** Ends the call with status OK after the messages written so far. */
  end(): this {
    if (!this.finished) this.sendStatus(Status.OK, '');
    return this;
  }

  /** With an error: ends the call with its status ('error' is emitted, as a Node stream would). Without: resets the stream. */
  destroy(err?: unknown): this {
    if (this.finished) return this;
    if (err !== undefined && err !== null) {
      const st = errorToStatus(err);
      this.sendStatus(st.code, st.details);
      if (this.listenerCount('error') > 0) process.nextTick(() => this.emit('error', err));
    } else {
      this.finished = true;
      this.clearTimer();
      this.stream.reset(H2Error.Cancel);
      this.emitClose();
    }
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.scheduleDeliver();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    // Messages that arrived before the first 'data' listener are delivered to it.
    if (event === 'data' && this.queue.length > 0) this.scheduleDeliver();
    return this;
  }

  // ------------------------------------------------------------------------------------
  // StreamApp (from the connection)

  onData(data: Buffer): void {
    const len = data.length;
    let off = 0;
    while (off < len && !this.finished) {
      if (this.discardLeft > 0) {
        const n = Math.min(this.discardLeft, len - off);
        this.discardLeft -= n;
        off += n;
        this.stream.consume(n);
        continue;
      }
      if (this.message === undefined) {
        let flag: number;
        let length: number;
        if (this.prefixGot === 0 && len - off >= PREFIX_BYTES) {
          flag = data[off];
          length = data.readUInt32BE(off + 1);
          off += PREFIX_BYTES;
        } else {
          this.prefix ??= Buffer.allocUnsafe(PREFIX_BYTES);
          const n = Math.min(PREFIX_BYTES - this.prefixGot, len - off);
          data.copy(this.prefix, this.prefixGot, off, off + n);
          this.prefixGot += n;
          off += n;
          if (this.prefixGot < PREFIX_BYTES) return;
          this.prefixGot = 0;
          flag = this.prefix[0];
          length = this.prefix.readUInt32BE(1);
        }
        if (flag !== 0) return this.refuseCompressed();
        if (length > this.ctx.messageBytesMax) {
          this.discardLeft = length;
          this.stream.consume(PREFIX_BYTES);
          const oversized = this.ctx.oversized;
          // grpc-go's text, which etcd's clients see from etcd.
          if (oversized === undefined) this.sendStatus(Status.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${length} vs. ${this.ctx.messageBytesMax})`);
          else this.deliver(oversized(length, this.ctx.messageBytesMax), 0);
          continue;
        }
        if (length === 0) {
          this.deliverRaw(EMPTY, PREFIX_BYTES);
          continue;
        }
        if (len - off >= length) {
          // The whole message is in this frame: copy it out of the socket chunk, which
          // decoded Buffers would otherwise keep alive.
          const m = Buffer.allocUnsafe(length);
          data.copy(m, 0, off, off + length);
          off += length;
          this.deliverRaw(m, PREFIX_BYTES + length);
          continue;
        }
        this.message = Buffer.allocUnsafe(length);
        this.messageGot = 0;
      }
      const m = this.message;
      const n = Math.min(m.length - this.messageGot, len - off);
      data.copy(m, this.messageGot, off, off + n);
      this.messageGot += n;
      off += n;
      if (this.messageGot === m.length) {
        this.message = undefined;
        this.deliverRaw(m, PREFIX_BYTES + m.length);
      }
    }
  }

  onEnd(): void {
    if (this.finished) return;
    this.remoteEnded = true;
    if (this.message !== undefined || this.prefixGot > 0) {
      this.sendStatus(Status.INTERNAL, 'Received an incomplete message');
      return;
    }
    const kind = this.method.kind;
    if (kind === 'unary' || kind === 'serverStream') {
      if (!this.hasRequest) {
        this.sendStatus(Status.UNIMPLEMENTED, `Received no request message for server streaming method ${this.method.path}`);
        return;
      }
      this.invoke();
      return;
    }
    this.maybeEnd();
  }

  onReset(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelled = true;
    this.clearTimer();
    this.emit('cancelled', 'cancelled');
    this.emitClose();
  }

  onDrain(): void {
    if (!this.needDrain || this.finished) return;
    this.needDrain = false;
    this.emit('drain');
  }

  // ------------------------------------------------------------------------------------
  // Internals

  private invoke(): void {
    try {
      if (this.method.kind === 'unary' || this.method.kind === 'clientStream') this.method.func(this, this.respond);
      else this.method.func(this);
    } catch {
      // grpc-js: a handler that throws ends the call with UNKNOWN "Unknown error".
      this.sendStatus(Status.UNKNOWN, 'Unknown error');
    }
  }

  private onResponse(err: unknown, value?: unknown): void {
    if (this.finished) return;
    if (err) {
      const st = errorToStatus(err);
      this.sendStatus(st.code, st.details);
      return;
    }
    let buf: Buffer | Uint8Array;
    try {
      buf = this.method.serialize(value);
    } catch {
      this.sendStatus(Status.INTERNAL, 'Error serializing response');
      return;
    }
    this.sendMessage(buf);
    this.sendStatus(Status.OK, '');
  }

  private sendResponseHeaders(): void {
    if (this.headersSent || this.finished) return;
    this.headersSent = true;
    this.stream.sendHeaders(RESPONSE_HEADERS);
  }

  private sendMessage(buf: Buffer | Uint8Array): number {
    this.sendResponseHeaders();
    const msg = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
    prefix[0] = 0;
    prefix.writeUInt32BE(msg.length, 1);
    return this.stream.sendData(prefix, msg);
  }

  /** Ends the call: trailers after the queued messages, or a trailers-only response. */
  sendStatus(code: number, details: string): void {
    if (this.finished) return;
    this.finished = true;
    this.clearTimer();
    const block = trailerBlock(code, details);
    if (this.headersSent) this.stream.sendTrailers(block);
    else {
      this.headersSent = true;
      this.stream.sendTrailers(Buffer.concat([TRAILERS_ONLY_PREFIX, block]));
    }
    this.emitClose();
  }

  private emitClose(): void {
    if (this.closeEmitted || this.method.kind === 'unary') return;
    this.closeEmitted = true;
    process.nextTick(() => this.emit('close'));
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private onDeadline(): void {
    this.timer = undefined;
    if (this.finished) return;
    this.sendStatus(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
    this.cancelled = true;
    this.emit('cancelled', 'deadline');
  }

  private refuseCompressed(): void {
    const enc = this.encoding;
    // grpc-go's answers: a codec we do not have, or a flag without a codec.
    if (enc !== undefined && enc !== '' && enc !== 'identity') this.sendStatus(Status.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding "${enc}"`);
    else this.sendStatus(Status.INTERNAL, 'grpc: compressed flag set with identity or empty encoding');
  }

  private deliverRaw(buf: Buffer, wireBytes: number): void {
    let value: unknown;
    try {
      value = this.method.deserialize(buf);
    } catch {
      this.sendStatus(Status.INTERNAL, 'Error deserializing request');
      return;
    }
    this.deliver(value, wireBytes);
  }

  private deliver(value: unknown, wireBytes: number): void {
    const kind = this.method.kind;
    if (kind === 'unary' || kind === 'serverStream') {
      if (this.hasRequest) {
        this.sendStatus(Status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.method.path}`);
        return;
      }
      this.hasRequest = true;
      this.request = value;
      this.stream.consume(wireBytes);
      return;
    }
    if (this.paused || this.queue.length > 0 || this.listenerCount('data') === 0) {
      this.queue.push(value);
      this.queueBytes.push(wireBytes);
      return;
    }
    this.stream.consume(wireBytes);
    this.emit('data', value);
  }

  private scheduleDeliver(): void {
    if (this.deliverScheduled) return;
    this.deliverScheduled = true;
    process.nextTick(() => {
      this.deliverScheduled = false;
      this.deliverQueued();
    });
  }

  private deliverQueued(): void {
    let i = 0;
    while (i < this.queue.length && !this.paused && !this.finished && this.listenerCount('data') > 0) {
      const value = this.queue[i];
      const bytes = this.queueBytes[i];
      i++;
      this.stream.consume(bytes);
      this.emit('data', value);
    }
    this.queue.splice(0, i);
    this.queueBytes.splice(0, i);
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.remoteEnded || this.endEmitted || this.paused || this.queue.length > 0 || this.finished) return;
    this.endEmitted = true;
    this.emit('end');
  }
}
