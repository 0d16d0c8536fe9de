/**
 * `coord bench` against a real etcd, end to end.
 *
 * Goal: the bench commands speak the etcd v3 API well enough to drive a real etcd, print
 * the JSON report they promise, and really write what they claim (keys read back), with
 * either transport (the lean h2 client and grpc-js); server errors are counted and their
 * messages decoded. No test here asserts speed: benchmarks are not tests.
 *
 * Method: one fresh etcd (/usr/bin/etcd, temp data dir, free loopback ports) for the file,
 * killed and removed afterwards. The CLI runs as a child process exactly as a user runs
 * it (`node packages/cli/bin/run.js bench ... --json`, built dist); its JSON is parsed and
 * checked, and the keys are read back with a plain grpc-js client.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import { benchKey } from '../../src/bench/keys';
import { EtcdServer, startEtcd } from './etcd-server';

const CLI = path.resolve(__dirname, '../../bin/run.js');

interface Report {
  command: string;
  endpoints: string[];
  clients: number;
  conns: number;
  transport: string;
  total: number | null;
  durationSeconds: number | null;
  workload: Record<string, unknown>;
  requests: number;
  succeeded: number;
  errors: number;
  errorKinds: Record<string, number>;
  totalSeconds: number;
  throughput: number;
  latencyMs: Record<string, number>;
  client: Record<string, number>;
  firstResponse: Record<string, unknown> | null;
}

function coord(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function bench(args: string[]): Promise<Report> {
  const r = await coord(['bench', ...args, '--json']);
  if (r.code !== 0) throw new Error(`coord bench ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as Report;
}

function expectReportShape(rep: Report): void {
  for (const k of ['requests', 'succeeded', 'errors', 'totalSeconds', 'throughput', 'clients', 'conns']) {
    expect(typeof (rep as unknown as Record<string, unknown>)[k]).toBe('number');
  }
  for (const k of ['count', 'avg', 'stddev', 'min', 'p50', 'p90', 'p99', 'p999', 'max', 'sampled']) {
    expect(typeof rep.latencyMs[k]).toBe('number');
  }
  if (rep.succeeded > 0) {
    expect(rep.latencyMs.min).toBeLessThanOrEqual(rep.latencyMs.p50);
    expect(rep.latencyMs.p50).toBeLessThanOrEqual(rep.latencyMs.p90);
    expect(rep.latencyMs.p90).toBeLessThanOrEqual(rep.latencyMs.p99);
    expect(rep.latencyMs.p99).toBeLessThanOrEqual(rep.latencyMs.max);
    expect(rep.throughput).toBeGreaterThan(0);
  }
  expect(rep.succeeded + rep.errors).toBe(rep.requests);
  expect(typeof rep.client.cpuPercentOfOneCore).toBe('number');
  expect(typeof rep.client.eventLoopUtilization).toBe('number');
}

type Kv = { key: Buffer; value: Buffer; version: string };

let etcd: EtcdServer;
let kv: grpc.Client;

function unary<T>(method: 'Range' | 'Put', req: object): Promise<T> {
  const def = (packageDefinition()['etcdserverpb.KV'] as unknown as Record<string, grpc.MethodDefinition<object, T>>)[method];
  return new Promise((resolve, reject) =>
    kv.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, req, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

/** Every key in etcd (range "\0".."\0" is the whole key space). */
async function allKeys(): Promise<Kv[]> {
  const r = await unary<{ kvs: Kv[] }>('Range', { key: Buffer.from([0]), range_end: Buffer.from([0]) });
  return r.kvs;
}

async function deleteAll(): Promise<void> {
  const def = (packageDefinition()['etcdserverpb.KV'] as unknown as Record<string, grpc.MethodDefinition<object, object>>).DeleteRange;
  await new Promise<void>((resolve, reject) =>
    kv.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, { key: Buffer.from([0]), range_end: Buffer.from([0]) }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

beforeAll(async () => {
  etcd = await startEtcd();
  kv = new grpc.Client(etcd.endpoint, grpc.credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  kv?.close();
  await etcd?.stop();
});

beforeEach(async () => {
  await deleteAll();
});

describe('coord bench put', () => {
  test('--total 200 --clients 4 --json: report shape, 200 puts of the one default key', async () => {
    const rep = await bench(['put', '--endpoints', etcd.endpoint, '--total', '200', '--clients', '4']);
    expectReportShape(rep);
    expect(rep).toMatchObject({
      command: 'put',
      endpoints: [etcd.endpoint],
      clients: 4,
      conns: 1,
      transport: 'h2',
      total: 200,
      durationSeconds: null,
      workload: { keySize: 8, valSize: 8, keySpaceSize: 1, sequentialKeys: false },
      requests: 200,
      succeeded: 200,
      errors: 0,
      errorKinds: {},
    });
    expect(rep.latencyMs.count).toBe(200);
    expect(rep.latencyMs.sampled).toBe(200);
    // etcd's benchmark key for index 0: eight zero bytes; 200 puts make version 200.
    const keys = await allKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0].key.equals(Buffer.alloc(8))).toBe(true);
    expect(keys[0].version).toBe('200');
    expect(keys[0].value).toHaveLength(8);
  });

  test.each(['h2', 'grpc-js'])('--sequential-keys over a key space of 200 (%s): every key is written, with the value size asked', async (transport) => {
    const rep = await bench([
      'put', '--endpoints', etcd.endpoint, '--total', '200', '--clients', '4', '--conns', '2',
      '--key-space-size', '200', '--sequential-keys', '--key-size', '6', '--val-size', '100', '--transport', transport,
    ]);
    expectReportShape(rep);
    expect(rep).toMatchObject({ requests: 200, succeeded: 200, errors: 0, conns: 2, transport });
    const keys = await allKeys();
    expect(keys).toHaveLength(200);
    const want = new Set(Array.from({ length: 200 }, (_, i) => benchKey(i, 6).toString('hex')));
    expect(new Set(keys.map((k) => k.key.toString('hex')))).toEqual(want);
    for (const k of keys) {
      expect(k.value).toHaveLength(100);
      expect(k.value.equals(keys[0].value)).toBe(true); // one random value, as etcd's benchmark
      expect(k.version).toBe('1');
    }
  });

  test('server errors are counted by status, with the message decoded', async () => {
    // etcd refuses requests over --max-request-bytes (1.5 MiB): INVALID_ARGUMENT.
    const rep = await bench(['put', '--endpoints', etcd.endpoint, '--total', '4', '--clients', '2', '--val-size', '1600000']);
    expectReportShape(rep);
    expect(rep).toMatchObject({ requests: 4, succeeded: 0, errors: 4 });
    expect(rep.errorKinds).toEqual({ 'INVALID_ARGUMENT: etcdserver: request is too large': 4 });
    expect(await allKeys()).toHaveLength(0);
  });

  test('an endpoint nobody listens on fails the command (exit 1), not the report', async () => {
    const r = await coord(['bench', 'put', '--endpoints', '127.0.0.1:1', '--total', '10', '--dial-timeout', '2s']);
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toMatch(/cannot connect to 127\.0\.0\.1:1/);
  });
});

describe('coord bench range', () => {
  beforeEach(async () => {
    await unary('Put', { key: Buffer.from('foo'), value: Buffer.from('bar') });
  });

  test.each(['l', 's'])('--consistency %s over an existing key: report shape, the key is found', async (consistency) => {
    const rep = await bench([
      'range', '--endpoints', etcd.endpoint, '--key', 'foo', '--consistency', consistency, '--total', '200', '--clients', '4', '--conns', '2',
    ]);
    expectReportShape(rep);
    expect(rep).toMatchObject({
      command: 'range',
      total: 200,
      requests: 200,
      succeeded: 200,
      errors: 0,
      workload: { key: 'foo', consistency },
      firstResponse: { count: '1', kvs: 1 },
    });
  });

  test('--duration runs for a time instead of a count', async () => {
    const rep = await bench(['range', '--endpoints', etcd.endpoint, '--duration', '300ms', '--clients', '2']);
    expectReportShape(rep);
    expect(rep.total).toBeNull();
    expect(rep.durationSeconds).toBe(0.3);
    expect(rep.requests).toBeGreaterThan(0);
    expect(rep.errors).toBe(0);
    expect(rep.totalSeconds).toBeGreaterThanOrEqual(0.3);
  });
});

describe('coord bench txn-put', () => {
  test('txns of 4 puts walk the key space sequentially', async () => {
    const rep = await bench([
      'txn-put', '--endpoints', etcd.endpoint, '--total', '50', '--clients', '4', '--txn-ops', '4', '--key-space-size', '100', '--val-size', '32',
    ]);
    expectReportShape(rep);
    expect(rep).toMatchObject({ command: 'txn-put', requests: 50, succeeded: 50, errors: 0, firstResponse: { succeeded: true } });
    // 50 txns x 4 ops over 100 keys: every key written exactly twice.
    const keys = await allKeys();
    expect(keys).toHaveLength(100);
    for (const k of keys) expect(k.version).toBe('2');
  });

  test('--txn-ops larger than the key space is refused (etcd rejects duplicate keys in a txn)', async () => {
    const r = await coord(['bench', 'txn-put', '--endpoints', etcd.endpoint, '--txn-ops', '4', '--key-space-size', '2', '--total', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--key-space-size \(2\) must be at least --txn-ops \(4\)/);
  });
});
