/**
 * A minimal HTTP/2 client for gRPC unary calls, written for `coord bench`'s hot loop.
 *
 * Why: measured on this project's 2-core machines against etcd 3.4, a unary call through
 * @grpc/grpc-js costs the client about 250-330 µs of CPU and one through bare node:http2
 * about 130 µs (Http2Stream objects, AsyncResource.bind and a deprecate() wrapper per
 * request, GC); this client costs about 13 µs. With grpc-js the bench saturated its own
 * event loop at ~2,500 req/s, below what etcd serves, so it measured itself. See
 * docs/BENCHMARKS.md. `--transport grpc-js` keeps the grpc-js path as a cross-check.
 *
 * Scope (RFC 7540 / RFC 7541 as far as a gRPC unary client over cleartext needs):
 * - prior-knowledge h2c: preface, SETTINGS (push off, dynamic HPACK table size 0, large
 *   receive windows), SETTINGS/PING acks, WINDOW_UPDATE on receive, GOAWAY, RST_STREAM;
 * - send flow control (connection and stream windows, peer's INITIAL_WINDOW_SIZE and
 *   MAX_FRAME_SIZE) and the peer's MAX_CONCURRENT_STREAMS (excess calls wait in a queue);
 * - requests: one constant HPACK header block per method (static-table indices and
 *   literals, no Huffman), one DATA frame per request when the windows allow;
 * - responses: HEADERS/CONTINUATION decoded with the static table only. We advertise
 *   SETTINGS_HEADER_TABLE_SIZE = 0, so a conforming peer never references a dynamic
 *   entry; a reference to one is a protocol error that fails the connection.
 *   Huffman-coded strings are not decoded: the names this client must recognize
 *   (grpc-status, grpc-message) are matched by their Huffman code, which is fixed by
 *   RFC 7541 and checked against Node's own encoder in the tests; grpc-status values are
 *   one or two digits, which encoders never Huffman-code (it would not be shorter). A
 *   Huffman-coded grpc-message is reported as such.
 * A dropped connection fails its calls (and later ones) with UNAVAILABLE; it does not
 * reconnect, which for a benchmark is the honest outcome.
 *
 * Streaming calls (`openStream`, for etcd's Watch and LeaseKeepAlive): the same request
 * header block, then any number of length-prefixed messages; messages sent in one tick on
 * one stream go out in one DATA frame (as windows allow). Received DATA is cut into gRPC
 * messages handed to `onMessage` as views into the socket chunk (no copy unless a message
 * spans frames); the stream's receive window is topped up as it is consumed, so a
 * long-lived stream never stalls; the trailers end it with its gRPC status.
 */
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface CallError {
  /** gRPC status code. */
  code: number;
  details: string;
  /** A Huffman-coded grpc-message, left for huffman.ts to decode off the hot path. */
  huffmanDetails?: Buffer;
}

export type H2Callback = (err: CallError | null, response?: Buffer) => void;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_RST_STREAM = 0x3;
const FRAME_SETTINGS = 0x4;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_PING = 0x6;
const FRAME_GOAWAY = 0x7;
const FRAME_WINDOW_UPDATE = 0x8;
const FRAME_CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

const MAX_WINDOW = 0x7fffffff;
const DEFAULT_WINDOW = 65_535;
/** Replenish the connection (and a streaming call's) receive window once this much DATA has arrived. */
const RECV_WINDOW_REFILL = 1 << 30;
const MAX_STREAM_ID = 0x7fffffff;

/** gRPC status codes used here. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

// ---------------------------------------------------------------------------------------
// HPACK (RFC 7541), the parts a gRPC client needs.

/** RFC 7541 Appendix A: the static table (index 1..61), names and values. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_INDEX = new Map<string, number>();
for (let i = STATIC_TABLE.length - 1; i >= 1; i--) STATIC_INDEX.set(STATIC_TABLE[i][0], i);

/**
 * Huffman codes (RFC 7541 §5.2, Appendix B) of the header names we must recognize, as
 * hex. Derived with Node's nghttp2 encoder; test/bench/h2.test.ts re-derives them.
 */
export const HUFFMAN_NAMES: Readonly<Record<string, string>> = {
  '9acac8b21234da8f': 'grpc-status',
  '9acac8b5254207317f': 'grpc-message',
};

/** A header string: text, or the raw bytes of a Huffman-coded string we did not decode. */
type HString = string | Buffer;

function decodeInt(buf: Buffer, pos: number, prefixBits: number): [value: number, next: number] {
  const max = (1 << prefixBits) - 1;
  let value = buf[pos] & max;
  pos++;
  if (value < max) return [value, pos];
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('HPACK: truncated integer');
    const b = buf[pos++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
    if (shift > 28) throw new Error('HPACK: integer too large');
  }
  return [value, pos];
}

function encodeInt(out: number[], firstByteFlags: number, prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByteFlags | value);
    return;
  }
  out.push(firstByteFlags | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

function decodeString(buf: Buffer, pos: number, names: boolean): [HString, number] {
  if (pos >= buf.length) throw new Error('HPACK: truncated string');
  const huffman = (buf[pos] & 0x80) !== 0;
  const [len, start] = decodeInt(buf, pos, 7);
  const end = start + len;
  if (end > buf.length) throw new Error('HPACK: truncated string');
  if (!huffman) return [buf.toString('latin1', start, end), end];
  const known = names ? HUFFMAN_NAMES[buf.toString('hex', start, end)] : undefined;
  return [known ?? Buffer.from(buf.subarray(start, end)), end];
}

/** Decodes a header block into name/value pairs (Huffman strings other than known names as raw bytes). */
export function decodeHeaderBlock(block: Buffer): [HString, HString][] {
  const out: [HString, HString][] = [];
  let pos = 0;
  while (pos < block.length) {
    const b = block[pos];
    if (b & 0x80) {
      // Indexed header field.
      const [index, next] = decodeInt(block, pos, 7);
      pos = next;
      out.push(staticEntry(index));
    } else if ((b & 0xe0) === 0x20) {
      // Dynamic table size update: we allow 0 only, which needs no table.
      const [size, next] = decodeInt(block, pos, 5);
      if (size !== 0) throw new Error(`HPACK: dynamic table size ${size} exceeds our SETTINGS_HEADER_TABLE_SIZE 0`);
      pos = next;
    } else {
      // Literal: with incremental indexing (01), without (0000) or never indexed (0001).
      // With a table of size 0, "incremental indexing" adds nothing that can be referenced.
      const prefix = (b & 0xc0) === 0x40 ? 6 : 4;
      const [index, next] = decodeInt(block, pos, prefix);
      pos = next;
      let name: HString;
      if (index === 0) [name, pos] = decodeString(block, pos, true);
      else name = staticEntry(index)[0];
      let value: HString;
      [value, pos] = decodeString(block, pos, false);
      out.push([name, value]);
    }
  }
  return out;
}

function staticEntry(index: number): [string, string] {
  const e = STATIC_TABLE[index];
  if (index === 0 || !e) throw new Error(`HPACK: index ${index} is not in the static table (dynamic table is disabled)`);
  return [e[0], e[1]];
}

/** Encodes request headers as literals without indexing (names from the static table when there). */
export function encodeHeaderBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const full = STATIC_TABLE.findIndex((e, i) => i > 0 && e[0] === name && e[1] === value);
    if (full > 0) {
      encodeInt(out, 0x80, 7, full);
      continue;
    }
    const nameIndex = STATIC_INDEX.get(name);
    if (nameIndex !== undefined) {
      encodeInt(out, 0x00, 4, nameIndex);
    } else {
      out.push(0x00);
      const n = Buffer.from(name, 'latin1');
      encodeInt(out, 0x00, 7, n.length);
      for (const x of n) out.push(x);
    }
    const v = Buffer.from(value, 'latin1');
    encodeInt(out, 0x00, 7, v.length);
    for (const x of v) out.push(x);
  }
  return Buffer.from(out);
}

// ---------------------------------------------------------------------------------------
// Frames and the connection.

function frameHeader(buf: Buffer, offset: number, length: number, type: number, flags: number, streamId: number): void {
  buf[offset] = (length >>> 16) & 0xff;
  buf[offset + 1] = (length >>> 8) & 0xff;
  buf[offset + 2] = length & 0xff;
  buf[offset + 3] = type;
  buf[offset + 4] = flags;
  buf.writeUInt32BE(streamId, offset + 5);
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(9 + payload.length);
  frameHeader(b, 0, payload.length, type, flags, streamId);
  payload.copy(b, 9);
  return b;
}

function httpToGrpc(status: number): number {
  switch (status) {
    case 400: return Status.INTERNAL;
    case 401: return Status.UNAUTHENTICATED;
    case 403: return Status.PERMISSION_DENIED;
    case 404: return Status.UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return Status.UNAVAILABLE;
    default: return Status.UNKNOWN;
  }
}

function rstToGrpc(errorCode: number): number {
  switch (errorCode) {
    case 0x7: return Status.UNAVAILABLE; // REFUSED_STREAM
    case 0x8: return Status.CANCELLED; // CANCEL
    case 0xb: return Status.RESOURCE_EXHAUSTED; // ENHANCE_YOUR_CALM
    case 0xc: return Status.PERMISSION_DENIED; // INADEQUATE_SECURITY
    default: return Status.INTERNAL;
  }
}

/** A method's constant request header block (so a request costs one memcpy of it). */
export class PreparedMethod {
  readonly headerBlock: Buffer;
  constructor(readonly path: string, authority: string) {
    this.headerBlock = encodeHeaderBlock([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', path],
      [':authority', authority],
      ['content-type', 'application/grpc'],
      ['user-agent', 'coord-bench'],
      ['te', 'trailers'],
    ]);
  }
}

export interface Stream {
  id: number;
  cb: H2Callback;
  /** Set for streaming calls (openStream); unary calls use body/sent/chunks. */
  bidi?: BidiStream;
  /** Encoded request body (5-byte gRPC prefix + message) and how much of it is sent. */
  body: Buffer;
  sent: number;
  sendWindow: number;
  /** Response DATA so far. */
  chunks: Buffer[];
  dataLength: number;
  httpStatus?: HString;
  grpcStatus?: HString;
  grpcMessage?: HString;
}

interface Pending {
  method: PreparedMethod;
  message?: Buffer;
  cb?: H2Callback;
  bidi?: BidiStream;
}

/** What a streaming call reports. */
export interface StreamHandlers {
  /**
   * One received gRPC message (without its 5-byte prefix). It may be a view into the
   * socket's buffer: use or copy it before returning.
   */
  onMessage(message: Buffer): void;
  /** The call is over: null for grpc-status 0, else why. Called exactly once. */
  onEnd(err: CallError | null): void;
}

/**
 * A streaming (client- and server-streaming) gRPC call on an H2Connection. `send` may be
 * called before the stream has a slot (MAX_CONCURRENT_STREAMS): messages wait for it.
 */
export class BidiStream {
  /** @internal the HTTP/2 stream, once started. */
  stream: Stream | undefined;
  /** @internal outgoing bytes (gRPC-framed messages) not yet in a DATA frame. */
  outq: Buffer[] = [];
  outHead = 0;
  outOffset = 0;
  outBytes = 0;
  endPending = false;
  endSent = false;
  dirty = false;
  parked = false;
  done = false;
  /** @internal a message being assembled across DATA frames. */
  partial: Buffer[] = [];
  partialLength = 0;
  recvSinceRefill = 0;

  constructor(
    private readonly conn: H2Connection,
    /** @internal */ readonly handlers: StreamHandlers,
  ) {}

  /** Sends one message (the serialized protobuf, without the gRPC prefix). */
  send(message: Buffer): void {
    const framed = Buffer.allocUnsafe(5 + message.length);
    framed[0] = 0;
    framed.writeUInt32BE(message.length, 1);
    message.copy(framed, 5);
    this.sendFramed(framed);
  }

  /** Sends one or more messages already carrying their 5-byte gRPC prefix (e.g. pre-encoded). */
  sendFramed(framed: Buffer): void {
    if (this.done || this.endPending) return;
    this.outq.push(framed);
    this.outBytes += framed.length;
    this.conn.markDirty(this);
  }

  /** Half-closes: no more messages from us (the server may go on sending). */
  end(): void {
    if (this.done || this.endPending) return;
    this.endPending = true;
    this.conn.markDirty(this);
  }

  /** Resets the stream (RST_STREAM CANCEL); onEnd gets CANCELLED. */
  cancel(): void {
    this.conn.cancelStream(this);
  }

  get ended(): boolean {
    return this.done;
  }

  /** @internal */
  finish(err: CallError | null): void {
    if (this.done) return;
    this.done = true;
    this.outq = [];
    this.outBytes = 0;
    this.partial = [];
    this.handlers.onEnd(err);
  }
}

const NO_BODY = Buffer.alloc(0);

export class H2Connection {
  private socket: net.Socket | undefined;
  private readonly streams = new Map<number, Stream>();
  private nextStreamId = 1;
  private inbuf: Buffer | undefined;
  private out: Buffer[] = [];
  private flushScheduled = false;
  /** Peer settings. */
  private peerMaxConcurrent = Infinity;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = 16_384;
  private connSendWindow = DEFAULT_WINDOW;
  private recvSinceRefill = 0;
  /** Streams with body bytes waiting for send window. */
  private blocked: Stream[] = [];
  /** Calls waiting for a stream slot (MAX_CONCURRENT_STREAMS). */
  private waiting: Pending[] = [];
  private waitingHead = 0;
  /** HEADERS + CONTINUATION being assembled. */
  private headerStream = 0;
  private headerFlags = 0;
  private headerParts: Buffer[] = [];
  private failure: CallError | undefined;
  private goawayLastStream = MAX_STREAM_ID;
  private gotSettings = false;
  private onSettings: (() => void) | undefined;
  /** Streaming calls with messages (or an end) to put into DATA frames at the next flush. */
  private dirty: BidiStream[] = [];
  /** `performance.now()` when the socket chunk being processed arrived (for receive times). */
  receivedAt = 0;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  get authority(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** Connects and resolves once the server's SETTINGS frame has arrived. */
  connect(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const target = this.authority;
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          this.fail(Status.UNAVAILABLE, err.message);
          reject(err);
        } else {
          resolve();
        }
      };
      const timer = setTimeout(() => finish(new Error(`cannot connect to ${target} within ${timeoutMs} ms`)), timeoutMs);
      const socket = net.connect({ host: this.host, port: this.port });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.on('connect', () => {
        const settings = Buffer.alloc(18);
        settings.writeUInt16BE(SETTINGS_HEADER_TABLE_SIZE, 0);
        settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 6);
        settings.writeUInt32BE(0, 8);
        settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 12);
        settings.writeUInt32BE(MAX_WINDOW, 14);
        const increment = Buffer.alloc(4);
        increment.writeUInt32BE(MAX_WINDOW - DEFAULT_WINDOW);
        socket.write(Buffer.concat([PREFACE, frame(FRAME_SETTINGS, 0, 0, settings), frame(FRAME_WINDOW_UPDATE, 0, 0, increment)]));
      });
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('error', (err) => {
        finish(new Error(`cannot connect to ${target}: ${err.message}`));
        this.fail(Status.UNAVAILABLE, `connection error: ${err.message}`);
      });
      socket.on('close', () => {
        finish(new Error(`connection to ${target} closed before the HTTP/2 handshake`));
        this.fail(Status.UNAVAILABLE, 'connection closed');
      });
      this.onSettings = () => finish();
    });
  }

  /** Starts a unary call; `message` is the serialized protobuf request. */
  call(method: PreparedMethod, message: Buffer, cb: H2Callback): void {
    if (this.failure) {
      const f = this.failure;
      process.nextTick(() => cb(f));
      return;
    }
    if (this.streams.size >= this.peerMaxConcurrent || this.waitingHead < this.waiting.length) {
      this.waiting.push({ method, message, cb });
      return;
    }
    this.start(method, message, cb);
  }

  /** Starts a streaming call; see BidiStream and StreamHandlers. */
  openStream(method: PreparedMethod, handlers: StreamHandlers): BidiStream {
    const b = new BidiStream(this, handlers);
    if (this.failure) {
      const f = this.failure;
      process.nextTick(() => b.finish(f));
      return b;
    }
    if (this.streams.size >= this.peerMaxConcurrent || this.waitingHead < this.waiting.length) {
      this.waiting.push({ method, bidi: b });
      return b;
    }
    this.startBidi(method, b);
    return b;
  }

  close(): void {
    this.fail(Status.CANCELLED, 'connection closed by client');
  }

  /** @internal (BidiStream) */
  markDirty(b: BidiStream): void {
    if (b.dirty || b.stream === undefined) return;
    b.dirty = true;
    this.dirty.push(b);
    this.scheduleFlush();
  }

  /** @internal (BidiStream) */
  cancelStream(b: BidiStream): void {
    if (b.done) return;
    const s = b.stream;
    if (s && this.streams.has(s.id)) {
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(0x8); // CANCEL
      this.queue(frame(FRAME_RST_STREAM, 0, s.id, payload));
      this.end(s, { code: Status.CANCELLED, details: 'cancelled by client' });
    } else {
      b.finish({ code: Status.CANCELLED, details: 'cancelled by client' });
    }
  }

  private startBidi(method: PreparedMethod, b: BidiStream): void {
    if (b.done) return;
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID || id > this.goawayLastStream) {
      process.nextTick(() => b.finish({ code: Status.UNAVAILABLE, details: 'connection has no stream ids left' }));
      return;
    }
    this.nextStreamId += 2;
    const stream: Stream = {
      id,
      cb: (err) => b.finish(err),
      bidi: b,
      body: NO_BODY,
      sent: 0,
      sendWindow: this.peerInitialWindow,
      chunks: [],
      dataLength: 0,
    };
    b.stream = stream;
    this.streams.set(id, stream);
    const block = method.headerBlock;
    const headers = Buffer.allocUnsafe(9 + block.length);
    frameHeader(headers, 0, block.length, FRAME_HEADERS, FLAG_END_HEADERS, id);
    block.copy(headers, 9);
    this.queue(headers);
    if (b.outBytes > 0 || b.endPending) this.markDirty(b);
  }

  /** Puts a streaming call's queued messages into DATA frames as the windows allow. */
  private sendBidi(s: Stream): boolean {
    const b = s.bidi!;
    while (b.outBytes > 0 || (b.endPending && !b.endSent)) {
      if (b.outBytes === 0) {
        const f = Buffer.allocUnsafe(9);
        frameHeader(f, 0, 0, FRAME_DATA, FLAG_END_STREAM, s.id);
        b.endSent = true;
        this.queue(f);
        break;
      }
      const n = Math.min(b.outBytes, s.sendWindow, this.connSendWindow, this.peerMaxFrame);
      if (n <= 0) {
        if (!b.parked) {
          b.parked = true;
          this.blocked.push(s);
        }
        return false;
      }
      const last = n === b.outBytes && b.endPending;
      const f = Buffer.allocUnsafe(9 + n);
      frameHeader(f, 0, n, FRAME_DATA, last ? FLAG_END_STREAM : 0, s.id);
      let at = 9;
      while (at < 9 + n) {
        const head = b.outq[b.outHead];
        const take = Math.min(head.length - b.outOffset, 9 + n - at);
        head.copy(f, at, b.outOffset, b.outOffset + take);
        at += take;
        b.outOffset += take;
        if (b.outOffset === head.length) {
          b.outHead++;
          b.outOffset = 0;
        }
      }
      if (b.outHead === b.outq.length) {
        b.outq = [];
        b.outHead = 0;
      }
      b.outBytes -= n;
      s.sendWindow -= n;
      this.connSendWindow -= n;
      if (last) b.endSent = true;
      this.queue(f);
    }
    return true;
  }

  /** Cuts a streaming call's DATA into gRPC messages. */
  private feed(s: Stream, data: Buffer): void {
    const b = s.bidi!;
    if (b.partialLength > 0) {
      b.partial.push(data);
      b.partialLength += data.length;
      if (b.partialLength < 5) return;
      const head = b.partial[0].length >= 5 ? b.partial[0] : Buffer.concat(b.partial);
      if (b.partialLength < 5 + head.readUInt32BE(1)) return;
      data = Buffer.concat(b.partial, b.partialLength);
      b.partial = [];
      b.partialLength = 0;
    }
    let off = 0;
    while (data.length - off >= 5) {
      if (data[off] !== 0) throw new Error('compressed message on a streaming call (no compression was offered)');
      const len = data.readUInt32BE(off + 1);
      if (data.length - off - 5 < len) break;
      const message = data.subarray(off + 5, off + 5 + len);
      off += 5 + len;
      if (b.done) return;
      b.handlers.onMessage(message);
    }
    if (off < data.length) {
      b.partial = [Buffer.from(data.subarray(off))];
      b.partialLength = data.length - off;
    }
  }

  private start(method: PreparedMethod, message: Buffer, cb: H2Callback): void {
    const id = this.nextStreamId;
    if (id > MAX_STREAM_ID || id > this.goawayLastStream) {
      process.nextTick(() => cb({ code: Status.UNAVAILABLE, details: 'connection has no stream ids left' }));
      return;
    }
    this.nextStreamId += 2;
    const body = Buffer.allocUnsafe(5 + message.length);
    body[0] = 0;
    body.writeUInt32BE(message.length, 1);
    message.copy(body, 5);
    const stream: Stream = {
      id,
      cb,
      body,
      sent: 0,
      sendWindow: this.peerInitialWindow,
      chunks: [],
      dataLength: 0,
    };
    this.streams.set(id, stream);
    const block = method.headerBlock;
    const headers = Buffer.allocUnsafe(9 + block.length);
    frameHeader(headers, 0, block.length, FRAME_HEADERS, FLAG_END_HEADERS, id);
    block.copy(headers, 9);
    this.queue(headers);
    this.sendBody(stream);
  }

  /** Sends as much of the stream's body as the windows allow; parks it if blocked. */
  private sendBody(s: Stream): boolean {
    while (s.sent < s.body.length) {
      const n = Math.min(s.body.length - s.sent, s.sendWindow, this.connSendWindow, this.peerMaxFrame);
      if (n <= 0) {
        this.blocked.push(s);
        return false;
      }
      const last = s.sent + n === s.body.length;
      const f = Buffer.allocUnsafe(9 + n);
      frameHeader(f, 0, n, FRAME_DATA, last ? FLAG_END_STREAM : 0, s.id);
      s.body.copy(f, 9, s.sent, s.sent + n);
      s.sent += n;
      s.sendWindow -= n;
      this.connSendWindow -= n;
      this.queue(f);
    }
    return true;
  }

  private unblock(): void {
    if (this.blocked.length === 0) return;
    const parked = this.blocked;
    this.blocked = [];
    for (let i = 0; i < parked.length; i++) {
      const s = parked[i];
      if (!this.streams.has(s.id)) continue;
      if (s.bidi) s.bidi.parked = false;
      if (!(s.bidi ? this.sendBidi(s) : this.sendBody(s))) {
        // Out of window again: keep the rest in order behind it.
        for (let j = i + 1; j < parked.length; j++) if (this.streams.has(parked[j].id)) this.blocked.push(parked[j]);
        return;
      }
    }
  }

  private queue(b: Buffer): void {
    this.out.push(b);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.dirty.length > 0) {
      const dirty = this.dirty;
      this.dirty = [];
      for (const b of dirty) {
        b.dirty = false;
        const s = b.stream;
        if (s && !b.done && this.streams.has(s.id)) this.sendBidi(s);
      }
    }
    const out = this.out;
    this.out = [];
    if (!this.socket || this.socket.destroyed || out.length === 0) return;
    this.socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
  }

  private onData(chunk: Buffer): void {
    this.receivedAt = performance.now();
    let buf = this.inbuf ? Buffer.concat([this.inbuf, chunk]) : chunk;
    let off = 0;
    try {
      while (buf.length - off >= 9) {
        const length = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
        if (buf.length - off < 9 + length) break;
        const type = buf[off + 3];
        const flags = buf[off + 4];
        const streamId = buf.readUInt32BE(off + 5) & MAX_STREAM_ID;
        const payload = buf.subarray(off + 9, off + 9 + length);
        off += 9 + length;
        this.onFrame(type, flags, streamId, payload);
        if (this.failure) return;
      }
    } catch (err) {
      this.protocolError((err as Error).message);
      return;
    }
    if (off === buf.length) {
      this.inbuf = undefined;
    } else {
      // Keep the partial frame (copied so the large chunk it came in can be freed).
      buf = buf.subarray(off);
      this.inbuf = off > 0 ? Buffer.from(buf) : buf;
    }
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.headerStream !== 0 && type !== FRAME_CONTINUATION) throw new Error('expected CONTINUATION frame');
    switch (type) {
      case FRAME_DATA: {
        this.recvSinceRefill += payload.length;
        if (this.recvSinceRefill >= RECV_WINDOW_REFILL) {
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(this.recvSinceRefill);
          this.recvSinceRefill = 0;
          this.queue(frame(FRAME_WINDOW_UPDATE, 0, 0, inc));
        }
        const s = this.streams.get(streamId);
        if (!s) return;
        let data = payload;
        if (flags & FLAG_PADDED) data = data.subarray(1, data.length - data[0]);
        if (s.bidi) {
          const b = s.bidi;
          b.recvSinceRefill += payload.length;
          if (b.recvSinceRefill >= RECV_WINDOW_REFILL && !(flags & FLAG_END_STREAM)) {
            const inc = Buffer.alloc(4);
            inc.writeUInt32BE(b.recvSinceRefill);
            b.recvSinceRefill = 0;
            this.queue(frame(FRAME_WINDOW_UPDATE, 0, s.id, inc));
          }
          if (data.length > 0) this.feed(s, data);
          if (flags & FLAG_END_STREAM) this.complete(s);
          return;
        }
        if (data.length > 0) {
          s.chunks.push(data);
          s.dataLength += data.length;
        }
        if (flags & FLAG_END_STREAM) this.complete(s);
        return;
      }
      case FRAME_HEADERS: {
        let block = payload;
        if (flags & FLAG_PADDED) block = block.subarray(1, block.length - block[0]);
        if (flags & FLAG_PRIORITY) block = block.subarray(5);
        if (flags & FLAG_END_HEADERS) {
          this.onHeaders(streamId, flags, block);
        } else {
          this.headerStream = streamId;
          this.headerFlags = flags;
          this.headerParts = [Buffer.from(block)];
        }
        return;
      }
      case FRAME_CONTINUATION: {
        if (streamId !== this.headerStream) throw new Error('CONTINUATION on an unexpected stream');
        this.headerParts.push(Buffer.from(payload));
        if (flags & FLAG_END_HEADERS) {
          const id = this.headerStream;
          this.headerStream = 0;
          this.onHeaders(id, this.headerFlags, Buffer.concat(this.headerParts));
          this.headerParts = [];
        }
        return;
      }
      case FRAME_RST_STREAM: {
        const s = this.streams.get(streamId);
        if (!s) return;
        const code = payload.length >= 4 ? payload.readUInt32BE(0) : 0;
        this.end(s, { code: rstToGrpc(code), details: `stream reset by server (HTTP/2 error 0x${code.toString(16)})` });
        return;
      }
      case FRAME_SETTINGS: {
        if (flags & FLAG_ACK) return;
        for (let p = 0; p + 6 <= payload.length; p += 6) this.applySetting(payload.readUInt16BE(p), payload.readUInt32BE(p + 2));
        this.queue(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
        if (!this.gotSettings) {
          this.gotSettings = true;
          this.onSettings?.();
        }
        this.unblock();
        this.drainWaiting();
        return;
      }
      case FRAME_PING: {
        if (!(flags & FLAG_ACK)) this.queue(frame(FRAME_PING, FLAG_ACK, 0, Buffer.from(payload)));
        return;
      }
      case FRAME_GOAWAY: {
        const last = payload.readUInt32BE(0) & MAX_STREAM_ID;
        const code = payload.readUInt32BE(4);
        const debug = payload.subarray(8).toString('utf8');
        this.goawayLastStream = last;
        const err = { code: Status.UNAVAILABLE, details: `server sent GOAWAY (error 0x${code.toString(16)}${debug ? `: ${debug}` : ''})` };
        for (const s of [...this.streams.values()]) if (s.id > last) this.end(s, err);
        // No new streams on this connection: fail the waiting and future calls.
        this.failure = err;
        this.failWaiting(err);
        return;
      }
      case FRAME_WINDOW_UPDATE: {
        const inc = payload.readUInt32BE(0) & MAX_STREAM_ID;
        if (streamId === 0) this.connSendWindow += inc;
        else {
          const s = this.streams.get(streamId);
          if (s) s.sendWindow += inc;
        }
        this.unblock();
        return;
      }
      case FRAME_PUSH_PROMISE:
        throw new Error('PUSH_PROMISE received although push is disabled');
      default:
        return; // PRIORITY and unknown frame types are ignored (RFC 7540 §4.1).
    }
  }

  private applySetting(id: number, value: number): void {
    switch (id) {
      case SETTINGS_MAX_CONCURRENT_STREAMS:
        this.peerMaxConcurrent = value;
        return;
      case SETTINGS_INITIAL_WINDOW_SIZE: {
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.values()) s.sendWindow += delta;
        return;
      }
      case SETTINGS_MAX_FRAME_SIZE:
        this.peerMaxFrame = value;
        return;
      default:
        return;
    }
  }

  private onHeaders(streamId: number, flags: number, block: Buffer): void {
    // Decode even for unknown streams: HPACK state is per connection (ours has none, but
    // a malformed block must still fail the connection).
    const fields = decodeHeaderBlock(block);
    const s = this.streams.get(streamId);
    if (!s) return;
    for (const [name, value] of fields) {
      if (name === ':status') s.httpStatus = value;
      else if (name === 'grpc-status') s.grpcStatus = value;
      else if (name === 'grpc-message') s.grpcMessage = value;
    }
    if (flags & FLAG_END_STREAM) this.complete(s);
  }

  /** The server ended the stream: work out the gRPC outcome. */
  private complete(s: Stream): void {
    if (s.bidi && s.grpcStatus === '0') {
      this.end(s, null);
      return;
    }
    if (typeof s.grpcStatus !== 'string') {
      const http = s.httpStatus;
      if (http !== undefined && http !== '200') {
        const status = typeof http === 'string' ? http : '(Huffman-coded)';
        this.end(s, { code: typeof http === 'string' ? httpToGrpc(Number(http)) : Status.UNKNOWN, details: `HTTP status ${status} without grpc-status` });
      } else {
        this.end(s, { code: Status.INTERNAL, details: s.grpcStatus ? 'grpc-status not decodable' : 'response without grpc-status' });
      }
      return;
    }
    const code = /^\d{1,3}$/.test(s.grpcStatus) ? Number(s.grpcStatus) : Status.UNKNOWN;
    if (code !== Status.OK) {
      const m = s.grpcMessage;
      if (Buffer.isBuffer(m)) this.end(s, { code, details: '', huffmanDetails: m });
      else this.end(s, { code, details: m === undefined ? '' : decodeGrpcMessage(m) });
      return;
    }
    const data = s.chunks.length === 1 ? s.chunks[0] : Buffer.concat(s.chunks, s.dataLength);
    if (data.length < 5) {
      this.end(s, { code: Status.INTERNAL, details: 'OK status without a response message' });
      return;
    }
    if (data[0] !== 0) {
      this.end(s, { code: Status.INTERNAL, details: 'compressed response (no compression was offered)' });
      return;
    }
    const len = data.readUInt32BE(1);
    if (data.length !== 5 + len) {
      this.end(s, { code: Status.INTERNAL, details: `response message framing: ${data.length - 5} bytes for a ${len}-byte message` });
      return;
    }
    this.end(s, null, data.subarray(5));
  }

  private end(s: Stream, err: CallError | null, response?: Buffer): void {
    if (!this.streams.delete(s.id)) return;
    s.cb(err, response);
    this.drainWaiting();
  }

  private drainWaiting(): void {
    while (this.waitingHead < this.waiting.length && this.streams.size < this.peerMaxConcurrent && !this.failure) {
      const p = this.waiting[this.waitingHead++];
      if (p.bidi) this.startBidi(p.method, p.bidi);
      else this.start(p.method, p.message!, p.cb!);
    }
    if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }

  private failWaiting(err: CallError): void {
    const waiting = this.waiting.slice(this.waitingHead);
    this.waiting = [];
    this.waitingHead = 0;
    for (const p of waiting) process.nextTick(() => (p.bidi ? p.bidi.finish(err) : p.cb!(err)));
  }

  private protocolError(message: string): void {
    this.fail(Status.INTERNAL, `HTTP/2 protocol error: ${message}`);
  }

  private fail(code: number, details: string): void {
    if (this.failure && this.streams.size === 0 && this.waiting.length === 0) {
      this.socket?.destroy();
      return;
    }
    const err = { code, details };
    this.failure ??= err;
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked = [];
    for (const s of streams) s.cb(err);
    this.failWaiting(err);
    this.socket?.destroy();
  }
}

/**
 * The literal fields with a new (literal) name in a header block, in order, with their
 * values undecoded: used to capture what an HPACK encoder made of given values.
 */
export function literalValuesRaw(block: Buffer): { huffman: boolean; bytes: Buffer }[] {
  const out: { huffman: boolean; bytes: Buffer }[] = [];
  let pos = 0;
  const skipString = (): { huffman: boolean; bytes: Buffer } => {
    const huffman = (block[pos] & 0x80) !== 0;
    const [len, start] = decodeInt(block, pos, 7);
    pos = start + len;
    return { huffman, bytes: Buffer.from(block.subarray(start, start + len)) };
  };
  while (pos < block.length) {
    const b = block[pos];
    if (b & 0x80) {
      pos = decodeInt(block, pos, 7)[1];
    } else if ((b & 0xe0) === 0x20) {
      pos = decodeInt(block, pos, 5)[1];
    } else {
      const [index, next] = decodeInt(block, pos, (b & 0xc0) === 0x40 ? 6 : 4);
      pos = next;
      if (index === 0) skipString();
      const value = skipString();
      if (index === 0) out.push(value);
    }
  }
  return out;
}

/** gRPC's grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
export function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
