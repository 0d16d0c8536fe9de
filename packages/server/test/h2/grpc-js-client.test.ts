/**
 * The h2 transport under a real gRPC client: @grpc/grpc-js (nghttp2 underneath, with its
 * own HPACK encoder, flow-control windows and stream limits).
 *
 * Goal: what coord's services rely on works end to end with a client we did not write:
 * unary calls and errors (code and text), 1.5 MiB requests and multi-MiB responses,
 * oversized requests (grpc-go's ResourceExhausted text), thousands of concurrent calls on one
 * connection (beyond MAX_CONCURRENT_STREAMS), bidi and server streams (half-close, server
 * errors, client cancellation), deadlines, unknown services, graceful shutdown, and finally
 * coord's real services on a real member (put, range, txn, watch, lease keep-alive).
 *
 * Method: an H2GrpcServer with etcd's service definitions (sparse decoding, as the member
 * uses them) and small fake implementations; grpc-js clients built from the same protos.
 * The last block starts a member on a temp data dir, once per transport (h2 and the
 * grpc-js fallback), and checks the transport chosen from the environment.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '@coord/proto';
import { H2GrpcServer } from '../../src/api/h2/server';
import type { ServerCall } from '../../src/api/h2/call';
import { limitRequestSize, OversizedRequest, unary } from '../../src/api/grpc-util';
import { EtcdError } from '../../src/errors';
import { startServer, type RunningServer } from '../../src/server';
import { parseFlags } from '../../src/member/config';
import { grpcTransport } from '../../src/api/grpc-server';

test('COORD_GRPC_TRANSPORT: h2 by default, grpc-js on request, anything else refused', () => {
  expect(grpcTransport({})).toBe('h2');
  expect(grpcTransport({ COORD_GRPC_TRANSPORT: '' })).toBe('h2');
  expect(grpcTransport({ COORD_GRPC_TRANSPORT: 'h2' })).toBe('h2');
  expect(grpcTransport({ COORD_GRPC_TRANSPORT: 'grpc-js' })).toBe('grpc-js');
  expect(() => grpcTransport({ COORD_GRPC_TRANSPORT: 'nghttp2' })).toThrow(/must be h2 or grpc-js/);
});

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const LIMIT_BYTES = 2 * 1024 * 1024;

function client(service: string, port: number, options: grpc.ChannelOptions = {}): Client {
  const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(service), service);
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as unknown as Client;
}

function call<T>(c: Client, method: string, req: unknown, opts: grpc.CallOptions = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    (c[method] as (r: unknown, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: T) => void) => void)(
      req,
      new grpc.Metadata(),
      opts,
      (err, v) => (err ? reject(err) : resolve(v)),
    );
  });
}

const events: string[] = [];

function kvImpl(): grpc.UntypedServiceImplementation {
  return {
    Range: unary((r: { key?: Buffer; limit?: string }) => {
      if (!r.key || r.key.length === 0) throw new EtcdError('emptyKey');
      const key = r.key.toString();
      if (key === 'big') return { header: {}, kvs: [{ key: r.key, value: Buffer.alloc(3 * 1024 * 1024 + 17, 0x76) }], count: '1' };
      if (key === 'slow') return new Promise((res) => setTimeout(() => res({ header: {}, count: '0' }), 500));
      return { header: { revision: '7' }, kvs: [{ key: r.key, value: Buffer.from(`v:${key}`) }], count: '1' };
    }),
    Put: unary((r: { key?: Buffer; value?: Buffer }) => ({ header: { revision: String(r.value?.length ?? 0) } })),
  };
}

function watchImpl(): grpc.UntypedServiceImplementation {
  return {
    Watch(c: ServerCall) {
      c.on('data', (req: { create_request?: { key?: Buffer; watch_id?: string }; cancel_request?: object } | OversizedRequest) => {
        if (req instanceof OversizedRequest) {
          c.destroy(req.toServiceError());
          return;
        }
        const key = req.create_request?.key?.toString() ?? '';
        events.push(`watch:${key}`);
        if (key === 'fail') {
          c.destroy(Object.assign(new Error('etcdserver: no leader'), { code: 14, details: 'etcdserver: no leader' }));
          return;
        }
        c.write({ header: { revision: '1' }, watch_id: '1', created: true });
        for (let i = 0; i < 3; i++) c.write({ header: { revision: String(2 + i) }, watch_id: '1', events: [{ type: 0, kv: { key: req.create_request?.key, value: Buffer.from(String(i)) } }] });
      });
      c.on('end', () => {
        events.push('watch-end');
        c.end();
      });
      c.on('cancelled', () => events.push('watch-cancelled'));
    },
  };
}

function electionImpl(): grpc.UntypedServiceImplementation {
  return {
    Observe(c: ServerCall) {
      const name = (c.request as { name?: Buffer }).name ?? Buffer.alloc(0);
      for (let i = 0; i < 5; i++) c.write({ header: {}, kv: { key: name, value: Buffer.from(`leader-${i}`) } });
      c.end();
    },
  };
}

describe('grpc-js client against H2GrpcServer (fake services)', () => {
  let server: H2GrpcServer;
  let port: number;
  const clients: grpc.Client[] = [];
  const kv = (opts?: grpc.ChannelOptions) => {
    const c = client('etcdserverpb.KV', port, opts);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = new H2GrpcServer({ messageBytesMax: LIMIT_BYTES, oversized: (bytes, limit) => new OversizedRequest(bytes, limit) });
    const limited = (name: string) => limitRequestSize(serviceDefinition(name, true), LIMIT_BYTES);
    server.addService(limited('etcdserverpb.KV'), kvImpl());
    server.addService(limited('etcdserverpb.Watch'), watchImpl());
    server.addService(limited('v3electionpb.Election'), electionImpl());
    port = (await server.listen(0, '127.0.0.1')).port;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  });

  test('unary: request decoded sparse, response encoded, header fields intact', async () => {
    const r = await call<{ header: { revision: string }; kvs: { key: Buffer; value: Buffer }[]; count: string }>(kv(), 'Range', { key: Buffer.from('foo') });
    expect(r.header.revision).toBe('7');
    expect(r.kvs[0].value.toString()).toBe('v:foo');
    expect(r.count).toBe('1');
  });

  test("errors arrive with etcd's code and text", async () => {
    await expect(call(kv(), 'Range', {})).rejects.toMatchObject({ code: 3, details: 'etcdserver: key is not provided' });
  });

  test('a 1.5 MiB request and a 3 MiB response pass the flow-control windows', async () => {
    const c = kv();
    const put = await call<{ header: { revision: string } }>(c, 'Put', { key: Buffer.from('k'), value: Buffer.alloc(1.5 * 1024 * 1024, 0x61) });
    expect(put.header.revision).toBe(String(1.5 * 1024 * 1024));
    const big = await call<{ kvs: { value: Buffer }[] }>(c, 'Range', { key: Buffer.from('big') });
    expect(big.kvs[0].value.length).toBe(3 * 1024 * 1024 + 17);
  });

  test("an oversized request gets grpc-go's ResourceExhausted text (and the connection stays usable)", async () => {
    const c = kv();
    const err = await call(c, 'Put', { key: Buffer.from('k'), value: Buffer.alloc(LIMIT_BYTES + 10) }).catch((e: grpc.ServiceError) => e);
    expect(err).toMatchObject({ code: 8 });
    expect((err as grpc.ServiceError).details).toMatch(/^grpc: received message larger than max \(\d+ vs\. 2097152\)$/);
    expect((await call<{ count: string }>(c, 'Range', { key: Buffer.from('after') })).count).toBe('1');
  });

  test('3,000 concurrent calls on one connection (beyond MAX_CONCURRENT_STREAMS) all succeed', async () => {
    const c = kv();
    const keys = Array.from({ length: 3000 }, (_, i) => `key-${i}`);
    const results = await Promise.all(keys.map((k) => call<{ kvs: { value: Buffer }[] }>(c, 'Range', { key: Buffer.from(k) })));
    expect(results.map((r) => r.kvs[0].value.toString())).toEqual(keys.map((k) => `v:${k}`));
  });

  test('deadline: the client gets DEADLINE_EXCEEDED', async () => {
    await expect(call(kv(), 'Range', { key: Buffer.from('slow') }, { deadline: Date.now() + 100 })).rejects.toMatchObject({ code: 4 });
  });

  test('a service the server does not have: UNIMPLEMENTED', async () => {
    const m = client('etcdserverpb.Maintenance', port);
    clients.push(m);
    await expect(call(m, 'Status', {})).rejects.toMatchObject({ code: 12 });
  });

  test('bidi: messages both ways, client half-close ends the call with OK', async () => {
    const w = client('etcdserverpb.Watch', port);
    clients.push(w);
    const stream = (w as unknown as { Watch(): grpc.ClientDuplexStream<unknown, { created?: boolean; events?: { kv: { value: Buffer } }[] }> }).Watch();
    const got: string[] = [];
    const done = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
    stream.on('data', (r) => got.push(r.created ? 'created' : r.events![0].kv.value.toString()));
    stream.write({ create_request: { key: Buffer.from('a') } });
    await new Promise((r) => setTimeout(r, 100));
    stream.write({ create_request: { key: Buffer.from('b') } });
    stream.end();
    const status = await done;
    expect(status.code).toBe(0);
    expect(got).toEqual(['created', '0', '1', '2', 'created', '0', '1', '2']);
    expect(events.slice(-3)).toEqual(['watch:a', 'watch:b', 'watch-end']);
  });

  test('bidi: a server error ends the stream with its status; a client cancel ends the call on the server', async () => {
    const w = client('etcdserverpb.Watch', port);
    clients.push(w);
    const s1 = (w as unknown as { Watch(): grpc.ClientDuplexStream<unknown, unknown> }).Watch();
    const err = new Promise<grpc.ServiceError>((resolve) => s1.on('error', resolve));
    s1.on('data', () => undefined);
    s1.write({ create_request: { key: Buffer.from('fail') } });
    expect(await err).toMatchObject({ code: 14, details: 'etcdserver: no leader' });

    const s2 = (w as unknown as { Watch(): grpc.ClientDuplexStream<unknown, unknown> }).Watch();
    s2.on('error', () => undefined);
    s2.on('data', () => undefined);
    s2.write({ create_request: { key: Buffer.from('c') } });
    await new Promise((r) => setTimeout(r, 100));
    s2.cancel();
    // grpc-js half-closes before its RST_STREAM(CANCEL): the server sees one or the other.
    const over = () => events.slice(events.indexOf('watch:c')).some((e) => e === 'watch-cancelled' || e === 'watch-end');
    const deadline = Date.now() + 2000;
    while (!over() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(over()).toBe(true);
  });

  test('server streaming', async () => {
    const e = client('v3electionpb.Election', port);
    clients.push(e);
    const s = (e as unknown as { Observe(r: unknown): grpc.ClientReadableStream<{ kv: { value: Buffer } }> }).Observe({ name: Buffer.from('el') });
    const got: string[] = [];
    s.on('data', (r) => got.push(r.kv.value.toString()));
    const status = await new Promise<grpc.StatusObject>((resolve) => s.on('status', resolve));
    expect(status.code).toBe(0);
    expect(got).toEqual(['leader-0', 'leader-1', 'leader-2', 'leader-3', 'leader-4']);
  });
});

describe.each(['h2', 'grpc-js'])("coord's services on a real member (COORD_GRPC_TRANSPORT=%s)", (transport) => {
  let running: RunningServer;
  let dir: string;
  let port: number;
  const saved = process.env.COORD_GRPC_TRANSPORT;

  beforeAll(async () => {
    process.env.COORD_GRPC_TRANSPORT = transport;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-h2-'));
    const config = parseFlags(['--name', 'h2', '--data-dir', path.join(dir, 'd'), '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:0']);
    running = await startServer(config);
    port = Number(running.addresses[0].split(':')[1]);
  });

  afterAll(async () => {
    await running.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.COORD_GRPC_TRANSPORT;
    else process.env.COORD_GRPC_TRANSPORT = saved;
  });

  test('put, range, txn, watch events, lease keep-alive, status', async () => {
    const kv = client('etcdserverpb.KV', port);
    const watch = client('etcdserverpb.Watch', port);
    const lease = client('etcdserverpb.Lease', port);
    const maint = client('etcdserverpb.Maintenance', port);
    try {
      const w = (watch as unknown as { Watch(): grpc.ClientDuplexStream<unknown, { created?: boolean; events?: { kv: { key: Buffer; value: Buffer } }[] }> }).Watch();
      const seen: string[] = [];
      w.on('data', (r) => {
        for (const e of r.events ?? []) seen.push(`${e.kv.key}=${e.kv.value}`);
      });
      w.on('error', () => undefined);
      w.write({ create_request: { key: Buffer.from('h2/'), range_end: Buffer.from('h20') } });
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all(Array.from({ length: 50 }, (_, i) => call(kv, 'Put', { key: Buffer.from(`h2/${i}`), value: Buffer.from(`v${i}`) })));
      const r = await call<{ count: string }>(kv, 'Range', { key: Buffer.from('h2/'), range_end: Buffer.from('h20'), count_only: true });
      expect(r.count).toBe('50');
      const t = await call<{ succeeded: boolean }>(kv, 'Txn', {
        compare: [{ key: Buffer.from('h2/0'), target: 3, result: 0, value: Buffer.from('v0') }],
        success: [{ request_put: { key: Buffer.from('h2/x'), value: Buffer.from('y') } }],
      });
      expect(t.succeeded).toBe(true);
      const deadline = Date.now() + 3000;
      while (seen.length < 51 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      expect(seen.length).toBe(51);
      expect(seen).toContain('h2/x=y');
      w.cancel();

      const g = await call<{ ID: string; TTL: string }>(lease, 'LeaseGrant', { TTL: 30 });
      const ka = (lease as unknown as { LeaseKeepAlive(): grpc.ClientDuplexStream<unknown, { ID: string; TTL: string }> }).LeaseKeepAlive();
      const answers: string[] = [];
      ka.on('data', (a) => answers.push(a.TTL));
      ka.on('error', () => undefined);
      for (let i = 0; i < 3; i++) ka.write({ ID: g.ID });
      while (answers.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
      expect(answers).toEqual(['30', '30', '30']);
      ka.end();

      const s = await call<{ version: string }>(maint, 'Status', {});
      expect(s.version).toMatch(/^3\.4\./);
      await expect(call(kv, 'Put', { key: Buffer.alloc(0), value: Buffer.from('x') })).rejects.toMatchObject({ code: 3, details: 'etcdserver: key is not provided' });
    } finally {
      kv.close();
      watch.close();
      lease.close();
      maint.close();
    }
  });
});
