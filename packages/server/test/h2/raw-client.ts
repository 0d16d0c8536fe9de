/**
 * Test helpers for the h2 transport: a raw HTTP/2 client that writes frames byte by byte
 * as a test wants them (split, padded, oversized, out of order) and reads the server's
 * frames back, and a small gRPC test service with identity (Buffer) serializers.
 */
import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { encodeHeaders, HpackDecoder } from '../../src/api/h2/hpack';
import { H2GrpcServer, H2GrpcServerOptions } from '../../src/api/h2/server';
import type { ServerCall } from '../../src/api/h2/call';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

export function settingsPayload(settings: [number, number][]): Buffer {
  const b = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, v], i) => {
    b.writeUInt16BE(id, 6 * i);
    b.writeUInt32BE(v, 6 * i + 2);
  });
  return b;
}

export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

/** gRPC length-prefixed message. */
export function grpcMessage(msg: Buffer | string, compressed = false): Buffer {
  const m = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
  const b = Buffer.alloc(5 + m.length);
  b[0] = compressed ? 1 : 0;
  b.writeUInt32BE(m.length, 1);
  m.copy(b, 5);
  return b;
}

export function requestBlock(path: string, extra: [string, string][] = []): Buffer {
  return encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', 'http://127.0.0.1:2379'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ]);
}

export class RawClient {
  readonly frames: Frame[] = [];
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly decoder = new HpackDecoder();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({ type: this.buf[3], flags: this.buf[4], streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects, sends the preface and SETTINGS (unless `preface` is false). */
  static async connect(port: number, settings: [number, number][] = [], preface = true): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const c = new RawClient(socket);
    if (preface) c.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, settingsPayload(settings))]));
    return c;
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  send(type: number, flags: number, streamId: number, payload?: Buffer): void {
    this.write(frame(type, flags, streamId, payload));
  }

  /** One unary request in one write: HEADERS then DATA with END_STREAM. */
  unary(streamId: number, path: string, message: Buffer | string, extra: [string, string][] = []): void {
    this.write(Buffer.concat([frame(T.HEADERS, 0x4, streamId, requestBlock(path, extra)), frame(T.DATA, 0x1, streamId, grpcMessage(message))]));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for (and removes) the first frame matching `pred`. */
  async next(pred: (f: Frame) => boolean = () => true, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closed) throw new Error('connection closed while waiting for a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have: ${this.frames.map((f) => `${f.type}/${f.streamId}`).join(' ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Whether no frame matching `pred` arrives within `ms`. */
  async none(pred: (f: Frame) => boolean, ms = 150): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return !this.frames.some(pred);
  }

  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection not closed');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Decodes a HEADERS frame's block (the server sends whole blocks without padding). */
  headers(f: Frame): Record<string, string> {
    const list = this.decoder.decode(f.payload);
    const out: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) out[list[i]] = list[i + 1];
    return out;
  }

  /** Collects a whole response on a stream: headers, DATA bytes and trailers. */
  async response(streamId: number, timeoutMs = 3000): Promise<{ headers: Record<string, string>; data: Buffer; trailers: Record<string, string>; dataFrames: Frame[] }> {
    const onStream = (f: Frame) => f.streamId === streamId && (f.type === T.HEADERS || f.type === T.DATA || f.type === T.RST);
    const first = await this.next(onStream, timeoutMs);
    if (first.type === T.RST) throw new Error(`stream ${streamId} reset with code ${first.payload.readUInt32BE(0)}`);
    const headers = this.headers(first);
    if (first.flags & 0x1) return { headers, data: Buffer.alloc(0), trailers: headers, dataFrames: [] };
    const dataFrames: Frame[] = [];
    for (;;) {
      const f = await this.next(onStream, timeoutMs);
      if (f.type === T.DATA) dataFrames.push(f);
      else if (f.type === T.HEADERS) {
        return { headers, data: Buffer.concat(dataFrames.map((d) => d.payload)), trailers: this.headers(f), dataFrames };
      } else throw new Error(`stream ${streamId} reset with code ${f.payload.readUInt32BE(0)}`);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Splits gRPC length-prefixed messages. */
export function grpcMessages(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off + 5 <= data.length) {
    const len = data.readUInt32BE(off + 1);
    out.push(data.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  if (off !== data.length) throw new Error('trailing bytes after gRPC messages');
  return out;
}

/** What the test service saw, for assertions. */
export interface ServiceLog {
  events: string[];
  calls: ServerCall[];
}

const identity = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};

export const TEST_SERVICE = {
  Unary: { path: '/test.Echo/Unary', requestStream: false, responseStream: false, originalName: 'unary', ...identity },
  Chat: { path: '/test.Echo/Chat', requestStream: true, responseStream: true, ...identity },
  Count: { path: '/test.Echo/Count', requestStream: false, responseStream: true, ...identity },
  Missing: { path: '/test.Echo/Missing', requestStream: false, responseStream: false, ...identity },
} as unknown as grpc.ServiceDefinition;

/**
 * Unary: echoes; `err:CODE:details` fails with that status; `big:N` answers N bytes; `slow`
 * answers after 300 ms; `throw` throws. Chat: echoes each message; `fail` destroys the call
 * with FAILED_PRECONDITION; `flood:N:S` writes N messages of S bytes and logs write results
 * and 'drain'; `pause` pauses the call for 300 ms; client end -> end(). Count: request N ->
 * N messages "0".."N-1", then end.
 */
export function testImplementation(log: ServiceLog): grpc.UntypedServiceImplementation {
  return {
    unary(call: ServerCall, cb: (err: unknown, v?: unknown) => void) {
      log.calls.push(call);
      const req = call.request as Buffer;
      const text = Buffer.isBuffer(req) ? req.toString() : '';
      call.on('cancelled', () => log.events.push(`cancelled:${text}`));
      if (!Buffer.isBuffer(req)) {
        log.events.push(`request:${JSON.stringify(req)}`);
        cb({ code: 8, details: 'oversized' });
        return;
      }
      if (text.startsWith('err:')) {
        const [, code, ...rest] = text.split(':');
        cb({ code: Number(code), details: rest.join(':') });
      } else if (text.startsWith('big:')) cb(null, Buffer.alloc(Number(text.slice(4)), 0x61));
      else if (text === 'slow') setTimeout(() => cb(null, Buffer.from('late')), 300);
      else if (text === 'throw') throw new Error('boom');
      else cb(null, req);
    },
    Chat(call: ServerCall) {
      log.calls.push(call);
      call.on('data', (m: Buffer) => {
        const text = Buffer.isBuffer(m) ? m.toString() : JSON.stringify(m);
        log.events.push(`data:${text.slice(0, 40)}`);
        if (text === 'fail') call.destroy({ code: 9, details: 'failed here' });
        else if (text.startsWith('flood:')) {
          const [, n, s] = text.split(':');
          let falses = 0;
          for (let i = 0; i < Number(n); i++) if (!call.write(Buffer.alloc(Number(s), 0x62))) falses++;
          log.events.push(`flood-false:${falses}`);
        } else if (text === 'pause') {
          call.pause();
          setTimeout(() => call.resume(), 300);
        } else call.write(m);
      });
      call.on('drain', () => log.events.push('drain'));
      call.on('end', () => {
        log.events.push('end');
        call.end();
      });
      call.on('cancelled', () => log.events.push('cancelled'));
      call.on('close', () => log.events.push('close'));
      call.on('error', () => log.events.push('error'));
    },
    Count(call: ServerCall) {
      log.calls.push(call);
      const n = Number((call.request as Buffer).toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
  };
}

export async function startTestServer(opts: H2GrpcServerOptions = {}): Promise<{ server: H2GrpcServer; port: number; log: ServiceLog }> {
  const server = new H2GrpcServer(opts);
  const log: ServiceLog = { events: [], calls: [] };
  server.addService(TEST_SERVICE, testImplementation(log));
  const addr = await server.listen(0, '127.0.0.1');
  return { server, port: addr.port, log };
}

export async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
