/**
 * Goal: endpoint failover, deadlines and cancellation behave as documented in connection.ts:
 * connect failures move on to the next endpoint for every call; after a request may have been
 * sent, only idempotent calls (range, status, hashKV, memberList) are retried elsewhere, while
 * writes surface the error (a resend could apply them twice); `timeoutMs` and `AbortSignal`
 * end the call and cancel it on the server.
 * Method: a real etcd 3.4 as the healthy member, plus stand-ins for bad ones
 * (test/helpers/fake.ts): a port nobody listens on (connection refused), a TCP blackhole
 * (handshake never completes), and a fake KV server that answers UNAVAILABLE or never
 * answers while recording which calls reached it and which were cancelled.
 */
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '@coord/proto';
import {
  AbortError,
  Client,
  ClientClosedError,
  DeadlineExceededError,
  NoLeaderError,
  UnavailableError,
  compare,
  op,
  parseEndpoint,
} from '../src';
import { freePort, startEtcd, type EtcdProcess } from './helpers/etcd';
import { startBlackhole, startFakeKV, type Blackhole, type FakeKV } from './helpers/fake';

let etcd: EtcdProcess;
let deadEndpoint: string;
const clients: Client[] = [];
const fakes: { stop(): Promise<void> }[] = [];

function newClient(endpoints: string[], extra: { dialTimeoutMs?: number; callTimeoutMs?: number } = {}): Client {
  const c = new Client({ endpoints, ...extra });
  clients.push(c);
  return c;
}

let direct: Client | undefined;
/** A client talking only to etcd, to check what reached it. */
function etcdClient(): Client {
  direct ??= newClient([etcd.endpoint]);
  return direct;
}

async function fake(behaviour: Parameters<typeof startFakeKV>[0]): Promise<FakeKV> {
  const f = await startFakeKV(behaviour);
  fakes.push(f);
  return f;
}

async function blackhole(): Promise<Blackhole> {
  const b = await startBlackhole();
  fakes.push(b);
  return b;
}

const UNAVAILABLE = { code: grpc.status.UNAVAILABLE, details: 'fake member: transport is closing' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(10);
  }
}

beforeAll(async () => {
  etcd = await startEtcd();
  deadEndpoint = `127.0.0.1:${await freePort()}`; // nothing listens: connection refused
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const f of fakes) await f.stop();
  await etcd?.stop();
});

describe('failover before anything is sent', () => {
  it('skips an endpoint that refuses connections, for reads and writes, and remembers the live one', async () => {
    const client = newClient([deadEndpoint, etcd.endpoint]);
    expect(client.activeEndpoint).toBe(deadEndpoint);
    const started = Date.now();
    // A write whose connection failed was never sent, so moving on is safe.
    const put = await client.put('fo/a', 'v');
    expect(put.header.revision).toBeGreaterThan(0n);
    expect(client.activeEndpoint).toBe(etcd.endpoint);
    expect((await client.get('fo/a'))!.version).toBe(1n); // applied exactly once
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await client.status()).version).toMatch(/^3\.4\./);
    expect((await client.memberList()).members).toHaveLength(1);
    expect((await client.hashKV()).hash).toBeGreaterThanOrEqual(0);
    expect(client.activeEndpoint).toBe(etcd.endpoint);
  });

  it('moves on after dialTimeoutMs when the handshake never completes', async () => {
    const hole = await blackhole();
    const client = newClient([hole.endpoint, etcd.endpoint], { dialTimeoutMs: 300 });
    const started = Date.now();
    await client.put('fo/b', 'v');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(3000);
    expect(client.activeEndpoint).toBe(etcd.endpoint);
    expect((await client.get('fo/b'))!.version).toBe(1n);
  });

  it('raises UnavailableError naming the endpoints when none can be reached', async () => {
    const otherDead = `127.0.0.1:${await freePort()}`;
    const client = newClient([deadEndpoint, otherDead]);
    const started = Date.now();
    const err = await client.get('x', { timeoutMs: 600 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).code).toBe(grpc.status.UNAVAILABLE);
    expect((err as UnavailableError).details).toContain(deadEndpoint);
    expect((err as UnavailableError).details).toContain(otherDead);
    // It keeps waiting for a reconnect until the call's deadline, and no longer.
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('recovers when an endpoint comes back within the deadline', async () => {
    const endpoint = `127.0.0.1:${await freePort()}`;
    const client = newClient([endpoint]);
    await expect(client.get('x', { timeoutMs: 300 })).rejects.toBeInstanceOf(UnavailableError);
    // Bring up a member on that port while the next call is waiting for it.
    const server = new grpc.Server();
    server.addService(serviceDefinition('etcdserverpb.KV'), {
      Range: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { kvs: [], count: '0' }),
    });
    fakes.push({ stop: async () => server.forceShutdown() });
    setTimeout(() => server.bindAsync(endpoint, grpc.ServerCredentials.createInsecure(), () => undefined), 200);
    const res = await client.getRange({ key: 'x', timeoutMs: 4000 });
    expect(res.count).toBe(0n);
  });
});

describe('failover after a request may have been sent', () => {
  it('retries reads on the next endpoint after UNAVAILABLE', async () => {
    const bad = await fake(UNAVAILABLE);
    const client = newClient([bad.endpoint, etcd.endpoint]);
    await etcdClient().put('after/r', 'v');
    const kv = await client.get('after/r');
    expect(kv!.valueString()).toBe('v'); // answered by etcd
    expect(bad.calls).toEqual(['Range']); // after reaching the bad member first
    expect(client.activeEndpoint).toBe(etcd.endpoint);
    // Remembered: the next read goes straight to etcd.
    await client.getRange({ key: 'after/', prefix: true });
    expect(bad.calls).toEqual(['Range']);
  });

  it.each([
    ['put', (c: Client) => c.put('after/w', 'v'), 'Put'],
    ['delete', (c: Client) => c.delete('after/w'), 'DeleteRange'],
    ['txn', (c: Client) => c.txn({ compare: [compare.version('after/w', '=', 0)], success: [op.put('after/w', 'v')] }), 'Txn'],
    ['compact', (c: Client) => c.compact(1), 'Compact'],
  ] as const)('does not resend a %s after UNAVAILABLE: the error is surfaced', async (_name, call, method) => {
    const bad = await fake(UNAVAILABLE);
    const client = newClient([bad.endpoint, etcd.endpoint]);
    const err = await call(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).details).toBe(UNAVAILABLE.details);
    expect(bad.calls).toEqual([method]);
    // Nothing reached etcd.
    expect(await etcdClient().get('after/w')).toBeUndefined();
    // The suspect member is no longer preferred: the next call goes to etcd.
    await client.get('after/w');
    expect(client.activeEndpoint).toBe(etcd.endpoint);
    expect(bad.calls).toEqual([method]);
  });

  it('keeps the etcd error class: reads fail over on "no leader", writes raise NoLeaderError', async () => {
    const bad = await fake({ code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' });
    const writer = newClient([bad.endpoint, etcd.endpoint]);
    const err = await writer.put('after/nl', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoLeaderError);
    expect((err as NoLeaderError).code).toBe(grpc.status.UNAVAILABLE);
    const reader = newClient([bad.endpoint, etcd.endpoint]);
    expect(await reader.get('after/nl')).toBeUndefined();
    expect(bad.calls).toEqual(['Put', 'Range']);
  });

  it('surfaces the last member error when every endpoint answers UNAVAILABLE to a read', async () => {
    const a = await fake({ code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' });
    const b = await fake({ code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' });
    const client = newClient([a.endpoint, b.endpoint]);
    await expect(client.get('k')).rejects.toBeInstanceOf(NoLeaderError);
    expect(a.calls).toEqual(['Range']);
    expect(b.calls).toEqual(['Range']);
  });
});

describe('deadlines and cancellation', () => {
  it('timeoutMs ends a call the server never answers with DeadlineExceededError and cancels it', async () => {
    const slow = await fake('hang');
    const client = newClient([slow.endpoint]);
    const started = Date.now();
    const err = await client.get('k', { timeoutMs: 300 }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(DeadlineExceededError);
    expect((err as DeadlineExceededError).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    await until(() => slow.cancelled.length === 1);
    expect(slow.cancelled).toEqual(['Range']);
    // A deadline is not a reason to resend, even for a read.
    expect(slow.calls).toEqual(['Range']);
  });

  it('uses callTimeoutMs as the default deadline', async () => {
    const slow = await fake('hang');
    const client = newClient([slow.endpoint], { callTimeoutMs: 200 });
    const started = Date.now();
    await expect(client.put('k', 'v')).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(client.options.callTimeoutMs).toBe(200);
  });

  it('aborting cancels the in-flight gRPC call', async () => {
    const slow = await fake('hang');
    const client = newClient([slow.endpoint]);
    const controller = new AbortController();
    const pending = client.txn({ success: [op.get('k')], signal: controller.signal }).catch((e: unknown) => e);
    await until(() => slow.calls.length === 1);
    const reason = new Error('user gave up');
    controller.abort(reason);
    const err = await pending;
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).name).toBe('AbortError');
    expect((err as AbortError).code).toBe(grpc.status.CANCELLED);
    expect((err as AbortError).cause).toBe(reason);
    await until(() => slow.cancelled.length === 1);
    expect(slow.cancelled).toEqual(['Txn']);
  });

  it('an already aborted signal rejects without contacting any member', async () => {
    const bad = await fake(UNAVAILABLE);
    const client = newClient([bad.endpoint]);
    const err = await client.get('k', { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(bad.calls).toEqual([]);
  });

  it('aborting while connecting ends the wait at once', async () => {
    const hole = await blackhole();
    const client = newClient([hole.endpoint], { dialTimeoutMs: 10000, callTimeoutMs: 10000 });
    const started = Date.now();
    const err = await client.get('k', { signal: AbortSignal.timeout(150) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('works normally when the signal never fires', async () => {
    const client = newClient([etcd.endpoint]);
    const controller = new AbortController();
    await client.put('sig/k', 'v', { signal: controller.signal, timeoutMs: 2000 });
    expect((await client.get('sig/k', { signal: controller.signal }))!.valueString()).toBe('v');
    controller.abort(); // after completion: no effect
    expect((await client.get('sig/k'))!.valueString()).toBe('v');
  });
});

describe('lifecycle and options', () => {
  it('close() makes later calls reject with ClientClosedError and is idempotent', async () => {
    const client = newClient([etcd.endpoint]);
    await client.put('cl/k', 'v');
    client.close();
    client.close();
    await expect(client.get('cl/k')).rejects.toBeInstanceOf(ClientClosedError);
    expect(() => client.raw()).toThrow(ClientClosedError);
  });

  it('validates options once, at construction', () => {
    expect(() => new Client({ endpoints: [] })).toThrow(TypeError);
    expect(() => new Client(undefined as never)).toThrow(TypeError);
    expect(() => new Client({ endpoints: [''] })).toThrow(TypeError);
    expect(() => new Client({ endpoints: ['ftp://h:1'] })).toThrow(/scheme/);
    expect(() => new Client({ endpoints: ['h:1'], callTimeoutMs: 0 })).toThrow(TypeError);
    expect(() => new Client({ endpoints: ['h:1'], dialTimeoutMs: Number.NaN })).toThrow(TypeError);
    const c = newClient(['http://127.0.0.1:1/', '127.0.0.1:2']);
    expect(Object.isFrozen(c.options)).toBe(true);
    expect(c.options).toEqual({ endpoints: ['http://127.0.0.1:1/', '127.0.0.1:2'], dialTimeoutMs: 3000, callTimeoutMs: 5000 });
  });

  it('rejects a bad per-call timeout', async () => {
    const client = newClient([etcd.endpoint]);
    await expect(client.get('k', { timeoutMs: -5 })).rejects.toThrow(TypeError);
  });

  it('parses endpoint URLs', () => {
    expect(parseEndpoint('http://127.0.0.1:2379')).toEqual({ target: '127.0.0.1:2379', tls: false });
    expect(parseEndpoint('https://etcd.example:2379/')).toEqual({ target: 'etcd.example:2379', tls: true });
    expect(parseEndpoint('10.0.0.1:2379')).toEqual({ target: '10.0.0.1:2379', tls: false });
  });
});
