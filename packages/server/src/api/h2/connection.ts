/**
 * One server-side HTTP/2 connection over cleartext TCP (h2c with prior knowledge,
 * RFC 7540 §3.4), as far as a gRPC server needs it, with no per-stream Node objects.
 *
 * Receive: the client preface and SETTINGS first (§3.5), then frames of at most our
 * MAX_FRAME_SIZE; header blocks (HEADERS + CONTINUATION, §6.2, §6.10) up to
 * `headerBlockBytesMax`, decoded by one HPACK decoder per connection (hpack.ts); DATA with
 * padding (§6.1); PING answered (§6.7); PRIORITY ignored (§5.3 is advisory); RST_STREAM
 * (§6.4); GOAWAY (§6.8); WINDOW_UPDATE (§6.9); unknown frame types ignored (§4.1).
 * New streams beyond MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM, §5.1.2).
 *
 * Flow control (§5.2, §6.9), both ways:
 * - Receiving, per stream: the client may send `streamWindowBytes` before we credit; the
 *   application credits bytes (`consume`) once it has handed them on, so a stream never
 *   holds more than its window. Per connection: credited as DATA arrives (as grpc-go and
 *   nghttp2 do), because crediting on consumption could deadlock interleaved partial
 *   messages; the memory bound per connection is MAX_CONCURRENT_STREAMS x stream window.
 * - Sending: DATA never exceeds the client's connection and stream windows nor its
 *   MAX_FRAME_SIZE; data that does not fit waits in its stream (and counts towards that
 *   stream's backpressure) until WINDOW_UPDATE or SETTINGS open the window. It also waits
 *   while the socket has more than `socketBytesHigh` unwritten, so a client that does not
 *   read pushes back on the application instead of growing our buffers.
 *
 * Writes are gathered: frames queued during one tick go out in a single socket write
 * (process.nextTick), so a burst of responses costs one syscall.
 *
 * Errors: a connection error sends GOAWAY with the code and closes (§5.4.1); a stream
 * error sends RST_STREAM (§5.4.2). The application sees a stream's end through its
 * `StreamApp` callbacks, never an exception.
 */
import type * as net from 'node:net';
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  encodeFrame,
  encodeGoaway,
  encodeHeaderFrames,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  H2Error,
  MAX_FRAME_BYTES_LIMIT,
  MAX_STREAM_ID,
  MAX_WINDOW_BYTES,
  PREFACE,
  Setting,
  writeFrameHeader,
} from './frames';
import { HeaderList, HpackDecoder, HpackError } from './hpack';

/** What the application (the gRPC layer) does with a stream. */
export interface StreamApp {
  /** DATA payload (padding removed, never empty). */
  onData(data: Buffer): void;
  /** The client ended its side (END_STREAM). */
  onEnd(): void;
  /** The stream is gone before we ended it: RST_STREAM from the client (its code) or the connection closed (-1). */
  onReset(code: number): void;
  /** All data queued with `sendData` has been handed to the socket (after `wantDrain`). */
  onDrain(): void;
}

export interface ConnectionHandler {
  /** A new stream's request headers. The handler sets `stream.app` (or answers and ends it). */
  onStream(stream: H2Stream, headers: HeaderList): void;
  /** The connection has closed (its streams have had onReset). */
  onClose(conn: H2Connection): void;
}

export interface ConnectionOptions {
  maxConcurrentStreams: number;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream before we credit. */
  streamWindowBytes: number;
  /** Our connection receive window (raised by WINDOW_UPDATE after the preface). */
  connectionWindowBytes: number;
  /** Our SETTINGS_MAX_FRAME_SIZE. */
  maxFrameBytes: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE, enforced by the HPACK decoder. */
  headerListBytesMax: number;
  /** A header block (HEADERS + CONTINUATION payloads) larger than this fails the connection. */
  headerBlockBytesMax: number;
  /** Stop moving DATA to the socket while it holds this much unwritten. */
  socketBytesHigh: number;
  /** A client that lets this much pile up unread (control frames, headers) is disconnected. */
  socketBytesMax: number;
  /** The client must complete its preface and SETTINGS within this time. */
  prefaceTimeoutMs: number;
}

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  maxConcurrentStreams: 256,
  streamWindowBytes: 4 * 1024 * 1024,
  connectionWindowBytes: 64 * 1024 * 1024,
  maxFrameBytes: 64 * 1024,
  headerListBytesMax: 64 * 1024,
  headerBlockBytesMax: 64 * 1024,
  socketBytesHigh: 1024 * 1024,
  socketBytesMax: 64 * 1024 * 1024,
  prefaceTimeoutMs: 10_000,
};

/** One request stream. Fields are read by the gRPC layer; only this module writes them. */
export class H2Stream {
  app: StreamApp | undefined;
  /** END_STREAM received / sent, and whether the stream is gone from the connection. */
  remoteEnded = false;
  localEnded = false;
  closed = false;
  /** Send window (client's), receive window left (ours) and receive bytes not yet credited. */
  sendWindow: number;
  recvWindow: number;
  recvUnacked = 0;
  /** Data waiting for window or socket room, in order; `outBytes` in total. */
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  outBytes = 0;
  /** A trailer block to send once the queue is empty. */
  trailers: Buffer | undefined;
  parked = false;
  wantDrain = false;

  constructor(
    readonly id: number,
    readonly conn: H2Connection,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** Response headers (not flow-controlled; they go out before any DATA of this stream). */
  sendHeaders(block: Buffer): void {
    if (this.closed || this.localEnded) return;
    this.conn.queueOut(encodeHeaderFrames(this.id, block, false, this.conn.peerMaxFrameBytes));
  }

  /** Queues DATA bytes (a then b); returns the bytes still waiting for window or socket room. */
  sendData(a: Buffer, b?: Buffer): number {
    if (this.closed || this.localEnded || this.trailers) return 0;
    const n = a.length + (b ? b.length : 0);
    const conn = this.conn;
    if (this.outBytes === 0 && n <= this.sendWindow && n <= conn.sendWindow && n <= conn.peerMaxFrameBytes && !conn.congested()) {
      // Fast path: one DATA frame now; a small first chunk (the gRPC prefix) shares the frame header's buffer.
      this.sendWindow -= n;
      conn.sendWindow -= n;
      if (a.length <= 64) {
        const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES + a.length);
        writeFrameHeader(h, 0, n, FrameType.Data, 0, this.id);
        a.copy(h, FRAME_HEADER_BYTES);
        conn.queueOut(h);
      } else {
        const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
        writeFrameHeader(h, 0, n, FrameType.Data, 0, this.id);
        conn.queueOut(h);
        if (a.length > 0) conn.queueOut(a);
      }
      if (b && b.length > 0) conn.queueOut(b);
      return 0;
    }
    if (a.length > 0) this.queue.push(a);
    if (b && b.length > 0) this.queue.push(b);
    this.outBytes += n;
    conn.pump(this);
    return this.outBytes;
  }

  /** Ends the stream with a trailer block, after the queued data. */
  sendTrailers(block: Buffer): void {
    if (this.closed || this.localEnded || this.trailers) return;
    this.trailers = block;
    if (this.outBytes === 0) this.conn.finishStream(this);
  }

  /** Sends RST_STREAM and forgets the stream (no further callbacks). */
  reset(code: number): void {
    if (this.closed) return;
    this.conn.queueOut(encodeRstStream(this.id, code));
    this.conn.closeStream(this);
  }

  /** Credits `bytes` of received DATA back to the client's stream window. */
  consume(bytes: number): void {
    if (this.closed || this.remoteEnded || bytes <= 0) return;
    this.recvUnacked += bytes;
    if (this.recvUnacked >= this.conn.streamCreditBytes) {
      this.conn.queueOut(encodeWindowUpdate(this.id, this.recvUnacked));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
  }

  /**
   * Moves queued data into DATA frames within the windows and the frame size; returns
   * false when data is left (window or socket room exhausted).
   * @internal (called by H2Connection)
   */
  pumpFrames(): boolean {
    const conn = this.conn;
    while (this.outBytes > 0) {
      const n = Math.min(this.outBytes, this.sendWindow, conn.sendWindow, conn.peerMaxFrameBytes);
      if (n <= 0 || conn.congested()) return false;
      const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      writeFrameHeader(h, 0, n, FrameType.Data, 0, this.id);
      conn.queueOut(h);
      let left = n;
      while (left > 0) {
        const chunk = this.queue[this.queueHead];
        if (chunk.length <= left) {
          conn.queueOut(chunk);
          left -= chunk.length;
          this.queue[this.queueHead++] = EMPTY;
        } else {
          conn.queueOut(chunk.subarray(0, left));
          this.queue[this.queueHead] = chunk.subarray(left);
          left = 0;
        }
      }
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      this.outBytes -= n;
      this.sendWindow -= n;
      conn.sendWindow -= n;
    }
    return true;
  }
}

const EMPTY = Buffer.alloc(0);

type ReadState = 'preface' | 'settings' | 'frames';

export class H2Connection {
  readonly streams = new Map<number, H2Stream>();
  /** The client's settings and our send window. */
  peerMaxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  peerInitialWindowBytes = DEFAULT_WINDOW_BYTES;
  sendWindow = DEFAULT_WINDOW_BYTES;
  /** Stream window credit is sent once this much is consumed (a quarter window). */
  readonly streamCreditBytes: number;
  /** Highest client stream id seen (§5.1.1: new ids must increase). */
  lastStreamId = 0;
  closed = false;
  /** GOAWAY sent: no new streams; close once the last stream ends. */
  draining = false;

  private readonly decoder: HpackDecoder;
  private readState: ReadState = 'preface';
  /** Partial input: chunks not yet forming a whole frame, `pendingBytes` in total. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Header block being assembled (HEADERS without END_HEADERS, then CONTINUATION). */
  private headerStreamId = 0;
  private headerEndStream = false;
  private headerParts: Buffer[] = [];
  private headerBytes = 0;
  /** Connection receive window left, and bytes received since the last credit. */
  private recvWindow: number;
  private recvUnacked = 0;
  /** Output gathered for the next socket write. */
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private readonly flushBound = (): void => this.flush();
  /** Streams waiting for send window or socket room. */
  private parked: H2Stream[] = [];
  private drained: H2Stream[] = [];
  private socketBlocked = false;
  private prefaceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly handler: ConnectionHandler,
    readonly opts: ConnectionOptions,
  ) {
    if (!(opts.streamWindowBytes > 0 && opts.streamWindowBytes <= MAX_WINDOW_BYTES)) throw new Error('assertion failed: stream window out of range');
    if (!(opts.maxFrameBytes >= DEFAULT_MAX_FRAME_BYTES && opts.maxFrameBytes <= MAX_FRAME_BYTES_LIMIT)) throw new Error('assertion failed: max frame size out of range');
    this.decoder = new HpackDecoder({ headerListBytesMax: opts.headerListBytesMax });
    this.streamCreditBytes = Math.max(1, Math.floor(opts.streamWindowBytes / 4));
    this.recvWindow = Math.max(DEFAULT_WINDOW_BYTES, Math.min(opts.connectionWindowBytes, MAX_WINDOW_BYTES));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('data', (chunk: Buffer) => this.onSocketDataGuarded(chunk));
    socket.on('drain', () => this.onSocketDrain());
    socket.on('error', () => this.teardown());
    socket.on('close', () => this.teardown());
    socket.on('end', () => this.teardown());
    this.prefaceTimer = setTimeout(() => this.connectionError(H2Error.SettingsTimeout, 'no client preface and SETTINGS in time'), opts.prefaceTimeoutMs);
    this.prefaceTimer.unref();
    // Our SETTINGS (§3.5: the server preface), then the connection window beyond the default.
    this.queueOut(
      encodeSettings([
        [Setting.MaxConcurrentStreams, opts.maxConcurrentStreams],
        [Setting.InitialWindowSize, opts.streamWindowBytes],
        [Setting.MaxFrameSize, opts.maxFrameBytes],
        [Setting.MaxHeaderListSize, opts.headerListBytesMax],
      ]),
    );
    if (this.recvWindow > DEFAULT_WINDOW_BYTES) this.queueOut(encodeWindowUpdate(0, this.recvWindow - DEFAULT_WINDOW_BYTES));
  }

  // -------------------------------------------------------------------------------------
  // Output

  /** @internal */
  queueOut(b: Buffer): void {
    this.out.push(b);
    this.outBytes += b.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  /** Whether DATA must wait for the socket to drain. @internal */
  congested(): boolean {
    return this.socketBlocked || this.outBytes + this.socket.writableLength > this.opts.socketBytesHigh;
  }

  /** Writes everything gathered in this tick, then tells streams whose queues emptied. */
  flush(): void {
    this.flushScheduled = false;
    if (this.out.length > 0) {
      const out = this.out;
      const bytes = this.outBytes;
      this.out = [];
      this.outBytes = 0;
      if (!this.socket.destroyed) {
        const ok = this.socket.write(out.length === 1 ? out[0] : Buffer.concat(out, bytes));
        if (!ok && this.socket.writableLength > this.opts.socketBytesHigh) this.socketBlocked = true;
        if (this.socket.writableLength > this.opts.socketBytesMax) {
          this.socket.destroy();
          return;
        }
      }
    }
    // The socket took everything without asking for 'drain': parked streams may go on.
    if (this.parked.length > 0 && !this.congested()) this.pumpParked();
    if (this.drained.length > 0) {
      const drained = this.drained;
      this.drained = [];
      for (const s of drained) if (!s.closed && s.outBytes === 0 && s.app) s.app.onDrain();
    }
  }

  private onSocketDrain(): void {
    this.socketBlocked = false;
    this.pumpParked();
  }

  /** Tries to send a stream's queued data; parks it if a window or the socket is full. @internal */
  pump(s: H2Stream): void {
    if (s.closed) return;
    if (!s.pumpFrames()) {
      if (!s.parked) {
        s.parked = true;
        this.parked.push(s);
      }
      return;
    }
    this.afterPumped(s);
  }

  private afterPumped(s: H2Stream): void {
    if (s.trailers) this.finishStream(s);
    else if (s.wantDrain) {
      s.wantDrain = false;
      this.drained.push(s);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flushBound);
      }
    }
  }

  private pumpParked(): void {
    if (this.parked.length === 0) return;
    const parked = this.parked;
    this.parked = [];
    for (let i = 0; i < parked.length; i++) {
      const s = parked[i];
      s.parked = false;
      if (s.closed) continue;
      if (s.pumpFrames()) {
        this.afterPumped(s);
        continue;
      }
      s.parked = true;
      this.parked.push(s);
      // The connection window or the socket is the limit: the rest keep waiting, in order.
      if (this.sendWindow <= 0 || this.congested()) {
        for (let j = i + 1; j < parked.length; j++) {
          const t = parked[j];
          if (!t.closed) this.parked.push(t);
          else t.parked = false;
        }
        return;
      }
    }
  }

  /** Sends the trailers (END_STREAM) once the data is out. @internal */
  finishStream(s: H2Stream): void {
    if (s.closed || s.localEnded || s.outBytes > 0 || !s.trailers) return;
    this.queueOut(encodeHeaderFrames(s.id, s.trailers, true, this.peerMaxFrameBytes));
    s.trailers = undefined;
    s.localEnded = true;
    // §8.1: a server that answered before the request ended asks the client to stop sending.
    if (!s.remoteEnded) this.queueOut(encodeRstStream(s.id, H2Error.NoError));
    this.closeStream(s);
  }

  /** Forgets a stream (no further callbacks). @internal */
  closeStream(s: H2Stream): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    if (this.draining && this.streams.size === 0) this.closeGracefully();
  }

  // -------------------------------------------------------------------------------------
  // Shutdown

  /** Graceful: GOAWAY now, close when the streams already started have ended (§6.8). */
  goaway(): void {
    if (this.closed || this.draining) return;
    this.draining = true;
    this.queueOut(encodeGoaway(this.lastStreamId, H2Error.NoError));
    if (this.streams.size === 0) this.closeGracefully();
  }

  private closeGracefully(): void {
    // Deferred: this runs from inside stream callbacks and flushes.
    process.nextTick(() => {
      if (this.closed) return;
      this.flush();
      this.socket.end();
      this.teardown();
    });
  }

  /** Immediate: every stream is reset for the application and the socket destroyed. */
  destroy(): void {
    this.flush();
    this.socket.destroy();
    this.teardown();
  }

  /** §5.4.1: GOAWAY with the error, then close. */
  connectionError(code: number, message: string): void {
    if (this.closed) return;
    this.queueOut(encodeGoaway(this.lastStreamId, code, message));
    this.flush();
    this.socket.end();
    this.teardown();
    // A client that does not close its side is cut off.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.prefaceTimer) clearTimeout(this.prefaceTimer);
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.parked = [];
    for (const s of streams) {
      s.closed = true;
      s.app?.onReset(-1);
    }
    this.handler.onClose(this);
  }

  // -------------------------------------------------------------------------------------
  // Input

  /**
   * An exception from a handler's event listener must not leave this connection half-parsed:
   * it is logged and the connection closed (INTERNAL_ERROR). Broken assertions still crash.
   */
  private onSocketDataGuarded(chunk: Buffer): void {
    try {
      this.onSocketData(chunk);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('assertion failed')) throw err;
      process.stderr.write(`coord: h2 connection closed after an unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
      this.connectionError(H2Error.InternalError, 'internal error');
    }
  }

  private onSocketData(chunk: Buffer): void {
    if (this.closed) return;
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes < this.bytesNeeded()) return;
      buf = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let off = 0;
    if (this.readState === 'preface') {
      if (buf.length < PREFACE.length) {
        if (!PREFACE.subarray(0, buf.length).equals(buf)) return this.badPreface();
        this.keep(buf, 0);
        return;
      }
      if (!PREFACE.equals(buf.subarray(0, PREFACE.length))) return this.badPreface();
      off = PREFACE.length;
      this.readState = 'settings';
    }
    const maxFrame = this.opts.maxFrameBytes;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const length = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
      if (length > maxFrame) return this.connectionError(H2Error.FrameSizeError, `frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${maxFrame}`);
      const end = off + FRAME_HEADER_BYTES + length;
      if (end > buf.length) break;
      const type = buf[off + 3];
      const flags = buf[off + 4];
      const streamId = buf.readUInt32BE(off + 5) & MAX_STREAM_ID;
      this.onFrame(type, flags, streamId, buf, off + FRAME_HEADER_BYTES, end);
      if (this.closed) return;
      off = end;
    }
    if (off < buf.length) this.keep(buf, off);
  }

  private keep(buf: Buffer, off: number): void {
    const rest = buf.subarray(off);
    this.pending = [rest];
    this.pendingBytes = rest.length;
  }

  /** Bytes needed before the pending input can make progress. */
  private bytesNeeded(): number {
    if (this.readState === 'preface') return PREFACE.length;
    if (this.pendingBytes < FRAME_HEADER_BYTES) return FRAME_HEADER_BYTES;
    let first = this.pending[0];
    if (first.length < 3) {
      first = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [first];
    }
    const length = (first[0] << 16) | (first[1] << 8) | first[2];
    // An oversized frame is refused as soon as its header is complete, not buffered.
    return length > this.opts.maxFrameBytes ? 0 : FRAME_HEADER_BYTES + length;
  }

  private badPreface(): void {
    // Not HTTP/2 with prior knowledge (e.g. an HTTP/1.1 request or TLS): nothing to answer in.
    this.socket.destroy();
    this.teardown();
  }

  private onFrame(type: number, flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (this.readState === 'settings') {
      // §3.5: the client preface ends with a SETTINGS frame.
      if (type !== FrameType.Settings || flags & Flag.Ack) return this.connectionError(H2Error.ProtocolError, 'client preface must end with SETTINGS');
      this.readState = 'frames';
      if (this.prefaceTimer) clearTimeout(this.prefaceTimer);
      this.prefaceTimer = undefined;
    }
    if (this.headerStreamId !== 0 && (type !== FrameType.Continuation || streamId !== this.headerStreamId)) {
      return this.connectionError(H2Error.ProtocolError, 'expected CONTINUATION of the open header block');
    }
    switch (type) {
      case FrameType.Data:
        return this.onDataFrame(flags, streamId, buf, start, end);
      case FrameType.Headers:
        return this.onHeadersFrame(flags, streamId, buf, start, end);
      case FrameType.Continuation:
        if (this.headerStreamId === 0) return this.connectionError(H2Error.ProtocolError, 'CONTINUATION without HEADERS');
        return this.addHeaderFragment(flags, buf.subarray(start, end));
      case FrameType.Priority:
        if (streamId === 0) return this.connectionError(H2Error.ProtocolError, 'PRIORITY on stream 0');
        if (end - start !== 5) return this.streamError(streamId, H2Error.FrameSizeError);
        return;
      case FrameType.RstStream:
        return this.onRstStream(streamId, buf, start, end);
      case FrameType.Settings:
        return this.onSettings(flags, streamId, buf, start, end);
      case FrameType.PushPromise:
        return this.connectionError(H2Error.ProtocolError, 'PUSH_PROMISE from a client');
      case FrameType.Ping:
        if (streamId !== 0) return this.connectionError(H2Error.ProtocolError, 'PING on a stream');
        if (end - start !== 8) return this.connectionError(H2Error.FrameSizeError, 'PING payload must be 8 bytes');
        if (!(flags & Flag.Ack)) this.queueOut(encodeFrame(FrameType.Ping, Flag.Ack, 0, buf.subarray(start, end)));
        return;
      case FrameType.Goaway:
        if (streamId !== 0) return this.connectionError(H2Error.ProtocolError, 'GOAWAY on a stream');
        // The client opens no more streams; the ones it has keep running.
        if (!this.draining) {
          this.draining = true;
          if (this.streams.size === 0) this.closeGracefully();
        }
        return;
      case FrameType.WindowUpdate:
        return this.onWindowUpdate(streamId, buf, start, end);
      default:
        return; // §4.1: unknown types are ignored.
    }
  }

  private onDataFrame(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId === 0) return this.connectionError(H2Error.ProtocolError, 'DATA on stream 0');
    const length = end - start;
    // Connection window: everything in the payload counts, padding included (§6.9.1).
    this.recvWindow -= length;
    if (this.recvWindow < 0) return this.connectionError(H2Error.FlowControlError, 'DATA beyond the connection window');
    this.recvUnacked += length;
    if (this.recvUnacked >= this.opts.connectionWindowBytes / 4) {
      this.queueOut(encodeWindowUpdate(0, this.recvUnacked));
      this.recvWindow += this.recvUnacked;
      this.recvUnacked = 0;
    }
    let dataStart = start;
    let dataEnd = end;
    if (flags & Flag.Padded) {
      if (length < 1) return this.connectionError(H2Error.FrameSizeError, 'padded DATA without a pad length');
      const pad = buf[start];
      if (pad >= length) return this.connectionError(H2Error.ProtocolError, 'DATA padding exceeds the payload');
      dataStart = start + 1;
      dataEnd = end - pad;
    }
    const s = this.streams.get(streamId);
    if (!s) {
      if (streamId > this.lastStreamId) return this.connectionError(H2Error.ProtocolError, 'DATA on an idle stream');
      return; // a stream we closed: the client may not know yet (§5.1 "closed").
    }
    if (s.remoteEnded) return this.streamError(streamId, H2Error.StreamClosed);
    s.recvWindow -= length;
    if (s.recvWindow < 0) return this.streamError(streamId, H2Error.FlowControlError);
    // Padding and the pad length byte are consumed at once.
    if (dataEnd - dataStart < length) s.consume(length - (dataEnd - dataStart));
    if (dataEnd > dataStart && s.app) s.app.onData(buf.subarray(dataStart, dataEnd));
    if (flags & Flag.EndStream && !s.closed) this.remoteEnd(s);
  }

  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    s.app?.onEnd();
  }

  private onHeadersFrame(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId === 0) return this.connectionError(H2Error.ProtocolError, 'HEADERS on stream 0');
    let s0 = start;
    let e0 = end;
    if (flags & Flag.Padded) {
      if (e0 - s0 < 1) return this.connectionError(H2Error.FrameSizeError, 'padded HEADERS without a pad length');
      const pad = buf[s0];
      s0++;
      if (pad > e0 - s0) return this.connectionError(H2Error.ProtocolError, 'HEADERS padding exceeds the payload');
      e0 -= pad;
    }
    if (flags & Flag.Priority) {
      if (e0 - s0 < 5) return this.connectionError(H2Error.FrameSizeError, 'HEADERS priority fields missing');
      s0 += 5;
    }
    this.headerStreamId = streamId;
    this.headerEndStream = (flags & Flag.EndStream) !== 0;
    this.headerParts = [];
    this.headerBytes = 0;
    this.addHeaderFragment(flags, buf.subarray(s0, e0));
  }

  private addHeaderFragment(flags: number, fragment: Buffer): void {
    this.headerBytes += fragment.length;
    if (this.headerBytes > this.opts.headerBlockBytesMax) {
      return this.connectionError(H2Error.EnhanceYourCalm, `header block larger than ${this.opts.headerBlockBytesMax} bytes`);
    }
    if (!(flags & Flag.EndHeaders)) {
      // Copied: the chunk it came in may be reused for the next frames.
      this.headerParts.push(Buffer.from(fragment));
      return;
    }
    let block = fragment;
    if (this.headerParts.length > 0) {
      this.headerParts.push(fragment);
      block = Buffer.concat(this.headerParts, this.headerBytes);
    }
    const streamId = this.headerStreamId;
    this.headerStreamId = 0;
    this.headerParts = [];
    let headers: HeaderList;
    try {
      headers = this.decoder.decode(block);
    } catch (err) {
      if (err instanceof HpackError) return this.connectionError(H2Error.CompressionError, err.message);
      throw err;
    }
    this.onHeaderBlock(streamId, this.headerEndStream, headers);
  }

  private onHeaderBlock(streamId: number, endStream: boolean, headers: HeaderList): void {
    if ((streamId & 1) === 0) return this.connectionError(H2Error.ProtocolError, 'client streams must have odd identifiers');
    const existing = this.streams.get(streamId);
    if (existing) {
      // Trailers from the client (gRPC clients send none): they must end the stream.
      if (!endStream || existing.remoteEnded) return this.streamError(streamId, H2Error.ProtocolError);
      this.remoteEnd(existing);
      return;
    }
    if (streamId <= this.lastStreamId) return; // a stream we already closed
    this.lastStreamId = streamId;
    if (this.draining) return; // §6.8: streams after our GOAWAY are ignored.
    if (this.streams.size >= this.opts.maxConcurrentStreams) return this.streamError(streamId, H2Error.RefusedStream);
    const s = new H2Stream(streamId, this, this.peerInitialWindowBytes, this.opts.streamWindowBytes);
    this.streams.set(streamId, s);
    this.handler.onStream(s, headers);
    if (endStream && !s.closed) this.remoteEnd(s);
  }

  private onRstStream(streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId === 0) return this.connectionError(H2Error.ProtocolError, 'RST_STREAM on stream 0');
    if (end - start !== 4) return this.connectionError(H2Error.FrameSizeError, 'RST_STREAM payload must be 4 bytes');
    if (streamId > this.lastStreamId) return this.connectionError(H2Error.ProtocolError, 'RST_STREAM on an idle stream');
    const s = this.streams.get(streamId);
    if (!s) return;
    this.closeStream(s);
    s.app?.onReset(buf.readUInt32BE(start));
  }

  private onSettings(flags: number, streamId: number, buf: Buffer, start: number, end: number): void {
    if (streamId !== 0) return this.connectionError(H2Error.ProtocolError, 'SETTINGS on a stream');
    const length = end - start;
    if (flags & Flag.Ack) {
      if (length !== 0) return this.connectionError(H2Error.FrameSizeError, 'SETTINGS ACK with a payload');
      return;
    }
    if (length % 6 !== 0) return this.connectionError(H2Error.FrameSizeError, 'SETTINGS payload not a multiple of 6');
    for (let p = start; p < end; p += 6) {
      const id = buf.readUInt16BE(p);
      const value = buf.readUInt32BE(p + 2);
      switch (id) {
        case Setting.EnablePush:
          if (value > 1) return this.connectionError(H2Error.ProtocolError, 'SETTINGS_ENABLE_PUSH must be 0 or 1');
          break;
        case Setting.InitialWindowSize: {
          if (value > MAX_WINDOW_BYTES) return this.connectionError(H2Error.FlowControlError, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
          // §6.9.2: the change applies to every open stream's window.
          const delta = value - this.peerInitialWindowBytes;
          this.peerInitialWindowBytes = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW_BYTES) return this.connectionError(H2Error.FlowControlError, 'stream window above 2^31-1');
          }
          break;
        }
        case Setting.MaxFrameSize:
          if (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_FRAME_BYTES_LIMIT) return this.connectionError(H2Error.ProtocolError, 'SETTINGS_MAX_FRAME_SIZE out of range');
          this.peerMaxFrameBytes = value;
          break;
        default:
          // HEADER_TABLE_SIZE (our encoder uses no dynamic table), MAX_CONCURRENT_STREAMS
          // (we never push), MAX_HEADER_LIST_SIZE (our blocks are small), unknown (§6.5.2).
          break;
      }
    }
    this.queueOut(encodeSettings([], true));
    this.pumpParked();
  }

  private onWindowUpdate(streamId: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) return this.connectionError(H2Error.FrameSizeError, 'WINDOW_UPDATE payload must be 4 bytes');
    const increment = buf.readUInt32BE(start) & MAX_WINDOW_BYTES;
    if (streamId === 0) {
      if (increment === 0) return this.connectionError(H2Error.ProtocolError, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_BYTES) return this.connectionError(H2Error.FlowControlError, 'connection window above 2^31-1');
      this.pumpParked();
      return;
    }
    if (streamId > this.lastStreamId) return this.connectionError(H2Error.ProtocolError, 'WINDOW_UPDATE on an idle stream');
    const s = this.streams.get(streamId);
    if (!s) return;
    if (increment === 0) return this.streamError(streamId, H2Error.ProtocolError);
    s.sendWindow += increment;
    if (s.sendWindow > MAX_WINDOW_BYTES) return this.streamError(streamId, H2Error.FlowControlError);
    if (s.parked) this.pumpParked();
  }

  /** §5.4.2: RST_STREAM; the application sees the stream reset. */
  private streamError(streamId: number, code: number): void {
    this.queueOut(encodeRstStream(streamId, code));
    const s = this.streams.get(streamId);
    if (!s) return;
    this.closeStream(s);
    s.app?.onReset(code);
  }
}
