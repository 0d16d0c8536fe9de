/**
 * Goal: RedisSession keeps its key alive with heartbeats, declares itself lost *before* Redis
 * could expire the key (deadline counted from when the last acknowledged heartbeat was sent),
 * is lost at once when the key is found gone, and close() releases and deletes what it owns.
 * Method: a real redis-server started by this file; a TCP proxy the test can cut plays a
 * network partition for one client; key TTLs are read from Redis itself.
 */
import type { Redis } from 'ioredis';
import { KeyInUseError, SessionClosedError, SessionExpiredError } from '../../src';
import { RedisMutex, RedisSession } from '../../src/redis';
import { startProxy } from '../helpers/proxy';
import { startRedis, waitFor, type TestRedis } from './helpers/redis-server';

let server: TestRedis;
let admin: Redis;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  server = await startRedis();
  admin = server.client();
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  await server?.destroy();
});

it('creates its key with the TTL, and heartbeats keep it alive for several TTLs', async () => {
  const s = await RedisSession.create(server.client(), { ttl: 1 });
  cleanup.push(() => s.close());
  expect(s.key).toBe(`coord:session:${s.id}`);
  const ttl = await admin.pttl(s.key);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(1000);
  const info = JSON.parse((await admin.get(s.key))!);
  expect(info).toMatchObject({ pid: process.pid, ttlMs: 1000 });
  await new Promise((r) => setTimeout(r, 2500)); // the test's subject is the passing of time
  expect(s.state).toBe('alive');
  expect(await admin.exists(s.key)).toBe(1);
  expect(s.remainingMs).toBeGreaterThan(0);
});

it('declares itself lost while Redis still has the key when heartbeats stop (partition)', async () => {
  const proxy = await startProxy(`127.0.0.1:${server.port}`);
  cleanup.push(() => proxy.close());
  const client = server.client({ port: Number(proxy.endpoint.split(':')[1]) });
  const s = await RedisSession.create(client, { ttl: 1, safetyMarginMs: 400 });
  const lost = new Promise<{ err: SessionExpiredError; ttl: number }>((resolve) =>
    s.once('lost', (err) => void admin.pttl(s.key).then((ttl) => resolve({ err, ttl }))),
  );
  proxy.cut();
  const { err, ttl } = await lost;
  expect(err).toBeInstanceOf(SessionExpiredError);
  expect(err.message).toMatch(/no heartbeat was acknowledged in time/);
  // Redis still has the key: the session stopped believing before the server could expire it.
  expect(ttl).toBeGreaterThan(0);
  expect(s.signal.aborted).toBe(true);
  expect(s.remainingMs).toBe(0);
  await waitFor(async () => (await admin.exists(s.key)) === 0, 'the key to expire', 3000);
  client.disconnect();
});

it('is lost when its client is disconnected (nobody renews the key any more)', async () => {
  const client = server.client();
  const s = await RedisSession.create(client, { ttl: 1 });
  const lost = new Promise<SessionExpiredError>((resolve) => s.once('lost', resolve));
  client.disconnect();
  expect(await lost).toBeInstanceOf(SessionExpiredError);
  // the deadline came first: Redis may still hold the key
  await waitFor(async () => (await admin.exists(s.key)) === 0, 'the key to expire', 3000);
});

it('is lost at the next heartbeat when its key is deleted', async () => {
  const s = await RedisSession.create(server.client(), { ttl: 1.5 });
  const lost = new Promise<SessionExpiredError>((resolve) => s.once('lost', resolve));
  await admin.del(s.key);
  expect((await lost).message).toMatch(/is gone/);
  expect(s.state).toBe('lost');
  expect(() => s.throwIfEnded()).toThrow(SessionExpiredError);
});

it('close() aborts its signal with SessionClosedError, releases its locks and deletes its key', async () => {
  const s = await RedisSession.create(server.client(), { ttl: 10 });
  const m = new RedisMutex(s, 'session/close');
  await m.lock();
  let closed = false;
  s.on('closed', () => (closed = true));
  await s.close();
  expect(closed).toBe(true);
  expect(s.signal.reason).toBeInstanceOf(SessionClosedError);
  expect(await admin.exists(s.key)).toBe(0);
  expect(await admin.exists(m.key)).toBe(0);
  await expect(new RedisMutex(s, 'session/other').lock()).rejects.toBeInstanceOf(SessionClosedError);
});

it('orphan() stops the heartbeats and leaves the key to expire', async () => {
  const s = await RedisSession.create(server.client(), { ttl: 0.5 });
  s.orphan();
  expect(s.state).toBe('closed');
  expect(await admin.exists(s.key)).toBe(1);
  await waitFor(async () => (await admin.exists(s.key)) === 0, 'the key to expire', 3000);
});

it('refuses two recipe objects of one session on the same key, and bad options', async () => {
  const s = await RedisSession.create(server.client(), { ttl: 5 });
  cleanup.push(() => s.close());
  const release = s.claim('x');
  expect(() => s.claim('x')).toThrow(KeyInUseError);
  release();
  s.claim('x')();
  await expect(RedisSession.create(admin, { ttl: 0 })).rejects.toThrow(TypeError);
  await expect(RedisSession.create(admin, { ttl: 1, safetyMarginMs: 900 })).rejects.toThrow(TypeError);
  await expect(RedisSession.create(admin, { namespace: 'a{b' })).rejects.toThrow(TypeError);
});

it("honours the client's keyPrefix (scripts build other sessions' keys with it)", async () => {
  const c1 = server.client({ keyPrefix: 'app1:' });
  const c2 = server.client({ keyPrefix: 'app1:' });
  const s1 = await RedisSession.create(c1, { ttl: 5 });
  const s2 = await RedisSession.create(c2, { ttl: 5 });
  cleanup.push(() => s1.close(), () => s2.close());
  expect(await admin.exists(`app1:coord:session:${s1.id}`)).toBe(1);
  const a = new RedisMutex(s1, 'prefixed');
  const b = new RedisMutex(s2, 'prefixed');
  await a.lock();
  const pb = b.lock();
  await waitFor(async () => (await admin.zcard('app1:coord:mutex:{prefixed}:queue')) === 1, 'b queued');
  await a.unlock();
  const info = await pb;
  expect(await admin.hget('app1:coord:mutex:{prefixed}:holder', 'token')).toBe(s2.id);
  expect(info.fencingToken).toBe(2n);
  await b.unlock();
});
