/**
 * Goal: ServiceRegistry stores instances at `/coord/services/<service>/<id>` as the documented
 * JSON, bound to a session lease, so an instance whose process dies vanishes within its TTL and
 * watchers see it go; `watch()` is list-then-watch with no gap and no duplicate and recovers
 * from compaction by re-listing; the pickers rotate or pick at random over the live set.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord). The dying instance is a
 * child process (fixtures/register-worker.js, the built package) killed with SIGKILL. The
 * no-gap/no-duplicate check races many registrations against a starting watcher and compares
 * the watcher's final set, built only from its own events, with a fresh `discover()`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, type GetRangeOptions } from '@coord/client';
import { Picker, RegistrationLostError, ServiceRegistry, Session, type ServiceChange } from '../src';
import { startServer, type TestServer } from './helpers/server';
import { now, waitFor } from './helpers/util';

const WORKER = path.join(__dirname, 'fixtures', 'register-worker.js');
const DIST = path.resolve(__dirname, '../dist/index.js');

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

function registry(c: Client = client, ttl = 10): ServiceRegistry {
  const r = new ServiceRegistry(c, { ttl });
  cleanup.push(() => r.close());
  return r;
}

/** Collect a watch's changes until stopped. */
function follow(r: ServiceRegistry, service: string) {
  const ac = new AbortController();
  const changes: ServiceChange[] = [];
  let relists = 0;
  const done = (async () => {
    for await (const c of r.watch(service, { signal: ac.signal, onRelist: () => relists++ })) changes.push(c);
  })();
  cleanup.push(() => ac.abort());
  return {
    changes,
    relists: () => relists,
    ids: () => (changes.length ? changes[changes.length - 1].instances.map((i) => i.id) : []),
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

it('stores the documented JSON at /coord/services/<service>/<id> with the session lease', async () => {
  const r = registry();
  const reg = await r.register({ service: 'api', id: 'a1', address: '10.0.0.7', port: 8080, metadata: { zone: 'eu-1' } });
  expect(reg.key).toBe('/coord/services/api/a1');
  const kv = (await client.get('/coord/services/api/a1'))!;
  expect(kv.valueString()).toBe('{"service":"api","id":"a1","address":"10.0.0.7","port":8080,"metadata":{"zone":"eu-1"}}');
  expect(kv.lease).toBe(reg.session.leaseId);
  const found = await r.discover('api');
  expect(found.instances).toEqual([
    expect.objectContaining({ service: 'api', id: 'a1', address: '10.0.0.7', port: 8080, metadata: { zone: 'eu-1' }, key: reg.key, leaseId: reg.session.leaseId }),
  ]);
  expect(found.revision).toBeGreaterThanOrEqual(kv.modRevision);
  await reg.deregister();
  expect((await r.discover('api')).instances).toEqual([]);
  expect(() => r.keyOf('a/b', 'x')).toThrow(TypeError);
  await expect(r.register({ service: 'api', id: 'x', address: 'h', port: 70000 })).rejects.toThrow(TypeError);
});

it('watch: a snapshot, then added/updated/removed; registry.close() deregisters everything', async () => {
  const r = registry();
  await r.register({ service: 'web', id: 'w1', address: 'h1', port: 1 });
  const w = follow(r, 'web');
  await waitFor(() => w.changes.length === 1, 'the snapshot');
  expect(w.changes[0]).toMatchObject({ type: 'snapshot', instances: [expect.objectContaining({ id: 'w1' })] });
  const other = registry();
  await other.register({ service: 'web', id: 'w2', address: 'h2', port: 2 });
  await other.register({ service: 'web', id: 'w2', address: 'h2', port: 3 });
  await other.close();
  await waitFor(() => w.changes.length === 4, 'three changes');
  expect(w.changes.slice(1).map((c) => [c.type, c.type === 'snapshot' ? '' : `${c.instance.id}:${c.instance.port}`])).toEqual([
    ['added', 'w2:2'],
    ['updated', 'w2:3'],
    ['removed', 'w2:3'],
  ]);
  expect(w.ids()).toEqual(['w1']);
  await w.stop();
});

it('list-then-watch has no gap and no duplicate while registrations race the watcher\'s start', async () => {
  const r = registry();
  const ops: Promise<unknown>[] = [];
  let w: ReturnType<typeof follow> | undefined;
  for (let i = 0; i < 40; i++) {
    ops.push(r.register({ service: 'race', id: `i${i}`, address: 'h', port: i }).then((reg) => (i % 3 === 0 ? reg.deregister() : undefined)));
    if (i === 10) w = follow(r, 'race');
  }
  await Promise.all(ops);
  const truth = (await r.discover('race')).instances.map((i) => i.id);
  await waitFor(() => JSON.stringify(w!.ids()) === JSON.stringify(truth), 'the watcher to converge');
  // Every change is at a revision after the previous one (no duplicate, nothing replayed),
  // and the set built from the watcher's own changes equals the store's.
  const revs = w!.changes.map((c) => c.revision);
  for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThanOrEqual(revs[i - 1]);
  const seen = new Set<string>();
  for (const c of w!.changes.slice(1)) {
    if (c.type === 'snapshot') continue;
    const tag = `${c.type}:${c.instance.id}:${c.revision}`;
    expect(seen.has(tag)).toBe(false);
    seen.add(tag);
  }
  await w!.stop();
});

it('re-lists after the watch history was compacted and reports what changed meanwhile', async () => {
  const hooked = new Client({ endpoints: [server.endpoint] });
  cleanup.push(() => hooked.close());
  const r = registry();
  await r.register({ service: 'cmp', id: 'old', address: 'h', port: 1 });
  const getRange = hooked.getRange.bind(hooked);
  let first = true;
  hooked.getRange = async (o: GetRangeOptions) => {
    const res = await getRange(o);
    if (first) {
      first = false;
      // Between the watcher's list and its watch: changes, then a compaction past them.
      await r.register({ service: 'cmp', id: 'new', address: 'h', port: 2 });
      await r.deregister('cmp', 'old');
      await client.compact((await client.put('cmp/filler', 'x')).header.revision);
    }
    return res;
  };
  const w = follow(new ServiceRegistry(hooked), 'cmp');
  await waitFor(() => w.ids().join() === 'new', 'the re-listed set');
  expect(w.relists()).toBe(1);
  expect(w.changes.map((c) => (c.type === 'snapshot' ? 'snapshot' : `${c.type}:${c.instance.id}`)).sort()).toEqual(['added:new', 'removed:old', 'snapshot']);
  await w.stop();
});

it('an instance whose process is killed (-9) vanishes within its TTL, and watchers see it go', async () => {
  if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: run npm run build first`);
  const r = registry();
  const w = follow(r, 'mortal');
  await waitFor(() => w.changes.length === 1, 'the snapshot');
  const ttl = 2;
  const child = spawn(process.execPath, [WORKER, server.endpoint, 'mortal', 'm1', '9000', String(ttl)], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor(() => out.includes('registered /coord/services/mortal/m1'), 'the child to register');
  await waitFor(() => w.ids().join() === 'm1', 'the watcher to see it');
  const entry = (await r.discover('mortal')).instances[0];
  expect(entry.metadata.pid).toBe(String(child.pid));
  // Heartbeats keep it registered past its TTL while the process lives.
  const before = now();
  await waitFor(() => now() - before > BigInt(ttl * 1000 + 500) * 1_000_000n, 'one TTL to pass', 5000);
  expect((await r.discover('mortal')).instances.map((i) => i.id)).toEqual(['m1']);
  const killedAt = now();
  child.kill('SIGKILL');
  // The server expires the lease one TTL after the last keep-alive (it checks every 500 ms).
  await waitFor(() => w.ids().length === 0, 'the watcher to see it removed', ttl * 1000 + 3000);
  const goneAfterMs = Number((now() - killedAt) / 1_000_000n);
  expect(goneAfterMs).toBeLessThanOrEqual(ttl * 1000 + 3000);
  expect(w.changes[w.changes.length - 1]).toMatchObject({ type: 'removed', instance: { id: 'm1' } });
  expect((await r.discover('mortal')).instances).toEqual([]);
  await w.stop();
});

it('a registration is lost (event and signal) when its session is lost', async () => {
  const s = await Session.create(client, { ttl: 3 });
  cleanup.push(() => s.close());
  const r = new ServiceRegistry(client, { session: s });
  const reg = await r.register({ service: 'lose', id: 'l1', address: 'h', port: 1 });
  const lost = new Promise<RegistrationLostError>((resolve) => reg.once('lost', resolve));
  await client.leaseRevoke(s.leaseId);
  const err = await lost;
  expect(err).toBeInstanceOf(RegistrationLostError);
  expect(reg.active).toBe(false);
  expect(reg.signal.aborted).toBe(true);
});

describe('pickers', () => {
  it('round-robin rotates over the set in key order and keeps rotating across updates', () => {
    const p = new Picker<string>('round-robin');
    expect(p.pick()).toBeUndefined();
    p.update(['c', 'a', 'b']);
    expect([p.pick(), p.pick(), p.pick(), p.pick()]).toEqual(['a', 'b', 'c', 'a']);
    p.update(['a', 'b', 'c', 'd']);
    expect([p.pick(), p.pick(), p.pick()]).toEqual(['b', 'c', 'd']);
  });

  it('random picks with the injected source of randomness', () => {
    const draws = [0, 0.99, 0.5];
    const p = new Picker<string>('random', (s) => s, () => draws.shift()!);
    p.update(['x', 'y', 'z']);
    expect([p.pick(), p.pick(), p.pick()]).toEqual(['x', 'z', 'y']);
  });

  it('a live picker follows registrations', async () => {
    const r = registry();
    const a = await r.register({ service: 'pick', id: 'p1', address: 'h1', port: 1 });
    const lp = r.picker('pick');
    cleanup.push(() => lp.close());
    await lp.ready();
    expect(lp.pick()?.id).toBe('p1');
    await r.register({ service: 'pick', id: 'p2', address: 'h2', port: 2 });
    await waitFor(() => lp.instances.length === 2, 'the picker to see p2');
    const picks = new Set([lp.pick()?.id, lp.pick()?.id]);
    expect([...picks].sort()).toEqual(['p1', 'p2']);
    await a.deregister();
    await waitFor(() => lp.instances.length === 1, 'the picker to drop p1');
    expect(lp.pick()?.id).toBe('p2');
    lp.close();
  });
});
