/**
 * A gRPC server on our own HTTP/2 transport (connection.ts, call.ts): services are added
 * as with grpc-js (`addService(definition, implementation)`), connections come from
 * `net.Server` listeners, and shutdown is grpc-js's pair: `tryShutdown` (GOAWAY, then close
 * each connection once its streams have ended; streams still open after
 * `shutdownGraceMs`, such as watches, are cut, as etcd bounds its graceful stop) and
 * `forceShutdown`.
 *
 * Any `:authority` is accepted (etcd's Go client sends `http://host:port` for some calls;
 * see authority-fix.ts for the grpc-js side of that story).
 *
 * Why not grpc-js: on this project's 2-core machines grpc-js's server spent most of the
 * member's CPU per request (Http2Stream objects, interceptor chains, per-call Metadata and
 * Readable/Writable streams), saturating the event loop at a fraction of what the member and
 * WAL sustain. See docs/BENCHMARKS.md.
 */
import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { CallContext, HTTP_415, MethodEntry, MethodKind, RESPONSE_HEADERS, ServerCall, Status, trailerBlock } from './call';
import { ConnectionHandler, ConnectionOptions, DEFAULT_CONNECTION_OPTIONS, H2Connection, H2Stream } from './connection';
import { H2Error } from './frames';
import type { HeaderList } from './hpack';

export interface H2GrpcServerOptions extends Partial<ConnectionOptions> {
  /**
   * Larger request messages are not buffered. The handler receives `oversized(bytes, max)`
   * in their place, or without `oversized` the call ends with grpc-go's ResourceExhausted.
   */
  messageBytesMax?: number;
  oversized?: (bytes: number, limitBytes: number) => unknown;
  /** A streaming call's `write` returns false above this many queued bytes. */
  writeHighWaterMarkBytes?: number;
  /** tryShutdown cuts the connections still open after this long. */
  shutdownGraceMs?: number;
}

const DEFAULT_MESSAGE_BYTES_MAX = 4 * 1024 * 1024;
const WINDOW_ALIGN_BYTES = 64 * 1024;
const WINDOW_BYTES_MIN = 1024 * 1024;

const H2_PREFACE_START = 'PRI * HTTP/2.0';

export class H2GrpcServer implements ConnectionHandler, CallContext {
  readonly messageBytesMax: number;
  readonly oversized: ((bytes: number, limitBytes: number) => unknown) | undefined;
  readonly writeHighWaterMarkBytes: number;
  readonly connectionOptions: ConnectionOptions;
  private readonly shutdownGraceMs: number;
  private readonly handlers = new Map<string, MethodEntry>();
  private readonly connections = new Set<H2Connection>();
  private readonly listeners: net.Server[] = [];
  private shuttingDown = false;
  private shutdownCallbacks: ((err?: Error) => void)[] = [];
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(opts: H2GrpcServerOptions = {}) {
    this.messageBytesMax = opts.messageBytesMax ?? DEFAULT_MESSAGE_BYTES_MAX;
    this.oversized = opts.oversized;
    this.writeHighWaterMarkBytes = opts.writeHighWaterMarkBytes ?? 256 * 1024;
    this.shutdownGraceMs = opts.shutdownGraceMs ?? 2000;
    // The stream window takes a whole largest message (prefix and a frame of slack
    // included), so a request of any accepted size arrives without waiting for credit.
    const fit = Math.ceil((this.messageBytesMax + 5 + 16 * 1024) / WINDOW_ALIGN_BYTES) * WINDOW_ALIGN_BYTES;
    const streamWindowBytes = opts.streamWindowBytes ?? Math.min(0x7fff_ffff, Math.max(WINDOW_BYTES_MIN, fit));
    const chosen: Partial<ConnectionOptions> = {};
    for (const key of Object.keys(DEFAULT_CONNECTION_OPTIONS) as (keyof ConnectionOptions)[]) {
      if (opts[key] !== undefined) chosen[key] = opts[key];
    }
    this.connectionOptions = Object.freeze({ ...DEFAULT_CONNECTION_OPTIONS, ...chosen, streamWindowBytes });
    if (this.connectionOptions.streamWindowBytes < this.messageBytesMax + 5) {
      throw new Error(`stream window ${this.connectionOptions.streamWindowBytes} cannot hold a ${this.messageBytesMax}-byte message`);
    }
  }

  addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    const names = Object.keys(service);
    if (names.length === 0) throw new Error('Cannot add an empty service to a server');
    for (const name of names) {
      const attrs = service[name];
      const kind: MethodKind = attrs.requestStream ? (attrs.responseStream ? 'bidi' : 'clientStream') : attrs.responseStream ? 'serverStream' : 'unary';
      let impl = implementation[name] as unknown as ((...args: unknown[]) => void) | undefined;
      if (impl === undefined && typeof attrs.originalName === 'string') impl = implementation[attrs.originalName] as unknown as typeof impl;
      const func: MethodEntry['func'] =
        impl !== undefined
          ? (impl.bind(implementation) as MethodEntry['func'])
          : unimplemented(kind, name);
      if (this.handlers.has(attrs.path)) throw new Error(`Method handler for ${attrs.path} already provided.`);
      this.handlers.set(attrs.path, {
        path: attrs.path,
        kind,
        func,
        deserialize: attrs.requestDeserialize as (b: Buffer) => unknown,
        serialize: attrs.responseSerialize as (v: unknown) => Buffer,
      });
    }
  }

  /** Listens on host:port (port 0 picks one); resolves with the bound address. */
  async listen(port: number, host: string): Promise<net.AddressInfo> {
    const listener = net.createServer((socket) => (this.http1 ? this.sniff(socket, this.http1) : this.accept(socket)));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    this.listeners.push(listener);
    return listener.address() as net.AddressInfo;
  }

  /**
   * Plain HTTP/1.x on the same port (etcd's /health, /version, /metrics), told apart by the
   * first bytes: an HTTP/2 client starts with the "PRI * HTTP/2.0" preface (RFC 9113 §3.4).
   */
  private http1: ((socket: net.Socket) => void) | undefined;

  serveHttp1(handler: (socket: net.Socket) => void): void {
    this.http1 = handler;
  }

  private sniff(socket: net.Socket, http1: (socket: net.Socket) => void): void {
    // A client that connects and says nothing is dropped, as the HTTP/2 preface timeout would.
    const silent = setTimeout(() => socket.destroy(), this.connectionOptions.prefaceTimeoutMs ?? 10_000);
    socket.once('close', () => clearTimeout(silent));
    socket.once('data', (first: Buffer) => {
      clearTimeout(silent);
      socket.pause();
      socket.unshift(first);
      const probe = first.toString('latin1', 0, Math.min(first.length, H2_PREFACE_START.length));
      if (H2_PREFACE_START.startsWith(probe)) this.accept(socket);
      else http1(socket);
      socket.resume();
    });
  }

  /** Serves HTTP/2 on a connected socket (also for tests and other listeners). */
  accept(socket: net.Socket): H2Connection | undefined {
    if (this.shuttingDown) {
      socket.destroy();
      return undefined;
    }
    const conn = new H2Connection(socket, this, this.connectionOptions);
    if (!conn.closed) this.connections.add(conn);
    return conn;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  // ConnectionHandler

  onStream(stream: H2Stream, headers: HeaderList): void {
    let path: string | undefined;
    let method: string | undefined;
    let contentType: string | undefined;
    let timeout: string | undefined;
    let encoding: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      switch (headers[i]) {
        case ':path':
          path = headers[i + 1];
          break;
        case ':method':
          method = headers[i + 1];
          break;
        case 'content-type':
          contentType = headers[i + 1];
          break;
        case 'grpc-timeout':
          timeout = headers[i + 1];
          break;
        case 'grpc-encoding':
          encoding = headers[i + 1];
          break;
        default:
          break;
      }
    }
    if (path === undefined || method !== 'POST') {
      // Not a gRPC request (§8.1.2.3: :path is mandatory; gRPC uses POST only).
      stream.reset(H2Error.ProtocolError);
      return;
    }
    if (contentType === undefined || !contentType.startsWith('application/grpc')) {
      stream.sendTrailers(HTTP_415);
      return;
    }
    const entry = this.handlers.get(path);
    if (entry === undefined) {
      // grpc-js's answer to an unknown method.
      stream.sendTrailers(Buffer.concat([RESPONSE_HEADERS, trailerBlock(Status.UNIMPLEMENTED, `The server does not implement the method ${path}`)]));
      return;
    }
    const call = new ServerCall(this, stream, entry, headers);
    stream.app = call;
    call.start(timeout, encoding);
  }

  onClose(conn: H2Connection): void {
    this.connections.delete(conn);
    if (this.shuttingDown) this.maybeShutdownDone();
  }

  // Shutdown

  /** Stops accepting, sends GOAWAY and calls back once every connection has closed. */
  tryShutdown(callback: (err?: Error) => void): void {
    this.shutdownCallbacks.push(callback);
    if (this.shuttingDown) {
      this.maybeShutdownDone();
      return;
    }
    this.shuttingDown = true;
    this.closeListeners();
    for (const c of [...this.connections]) c.goaway();
    if (this.connections.size > 0) {
      this.graceTimer = setTimeout(() => {
        for (const c of [...this.connections]) c.destroy();
      }, this.shutdownGraceMs);
      this.graceTimer.unref();
    }
    this.maybeShutdownDone();
  }

  /** Closes everything now; streams see a reset. */
  forceShutdown(): void {
    this.shuttingDown = true;
    this.closeListeners();
    for (const c of [...this.connections]) c.destroy();
    this.maybeShutdownDone();
  }

  private closeListeners(): void {
    for (const l of this.listeners) l.close();
    this.listeners.length = 0;
  }

  private maybeShutdownDone(): void {
    if (this.connections.size > 0) return;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    const cbs = this.shutdownCallbacks;
    this.shutdownCallbacks = [];
    for (const cb of cbs) process.nextTick(cb);
  }
}

/** grpc-js's default handler for a method without implementation. */
function unimplemented(kind: MethodKind, name: string): MethodEntry['func'] {
  const status = { code: Status.UNIMPLEMENTED, details: `The server does not implement the method ${name}` };
  if (kind === 'unary' || kind === 'clientStream') return (_call, callback) => callback?.(status);
  return (call) => call.destroy(status);
}
