/**
 * `coord bench watch` and `coord bench lease-keepalive` against a real etcd, end to end.
 *
 * Goal: the two streaming benches drive a real etcd through the lean HTTP/2 client's
 * streaming calls and report what they promise: the JSON shape; for watch, every event of
 * every put reaching every watcher of its key exactly once (missing and duplicate both 0,
 * deliveries = acknowledged puts x watchers per key) whether watchers share a key, are
 * spread over keys, or watch a prefix, and foreign events told apart from the run's own;
 * for lease-keepalive, every lease renewed and still alive at the end even with a TTL
 * shorter than the run (so the keepalives, not the grant, kept them alive); and the
 * server's RSS read from /proc when given its pid. No test here asserts speed:
 * benchmarks are not tests.
 *
 * Method: one fresh etcd (/usr/bin/etcd, temp data dir, free loopback ports) for the file,
 * killed and removed afterwards. The CLI runs as a child process as a user runs it
 * (`node packages/cli/bin/run.js bench ... --json`, built dist); its JSON is parsed and
 * checked, and what it wrote is read back with a plain grpc-js client.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import { EtcdServer, startEtcd } from './etcd-server';

const CLI = path.resolve(__dirname, '../../bin/run.js');

type Summary = Record<'count' | 'avg' | 'stddev' | 'min' | 'p50' | 'p90' | 'p99' | 'p999' | 'max' | 'sampled', number>;
type Server = { pid: number; rssKiB: Record<string, number>; rssPeakKiB: number; cpuUserMs: number; cpuSystemMs: number; cpuPercentOfOneCore: number } | null;
type Client = { cpuUserMs: number; cpuSystemMs: number; cpuPercentOfOneCore: number; eventLoopUtilization: number };

interface WatchReport {
  command: string;
  endpoints: string[];
  conns: number;
  streams: number;
  watchers: number;
  transport: string;
  totalPuts: number | null;
  durationSeconds: number | null;
  workload: Record<string, unknown>;
  watchersCreated: number;
  createSeconds: number;
  puts: { issued: number; succeeded: number; errors: number; errorKinds: Record<string, number>; seconds: number; rate: number; latencyMs: Summary };
  deliveries: number;
  expectedDeliveries: number;
  missing: number;
  duplicates: number;
  unexpected: number;
  canceled: Record<string, number>;
  streamErrors: Record<string, number>;
  totalSeconds: number;
  eventsPerSecond: number;
  latencyMs: Summary;
  client: Client;
  server: Server;
}

interface LeaseReport {
  command: string;
  endpoints: string[];
  conns: number;
  streams: number;
  leases: number;
  window: number;
  ttl: number;
  transport: string;
  total: number | null;
  durationSeconds: number | null;
  grant: { succeeded: number; errors: number; errorKinds: Record<string, number>; seconds: number; throughput: number; latencyMs: Summary };
  requests: number;
  succeeded: number;
  errors: number;
  errorKinds: Record<string, number>;
  totalSeconds: number;
  throughput: number;
  latencyMs: Summary;
  leasesRenewed: number;
  check: { checked: number; alive: number; errors: number; errorKinds: Record<string, number>; ttlMin: number | null; ttlMax: number | null };
  client: Client;
  server: Server;
}

function coord(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function bench<T>(args: string[]): Promise<T> {
  const r = await coord(['bench', ...args, '--json']);
  if (r.code !== 0) throw new Error(`coord bench ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

function expectSummary(s: Summary, count?: number): void {
  for (const k of ['count', 'avg', 'stddev', 'min', 'p50', 'p90', 'p99', 'p999', 'max', 'sampled'] as const) expect(typeof s[k]).toBe('number');
  if (count !== undefined) expect(s.count).toBe(count);
  if (s.count > 0) {
    expect(s.min).toBeGreaterThan(0);
    expect(s.min).toBeLessThanOrEqual(s.p50);
    expect(s.p50).toBeLessThanOrEqual(s.p90);
    expect(s.p90).toBeLessThanOrEqual(s.p99);
    expect(s.p99).toBeLessThanOrEqual(s.p999);
    expect(s.p999).toBeLessThanOrEqual(s.max);
  }
}

function expectClient(c: Client): void {
  for (const k of ['cpuUserMs', 'cpuSystemMs', 'cpuPercentOfOneCore', 'eventLoopUtilization'] as const) expect(typeof c[k]).toBe('number');
}

function expectServer(s: Server, pid: number, marks: string[]): void {
  expect(s).not.toBeNull();
  expect(s!.pid).toBe(pid);
  for (const m of marks) expect(s!.rssKiB[m]).toBeGreaterThan(1024); // etcd is well above 1 MiB
  expect(s!.rssPeakKiB).toBeGreaterThanOrEqual(Math.max(...marks.map((m) => s!.rssKiB[m])));
  expect(typeof s!.cpuPercentOfOneCore).toBe('number');
}

/** A watch run that went right: every delivery accounted for, nothing missing or repeated. */
function expectCleanWatch(r: WatchReport, watchersPerPut: number): void {
  expect(r.command).toBe('watch');
  expect(r.transport).toBe('h2');
  expect(r.watchersCreated).toBe(r.watchers);
  expect(r.puts.errors).toBe(0);
  expect(r.puts.succeeded).toBe(r.puts.issued);
  expect(r.expectedDeliveries).toBe(r.puts.succeeded * watchersPerPut);
  expect(r.deliveries).toBe(r.expectedDeliveries);
  expect(r.missing).toBe(0);
  expect(r.duplicates).toBe(0);
  expect(r.canceled).toEqual({});
  expect(r.streamErrors).toEqual({});
  expectSummary(r.latencyMs, r.deliveries);
  expectSummary(r.puts.latencyMs, r.puts.succeeded);
  expect(r.eventsPerSecond).toBeGreaterThan(0);
  expect(r.totalSeconds).toBeGreaterThan(0);
  expect(r.createSeconds).toBeGreaterThan(0);
  expectClient(r.client);
}

let etcd: EtcdServer;
let client: grpc.Client;

function unary<T>(service: string, method: string, req: object): Promise<T> {
  const def = (packageDefinition()[service] as unknown as Record<string, grpc.MethodDefinition<object, T>>)[method];
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, req, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

type Kv = { key: Buffer; value: Buffer; version: string };

async function keysUnder(prefix: string): Promise<Kv[]> {
  const end = Buffer.from(prefix);
  end[end.length - 1]++;
  return (await unary<{ kvs: Kv[] }>('etcdserverpb.KV', 'Range', { key: Buffer.from(prefix), range_end: end })).kvs;
}

beforeAll(async () => {
  etcd = await startEtcd();
  client = new grpc.Client(etcd.endpoint, grpc.credentials.createInsecure());
}, 60_000);

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

describe('coord bench watch', () => {
  test('300 watchers on one key over 7 streams / 3 conns: every put reaches every watcher once; server RSS read', async () => {
    const r = await bench<WatchReport>([
      'watch', '--endpoints', etcd.endpoint, '--watchers', '300', '--streams', '7', '--conns', '3',
      '--total-puts', '60', '--put-rate', '200', '--key-prefix', 't1/', '--val-size', '32', '--server-pid', String(etcd.pid),
    ]);
    expectCleanWatch(r, 300);
    expect(r).toMatchObject({
      endpoints: [etcd.endpoint],
      conns: 3,
      streams: 7,
      watchers: 300,
      totalPuts: 60,
      durationSeconds: null,
      workload: { keySpaceSize: 1, watchPrefix: false, keyPrefix: 't1/', valSize: 32, putRate: 200 },
      puts: { issued: 60, succeeded: 60 },
      deliveries: 18_000,
      unexpected: 0,
    });
    expectServer(r.server, etcd.pid, ['before', 'watchersCreated', 'after']);
    const kvs = await keysUnder('t1/');
    expect(kvs.map((k) => k.key.toString())).toEqual(['t1/0']);
    expect(kvs[0].version).toBe('60');
    expect(kvs[0].value).toHaveLength(32);
  });

  test('100 watchers spread over 10 keys: each put reaches only the 10 watchers of its key', async () => {
    const r = await bench<WatchReport>([
      'watch', '--endpoints', etcd.endpoint, '--watchers', '100', '--streams', '4', '--key-space-size', '10',
      '--total-puts', '100', '--put-rate', '500', '--key-prefix', 't2/',
    ]);
    expectCleanWatch(r, 10);
    expect(r).toMatchObject({ deliveries: 1000, unexpected: 0, server: null });
    const kvs = await keysUnder('t2/');
    expect(kvs.map((k) => k.key.toString())).toEqual(Array.from({ length: 10 }, (_, k) => `t2/${k}`));
    for (const kv of kvs) expect(kv.version).toBe('10');
  });

  test('--watch-prefix with --duration: every put to any of 5 keys reaches all 20 watchers', async () => {
    const r = await bench<WatchReport>([
      'watch', '--endpoints', etcd.endpoint, '--watchers', '20', '--streams', '2', '--key-space-size', '5', '--watch-prefix',
      '--duration', '1s', '--put-rate', '50', '--key-prefix', 't3/',
    ]);
    expectCleanWatch(r, 20);
    expect(r).toMatchObject({ totalPuts: null, durationSeconds: 1, unexpected: 0, workload: { watchPrefix: true, keySpaceSize: 5 } });
    expect(r.puts.succeeded).toBeGreaterThanOrEqual(40);
    expect(r.puts.succeeded).toBeLessThanOrEqual(51);
    expect(await keysUnder('t3/')).toHaveLength(5);
  });

  test('events of another writer on the watched key are counted as unexpected, not as ours', async () => {
    const run = bench<WatchReport>([
      'watch', '--endpoints', etcd.endpoint, '--watchers', '10', '--streams', '2', '--duration', '2s', '--put-rate', '20', '--key-prefix', 't4/',
    ]);
    // Let the watchers be created, then put foreign values on the same key.
    let foreign = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 2500) {
      await new Promise((r) => setTimeout(r, 100));
      await unary('etcdserverpb.KV', 'Put', { key: Buffer.from('t4/0'), value: Buffer.from('not from the bench') });
      foreign++;
    }
    const r = await run;
    expectCleanWatch(r, 10);
    expect(r.unexpected).toBeGreaterThan(0);
    expect(r.unexpected).toBeLessThanOrEqual(foreign * 10); // each foreign put seen by at most the 10 watchers
  });

  test('impossible layouts are refused with a message (exit 1)', async () => {
    const r = await coord(['bench', 'watch', '--endpoints', etcd.endpoint, '--watchers', '2', '--streams', '5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--streams \(5\) must not exceed --watchers \(2\)/);
    const pid = await coord(['bench', 'watch', '--endpoints', etcd.endpoint, '--server-pid', '999999999', '--total-puts', '1']);
    expect(pid.code).toBe(1);
    expect(pid.stderr).toMatch(/cannot read \/proc\/999999999/);
  });
});

describe('coord bench lease-keepalive', () => {
  test('200 leases with a 2 s TTL kept alive for 4 s: all renewed, all alive at the end; server RSS read', async () => {
    const r = await bench<LeaseReport>([
      'lease-keepalive', '--endpoints', etcd.endpoint, '--leases', '200', '--ttl', '2', '--streams', '4', '--conns', '2',
      '--window', '5', '--duration', '4s', '--check-sample', '0', '--server-pid', String(etcd.pid),
    ]);
    expect(r).toMatchObject({
      command: 'lease-keepalive',
      endpoints: [etcd.endpoint],
      conns: 2,
      streams: 4,
      leases: 200,
      window: 5,
      ttl: 2,
      transport: 'h2',
      total: null,
      durationSeconds: 4,
      grant: { succeeded: 200, errors: 0, errorKinds: {} },
      errors: 0,
      errorKinds: {},
      leasesRenewed: 200,
      check: { checked: 200, alive: 200, errors: 0, errorKinds: {} },
    });
    // etcd expires a lease within about half a second of its TTL: a 2 s lease alive after
    // 4 s (plus the grants) was kept alive by the keepalives.
    expect(r.totalSeconds).toBeGreaterThanOrEqual(3.9);
    expect(r.check.ttlMin).toBeGreaterThanOrEqual(1);
    expect(r.check.ttlMax).toBeLessThanOrEqual(2);
    expect(r.succeeded).toBe(r.requests);
    expect(r.succeeded).toBeGreaterThan(200);
    expect(r.throughput).toBeGreaterThan(0);
    expectSummary(r.latencyMs, r.succeeded);
    expectSummary(r.grant.latencyMs, 200);
    expect(r.grant.throughput).toBeGreaterThan(0);
    expectClient(r.client);
    expectServer(r.server, etcd.pid, ['before', 'leasesGranted', 'after']);
  });

  test('--total: exactly that many keepalives, round robin over every lease', async () => {
    const r = await bench<LeaseReport>([
      'lease-keepalive', '--endpoints', etcd.endpoint, '--leases', '50', '--streams', '5', '--window', '4', '--total', '1000',
    ]);
    expect(r).toMatchObject({ total: 1000, durationSeconds: null, requests: 1000, succeeded: 1000, errors: 0, leasesRenewed: 50, server: null });
    expect(r.check).toMatchObject({ checked: 50, alive: 50 });
    expect(r.check.ttlMin).toBeGreaterThanOrEqual(29);
    expectSummary(r.latencyMs, 1000);
  });

  test('more streams than leases is refused (exit 1)', async () => {
    const r = await coord(['bench', 'lease-keepalive', '--endpoints', etcd.endpoint, '--leases', '5', '--streams', '10']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--streams \(10\) must not exceed --leases \(5\)/);
  });
});
