/**
 * Goal: RedisServiceRegistry stores instances with their session, discovers them, and follows a
 * service as list-then-subscribe with no gap and no duplicate (versions strictly consecutive)
 * while registrations race the watchers' start; an instance whose heartbeats stop vanishes
 * within its TTL and watchers see it go; a lost message makes a watcher re-list and report the
 * difference.
 * Method: a real redis-server started by this file. Watchers record every change; the checks
 * compare their versions with each other and with `discover()`, and their final sets with the
 * writer's final state.
 */
import type { Redis } from 'ioredis';
import { RegistrationLostError } from '../../src';
import { RedisServiceRegistry, RedisSession, type RedisServiceChange } from '../../src/redis';
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

function registry(options: { ttl?: number; session?: RedisSession; client?: Redis } = {}): RedisServiceRegistry {
  const r = new RedisServiceRegistry(options.client ?? options.session?.redis ?? server.client(), { ttl: options.ttl, session: options.session });
  cleanup.push(() => r.close());
  return r;
}

/** Collect a watcher's changes; resolves once its snapshot is in. */
async function watcher(r: RedisServiceRegistry, service: string) {
  const ac = new AbortController();
  const changes: RedisServiceChange[] = [];
  let relists = 0;
  let first!: () => void;
  const ready = new Promise<void>((res) => (first = res));
  const done = (async () => {
    for await (const c of r.watch(service, { signal: ac.signal, onRelist: () => relists++ })) {
      changes.push(c);
      first();
    }
  })();
  await ready;
  return {
    changes,
    get relists() {
      return relists;
    },
    ids: () => changes[changes.length - 1].instances.map((i) => i.id),
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

it('stores the documented JSON with its session, and discovers it', async () => {
  const r = registry({ ttl: 5 });
  const reg = await r.register({ service: 'api', id: 'api-1', address: '10.0.0.7', port: 8080, metadata: { zone: 'eu-1' } });
  expect(await admin.hget('coord:svc:{api}:instances', 'api-1')).toBe('{"service":"api","id":"api-1","address":"10.0.0.7","port":8080,"metadata":{"zone":"eu-1"}}');
  expect(await admin.hget('coord:svc:{api}:owners', 'api-1')).toBe(`${reg.session.id} ${reg.createRevision} ${reg.revision}`);
  const list = await r.discover('api');
  expect(list.instances).toHaveLength(1);
  expect(list.instances[0]).toMatchObject({ service: 'api', id: 'api-1', address: '10.0.0.7', port: 8080, metadata: { zone: 'eu-1' }, key: 'api/api-1', sessionId: reg.session.id });
  expect(list.revision).toBe(reg.revision);
  await expect(r.register({ service: 'api', id: 'a/b', address: 'x', port: 1 })).rejects.toThrow(TypeError);
  await expect(r.register({ service: 'api', id: 'x', address: 'x', port: 70000 })).rejects.toThrow(TypeError);
});

it('watch: a snapshot, then added/updated/removed; registry.close() deregisters everything', async () => {
  const r = registry({ ttl: 5 });
  await r.register({ service: 'web', id: 'w1', address: 'h1', port: 1 });
  const w = await watcher(registry(), 'web');
  expect(w.changes[0]).toMatchObject({ type: 'snapshot' });
  expect(w.ids()).toEqual(['w1']);
  await r.register({ service: 'web', id: 'w2', address: 'h2', port: 2 });
  await r.register({ service: 'web', id: 'w1', address: 'h1b', port: 1 });
  await r.deregister('web', 'w2');
  await r.close();
  await waitFor(() => w.changes.length === 5, 'five changes');
  await w.stop();
  expect(w.changes.map((c) => (c.type === 'snapshot' ? 'snapshot' : `${c.type} ${c.instance.id}`))).toEqual(['snapshot', 'added w2', 'updated w1', 'removed w2', 'removed w1']);
  expect(w.changes[4].instances).toEqual([]);
  expect((w.changes[2] as { instance: { address: string } }).instance.address).toBe('h1b');
});

it('list-then-subscribe has no gap and no duplicate while registrations race the watchers\' start', async () => {
  const r = registry({ ttl: 5 });
  const reader = registry();
  const watchers: Awaited<ReturnType<typeof watcher>>[] = [];
  const ops = 150;
  const writer = (async () => {
    for (let i = 0; i < ops; i++) {
      const id = `i${i % 7}`;
      if (i % 3 === 2) await reader.deregister('race', id);
      else await r.register({ service: 'race', id, address: `a${i}`, port: i });
    }
  })();
  for (let k = 0; k < 6; k++) {
    watchers.push(await watcher(reader, 'race'));
    await new Promise((res) => setTimeout(res, 5));
  }
  await writer;
  const final = await reader.discover('race');
  for (const w of watchers) {
    await waitFor(() => w.changes[w.changes.length - 1].revision === final.revision || w.changes[0].revision === final.revision, 'watcher caught up');
    await w.stop();
    expect(w.relists).toBe(0);
    // every version after the snapshot exactly once, in order (removals of absent ids publish nothing)
    const revs = w.changes.map((c) => c.revision);
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBe(revs[i - 1] + 1n);
    expect(w.changes[w.changes.length - 1].instances).toEqual(final.instances);
  }
});

it('an instance whose heartbeats stop vanishes within its TTL, and watchers see it go', async () => {
  const ttl = 1;
  const victim = await RedisSession.create(server.client(), { ttl });
  const r = registry({ session: victim });
  await r.register({ service: 'exp', id: 'dies', address: 'h', port: 1 });
  await registry({ ttl: 10 }).register({ service: 'exp', id: 'stays', address: 'h', port: 2 });
  const w = await watcher(registry(), 'exp');
  expect(w.ids()).toEqual(['dies', 'stays']);
  const pausedAt = Date.now();
  victim.pauseHeartbeats(true); // the process hangs (or is cut off): nobody deregisters
  await waitFor(() => w.changes.some((c) => c.type === 'removed'), 'removal seen', 5000);
  const seenAfterMs = Date.now() - pausedAt;
  // the key was last refreshed at most TTL/3 before the pause, so it is gone within one TTL;
  // the watcher sweeps 15 ms after the soonest expiry it knows of (generous bound for CI noise)
  expect(seenAfterMs).toBeLessThan(ttl * 1000 + 500);
  expect(w.ids()).toEqual(['stays']);
  expect((await registry().discover('exp')).instances.map((i) => i.id)).toEqual(['stays']);
  await w.stop();
  expect(w.changes.filter((c) => c.type === 'removed')).toHaveLength(1);
});

it('a registration taken over by another session, or removed by an operator, is lost at the next heartbeat', async () => {
  const a = registry({ ttl: 2 });
  const reg = await a.register({ service: 'own', id: 'x', address: 'a', port: 1 });
  const lost = new Promise<RegistrationLostError>((res) => reg.once('lost', res));
  const b = registry({ ttl: 5 });
  const regB = await b.register({ service: 'own', id: 'x', address: 'b', port: 1 });
  expect((await lost).reason).toBe('key-deleted');
  expect(reg.active).toBe(false);
  expect(regB.createRevision).toBe(reg.createRevision);
  // the old owner's deregister must not remove the new owner's instance
  await reg.deregister();
  expect((await b.discover('own')).instances.map((i) => i.address)).toEqual(['b']);
  const lostB = new Promise<RegistrationLostError>((res) => regB.once('lost', res));
  expect(await b.deregister('own', 'x')).toBe(true);
  expect((await lostB).reason).toBe('key-deleted');
});

it('a lost message (a gap in the versions) makes the watcher re-list and report the difference', async () => {
  const r = registry({ ttl: 5 });
  await r.register({ service: 'gap', id: 'g1', address: 'h', port: 1 });
  const w = await watcher(registry(), 'gap');
  // A change nobody hears about: what a subscriber reconnect looks like.
  await admin.hset('coord:svc:{gap}:instances', 'g2', '{"service":"gap","id":"g2","address":"h","port":2,"metadata":{}}');
  await admin.hset('coord:svc:{gap}:owners', 'g2', `${(await r.discover('gap')).instances[0].sessionId} 99 99`);
  await admin.incr('coord:svc:{gap}:version');
  await r.register({ service: 'gap', id: 'g3', address: 'h', port: 3 });
  await waitFor(() => w.ids().length === 3, 'all three seen');
  await w.stop();
  expect(w.relists).toBe(1);
  expect(w.ids()).toEqual(['g1', 'g2', 'g3']);
});

it('a live picker follows registrations', async () => {
  const r = registry({ ttl: 5 });
  const picker = registry().picker('pick');
  await picker.ready();
  expect(picker.pick()).toBeUndefined();
  await r.register({ service: 'pick', id: 'p1', address: 'h', port: 1 });
  await r.register({ service: 'pick', id: 'p2', address: 'h', port: 2 });
  await waitFor(() => picker.instances.length === 2, 'two instances');
  const picks = [picker.pick()!.id, picker.pick()!.id, picker.pick()!.id];
  expect(picks).toEqual(['p1', 'p2', 'p1']);
  picker.close();
});
