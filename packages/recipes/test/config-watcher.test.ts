/**
 * Goal: ConfigWatcher turns a key or a prefix into a typed config: JSON values validated by
 * the caller's parser, atomic snapshots at one revision (a txn over several keys is one
 * change), change events, and an invalid new value (bad JSON, or rejected by the parser)
 * reported as `invalid` while the last good value stays current.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); values are written with a
 * second client and the watcher's events, `current` snapshot and async iteration are checked.
 */
import { Client, op } from '@coord/client';
import { ConfigInvalidError, ConfigWatcher, type ConfigSnapshot } from '../src';
import { startServer, type TestServer } from './helpers/server';
import { waitFor } from './helpers/util';

let server: TestServer;
let client: Client;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  client?.close();
  await server?.destroy();
});

interface AppConfig {
  replicas: number;
  mode: 'fast' | 'safe';
}

/** A hand-written schema: what a zod `.parse` would do. */
function parseApp(v: unknown): AppConfig {
  const o = v as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new Error('config must be an object');
  if (!Number.isInteger(o.replicas) || (o.replicas as number) < 1) throw new Error('replicas must be a positive integer');
  if (o.mode !== 'fast' && o.mode !== 'safe') throw new Error('mode must be fast or safe');
  return { replicas: o.replicas as number, mode: o.mode };
}

function watcher<T>(w: ConfigWatcher<T>) {
  const changes: ConfigSnapshot<T>[] = [];
  const invalid: ConfigInvalidError[] = [];
  w.on('change', (next) => changes.push(next));
  w.on('invalid', (err) => invalid.push(err));
  cleanup.push(() => w.close());
  return { changes, invalid };
}

it('single key: typed value, change events, invalid JSON and schema failures keep the last good value', async () => {
  const r1 = await client.put('cfg/app', JSON.stringify({ replicas: 2, mode: 'fast' }));
  const w = new ConfigWatcher(client, { key: 'cfg/app', parse: parseApp });
  const { changes, invalid } = watcher(w);
  const first = await w.start();
  expect(first.value).toEqual({ replicas: 2, mode: 'fast' });
  expect(first.revision).toBeGreaterThanOrEqual(r1.header.revision);

  const r2 = await client.put('cfg/app', JSON.stringify({ replicas: 3, mode: 'safe' }));
  await waitFor(() => changes.length === 1, 'the change');
  expect(changes[0]).toMatchObject({ value: { replicas: 3, mode: 'safe' }, revision: r2.header.revision });

  const r3 = await client.put('cfg/app', '{"replicas": 4, "mode": ');
  await waitFor(() => invalid.length === 1, 'invalid JSON to be reported');
  expect(invalid[0]).toBeInstanceOf(ConfigInvalidError);
  expect(invalid[0].revision).toBe(r3.header.revision);
  expect(invalid[0].message).toMatch(/does not decode/);
  expect(w.value).toEqual({ replicas: 3, mode: 'safe' });

  await client.put('cfg/app', JSON.stringify({ replicas: 0, mode: 'safe' }));
  await waitFor(() => invalid.length === 2, 'the schema failure to be reported');
  expect(invalid[1].message).toMatch(/replicas must be a positive integer/);
  expect(w.current?.revision).toBe(r2.header.revision);

  // Back to the current good bytes after rejected ones: valid again, but not a change.
  await client.put('cfg/app', JSON.stringify({ replicas: 3, mode: 'safe' }));
  const r6 = await client.put('cfg/app', JSON.stringify({ replicas: 5, mode: 'safe' }));
  await waitFor(() => changes.length >= 2 && changes[changes.length - 1].revision === r6.header.revision, 'the next good value');
  expect(changes.map((c) => c.value.replicas)).toEqual([3, 5]);
  expect(invalid).toHaveLength(2);
  w.close();
});

it('does not report a change for a put of identical bytes', async () => {
  await client.put('cfg/same', '{"replicas":1,"mode":"fast"}');
  const w = new ConfigWatcher(client, { key: 'cfg/same', parse: parseApp });
  const { changes } = watcher(w);
  await w.start();
  await client.put('cfg/same', '{"replicas":1,"mode":"fast"}');
  const last = await client.put('cfg/same', '{"replicas":2,"mode":"fast"}');
  await waitFor(() => changes.length === 1, 'one change');
  expect(changes[0].revision).toBe(last.header.revision);
  w.close();
});

it('prefix: one atomic snapshot per revision, keys relative to the prefix', async () => {
  await client.put('cfgp/db/host', '"a"');
  await client.put('cfgp/db/port', '5432');
  const parse = (v: unknown) => {
    const o = v as Record<string, unknown>;
    if (typeof o['db/host'] !== 'string' || typeof o['db/port'] !== 'number') throw new Error('need db/host and db/port');
    return { host: o['db/host'], port: o['db/port'] };
  };
  const w = new ConfigWatcher(client, { key: 'cfgp/', prefix: true, parse });
  const { changes, invalid } = watcher(w);
  expect((await w.start()).value).toEqual({ host: 'a', port: 5432 });
  // Both keys in one txn: one change, never a half-moved config.
  const t = await client.txn({ success: [op.put('cfgp/db/host', '"b"'), op.put('cfgp/db/port', '6543')] });
  await waitFor(() => changes.length === 1, 'the change');
  expect(changes[0]).toMatchObject({ value: { host: 'b', port: 6543 }, revision: t.header.revision });
  expect(changes[0].raw).toEqual({ 'db/host': 'b', 'db/port': 6543 });
  // Deleting a required key makes the config invalid; the last good one stays.
  await client.delete('cfgp/db/port');
  await waitFor(() => invalid.length === 1, 'the invalid config');
  expect(w.value).toEqual({ host: 'b', port: 6543 });
  w.close();
});

it('an invalid first snapshot rejects start(), or yields the fallback and an invalid event', async () => {
  await client.put('cfg/bad', 'not json');
  const strict = new ConfigWatcher(client, { key: 'cfg/bad', parse: parseApp });
  await expect(strict.start()).rejects.toBeInstanceOf(ConfigInvalidError);

  const lenient = new ConfigWatcher(client, { key: 'cfg/bad', parse: parseApp, fallback: { replicas: 1, mode: 'safe' } });
  const { changes, invalid } = watcher(lenient);
  const first = await lenient.start();
  expect(first).toMatchObject({ value: { replicas: 1, mode: 'safe' }, revision: 0n });
  await waitFor(() => invalid.length === 1, 'the invalid event');
  await client.put('cfg/bad', '{"replicas":2,"mode":"fast"}');
  await waitFor(() => changes.length === 1, 'the first good value');
  expect(lenient.value).toEqual({ replicas: 2, mode: 'fast' });
  lenient.close();
});

it('a missing key reaches the parser as undefined, and changes can be iterated', async () => {
  const w = new ConfigWatcher(client, { key: 'cfg/optional', parse: (v) => (v === undefined ? { replicas: 1, mode: 'safe' as const } : parseApp(v)) });
  cleanup.push(() => w.close());
  expect((await w.start()).value).toEqual({ replicas: 1, mode: 'safe' });
  const it = w[Symbol.asyncIterator]();
  await client.put('cfg/optional', '{"replicas":7,"mode":"fast"}');
  expect((await it.next()).value?.value).toEqual({ replicas: 7, mode: 'fast' });
  await client.delete('cfg/optional');
  expect((await it.next()).value?.value).toEqual({ replicas: 1, mode: 'safe' });
  await it.return?.();
  expect((await it.next()).done).toBe(true);
});
