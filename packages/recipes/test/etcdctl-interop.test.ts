/**
 * Goal: our Mutex and Election share etcd's key layout and queue with the reference etcdctl
 * 3.4 (`etcdctl lock`, `etcdctl elect`, which run etcd's Go concurrency package): when
 * etcdctl holds, we wait; when we hold, etcdctl waits; leadership passes between them, and
 * etcdctl's observer sees our proposals.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord) and /usr/bin/etcdctl run as
 * child processes; "waits" is checked by state (its key is queued under the prefix and it has
 * printed nothing / our promise has not settled), then the holder lets go and the other side
 * proceeds. etcdctl releases on SIGINT.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import { Client } from '@coord/client';
import { Election, Mutex, Session, leaseKeySuffix } from '../src';
import { ETCDCTL_BIN, startServer, type TestServer } from './helpers/server';
import { track, waitFor } from './helpers/util';

let server: TestServer;
let client: Client;
const children: ChildProcessWithoutNullStreams[] = [];

beforeAll(async () => {
  if (!fs.existsSync(ETCDCTL_BIN)) throw new Error(`etcdctl not found at ${ETCDCTL_BIN} (install the etcd-client package)`);
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  client?.close();
  await server?.destroy();
});

interface Ctl {
  child: ChildProcessWithoutNullStreams;
  out(): string;
  exited: Promise<number | null>;
}

function etcdctl(...args: string[]): Ctl {
  const child = spawn(ETCDCTL_BIN, ['--endpoints', server.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  children.push(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function keysUnder(prefix: string) {
  return (await client.getRange({ key: prefix, prefix: true, sortTarget: 'create', sortOrder: 'ascend' })).kvs;
}

describe('lock', () => {
  it('etcdctl holds: our Mutex queues behind it and acquires when etcdctl releases', async () => {
    const ctl = etcdctl('lock', 'interop/lock');
    await waitFor(() => ctl.out().includes('interop/lock/'), 'etcdctl to print its lock key');
    const ctlKey = ctl.out().trim().split('\n')[0];
    // etcdctl's key is exactly our layout: <name>/<lease id in %x>.
    const kv = (await client.get(ctlKey))!;
    expect(ctlKey).toBe(`interop/lock/${leaseKeySuffix(kv.lease)}`);

    const session = await Session.create(client, { ttl: 10 });
    const m = new Mutex(session, 'interop/lock');
    expect(await m.tryLock()).toBe(false);
    const p = track(m.lock());
    await waitFor(async () => (await keysUnder('interop/lock/')).length === 2, 'our key to queue');
    expect(p.settled).toBe(false);
    ctl.child.kill('SIGINT');
    const info = await p.promise;
    expect(info.fencingToken).toBeGreaterThan(kv.createRevision);
    await ctl.exited;
    await m.unlock();
    await session.close();
  });

  it('we hold: etcdctl lock queues behind us and acquires when we unlock', async () => {
    const session = await Session.create(client, { ttl: 10 });
    const m = new Mutex(session, 'interop/lock2');
    await m.lock();
    const ctl = etcdctl('lock', 'interop/lock2');
    await waitFor(async () => (await keysUnder('interop/lock2/')).length === 2, 'etcdctl to queue');
    expect(ctl.out()).toBe('');
    const queued = (await keysUnder('interop/lock2/'))[1];
    await m.unlock();
    await waitFor(() => ctl.out().includes('interop/lock2/'), 'etcdctl to acquire');
    expect(ctl.out().trim()).toBe(queued.keyString());
    ctl.child.kill('SIGINT');
    await ctl.exited;
    await session.close();
  });
});

describe('elect', () => {
  it('etcdctl leads: we see its proposal; we campaign behind it, lead when it resigns, and etcdctl -l sees us', async () => {
    const leader = etcdctl('elect', 'interop/elect', 'from-etcdctl');
    await waitFor(() => leader.out().includes('from-etcdctl'), 'etcdctl to be elected');
    const current = await Election.leader(client, 'interop/elect');
    expect(current?.value).toBe('from-etcdctl');
    expect(current?.key).toBe(`interop/elect/${leaseKeySuffix(current!.leaseId)}`);

    const ac = new AbortController();
    const seen: (string | undefined)[] = [];
    const observing = (async () => {
      for await (const change of Election.observe(client, 'interop/elect', { signal: ac.signal })) seen.push(change.leader?.value);
    })();

    const session = await Session.create(client, { ttl: 10 });
    const e = new Election(session, 'interop/elect');
    const p = track(e.campaign('from-coord'));
    await waitFor(async () => (await keysUnder('interop/elect/')).length === 2, 'our candidacy to queue');
    expect(p.settled).toBe(false);
    const listener = etcdctl('elect', '-l', 'interop/elect');
    await waitFor(() => listener.out().includes('from-etcdctl'), 'etcdctl -l to see the first leader');
    leader.child.kill('SIGINT'); // etcdctl resigns
    await p.promise;
    expect(e.isLeader).toBe(true);
    await waitFor(() => listener.out().includes('from-coord'), 'etcdctl -l to see our proposal');
    await e.proclaim('from-coord-2');
    await waitFor(() => listener.out().includes('from-coord-2'), 'etcdctl -l to see our proclaim');
    await e.resign();
    await waitFor(() => seen[seen.length - 1] === undefined && seen.length > 1, 'our observer to see no leader');
    expect(seen).toEqual(['from-etcdctl', 'from-coord', 'from-coord-2', undefined]);
    ac.abort();
    await observing;
    listener.child.kill('SIGINT');
    await session.close();
  });
});
