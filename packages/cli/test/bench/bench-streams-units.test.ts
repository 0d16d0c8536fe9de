/**
 * Unit tests of the parts the streaming benches (watch, lease-keepalive) add: the lean
 * HTTP/2 client's streaming calls (h2.ts `openStream`), the in-place protobuf readers
 * (pb.ts) and the key layout of the watch bench.
 *
 * Goal: what the benches count rests on these being exact: every message the server sends
 * on a stream is handed over once, whole and in order, however the server cuts it into
 * DATA frames (several messages per frame, one message over many frames); messages we send
 * get through small flow-control windows; the stream ends with the server's gRPC status,
 * with CANCELLED when we cancel, with UNAVAILABLE when the connection drops; streams
 * respect MAX_CONCURRENT_STREAMS and mix with unary calls. The readers must agree with
 * protobufjs (the encoder etcd-compatible servers' messages are checked against) on every
 * field the benches use, skip the fields they do not, and decode negative int64s (etcd's
 * watch_id -1) and lease IDs above 2^53 exactly.
 *
 * Method: the client runs against an in-process node:http2 server (nghttp2, the HTTP/2
 * stack of coord's grpc-js server) that acts as a streaming gRPC service; messages are
 * encoded with @coord/proto's protobufjs definitions and read back with pb.ts.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import { BidiStream, CallError, H2Connection, PreparedMethod } from '../../src/bench/h2';
import { KeepAliveMessage, parseKeepAliveResponse, parseWatchResponse, WatchMessage } from '../../src/bench/pb';
import { prefixEnd, watchKeys } from '../../src/bench/watch';

function method(service: string, name: string): grpc.MethodDefinition<object, object> {
  return (packageDefinition()[service] as unknown as Record<string, grpc.MethodDefinition<object, object>>)[name];
}

describe('pb: WatchResponse read in place', () => {
  const watch = method('etcdserverpb.Watch', 'Watch');

  test('events: type, mod revision and value of each, other fields skipped', () => {
    const buf = watch.responseSerialize({
      header: { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '123456789', raft_term: '7' },
      watch_id: '42',
      events: [
        {
          type: 0,
          kv: { key: Buffer.from('k1'), create_revision: '5', mod_revision: '9007199254740000', version: '3', value: Buffer.from('v-one'), lease: '77' },
          prev_kv: { key: Buffer.from('k1'), mod_revision: '4', value: Buffer.from('old') },
        },
        { type: 1, kv: { key: Buffer.from('k2'), mod_revision: '10' } },
      ],
    });
    const m = new WatchMessage();
    parseWatchResponse(buf, m);
    expect(m).toMatchObject({ watchId: 42, created: false, canceled: false, compactRevision: 0, events: 2 });
    expect(m.type.slice(0, 2)).toEqual([0, 1]);
    expect(m.modRevision.slice(0, 2)).toEqual([9007199254740000, 10]);
    expect(buf.toString('latin1', m.valueStart[0], m.valueEnd[0])).toBe('v-one');
    expect(m.valueEnd[1] - m.valueStart[1]).toBe(0);
  });

  test('created / canceled answers, compact revision, cancel reason, watch_id 0 and -1', () => {
    const m = new WatchMessage();
    parseWatchResponse(watch.responseSerialize({ header: { revision: '1' }, watch_id: '0', created: true }), m);
    expect(m).toMatchObject({ watchId: 0, created: true, canceled: false, events: 0 });
    const refused = watch.responseSerialize({ watch_id: '-1', created: true, canceled: true, cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream' });
    parseWatchResponse(refused, m);
    expect(m).toMatchObject({ watchId: -1, created: true, canceled: true });
    expect(m.cancelReason(refused)).toBe('mvcc: duplicate watch ID provided on the WatchStream');
    parseWatchResponse(watch.responseSerialize({ watch_id: '3', canceled: true, compact_revision: '17' }), m);
    expect(m).toMatchObject({ watchId: 3, created: false, canceled: true, compactRevision: 17, events: 0 });
  });

  test('a truncated message is an error, not a silent partial read', () => {
    const buf = watch.responseSerialize({ watch_id: '1', events: [{ type: 0, kv: { key: Buffer.from('k'), mod_revision: '2', value: Buffer.from('vvvv') } }] });
    expect(() => parseWatchResponse(buf.subarray(0, buf.length - 3), new WatchMessage())).toThrow(/truncated/);
  });
});

describe('pb: LeaseKeepAliveResponse read in place', () => {
  const ka = method('etcdserverpb.Lease', 'LeaseKeepAlive');

  test('the ID varint bytes are those of the request for the same ID (above 2^53), and the TTL', () => {
    const id = '7587869340829405700';
    const request = ka.requestSerialize({ ID: id });
    const buf = ka.responseSerialize({ header: { revision: '99', raft_term: '2' }, ID: id, TTL: '30' });
    const m = new KeepAliveMessage();
    parseKeepAliveResponse(buf, m);
    expect(m.ttl).toBe(30);
    expect(buf.subarray(m.idStart, m.idEnd).equals(request.subarray(1))).toBe(true);
    expect(request[0]).toBe(0x08);
  });

  test('TTL 0 (unknown lease) and TTL -1 decode as such', () => {
    const m = new KeepAliveMessage();
    parseKeepAliveResponse(ka.responseSerialize({ ID: '5', TTL: '0' }), m);
    expect(m.ttl).toBe(0);
    parseKeepAliveResponse(ka.responseSerialize({ ID: '5', TTL: '-1' }), m);
    expect(m.ttl).toBe(-1);
  });
});

describe('watch bench keys', () => {
  test('keys share the prefix and sort in index order; the prefix range end is etcd\'s', () => {
    expect(watchKeys('p/', 1).map(String)).toEqual(['p/0']);
    const keys = watchKeys('w/', 12).map(String);
    expect(keys[0]).toBe('w/00');
    expect(keys[11]).toBe('w/11');
    expect([...keys].sort()).toEqual(keys);
    expect(prefixEnd(Buffer.from('w/')).toString()).toBe('w0');
    expect(prefixEnd(Buffer.from([0x61, 0xff])).equals(Buffer.from([0x62]))).toBe(true);
    expect(prefixEnd(Buffer.from([0xff])).equals(Buffer.from([0]))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------
// Streaming calls against an nghttp2 server acting as a streaming gRPC service.

const PATH = '/test.Stream/Chat';

function grpcFrame(msg: Buffer): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt32BE(msg.length, 1);
  msg.copy(b, 5);
  return b;
}

interface TestServer {
  port: number;
  maxActive: number;
  resets: number;
  close(): Promise<void>;
}

/**
 * Per received message: "big:N" answers one N-byte message; "many:N" answers N messages
 * "m0".."m(N-1)" in one write; "fail" ends the call with grpc-status 9 and a message;
 * anything else is echoed. When the client half-closes, the server ends with status 0.
 */
async function startServer(settings: http2.Settings = {}): Promise<TestServer> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  const state = { active: 0, maxActive: 0, resets: 0 };
  server.on('stream', (stream) => {
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    stream.on('close', () => {
      state.active--;
      if (stream.rstCode === http2.constants.NGHTTP2_CANCEL) state.resets++;
    });
    stream.on('error', () => undefined);
    let status = '0';
    let message = '';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(message ? { 'grpc-status': status, 'grpc-message': message } : { 'grpc-status': status }));
    let buf = Buffer.alloc(0);
    stream.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const msg = buf.subarray(5, 5 + buf.readUInt32BE(1));
        buf = buf.subarray(5 + msg.length);
        const text = msg.toString('latin1');
        if (text.startsWith('big:')) stream.write(grpcFrame(Buffer.alloc(Number(text.slice(4)), 'b')));
        else if (text.startsWith('many:')) {
          stream.write(Buffer.concat(Array.from({ length: Number(text.slice(5)) }, (_, i) => grpcFrame(Buffer.from(`m${i}`)))));
        } else if (text === 'fail') {
          status = '9';
          message = 'failed on purpose';
          stream.end();
        } else stream.write(grpcFrame(msg));
      }
    });
    stream.on('end', () => {
      if (!stream.writableEnded) stream.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get maxActive() {
      return state.maxActive;
    },
    get resets() {
      return state.resets;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Recorded {
  call: BidiStream;
  messages: Buffer[];
  ended: Promise<CallError | null>;
  /** Resolves once `n` messages have arrived. */
  received(n: number): Promise<void>;
}

function open(conn: H2Connection): Recorded {
  const messages: Buffer[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let endResolve!: (e: CallError | null) => void;
  const ended = new Promise<CallError | null>((r) => (endResolve = r));
  const call = conn.openStream(new PreparedMethod(PATH, conn.authority), {
    onMessage: (m) => {
      messages.push(Buffer.from(m)); // a view into the socket chunk: copy to keep
      for (const w of waiters) if (messages.length >= w.n) w.resolve();
    },
    onEnd: (e) => endResolve(e),
  });
  return {
    call,
    messages,
    ended,
    received: (n) => (messages.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

describe('H2Connection streaming calls against an nghttp2 server', () => {
  let server: TestServer | undefined;
  let conn: H2Connection | undefined;
  afterEach(async () => {
    conn?.close();
    await server?.close();
    conn = server = undefined;
  });

  async function connect(settings: http2.Settings = {}): Promise<H2Connection> {
    server = await startServer(settings);
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    return conn;
  }

  test('1,000 messages sent in one tick come back once each, in order; half-close ends with status 0', async () => {
    const c = await connect();
    const r = open(c);
    for (let i = 0; i < 1000; i++) r.call.send(Buffer.from(`msg ${i}`));
    await r.received(1000);
    expect(r.messages.map(String)).toEqual(Array.from({ length: 1000 }, (_, i) => `msg ${i}`));
    r.call.end();
    expect(await r.ended).toBeNull();
    expect(r.call.ended).toBe(true);
  });

  test('many messages in one DATA frame and one message over many frames are cut exactly', async () => {
    const c = await connect();
    const r = open(c);
    r.call.send(Buffer.from('many:500'));
    r.call.send(Buffer.from('big:200000'));
    r.call.send(Buffer.from('after'));
    await r.received(502);
    expect(r.messages.slice(0, 500).map(String)).toEqual(Array.from({ length: 500 }, (_, i) => `m${i}`));
    expect(r.messages[500].length).toBe(200_000);
    expect(r.messages[500].equals(Buffer.alloc(200_000, 'b'))).toBe(true);
    expect(r.messages[501].toString()).toBe('after');
    r.call.end();
    expect(await r.ended).toBeNull();
  });

  test('pre-framed messages (sendFramed) go out as they are', async () => {
    const c = await connect();
    const r = open(c);
    r.call.sendFramed(Buffer.concat([grpcFrame(Buffer.from('a')), grpcFrame(Buffer.from('bc'))]));
    await r.received(2);
    expect(r.messages.map(String)).toEqual(['a', 'bc']);
  });

  test('the server\'s non-zero grpc-status ends the call with it', async () => {
    const c = await connect();
    const r = open(c);
    r.call.send(Buffer.from('fail'));
    const err = await r.ended;
    expect(err?.code).toBe(9);
    expect(err!.details || err!.huffmanDetails?.length).toBeTruthy();
  });

  test('cancel() resets the stream (the server sees CANCEL) and ends it with CANCELLED; the connection goes on', async () => {
    const c = await connect();
    const r = open(c);
    r.call.send(Buffer.from('x'));
    await r.received(1);
    r.call.cancel();
    expect((await r.ended)?.code).toBe(1);
    const other = open(c);
    other.call.send(Buffer.from('still here'));
    await other.received(1);
    expect(other.messages[0].toString()).toBe('still here');
    await new Promise((res) => setTimeout(res, 50));
    expect(server!.resets).toBe(1);
  });

  test('send flow control: 300 KB through a 1 KiB stream window', async () => {
    const c = await connect({ initialWindowSize: 1024 });
    const r = open(c);
    const big = Buffer.alloc(300_000, 'z');
    r.call.send(big);
    r.call.send(Buffer.from('tail'));
    await r.received(2);
    expect(r.messages[0].equals(big)).toBe(true);
    expect(r.messages[1].toString()).toBe('tail');
  });

  test('MAX_CONCURRENT_STREAMS 2: a third stream waits (its messages too) until one ends', async () => {
    const c = await connect({ maxConcurrentStreams: 2 });
    const streams = [open(c), open(c), open(c)];
    streams[2].call.send(Buffer.from('queued'));
    streams[0].call.send(Buffer.from('one'));
    await streams[0].received(1);
    await new Promise((res) => setTimeout(res, 50));
    expect(streams[2].messages).toHaveLength(0);
    streams[0].call.end();
    await streams[0].ended;
    await streams[2].received(1);
    expect(streams[2].messages[0].toString()).toBe('queued');
    expect(server!.maxActive).toBeLessThanOrEqual(2);
  });

  test('unary calls and streams share a connection', async () => {
    const c = await connect();
    const r = open(c);
    r.call.send(Buffer.from('s1'));
    // The test server echoes on any stream; a unary call is a stream we half-close at once.
    const unary = await new Promise<{ err: CallError | null; res?: Buffer }>((resolve) =>
      c.call(new PreparedMethod(PATH, c.authority), Buffer.from('u1'), (err, res) => resolve({ err, res })),
    );
    expect(unary.err).toBeNull();
    expect(unary.res?.toString()).toBe('u1');
    await r.received(1);
    expect(r.messages[0].toString()).toBe('s1');
  });

  test('a dropped connection ends open streams with UNAVAILABLE, and later ones too', async () => {
    const c = await connect();
    const r = open(c);
    r.call.send(Buffer.from('x'));
    await r.received(1);
    await server!.close();
    server = undefined;
    expect((await r.ended)?.code).toBe(14);
    expect((await open(c).ended)?.code).toBe(14);
  });
});
