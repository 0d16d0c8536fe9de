/**
 * Unit tests of `coord bench`'s parts: etcd-compatible keys, latency percentiles, durations,
 * and the lean HTTP/2 gRPC client (h2.ts) with its Huffman handling (huffman.ts).
 *
 * Goal: the pieces that decide what is measured are right on their own: keys are the ones
 * etcd's benchmark writes (Go's binary.PutVarint), percentiles are nearest-rank and the
 * reservoir keeps counts exact, and the HTTP/2 client follows the protocol where a gRPC
 * server can push it: trailers, trailers-only errors with percent-encoded messages,
 * MAX_CONCURRENT_STREAMS, small flow-control windows, CONTINUATION-free large messages,
 * RST_STREAM, and a connection that goes away.
 *
 * Method: pure functions are checked against hand-computed values; the HTTP/2 client runs
 * against an in-process node:http2 server (nghttp2, the same HTTP/2 stack as coord's
 * grpc-js server) that answers like a gRPC server. The Huffman codes of the header names
 * the client recognizes are re-derived from Node's own HPACK encoder.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { benchKey, checkKeySpace, keyIndexer, putVarint, varintLength } from '../../src/bench/keys';
import { LatencyRecorder } from '../../src/bench/latency';
import { parseDuration, runOptions } from '../../src/bench/options';
import { CallError, decodeHeaderBlock, encodeHeaderBlock, H2Connection, HUFFMAN_NAMES, PreparedMethod } from '../../src/bench/h2';
import { captureEncodedValues, huffmanDecoder } from '../../src/bench/huffman';

describe('keys (etcd benchmark: binary.PutVarint into a key-size buffer)', () => {
  test.each([
    [0, '00'],
    [1, '02'],
    [63, '7e'],
    [64, '8001'],
    [150, 'ac02'],
    [8191, 'fe7f'],
    [8192, '808001'],
  ])('PutVarint(%d) = %s (zig-zag, then LEB128)', (i, hex) => {
    const b = Buffer.alloc(8);
    putVarint(b, i);
    expect(b.subarray(0, varintLength(i)).toString('hex')).toBe(hex);
  });

  test('keys are zero-padded to key-size', () => {
    expect(benchKey(150, 8).toString('hex')).toBe('ac02000000000000');
    expect(benchKey(0, 1).toString('hex')).toBe('00');
  });

  test('a key space that needs longer keys than key-size is refused', () => {
    expect(() => checkKeySpace(64, 1)).not.toThrow(); // indices 0..63 fit one byte
    expect(() => checkKeySpace(65, 1)).toThrow(/at least 2 bytes/);
    expect(() => benchKey(64, 1)).toThrow(/too small/);
  });

  test('sequential indices wrap; random ones stay in the space', () => {
    const seq = keyIndexer(3, true);
    expect([0, 1, 2, 3, 4].map(seq)).toEqual([0, 1, 2, 0, 1]);
    const rnd = keyIndexer(5, false);
    for (let i = 0; i < 200; i++) expect(rnd(i)).toBeGreaterThanOrEqual(0), expect(rnd(i)).toBeLessThan(5);
    expect(keyIndexer(1, false)(7)).toBe(0);
  });
});

describe('latency', () => {
  test('nearest-rank percentiles over all samples', () => {
    const r = new LatencyRecorder(100);
    for (let i = 100; i >= 1; i--) r.record(i);
    const s = r.summary();
    expect(s).toMatchObject({ count: 100, min: 1, p50: 50, p90: 90, p99: 99, p999: 100, max: 100, sampled: 100 });
    expect(s.avg).toBeCloseTo(50.5);
    expect(s.stddev).toBeCloseTo(Math.sqrt((100 * 100 - 1) / 12));
  });

  test('past the cap a uniform reservoir keeps percentiles close, and count/avg/max exact', () => {
    const r = new LatencyRecorder(undefined, 10_000);
    for (let i = 1; i <= 100_000; i++) r.record(i);
    const s = r.summary();
    expect(s.count).toBe(100_000);
    expect(s.sampled).toBe(10_000);
    expect(s.max).toBe(100_000);
    expect(s.avg).toBeCloseTo(50_000.5);
    expect(Math.abs(s.p50 - 50_000)).toBeLessThan(3_000);
    expect(Math.abs(s.p99 - 99_000)).toBeLessThan(1_000);
  });

  test('no samples: zeros, not NaN', () => {
    expect(new LatencyRecorder(10).summary()).toMatchObject({ count: 0, avg: 0, p99: 0, max: 0, min: 0 });
  });
});

describe('options', () => {
  test.each([
    ['10s', 10_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['2', 2_000],
    ['1.5s', 1_500],
  ])('duration %s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(['', 's', '10x', '1s 2s', '-1s'])('bad duration %j', (text) => expect(() => parseDuration(text)).toThrow(/invalid duration/));

  const base = { endpoints: '127.0.0.1:2379', clients: 1, conns: 1, 'dial-timeout': '5s', transport: 'h2' };
  test('--total defaults to 10000; --duration replaces it; both is an error', () => {
    expect(runOptions(base)).toMatchObject({ total: 10_000, durationMs: undefined });
    expect(runOptions({ ...base, duration: '2s' })).toMatchObject({ total: undefined, durationMs: 2000 });
    expect(() => runOptions({ ...base, total: 5, duration: '2s' })).toThrow(/mutually exclusive/);
  });

  test('endpoints: comma list, http:// accepted, https:// refused', () => {
    expect(runOptions({ ...base, endpoints: 'http://127.0.0.1:1, 127.0.0.2:2,[::1]:3' }).endpoints).toEqual([
      '127.0.0.1:1',
      '127.0.0.2:2',
      '[::1]:3',
    ]);
    expect(() => runOptions({ ...base, endpoints: 'https://x:1' })).toThrow(/only http/);
    expect(() => runOptions({ ...base, endpoints: 'nohost' })).toThrow(/expected host:port/);
  });
});

describe('HPACK', () => {
  test('the Huffman codes of grpc-status / grpc-message match what Node (nghttp2) encodes', async () => {
    const names = Object.values(HUFFMAN_NAMES);
    const encoded = await captureEncodedValues(names);
    encoded.forEach((e, i) => {
      expect(e.huffman).toBe(true);
      expect(HUFFMAN_NAMES[e.bytes.toString('hex')]).toBe(names[i]);
    });
  });

  test('grpc-status values (0..16) are never Huffman-coded by Node', async () => {
    const values = Array.from({ length: 17 }, (_, i) => String(i));
    for (const e of await captureEncodedValues(values)) expect(e.huffman).toBe(false);
  });

  test('the learned Huffman decoder reads what Node encodes', async () => {
    const decoder = await huffmanDecoder();
    expect(decoder.symbols).toBeGreaterThanOrEqual(95); // at least printable ASCII
    const texts = ['etcdserver: too many requests', 'etcdserver: mvcc: database space exceeded', 'a%20b%25c', 'ZzYy~!@#$^&*()_+{}|:<>?'];
    const encoded = await captureEncodedValues(texts);
    encoded.forEach((e, i) => expect(e.huffman ? decoder.decode(e.bytes) : e.bytes.toString('latin1')).toBe(texts[i]));
    expect(decoder.decode(Buffer.from([0x00, 0x00, 0x00, 0x00]))).not.toBe('x'); // garbage: no crash
  });

  test('request header block round-trips through our decoder', () => {
    const block = encodeHeaderBlock([
      [':method', 'POST'],
      [':path', '/etcdserverpb.KV/Range'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['x-long', 'v'.repeat(300)],
    ]);
    expect(decodeHeaderBlock(block)).toEqual([
      [':method', 'POST'],
      [':path', '/etcdserverpb.KV/Range'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['x-long', 'v'.repeat(300)],
    ]);
  });

  test('a reference to the dynamic table (which we set to size 0) is an error', () => {
    expect(() => decodeHeaderBlock(Buffer.from([0x80 | 62]))).toThrow(/static table/);
  });
});

// ---------------------------------------------------------------------------------------
// The HTTP/2 client against an nghttp2 server that behaves like a gRPC server.

const PATH = '/test.Echo/Call';

function grpcFrame(msg: Buffer): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt32BE(msg.length, 1);
  msg.copy(b, 5);
  return b;
}

interface TestServer {
  port: number;
  close(): Promise<void>;
  maxActive: number;
}

/**
 * Echo server: answers a request message with the same bytes, or, if the message starts
 * with "fail:", a trailers-only error carrying the rest as grpc-message; "reset" resets
 * the stream; "slow" answers after 30 ms.
 */
async function startServer(settings: http2.Settings = {}): Promise<TestServer> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  const state = { active: 0, maxActive: 0 };
  server.on('stream', (stream) => {
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    stream.on('close', () => state.active--);
    stream.on('error', () => undefined); // resets we cause ourselves
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      const msg = body.subarray(5, 5 + body.readUInt32BE(1));
      const text = msg.toString('latin1');
      if (text.startsWith('fail:')) {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '9', 'grpc-message': encodeURIComponent(text.slice(5)) },
          { endStream: true },
        );
        return;
      }
      if (text === 'reset') {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      const answer = (): void => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(grpcFrame(msg));
      };
      if (text === 'slow') setTimeout(answer, 30);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get maxActive() {
      return state.maxActive;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

function call(conn: H2Connection, msg: Buffer): Promise<{ err: CallError | null; res?: Buffer }> {
  const method = new PreparedMethod(PATH, conn.authority);
  return new Promise((resolve) => conn.call(method, msg, (err, res) => resolve({ err, res })));
}

describe('H2Connection against an nghttp2 gRPC-like server', () => {
  let server: TestServer | undefined;
  let conn: H2Connection | undefined;
  afterEach(async () => {
    conn?.close();
    await server?.close();
    conn = server = undefined;
  });

  test('unary calls: response message after DATA + trailers', async () => {
    server = await startServer();
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(conn!, Buffer.from(`hello ${i}`))));
    results.forEach((r, i) => {
      expect(r.err).toBeNull();
      expect(r.res!.toString()).toBe(`hello ${i}`);
    });
  });

  test('trailers-only error: status code and percent-encoded message (Huffman-coded on the wire)', async () => {
    server = await startServer();
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    const r = await call(conn, Buffer.from('fail:precondition failed: 100% sure'));
    expect(r.err?.code).toBe(9);
    const text = r.err!.huffmanDetails ? (await huffmanDecoder()).decode(r.err!.huffmanDetails) : r.err!.details;
    expect(decodeURIComponent(text!)).toBe('precondition failed: 100% sure');
  });

  test('RST_STREAM(REFUSED_STREAM) fails that call with UNAVAILABLE; the connection goes on', async () => {
    server = await startServer();
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    const r = await call(conn, Buffer.from('reset'));
    expect(r.err?.code).toBe(14);
    expect((await call(conn, Buffer.from('after'))).res?.toString()).toBe('after');
  });

  test('MAX_CONCURRENT_STREAMS is respected: excess calls wait for a free stream', async () => {
    server = await startServer({ maxConcurrentStreams: 2 });
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    const results = await Promise.all(Array.from({ length: 10 }, () => call(conn!, Buffer.from('slow'))));
    for (const r of results) expect(r.err).toBeNull();
    expect(server.maxActive).toBeLessThanOrEqual(2);
  });

  test('flow control: bodies far larger than a 1 KiB initial window and 16 KiB frames get through', async () => {
    server = await startServer({ initialWindowSize: 1024 });
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    const big = Buffer.alloc(300_000, 'x');
    const results = await Promise.all([call(conn, big), call(conn, Buffer.alloc(70_000, 'y')), call(conn, Buffer.from('small'))]);
    expect(results[0].res?.equals(big)).toBe(true);
    expect(results[1].res?.length).toBe(70_000);
    expect(results[2].res?.toString()).toBe('small');
  });

  test('a connection that drops fails in-flight and later calls with UNAVAILABLE', async () => {
    server = await startServer();
    conn = new H2Connection('127.0.0.1', server.port);
    await conn.connect(2000);
    const pending = call(conn, Buffer.from('slow'));
    await server.close();
    server = undefined;
    expect((await pending).err?.code).toBe(14);
    expect((await call(conn, Buffer.from('x'))).err?.code).toBe(14);
  });

  test('connect to a closed port fails with a clear message', async () => {
    const c = new H2Connection('127.0.0.1', 1);
    await expect(c.connect(2000)).rejects.toThrow(/cannot connect to 127\.0\.0\.1:1/);
  });
});
