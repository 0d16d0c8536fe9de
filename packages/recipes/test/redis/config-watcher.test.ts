/**
 * Goal: RedisConfigWatcher gives a typed value validated by the caller's parser, follows
 * changes written through RedisConfigStore (key mode: one value; prefix mode: a hash of fields,
 * applied atomically), keeps the last good value when a new one is invalid JSON or fails the
 * schema and reports it, and also notices writes that bypass the store when the server sends
 * keyspace notifications.
 * Method: a real redis-server started by this file; writes through the store and through plain
 * commands; waits on the watcher's events, never on fixed sleeps.
 */
import type { Redis } from 'ioredis';
import { ConfigInvalidError } from '../../src';
import { RedisConfigStore, RedisConfigWatcher } from '../../src/redis';
import { startRedis, waitFor, type TestRedis } from './helpers/redis-server';

let server: TestRedis;
let admin: Redis;
let store: RedisConfigStore;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  server = await startRedis();
  admin = server.client();
  store = new RedisConfigStore(admin);
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  await server?.destroy();
});

interface AppConfig {
  replicas: number;
  name: string;
}

/** A schema function: returns the typed value or throws. */
function parseApp(v: unknown): AppConfig {
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new Error('not an object');
  if (!Number.isInteger(o.replicas) || (o.replicas as number) < 1) throw new Error('replicas must be a positive integer');
  if (typeof o.name !== 'string') throw new Error('name must be a string');
  return { replicas: o.replicas as number, name: o.name };
}

function watch<T>(options: ConstructorParameters<typeof RedisConfigWatcher<T>>[1]): RedisConfigWatcher<T> {
  const w = new RedisConfigWatcher<T>(server.client(), options);
  cleanup.push(() => w.close());
  return w;
}

function nextEvent<T>(w: RedisConfigWatcher<T>, event: 'change' | 'invalid'): Promise<any> {
  return new Promise((resolve) => w.once(event, (x: unknown) => resolve(x)));
}

it('single key: typed value, change events, invalid JSON and schema failures keep the last good value', async () => {
  const v1 = await store.set('app/config', JSON.stringify({ replicas: 2, name: 'a' }));
  const w = watch({ key: 'app/config', parse: parseApp });
  const first = await w.start();
  expect(first.value).toEqual({ replicas: 2, name: 'a' });
  expect(first.revision).toBe(v1);

  let changed = nextEvent(w, 'change');
  const v2 = await store.set('app/config', JSON.stringify({ replicas: 3, name: 'a' }));
  expect((await changed).value).toEqual({ replicas: 3, name: 'a' });
  expect(w.current!.revision).toBe(v2);

  let invalid = nextEvent(w, 'invalid');
  await store.set('app/config', '{"replicas": 4, name'); // broken JSON
  let err = (await invalid) as ConfigInvalidError;
  expect(err).toBeInstanceOf(ConfigInvalidError);
  expect(err.message).toMatch(/does not decode/);
  expect(w.value).toEqual({ replicas: 3, name: 'a' });

  invalid = nextEvent(w, 'invalid');
  await store.set('app/config', JSON.stringify({ replicas: 0, name: 'a' })); // fails the schema
  err = (await invalid) as ConfigInvalidError;
  expect(err.message).toMatch(/rejected by parse: replicas must be a positive integer/);
  expect(w.value).toEqual({ replicas: 3, name: 'a' });

  changed = nextEvent(w, 'change');
  await store.set('app/config', JSON.stringify({ replicas: 5, name: 'b' }));
  expect((await changed).value).toEqual({ replicas: 5, name: 'b' });

  // the async iterator yields each new good snapshot, oldest first (also those before it was created)
  const it = w[Symbol.asyncIterator]();
  expect((await it.next()).value.value).toEqual({ replicas: 3, name: 'a' });
  expect((await it.next()).value.value).toEqual({ replicas: 5, name: 'b' });
  const nextGood = it.next();
  await store.set('app/config', JSON.stringify({ replicas: 6, name: 'b' }));
  expect((await nextGood).value.value).toEqual({ replicas: 6, name: 'b' });
  w.close();
  expect(await it.next()).toEqual({ value: undefined, done: true });
});

it('prefix: one atomic snapshot per write, fields relative to the key', async () => {
  await store.setFields('app/features', { beta: 'true', theme: '"dark"' });
  const snapshots: Record<string, unknown>[] = [];
  const w = watch<Record<string, unknown>>({
    key: 'app/features',
    prefix: true,
    parse: (v) => {
      const o = v as Record<string, unknown>;
      // a half-applied write would show a theme without its contrast
      if ((o.theme === '"light"' || o.theme === 'light') && o.contrast === undefined) throw new Error('half-applied');
      return o;
    },
  });
  await w.start();
  expect(w.value).toEqual({ beta: true, theme: 'dark' });
  w.on('change', (s) => snapshots.push(s.value));
  w.on('invalid', (e) => snapshots.push({ invalid: e.message }));
  await store.setFields('app/features', { theme: '"light"', contrast: '"high"' }, { delete: ['beta'] });
  await waitFor(() => snapshots.length === 1, 'the first change');
  await store.setFields('app/features', { only: '1' }, { replace: true });
  await waitFor(() => snapshots.length === 2, 'the second change');
  expect(snapshots).toEqual([{ theme: 'light', contrast: 'high' }, { only: 1 }]);
  await store.delete('app/features');
  await waitFor(() => snapshots.length === 3, 'deleted');
  expect(snapshots[2]).toEqual({});
});

it('an invalid first value rejects start(), or yields the fallback and an invalid event', async () => {
  await store.set('bad/config', 'not json');
  await expect(watch({ key: 'bad/config', parse: parseApp }).start()).rejects.toBeInstanceOf(ConfigInvalidError);
  const w = watch({ key: 'bad/config', parse: parseApp, fallback: { replicas: 1, name: 'default' } });
  const invalid = nextEvent(w, 'invalid');
  const first = await w.start();
  expect(first).toMatchObject({ value: { replicas: 1, name: 'default' }, revision: 0n });
  await invalid;
  const changed = nextEvent(w, 'change');
  await store.set('bad/config', JSON.stringify({ replicas: 2, name: 'fixed' }));
  expect((await changed).value).toEqual({ replicas: 2, name: 'fixed' });
});

it('notices a plain SET that bypasses the store when keyspace notifications are on', async () => {
  await admin.config('SET', 'notify-keyspace-events', 'K$');
  try {
    await store.set('raw/config', JSON.stringify({ replicas: 1, name: 'r' }));
    const w = watch({ key: 'raw/config', parse: parseApp });
    const first = await w.start();
    const changed = nextEvent(w, 'change');
    await admin.set('coord:config:{raw/config}:value', JSON.stringify({ replicas: 9, name: 'r' }));
    const next = await changed;
    expect(next.value).toEqual({ replicas: 9, name: 'r' });
    expect(next.revision).toBe(first.revision); // the version only moves through the store
  } finally {
    await admin.config('SET', 'notify-keyspace-events', '');
  }
});

it('a burst of writes coalesces: the watcher ends at the last value, never reports an older one after a newer', async () => {
  const w = watch({ key: 'burst/config', parse: parseApp, fallback: { replicas: 1, name: 'none' } });
  await w.start();
  const seen: number[] = [];
  w.on('change', (s) => seen.push(s.value.replicas));
  for (let i = 1; i <= 30; i++) await store.set('burst/config', JSON.stringify({ replicas: i, name: 'b' }));
  await waitFor(() => w.value.replicas === 30, 'the last value');
  expect(seen.length).toBeLessThanOrEqual(30);
  expect([...seen].sort((a, b) => a - b)).toEqual(seen);
});
