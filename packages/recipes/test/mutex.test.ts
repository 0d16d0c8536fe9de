/**
 * Goal: Mutex gives mutual exclusion with strictly increasing fencing tokens, queues waiters
 * fairly in create-revision order, wakes only the next waiter on unlock (no thundering herd),
 * stops waiting when its session ends or on timeout/abort (removing its queued key), and
 * reports a held lock as lost when the session is lost or the key deleted, before anybody
 * else can acquire it.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); each contender has its
 * own session (and, where calls are counted, its own instrumented client). Critical sections
 * record their token and monotonic start/end times and do a read-modify-write of a counter
 * guarded by `txnIfOwner`; the checks are on those records and on the store, never on speed.
 */
import { Client, compare, op, type WatchOptions } from '@coord/client';
import {
  AbortError,
  KeyInUseError,
  LockLostError,
  Mutex,
  NotLockedError,
  Session,
  SessionClosedError,
  SessionExpiredError,
  WaitTimeoutError,
  leaseKeySuffix,
} from '../src';
import { startProxy } from './helpers/proxy';
import { startServer, type TestServer } from './helpers/server';
import { instrumentedClient, now, sleep, track, waitFor, type ClientStats } from './helpers/util';

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

async function session(ttl = 10, c: Client = client): Promise<Session> {
  const s = await Session.create(c, { ttl });
  cleanup.push(() => s.close());
  return s;
}

async function keysUnder(prefix: string) {
  return (await client.getRange({ key: prefix, prefix: true, sortTarget: 'create', sortOrder: 'ascend' })).kvs;
}

interface Section {
  who: string;
  token: bigint;
  start: bigint;
  end: bigint;
}

/** No two sections overlap, and tokens strictly increase in the order sections ran. */
function expectExclusive(sections: Section[]): void {
  const sorted = [...sections].sort((a, b) => (a.start < b.start ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    expect(sorted[i].start).toBeGreaterThan(sorted[i - 1].end);
    expect(sorted[i].token).toBeGreaterThan(sorted[i - 1].token);
  }
}

describe('layout', () => {
  it('uses etcd\'s key layout <name>/<lease %x> with an empty value and the session lease', async () => {
    const s = await session();
    const m = new Mutex(s, 'layout/lock');
    const info = await m.lock();
    expect(info.key).toBe(`layout/lock/${s.leaseId.toString(16)}`);
    expect(leaseKeySuffix(s.leaseId)).toBe(s.leaseId.toString(16));
    const kv = (await client.get(info.key))!;
    expect(kv.value.length).toBe(0);
    expect(kv.lease).toBe(s.leaseId);
    expect(info.fencingToken).toBe(kv.createRevision);
    expect(m.fencingToken).toBe(kv.createRevision);
    expect(m.held).toBe(true);
    await m.unlock();
    expect(m.held).toBe(false);
    expect(m.fencingToken).toBeUndefined();
    expect(await client.get(info.key)).toBeUndefined();
  });

  it('refuses a second Mutex object of the same session and name while the first uses the key', async () => {
    const s = await session();
    const a = new Mutex(s, 'layout/twice');
    const b = new Mutex(s, 'layout/twice');
    await a.lock();
    await expect(b.lock()).rejects.toBeInstanceOf(KeyInUseError);
    await a.unlock();
    await b.lock();
    await b.unlock();
  });
});

describe('mutual exclusion', () => {
  it('many contenders in one process: sections never overlap, tokens strictly increase, guarded writes all succeed', async () => {
    const contenders = 8;
    const rounds = 4;
    const sections: Section[] = [];
    await client.put('mx/counter', '0');
    const run = async (i: number) => {
      const m = new Mutex(await session(), 'mx/lock');
      for (let r = 0; r < rounds; r++) {
        await m.withLock(async ({ fencingToken }) => {
          const start = now();
          const n = Number((await client.get('mx/counter'))!.valueString());
          await sleep(Math.random() * 5);
          // The write is fenced twice: by ownership (the lock key's create revision) and by
          // the counter's own value, like a storage system that checks what it was given.
          const res = await m.txnIfOwner([op.put('mx/counter', String(n + 1))], { compare: [compare.value('mx/counter', '=', String(n))] });
          expect(res.succeeded).toBe(true);
          sections.push({ who: `c${i}`, token: fencingToken, start, end: now() });
        });
      }
    };
    await Promise.all(Array.from({ length: contenders }, (_, i) => run(i)));
    expect(sections).toHaveLength(contenders * rounds);
    expectExclusive(sections);
    expect((await client.get('mx/counter'))!.valueString()).toBe(String(contenders * rounds));
    expect(await keysUnder('mx/lock/')).toHaveLength(0);
  });

  it('tryLock() succeeds only when nobody holds or waits, and leaves no key behind when it fails', async () => {
    const a = new Mutex(await session(), 'try/lock');
    const b = new Mutex(await session(), 'try/lock');
    expect(await a.tryLock()).toBe(true);
    expect(await b.tryLock()).toBe(false);
    expect(b.held).toBe(false);
    expect((await keysUnder('try/lock/')).map((kv) => kv.keyString())).toEqual([a.key]);
    await a.unlock();
    expect(await b.tryLock()).toBe(true);
    await b.unlock();
  });
});

describe('queue', () => {
  it('is fair: waiters acquire in the order they queued (create revision)', async () => {
    const holder = new Mutex(await session(), 'fair/lock');
    await holder.lock();
    const order: string[] = [];
    const waiters = await Promise.all(['w1', 'w2', 'w3', 'w4'].map(async (name) => ({ name, m: new Mutex(await session(), 'fair/lock') })));
    const done: Promise<void>[] = [];
    for (const [i, { name, m }] of waiters.entries()) {
      done.push(
        m.lock().then(async () => {
          order.push(name);
          await sleep(2);
          await m.unlock();
        }),
      );
      // Queue them one after the other, so their create revisions are in this order.
      await waitFor(async () => (await keysUnder('fair/lock/')).length === i + 2, `${name} to queue`);
    }
    await holder.unlock();
    await Promise.all(done);
    expect(order).toEqual(['w1', 'w2', 'w3', 'w4']);
  });

  it('wakes only the next waiter: each waiter watches its predecessor only, and re-reads only when woken', async () => {
    const n = 6;
    const made: { m: Mutex; stats: ClientStats; c: Client }[] = [];
    const holderC = instrumentedClient(server.endpoint);
    cleanup.push(() => holderC.client.close());
    const holder = new Mutex(await session(10, holderC.client), 'herd/lock');
    await holder.lock();
    const acquired: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const { client: c, stats } = instrumentedClient(server.endpoint);
      cleanup.push(() => c.close());
      const m = new Mutex(await session(10, c), 'herd/lock');
      made.push({ m, stats, c });
      acquired.push(m.lock());
      await waitFor(() => stats.watches.length === 1, `waiter ${i} to watch`);
      // It watches exactly its predecessor's key.
      expect(stats.watches[0]).toBe(i === 0 ? holder.key : made[i - 1].m.key);
      expect(stats.ranges).toBe(1);
    }
    // Every unlock wakes one waiter; the rest stay silent.
    await holder.unlock();
    for (let i = 0; i < n; i++) {
      await acquired[i];
      for (let j = i + 1; j < n; j++) {
        expect(made[j].stats.watches).toHaveLength(1);
        expect(made[j].stats.ranges).toBe(1);
      }
      await made[i].m.unlock();
    }
    // Each waiter: one predecessor watch + one watch of its own key while holding; one read to
    // queue, one after its wake-up, one to confirm its key.
    for (const { m, stats } of made) {
      expect(stats.watches).toEqual([expect.any(String), m.key]);
      expect(stats.ranges).toBe(3);
    }
  });

  it('when a waiter in the middle gives up, only its successor re-reads and watches the new predecessor', async () => {
    const holder = new Mutex(await session(), 'leave/lock');
    await holder.lock();
    const ws: { m: Mutex; stats: ClientStats; ac: AbortController; p: Promise<unknown> }[] = [];
    for (let i = 0; i < 3; i++) {
      const { client: c, stats } = instrumentedClient(server.endpoint);
      cleanup.push(() => c.close());
      const m = new Mutex(await session(10, c), 'leave/lock');
      const ac = new AbortController();
      const p = m.lock({ signal: ac.signal });
      p.catch(() => undefined);
      ws.push({ m, stats, ac, p });
      await waitFor(() => stats.watches.length === 1, `waiter ${i} to watch`);
    }
    ws[1].ac.abort();
    await expect(ws[1].p).rejects.toBeInstanceOf(AbortError);
    // Its key is removed, so its successor moves on to watch the first waiter.
    await waitFor(() => ws[2].stats.watches.length === 2, 'the successor to watch again');
    expect(ws[2].stats.watches[1]).toBe(ws[0].m.key);
    expect(ws[0].stats.watches).toHaveLength(1);
    expect((await keysUnder('leave/lock/')).map((kv) => kv.keyString())).toEqual([holder.key, ws[0].m.key, ws[2].m.key]);
    await holder.unlock();
    await ws[0].p;
    await ws[0].m.unlock();
    await ws[2].p;
    await ws[2].m.unlock();
  });
});

describe('waiting ends', () => {
  it('with WaitTimeoutError after timeoutMs, and with AbortError on abort, removing the queued key', async () => {
    const holder = new Mutex(await session(), 'wait/lock');
    await holder.lock();
    const m = new Mutex(await session(), 'wait/lock');
    await expect(m.lock({ timeoutMs: 200 })).rejects.toBeInstanceOf(WaitTimeoutError);
    expect(m.state).toBe('idle');
    expect(await keysUnder('wait/lock/')).toHaveLength(1);
    const ac = new AbortController();
    const p = m.lock({ signal: ac.signal });
    await waitFor(async () => (await keysUnder('wait/lock/')).length === 2, 'the waiter to queue');
    ac.abort(new Error('stop'));
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(await keysUnder('wait/lock/')).toHaveLength(1);
    await holder.unlock();
  });

  it('with the session\'s error when the session expires or closes meanwhile', async () => {
    const holder = new Mutex(await session(), 'sess/lock');
    await holder.lock();
    const s1 = await session(2);
    const m1 = new Mutex(s1, 'sess/lock');
    const p1 = m1.lock();
    await waitFor(async () => (await keysUnder('sess/lock/')).length === 2, 'the waiter to queue');
    await client.leaseRevoke(s1.leaseId);
    await expect(p1).rejects.toBeInstanceOf(SessionExpiredError);

    const s2 = await session(5);
    const m2 = new Mutex(s2, 'sess/lock');
    const p2 = m2.lock();
    await waitFor(async () => (await keysUnder('sess/lock/')).length === 2, 'the second waiter to queue');
    await s2.close();
    await expect(p2).rejects.toBeInstanceOf(SessionClosedError);
    expect((await keysUnder('sess/lock/')).map((kv) => kv.keyString())).toEqual([holder.key]);
    await holder.unlock();
  });
});

describe('losing a held lock', () => {
  it('lease revoked from outside: lost fires, guarded writes fail, and the next contender acquires only after', async () => {
    const sa = await session(3);
    const a = new Mutex(sa, 'lost/lock');
    const info = await a.lock();
    const b = new Mutex(await session(), 'lost/lock');
    const log: string[] = [];
    a.on('lost', (err) => log.push(`a lost: ${err.reason}`));
    const pb = b.lock().then((i) => {
      log.push('b acquired');
      return i;
    });
    await waitFor(async () => (await keysUnder('lost/lock/')).length === 2, 'b to queue');
    await client.leaseRevoke(sa.leaseId);
    const bInfo = await pb;
    expect(log[0]).toMatch(/^a lost: (key-deleted|session-lost)$/);
    expect(log[1]).toBe('b acquired');
    expect(info.signal.aborted).toBe(true);
    expect(info.signal.reason).toBeInstanceOf(LockLostError);
    expect(a.held).toBe(false);
    expect(() => a.isOwner()).toThrow(NotLockedError);
    // A txn guarded by a's old ownership fails on the server.
    const stale = await client.txn({ compare: [compare.create(info.key, '=', info.fencingToken)] });
    expect(stale.succeeded).toBe(false);
    expect(bInfo.fencingToken).toBeGreaterThan(info.fencingToken);
    await b.unlock();
  });

  it('holder partitioned from the server: its lost fires before anybody else acquires', async () => {
    const proxy = await startProxy(server.endpoint);
    const cut = new Client({ endpoints: [proxy.endpoint], callTimeoutMs: 1000 });
    cleanup.push(async () => {
      cut.close();
      await proxy.close();
    });
    const a = new Mutex(await Session.create(cut, { ttl: 2 }), 'part/lock');
    const info = await a.lock();
    const b = new Mutex(await session(), 'part/lock');
    let lostAt: bigint | undefined;
    a.on('lost', () => (lostAt = now()));
    const pb = b.lock();
    await waitFor(async () => (await keysUnder('part/lock/')).length === 2, 'b to queue');
    proxy.cut();
    const bInfo = await pb;
    const acquiredAt = now();
    expect(lostAt).toBeDefined();
    expect(lostAt!).toBeLessThan(acquiredAt);
    expect(info.signal.reason).toMatchObject({ reason: 'session-lost' });
    expect(bInfo.fencingToken).toBeGreaterThan(info.fencingToken);
    await b.unlock();
  });

  it('key deleted by an operator: lost fires with reason key-deleted; withLock then rejects', async () => {
    const m = new Mutex(await session(), 'del/lock');
    const outcome = m.withLock(async ({ key, signal }) => {
      await client.delete(key);
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return 'done';
    });
    await expect(outcome).rejects.toMatchObject({ name: 'LockLostError', reason: 'key-deleted' });
    expect(m.lostReason?.reason).toBe('key-deleted');
    expect(m.held).toBe(false);
  });

  it('txnIfOwner reports and records a loss the holder had not noticed yet', async () => {
    // A client whose watch of the lock key never reports anything: the holder cannot notice
    // the delete by itself, as when the notification is delayed.
    const deaf = new Client({ endpoints: [server.endpoint] });
    cleanup.push(() => deaf.close());
    const watch = deaf.watch.bind(deaf);
    deaf.watch = (o: WatchOptions) => watch({ ...o, key: 'txn/nothing', prefix: false, rangeEnd: undefined });
    const m = new Mutex(await session(10, deaf), 'txn/lock');
    const info = await m.lock();
    expect((await m.txnIfOwner([op.put('txn/data', '1')])).succeeded).toBe(true);
    // Replace the key behind the holder's back: same name, new create revision.
    await client.delete(info.key);
    await client.put(info.key, '');
    expect(m.held).toBe(true);
    const res = await m.txnIfOwner([op.put('txn/data', '2')]);
    expect(res.succeeded).toBe(false);
    expect(m.held).toBe(false);
    expect(m.lostReason?.reason).toBe('key-deleted');
    expect((await client.get('txn/data'))!.valueString()).toBe('1');
    await client.delete(info.key);
  });
});

describe('withLock', () => {
  it('releases the lock when fn throws, and passes the error through', async () => {
    const m = new Mutex(await session(), 'with/lock');
    await expect(
      m.withLock(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(m.held).toBe(false);
    expect(await keysUnder('with/lock/')).toHaveLength(0);
    expect(await m.withLock(({ fencingToken }) => typeof fencingToken)).toBe('bigint');
  });

  it('refuses lock() while already locking or holding', async () => {
    const m = new Mutex(await session(), 'busy/lock');
    await m.lock();
    await expect(m.lock()).rejects.toThrow(/already locking/);
    await m.unlock();
    await m.unlock(); // no-op
    const t = track(m.lock());
    await t.promise;
    await m.unlock();
  });
});

describe('a clean unlock is not a loss', () => {
  // The hold's own watch sees our delete; it must read it as a release (hold.beginRelease).
  test('unlock and resign raise no lost event and leave no lost reason', async () => {
    const s = await session();
    const m = new Mutex(s, 'clean-unlock');
    const lost: unknown[] = [];
    m.on('lost', (e) => lost.push(e));
    for (let i = 0; i < 3; i++) {
      await m.lock();
      await m.unlock();
    }
    await sleep(300); // let the watch deliver the deletes
    expect(lost).toEqual([]);
  });
});
