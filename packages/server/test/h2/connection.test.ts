/**
 * The h2 transport at the frame level (src/api/h2/connection.ts, call.ts, server.ts).
 *
 * Goal: the server speaks HTTP/2 as RFC 7540 requires of it and gRPC as gRPC clients expect,
 * with every buffer bounded: settings exchange, PING, HEADERS with CONTINUATION and padding,
 * DATA with padding and messages split anywhere, flow control in both directions with tiny
 * windows, RST_STREAM both ways, stream limits, GOAWAY and graceful shutdown, connection and
 * stream errors, gRPC statuses (trailers-only errors, unknown methods, compression,
 * deadlines, oversized messages) and streaming backpressure ('drain').
 *
 * Method: a raw client (raw-client.ts) writes exactly the frames a case needs over a real
 * TCP connection to an H2GrpcServer running a test service with identity serializers, and
 * checks the frames that come back.
 */
import * as net from 'node:net';
import { frame, grpcMessage, grpcMessages, RawClient, requestBlock, settingsPayload, startTestServer, T, u32, waitFor } from './raw-client';
import type { H2GrpcServer } from '../../src/api/h2/server';

const SETTINGS_INITIAL_WINDOW_SIZE = 4;
const SETTINGS_MAX_FRAME_SIZE = 5;

let server: H2GrpcServer;
let port: number;
let log: { events: string[]; calls: unknown[] };
const clients: RawClient[] = [];

async function connect(settings: [number, number][] = [], preface = true): Promise<RawClient> {
  const c = await RawClient.connect(port, settings, preface);
  clients.push(c);
  return c;
}

beforeEach(async () => {
  ({ server, port, log } = await startTestServer({ shutdownGraceMs: 500 }));
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  server.forceShutdown();
});

describe('connection setup', () => {
  test('the server preface advertises its limits and raises the connection window; client SETTINGS and PING are acknowledged', async () => {
    const c = await connect([[SETTINGS_INITIAL_WINDOW_SIZE, 1000]]);
    const settings = await c.next((f) => f.type === T.SETTINGS && !(f.flags & 1));
    const values = new Map<number, number>();
    for (let p = 0; p < settings.payload.length; p += 6) values.set(settings.payload.readUInt16BE(p), settings.payload.readUInt32BE(p + 2));
    expect(values.get(3)).toBe(256); // MAX_CONCURRENT_STREAMS
    expect(values.get(4)).toBeGreaterThanOrEqual(4 * 1024 * 1024 + 5); // INITIAL_WINDOW_SIZE holds a largest message
    expect(values.get(5)).toBe(65536); // MAX_FRAME_SIZE
    expect(values.get(6)).toBe(65536); // MAX_HEADER_LIST_SIZE
    expect(values.has(1)).toBe(false); // HEADER_TABLE_SIZE stays 4096 for the client's encoder
    const wu = await c.next((f) => f.type === T.WINDOW_UPDATE && f.streamId === 0);
    expect(wu.payload.readUInt32BE(0)).toBe(64 * 1024 * 1024 - 65535);
    const ack = await c.next((f) => f.type === T.SETTINGS && (f.flags & 1) === 1);
    expect(ack.payload.length).toBe(0);
    c.send(T.PING, 0, 0, Buffer.from('12345678'));
    const pong = await c.next((f) => f.type === T.PING);
    expect(pong.flags).toBe(1);
    expect(pong.payload.toString()).toBe('12345678');
  });

  test('a connection that is not HTTP/2 prior knowledge is closed', async () => {
    const c = await connect([], false);
    c.write(Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
    await c.waitClosed();
  });

  test('the first frame after the preface must be SETTINGS', async () => {
    const c = await connect([], false);
    c.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(T.PING, 0, 0, Buffer.alloc(8))]));
    const g = await c.next((f) => f.type === T.GOAWAY);
    expect(g.payload.readUInt32BE(4)).toBe(1); // PROTOCOL_ERROR
    await c.waitClosed();
  });

  test('preface and frames may arrive a byte at a time', async () => {
    const c = await connect([], false);
    const bytes = Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      frame(T.SETTINGS, 0, 0),
      frame(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Unary')),
      frame(T.DATA, 0x1, 1, grpcMessage('one byte at a time')),
    ]);
    for (const b of bytes) {
      c.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    const r = await c.response(1);
    expect(grpcMessages(r.data)[0].toString()).toBe('one byte at a time');
  });
});

describe('requests', () => {
  test('unary: HEADERS split over CONTINUATIONs, padding and priority, a message split across padded DATA frames', async () => {
    const c = await connect();
    const block = requestBlock('/test.Echo/Unary', [['user-agent', 'raw-test'], ['x-pad', 'p'.repeat(100)]]);
    // HEADERS: PADDED (3 bytes) + PRIORITY, first 10 bytes of the block; then two CONTINUATIONs.
    const first = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 16]), block.subarray(0, 10), Buffer.alloc(3)]);
    const msg = grpcMessage('hello, split world');
    const padded = (payload: Buffer, pad: number) => Buffer.concat([Buffer.from([pad]), payload, Buffer.alloc(pad)]);
    c.write(
      Buffer.concat([
        frame(T.HEADERS, 0x8 | 0x20, 1, first),
        frame(T.CONTINUATION, 0, 1, block.subarray(10, 40)),
        frame(T.CONTINUATION, 0x4, 1, block.subarray(40)),
        frame(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 1])),
        frame(T.DATA, 0x8, 1, padded(msg.subarray(0, 3), 7)), // the prefix itself is split
        frame(T.DATA, 0, 1, msg.subarray(3, 9)),
        frame(T.DATA, 0x8 | 0x1, 1, padded(msg.subarray(9), 0)),
      ]),
    );
    const r = await c.response(1);
    expect(r.headers[':status']).toBe('200');
    expect(r.headers['content-type']).toBe('application/grpc');
    expect(grpcMessages(r.data).map(String)).toEqual(['hello, split world']);
    expect(r.trailers['grpc-status']).toBe('0');
    expect(r.trailers['grpc-message']).toBeUndefined();
  });

  test('many unary calls in one write are answered in one gathered socket write', async () => {
    // Count the server's socket writes for this connection.
    const writes: number[] = [];
    const tap = net.createServer((sock) => {
      const write = sock.write.bind(sock) as (b: Buffer) => boolean;
      (sock as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
        writes.push(b.length);
        return write(b);
      };
      server.accept(sock);
    });
    await new Promise<void>((r) => tap.listen(0, '127.0.0.1', r));
    const c = await RawClient.connect((tap.address() as net.AddressInfo).port, []);
    clients.push(c);
    await c.next((f) => f.type === T.SETTINGS && (f.flags & 1) === 1);
    const before = writes.length;
    const parts: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const id = 1 + 2 * i;
      parts.push(frame(T.HEADERS, 0x4, id, requestBlock('/test.Echo/Unary')), frame(T.DATA, 0x1, id, grpcMessage(`m${i}`)));
    }
    c.write(Buffer.concat(parts));
    for (let i = 0; i < 50; i++) expect(grpcMessages((await c.response(1 + 2 * i)).data)[0].toString()).toBe(`m${i}`);
    tap.close();
    // 150 frames (headers, data, trailers per call); TCP may split the input, not more.
    expect(writes.length - before).toBeLessThanOrEqual(3);
  });

  test('server streaming and bidi streaming', async () => {
    const c = await connect();
    c.unary(1, '/test.Echo/Count', '5');
    const r = await c.response(1);
    expect(grpcMessages(r.data).map(String)).toEqual(['0', '1', '2', '3', '4']);
    expect(r.trailers['grpc-status']).toBe('0');

    c.send(T.HEADERS, 0x4, 3, requestBlock('/test.Echo/Chat'));
    c.send(T.DATA, 0, 3, Buffer.concat([grpcMessage('a'), grpcMessage('bb')]));
    const h = await c.next((f) => f.streamId === 3 && f.type === T.HEADERS);
    expect(c.headers(h)[':status']).toBe('200');
    let got = Buffer.alloc(0);
    while (grpcMessages(got).length < 2) got = Buffer.concat([got, (await c.next((f) => f.streamId === 3 && f.type === T.DATA)).payload]);
    expect(grpcMessages(got).map(String)).toEqual(['a', 'bb']);
    c.send(T.DATA, 0x1, 3, grpcMessage('ccc'));
    const rest = await c.response(3).catch(() => undefined);
    void rest;
    await waitFor(() => log.events.includes('end'));
    expect(log.events).toEqual(['data:a', 'data:bb', 'data:ccc', 'end', 'close']);
  });

  test('bidi: destroy(err) ends the call with that status; the client is told to stop sending', async () => {
    const c = await connect();
    c.send(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Chat'));
    c.send(T.DATA, 0, 1, grpcMessage('fail'));
    const t = await c.next((f) => f.streamId === 1 && f.type === T.HEADERS);
    const trailers = c.headers(t);
    expect(t.flags & 1).toBe(1);
    expect(trailers['grpc-status']).toBe('9');
    expect(trailers['grpc-message']).toBe('failed here');
    const rst = await c.next((f) => f.streamId === 1 && f.type === T.RST);
    expect(rst.payload.readUInt32BE(0)).toBe(0); // NO_ERROR (RFC 7540 §8.1)
    // Data the client had in flight is ignored, not an error.
    c.send(T.DATA, 0, 1, grpcMessage('late'));
    c.send(T.PING, 0, 0, Buffer.alloc(8));
    await c.next((f) => f.type === T.PING);
    await waitFor(() => log.events.includes('close'));
    expect(log.events).toContain('error');
  });
});

describe('gRPC statuses', () => {
  test('errors are trailers-only responses with percent-encoded grpc-message', async () => {
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', 'err:3:etcdserver: bad 100% clé\n');
    const r = await c.response(1);
    expect(r.headers[':status']).toBe('200');
    expect(r.headers['content-type']).toBe('application/grpc');
    expect(r.headers['grpc-status']).toBe('3');
    expect(r.headers['grpc-message']).toBe('etcdserver: bad 100%25 cl%C3%A9%0A');
    expect(r.data.length).toBe(0);
  });

  test.each([
    ['an unknown method', '/test.Echo/Nope', 'x', [], '12', 'The server does not implement the method /test.Echo/Nope'],
    ['a method without implementation', '/test.Echo/Missing', 'x', [], '12', 'The server does not implement the method Missing'],
    ['a handler that throws', '/test.Echo/Unary', 'throw', [], '2', 'Unknown error'],
    ['a malformed grpc-timeout', '/test.Echo/Unary', 'x', [['grpc-timeout', '10 seconds']], '13', 'Invalid grpc-timeout value "10 seconds"'],
  ] as [string, string, string, [string, string][], string, string][])('%s', async (_name, path, msg, extra, status, message) => {
    const c = await connect();
    c.unary(1, path, msg, extra);
    const r = await c.response(1);
    expect(r.trailers['grpc-status']).toBe(status);
    expect(decodeURIComponent(r.trailers['grpc-message'])).toBe(message);
  });

  test('a non-gRPC content type gets HTTP 415', async () => {
    const c = await connect();
    const block = requestBlock('/test.Echo/Unary').toString('latin1').replace('application/grpc', 'application/json');
    c.send(T.HEADERS, 0x4 | 0x1, 1, Buffer.from(block, 'latin1'));
    const r = await c.response(1);
    expect(r.headers[':status']).toBe('415');
  });

  test('compressed messages are refused: UNIMPLEMENTED for a codec we lack, INTERNAL for a flag without one (grpc-go)', async () => {
    const c = await connect();
    c.write(Buffer.concat([frame(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Unary', [['grpc-encoding', 'gzip']])), frame(T.DATA, 0x1, 1, grpcMessage('zz', true))]));
    const r1 = await c.response(1);
    expect(r1.trailers['grpc-status']).toBe('12');
    expect(r1.trailers['grpc-message']).toBe('grpc: Decompressor is not installed for grpc-encoding "gzip"');
    c.write(Buffer.concat([frame(T.HEADERS, 0x4, 3, requestBlock('/test.Echo/Unary')), frame(T.DATA, 0x1, 3, grpcMessage('zz', true))]));
    const r2 = await c.response(3);
    expect(r2.trailers['grpc-status']).toBe('13');
  });

  test('unary with no message or two messages: grpc-js texts', async () => {
    const c = await connect();
    c.send(T.HEADERS, 0x4 | 0x1, 1, requestBlock('/test.Echo/Unary'));
    expect((await c.response(1)).trailers['grpc-message']).toBe('Received no request message for server streaming method /test.Echo/Unary');
    c.write(Buffer.concat([frame(T.HEADERS, 0x4, 3, requestBlock('/test.Echo/Unary')), frame(T.DATA, 0x1, 3, Buffer.concat([grpcMessage('a'), grpcMessage('b')]))]));
    expect((await c.response(3)).trailers['grpc-message']).toBe('Received a second request message for server streaming method /test.Echo/Unary');
  });

  test('grpc-timeout: an unanswered call ends with DEADLINE_EXCEEDED and the handler sees cancelled', async () => {
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', 'slow', [['grpc-timeout', '50m']]);
    const r = await c.response(1);
    expect(r.trailers['grpc-status']).toBe('4');
    expect(r.trailers['grpc-message']).toBe('Deadline exceeded');
    expect(log.events).toContain('cancelled:slow');
    // The late answer is dropped; the connection goes on.
    await new Promise((res) => setTimeout(res, 350));
    c.unary(3, '/test.Echo/Unary', 'after');
    expect(grpcMessages((await c.response(3)).data)[0].toString()).toBe('after');
  });
});

describe('oversized messages are not buffered', () => {
  test('with an oversized() value the handler receives it; the bytes are dropped and credited', async () => {
    server.forceShutdown();
    ({ server, port, log } = await startTestServer({ messageBytesMax: 1000, oversized: (bytes, limit) => ({ bytes, limit }) }));
    const c = await connect();
    const big = grpcMessage(Buffer.alloc(5000, 0x41));
    c.send(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Unary'));
    for (let off = 0; off < big.length; off += 1500) c.send(T.DATA, off + 1500 >= big.length ? 1 : 0, 1, big.subarray(off, off + 1500));
    const r = await c.response(1);
    expect(r.trailers['grpc-status']).toBe('8');
    expect(log.events).toContain('request:{"bytes":5000,"limit":1000}');
  });

  test("without one the call fails with grpc-go's ResourceExhausted text", async () => {
    server.forceShutdown();
    ({ server, port, log } = await startTestServer({ messageBytesMax: 1000 }));
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', Buffer.alloc(1001));
    const r = await c.response(1);
    expect(r.trailers['grpc-status']).toBe('8');
    expect(r.trailers['grpc-message']).toBe('grpc: received message larger than max (1001 vs. 1000)');
  });
});

describe('flow control', () => {
  test('sending respects a 10-byte stream window and the 65535-byte connection window, resuming on WINDOW_UPDATE and SETTINGS', async () => {
    const c = await connect([[SETTINGS_INITIAL_WINDOW_SIZE, 10]]);
    await c.next((f) => f.type === T.SETTINGS && (f.flags & 1) === 1);
    c.unary(1, '/test.Echo/Unary', 'big:30'); // 35 bytes of gRPC data
    const h = await c.next((f) => f.streamId === 1 && f.type === T.HEADERS);
    expect(c.headers(h)[':status']).toBe('200');
    const d1 = await c.next((f) => f.streamId === 1 && f.type === T.DATA);
    expect(d1.payload.length).toBe(10);
    expect(await c.none((f) => f.streamId === 1)).toBe(true);
    c.send(T.WINDOW_UPDATE, 0, 1, u32(7));
    expect((await c.next((f) => f.streamId === 1 && f.type === T.DATA)).payload.length).toBe(7);
    expect(await c.none((f) => f.streamId === 1)).toBe(true);
    // A larger initial window applies to open streams (§6.9.2): 18 more bytes fit now.
    c.send(T.SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 28]]));
    expect((await c.next((f) => f.streamId === 1 && f.type === T.DATA)).payload.length).toBe(18);
    const t = await c.next((f) => f.streamId === 1 && f.type === T.HEADERS);
    expect(c.headers(t)['grpc-status']).toBe('0');

    // Connection window: 65535 bytes in total until the client credits stream 0.
    c.send(T.SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20]]));
    c.unary(3, '/test.Echo/Unary', 'big:100000');
    expect(c.headers(await c.next((f) => f.streamId === 3 && f.type === T.HEADERS))[':status']).toBe('200');
    let got = 0;
    while (got < 65535 - 35) got += (await c.next((f) => f.streamId === 3 && f.type === T.DATA)).payload.length;
    expect(got).toBe(65535 - 35);
    expect(await c.none((f) => f.streamId === 3)).toBe(true);
    c.send(T.WINDOW_UPDATE, 0, 0, u32(1 << 20));
    while (got < 100005) got += (await c.next((f) => f.streamId === 3 && f.type === T.DATA)).payload.length;
    expect(got).toBe(100005);
    expect(c.headers(await c.next((f) => f.streamId === 3 && f.type === T.HEADERS))['grpc-status']).toBe('0');
  });

  test("DATA frames never exceed the client's MAX_FRAME_SIZE", async () => {
    const c = await connect([[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24]]);
    c.send(T.WINDOW_UPDATE, 0, 0, u32(1 << 24));
    c.unary(1, '/test.Echo/Unary', 'big:100000');
    const r = await c.response(1);
    expect(r.data.length).toBe(100005);
    expect(Math.max(...r.dataFrames.map((f) => f.payload.length))).toBe(16384);
  });

  test('receiving: a paused stream is not credited, so the client cannot exceed its window; consumed bytes are credited', async () => {
    server.forceShutdown();
    ({ server, port, log } = await startTestServer({ messageBytesMax: 1000, streamWindowBytes: 2000 }));
    const c = await connect();
    c.send(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Chat'));
    // 600 bytes consumed by echoing: a credit comes once a quarter window (500) is consumed.
    for (let i = 0; i < 6; i++) c.send(T.DATA, 0, 1, grpcMessage(Buffer.alloc(95, 0x30 + i)));
    const wu = await c.next((f) => f.type === T.WINDOW_UPDATE && f.streamId === 1);
    expect(wu.payload.readUInt32BE(0)).toBe(500);
    // Pause, then send beyond the window: 2000 - 600 + 500 = 1900 bytes are allowed.
    c.send(T.DATA, 0, 1, grpcMessage('pause'));
    for (let i = 0; i < 19; i++) c.send(T.DATA, 0, 1, grpcMessage(Buffer.alloc(95)));
    const rst = await c.next((f) => f.type === T.RST && f.streamId === 1);
    expect(rst.payload.readUInt32BE(0)).toBe(3); // FLOW_CONTROL_ERROR
    await waitFor(() => log.events.includes('cancelled'));
  });

  test("streaming writes: write() returns false above the high-water mark, 'drain' follows when the client opens its window", async () => {
    server.forceShutdown();
    ({ server, port, log } = await startTestServer({ writeHighWaterMarkBytes: 4096 }));
    const c = await connect([[SETTINGS_INITIAL_WINDOW_SIZE, 1000]]);
    c.send(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Chat'));
    c.send(T.DATA, 0, 1, grpcMessage('flood:20:495')); // 20 x 500 bytes on the wire
    await waitFor(() => log.events.some((e) => e.startsWith('flood-false')));
    const falses = Number(log.events.find((e) => e.startsWith('flood-false'))!.split(':')[1]);
    expect(falses).toBeGreaterThan(0);
    expect(log.events).not.toContain('drain');
    c.send(T.WINDOW_UPDATE, 0, 1, u32(20_000));
    await waitFor(() => log.events.includes('drain'));
    let got = 0;
    while (got < 20 * 500) got += (await c.next((f) => f.streamId === 1 && f.type === T.DATA)).payload.length;
    expect(got).toBe(10_000);
  });
});

describe('stream lifecycle and limits', () => {
  test('RST_STREAM from the client cancels the call; its late answer is not sent', async () => {
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', 'slow');
    await waitFor(() => log.calls.length === 1);
    c.send(T.RST, 0, 1, u32(8));
    await waitFor(() => log.events.includes('cancelled:slow'));
    expect(await c.none((f) => f.streamId === 1, 400)).toBe(true);
  });

  test('streams beyond MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM), the others served', async () => {
    server.forceShutdown();
    ({ server, port, log } = await startTestServer({ maxConcurrentStreams: 2 }));
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', 'slow');
    c.unary(3, '/test.Echo/Unary', 'slow');
    c.unary(5, '/test.Echo/Unary', 'slow');
    const rst = await c.next((f) => f.type === T.RST);
    expect(rst.streamId).toBe(5);
    expect(rst.payload.readUInt32BE(0)).toBe(7);
    expect(grpcMessages((await c.response(1)).data)[0].toString()).toBe('late');
    expect(grpcMessages((await c.response(3)).data)[0].toString()).toBe('late');
  });

  test('tryShutdown: GOAWAY, calls in flight complete, later streams are ignored, then the connection closes', async () => {
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', 'slow');
    await waitFor(() => log.calls.length === 1);
    let done = false;
    server.tryShutdown(() => (done = true));
    const g = await c.next((f) => f.type === T.GOAWAY);
    expect(g.payload.readUInt32BE(0)).toBe(1); // last stream id
    expect(g.payload.readUInt32BE(4)).toBe(0); // NO_ERROR
    c.unary(3, '/test.Echo/Unary', 'ignored');
    expect(grpcMessages((await c.response(1)).data)[0].toString()).toBe('late');
    await c.waitClosed();
    await waitFor(() => done);
    expect(c.frames.some((f) => f.streamId === 3)).toBe(false);
    expect(log.calls.length).toBe(1);
  });

  test('tryShutdown cuts streams still open after the grace period (e.g. watches)', async () => {
    const c = await connect();
    c.send(T.HEADERS, 0x4, 1, requestBlock('/test.Echo/Chat'));
    c.send(T.DATA, 0, 1, grpcMessage('hi'));
    await waitFor(() => log.events.includes('data:hi'));
    let done = false;
    server.tryShutdown(() => (done = true));
    await c.waitClosed(2000);
    await waitFor(() => done);
    expect(log.events).toContain('cancelled');
  });
});

describe('protocol errors', () => {
  const goawayCode = async (c: RawClient): Promise<number> => (await c.next((f) => f.type === T.GOAWAY)).payload.readUInt32BE(4);

  test.each([
    ['a frame above MAX_FRAME_SIZE', () => frame(T.DATA, 0, 1, Buffer.alloc(65537)), 6],
    ['DATA on stream 0', () => frame(T.DATA, 0, 0, Buffer.alloc(1)), 1],
    ['DATA on an idle stream', () => frame(T.DATA, 0, 7, Buffer.alloc(1)), 1],
    ['an even stream id', () => frame(T.HEADERS, 0x4, 2, requestBlock('/test.Echo/Unary')), 1],
    ['a malformed header block', () => frame(T.HEADERS, 0x4, 1, Buffer.from([0x80])), 9],
    ['another frame inside a header block', () => Buffer.concat([frame(T.HEADERS, 0, 1, requestBlock('/x')), frame(T.PING, 0, 0, Buffer.alloc(8))]), 1],
    ['CONTINUATION without HEADERS', () => frame(T.CONTINUATION, 0x4, 1, Buffer.alloc(1)), 1],
    ['a PING of the wrong size', () => frame(T.PING, 0, 0, Buffer.alloc(7)), 6],
    ['SETTINGS of the wrong size', () => frame(T.SETTINGS, 0, 0, Buffer.alloc(5)), 6],
    ['a MAX_FRAME_SIZE below 16384', () => frame(T.SETTINGS, 0, 0, settingsPayload([[SETTINGS_MAX_FRAME_SIZE, 100]])), 1],
    ['a connection WINDOW_UPDATE of 0', () => frame(T.WINDOW_UPDATE, 0, 0, u32(0)), 1],
    ['a connection window above 2^31-1', () => frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)), 3],
    ['PUSH_PROMISE from a client', () => frame(T.PUSH, 0x4, 1, Buffer.alloc(4)), 1],
  ] as [string, () => Buffer, number][])('%s is a connection error (GOAWAY, close)', async (_name, bytes, code) => {
    const c = await connect();
    c.write(bytes());
    expect(await goawayCode(c)).toBe(code);
    await c.waitClosed();
  });

  test('a header block above 64 KiB is refused without buffering more (ENHANCE_YOUR_CALM)', async () => {
    const c = await connect();
    c.send(T.HEADERS, 0, 1, Buffer.alloc(60_000, 0x82));
    c.send(T.CONTINUATION, 0, 1, Buffer.alloc(10_000, 0x82));
    expect(await goawayCode(c)).toBe(11);
  });

  test('stream errors reset only the stream: WINDOW_UPDATE of 0, DATA after END_STREAM', async () => {
    const c = await connect();
    c.unary(1, '/test.Echo/Unary', 'slow');
    c.send(T.WINDOW_UPDATE, 0, 1, u32(0));
    expect((await c.next((f) => f.type === T.RST && f.streamId === 1)).payload.readUInt32BE(0)).toBe(1);
    c.unary(3, '/test.Echo/Unary', 'slow');
    c.send(T.DATA, 0, 3, grpcMessage('more'));
    expect((await c.next((f) => f.type === T.RST && f.streamId === 3)).payload.readUInt32BE(0)).toBe(5); // STREAM_CLOSED
    c.unary(5, '/test.Echo/Unary', 'fine');
    expect(grpcMessages((await c.response(5)).data)[0].toString()).toBe('fine');
  });
});

describe('robustness', () => {
  test('random frames after a valid preface never crash the server; it keeps serving (seeded)', async () => {
    const seed = Number(process.env.H2_FUZZ_SEED ?? 7);
    let a = seed >>> 0;
    const rand = (): number => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const byte = () => Math.floor(rand() * 256);
    for (let round = 0; round < 60; round++) {
      const c = await connect();
      const parts: Buffer[] = [];
      for (let i = 0; i < 20; i++) {
        const type = rand() < 0.9 ? Math.floor(rand() * 11) : byte();
        const len = Math.floor(rand() * (rand() < 0.2 ? 200 : 12));
        const payload = Buffer.from(Array.from({ length: len }, byte));
        // Sometimes a valid request, so random frames hit live streams too.
        if (rand() < 0.3) parts.push(frame(T.HEADERS, 0x4, 1 + 2 * i, requestBlock(rand() < 0.5 ? '/test.Echo/Chat' : '/test.Echo/Unary')));
        parts.push(frame(type, byte(), rand() < 0.5 ? 0 : 1 + 2 * Math.floor(rand() * 20), payload));
      }
      c.write(Buffer.concat(parts));
      await new Promise((r) => setTimeout(r, 5));
      c.close();
    }
    const ok = await connect();
    ok.unary(1, '/test.Echo/Unary', `still serving (seed=${seed})`);
    expect(grpcMessages((await ok.response(1)).data)[0].toString()).toBe(`still serving (seed=${seed})`);
  });
});
