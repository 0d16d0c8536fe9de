/**
 * Goal: RedisMutex gives mutual exclusion with strictly increasing fencing tokens under many
 * contending clients, queues waiters fairly (arrival order), wakes only the next waiter on
 * unlock and never polls in a loop, stops waiting on timeout/abort/session end (leaving the
 * queue), and reports a held lock as lost when its session is lost before anybody else can
 * acquire it.
 * Method: a real redis-server started by this file on a free loopback port. Each contender
 * has its own ioredis client and session. Critical sections record their token and monotonic
 * start/end times and do a read-modify-write of a counter guarded by `evalIfOwner`; the checks
 * are on those records and on Redis' state, never on speed. Script calls are counted by
 * wrapping the per-connection command ioredis defines.
 */
import type { Redis } from 'ioredis';
import { AbortError, KeyInUseError, LockLostError, NotLockedError, SessionClosedError, SessionExpiredError, WaitTimeoutError } from '../../src';
import { RedisMutex, RedisSession } from '../../src/redis';
import { now, startRedis, waitFor, type TestRedis } from './helpers/redis-server';

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

async function session(ttl = 10, client: Redis = server.client()): Promise<RedisSession> {
  const s = await RedisSession.create(client, { ttl });
  cleanup.push(() => s.close());
  return s;
}

/** Count the acquire-script calls a client makes (ioredis defines it on the instance). */
function countAcquires(client: Redis): { calls: number } {
  const counter = { calls: 0 };
  const holder = client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const original = holder.coordQAcquire;
  if (typeof original !== 'function') throw new Error('coordQAcquire not defined yet: create a mutex and lock once first');
  holder.coordQAcquire = function (this: unknown, ...args: unknown[]) {
    counter.calls++;
    return original.apply(this, args);
  };
  return counter;
}

interface Section {
  who: string;
  token: bigint;
  start: bigint;
  end: bigint;
}

function expectExclusive(sections: Section[]): void {
  const sorted = [...sections].sort((a, b) => (a.start < b.start ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    expect(sorted[i].start).toBeGreaterThan(sorted[i - 1].end);
    expect(sorted[i].token).toBeGreaterThan(sorted[i - 1].token);
  }
}

describe('mutual exclusion', () => {
  it('many contending clients: sections never overlap, tokens strictly increase, guarded writes all succeed', async () => {
    const clients = 8;
    const rounds = 5;
    const sections: Section[] = [];
    await admin.set('counter', '0');
    const incr = `local v = tonumber(redis.call('GET', KEYS[1])) + 1
redis.call('SET', KEYS[1], v)
return v`;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const s = await session(5);
        const m = new RedisMutex(s, 'mx/many');
        for (let r = 0; r < rounds; r++) {
          await m.withLock(async ({ fencingToken }) => {
            const start = now();
            // read-modify-write across an await: only safe under the lock
            const res = await m.evalIfOwner(incr, ['counter']);
            expect(res.succeeded).toBe(true);
            await new Promise((r) => setImmediate(r));
            sections.push({ who: `c${c}`, token: fencingToken, start, end: now() });
          });
        }
      }),
    );
    expect(sections).toHaveLength(clients * rounds);
    expectExclusive(sections);
    expect(await admin.get('counter')).toBe(String(clients * rounds));
    expect(await admin.zcard('coord:mutex:{mx/many}:queue')).toBe(0);
    expect(await admin.exists('coord:mutex:{mx/many}:holder')).toBe(0);
  });

  it('tryLock() succeeds only when nobody holds or waits, and leaves nothing queued when it fails', async () => {
    const a = new RedisMutex(await session(), 'mx/try');
    const b = new RedisMutex(await session(), 'mx/try');
    expect(await a.tryLock()).toBe(true);
    expect(await b.tryLock()).toBe(false);
    expect(await admin.zcard('coord:mutex:{mx/try}:queue')).toBe(0);
    expect(b.state).toBe('idle');
    await a.unlock();
    expect(await b.tryLock()).toBe(true);
    expect(b.fencingToken).toBeGreaterThan(0n);
    await b.unlock();
  });

  it('one session cannot use the same lock twice (KeyInUseError), and a held mutex refuses lock()', async () => {
    const s = await session();
    const a = new RedisMutex(s, 'mx/claim');
    const b = new RedisMutex(s, 'mx/claim');
    await a.lock();
    await expect(b.lock()).rejects.toBeInstanceOf(KeyInUseError);
    await expect(a.lock()).rejects.toThrow(/already locking/);
    await a.unlock();
    await b.lock();
    await b.unlock();
  });
});

describe('queue', () => {
  it('is fair: waiters acquire in the order they queued', async () => {
    const holder = new RedisMutex(await session(), 'mx/fifo');
    await holder.lock();
    const order: number[] = [];
    const waiters: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      const m = new RedisMutex(await session(), 'mx/fifo');
      waiters.push(m.withLock(() => void order.push(i)));
      // queued before the next one starts
      await waitFor(async () => (await admin.zcard('coord:mutex:{mx/fifo}:queue')) === i + 1, `waiter ${i} queued`);
    }
    await holder.unlock();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('an unlock wakes only the next waiter, and waiters do not poll while the holder is alive', async () => {
    const holder = new RedisMutex(await session(10), 'mx/herd');
    await holder.lock();
    const waiters: { m: RedisMutex; counter: { calls: number }; p: Promise<unknown> }[] = [];
    for (let i = 0; i < 4; i++) {
      const client = server.client();
      const s = await session(10, client);
      // define the scripts on this client, then count
      const probe = new RedisMutex(s, 'mx/herd-probe');
      await probe.lock();
      await probe.unlock();
      const counter = countAcquires(client);
      const m = new RedisMutex(s, 'mx/herd');
      waiters.push({ m, counter, p: m.lock() });
    }
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/herd}:queue')) === 4, 'all queued');
    // Each waiter: one call before subscribing, one after. Then silence while the holder lives.
    await waitFor(() => waiters.every((w) => w.counter.calls === 2), 'each waiter checked twice');
    await new Promise((r) => setTimeout(r, 500));
    expect(waiters.map((w) => w.counter.calls)).toEqual([2, 2, 2, 2]);
    await holder.unlock();
    await waiters[0].p;
    // the first waiter was handed the lock and woke; nobody else ran the script
    expect(waiters.map((w) => w.counter.calls)).toEqual([3, 2, 2, 2]);
    await waiters[0].m.unlock();
    await waiters[1].p;
    expect(waiters.map((w) => w.counter.calls)).toEqual([3, 3, 2, 2]);
    await waiters[1].m.unlock();
    await waiters[2].p;
    await waiters[2].m.unlock();
    await waiters[3].p;
    await waiters[3].m.unlock();
  });
});

describe('waiting ends', () => {
  it('with WaitTimeoutError after timeoutMs, and with AbortError on abort, leaving the queue', async () => {
    const holder = new RedisMutex(await session(), 'mx/timeout');
    await holder.lock();
    const w = new RedisMutex(await session(), 'mx/timeout');
    await expect(w.lock({ timeoutMs: 200 })).rejects.toBeInstanceOf(WaitTimeoutError);
    expect(w.state).toBe('idle');
    expect(await admin.zcard('coord:mutex:{mx/timeout}:queue')).toBe(0);
    const ac = new AbortController();
    const p = w.lock({ signal: ac.signal });
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/timeout}:queue')) === 1, 'queued');
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(await admin.zcard('coord:mutex:{mx/timeout}:queue')).toBe(0);
    await holder.unlock();
    expect(await admin.exists('coord:mutex:{mx/timeout}:holder')).toBe(0);
  });

  it("with the session's error when the session is closed or expires meanwhile", async () => {
    const holder = new RedisMutex(await session(), 'mx/session-end');
    await holder.lock();
    const s1 = await session();
    const p1 = new RedisMutex(s1, 'mx/session-end').lock();
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/session-end}:queue')) === 1, 'queued');
    await s1.close();
    await expect(p1).rejects.toBeInstanceOf(SessionClosedError);
    expect(await admin.zcard('coord:mutex:{mx/session-end}:queue')).toBe(0);

    const s2 = await session(1);
    const p2 = new RedisMutex(s2, 'mx/session-end').lock();
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/session-end}:queue')) === 1, 'queued');
    s2.pauseHeartbeats(true);
    await expect(p2).rejects.toBeInstanceOf(SessionExpiredError);
    await holder.unlock();
  });
});

describe('losing a held lock', () => {
  it('heartbeats stop: lost fires before the next contender acquires, and guarded writes fail', async () => {
    const s = await session(1);
    const a = new RedisMutex(s, 'mx/lost');
    const info = await a.lock();
    let lostAt: bigint | undefined;
    let lostErr: unknown;
    a.on('lost', (err) => {
      lostAt = now();
      lostErr = err;
    });
    const b = new RedisMutex(await session(5), 'mx/lost');
    const pb = b.lock().then((i) => ({ at: now(), token: i.fencingToken }));
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/lost}:queue')) === 1, 'b queued');
    s.pauseHeartbeats(true); // what a GC pause or a partition looks like to Redis
    const got = await pb;
    expect(lostAt).toBeDefined();
    expect(got.at).toBeGreaterThan(lostAt!);
    expect(lostErr).toBeInstanceOf(LockLostError);
    expect((lostErr as LockLostError).reason).toBe('session-lost');
    expect(info.signal.aborted).toBe(true);
    expect(got.token).toBeGreaterThan(info.fencingToken);
    expect(a.held).toBe(false);
    await expect(a.evalIfOwner('return 1')).rejects.toBeInstanceOf(NotLockedError);
    await b.unlock();
  });

  it('session key deleted (a revoke): lost fires at the next heartbeat with reason session-lost', async () => {
    const s = await session(3);
    const a = new RedisMutex(s, 'mx/revoked');
    await a.lock();
    const lost = new Promise<LockLostError>((resolve) => a.once('lost', resolve));
    await admin.del(s.key);
    const err = await lost;
    expect(err.reason).toBe('session-lost');
    expect(s.state).toBe('lost');
  });

  it('holder record deleted by an operator: a guarded write fails and declares the lock lost (key-deleted)', async () => {
    const s = await session(10);
    const a = new RedisMutex(s, 'mx/deleted');
    const info = await a.lock();
    await admin.del(a.key);
    const res = await a.evalIfOwner(`return redis.call('SET', KEYS[1], ARGV[1])`, ['guarded'], ['x']);
    expect(res.succeeded).toBe(false);
    expect(await admin.exists('guarded')).toBe(0);
    expect(info.signal.aborted).toBe(true);
    expect((info.signal.reason as LockLostError).reason).toBe('key-deleted');
    expect(a.lostReason?.reason).toBe('key-deleted');
  });

  it('holder record deleted by an operator: the next heartbeat notices (lost, key-deleted)', async () => {
    const s = await session(2);
    const a = new RedisMutex(s, 'mx/deleted-hb');
    await a.lock();
    const lost = new Promise<LockLostError>((resolve) => a.once('lost', resolve));
    await admin.del(a.key);
    expect((await lost).reason).toBe('key-deleted');
    expect(s.alive).toBe(true);
  });

  it('a holder that crashes (no release, no heartbeats) is replaced once its session key expires, not before', async () => {
    const s = await session(1);
    const a = new RedisMutex(s, 'mx/crash');
    const info = await a.lock();
    const b = new RedisMutex(await session(5), 'mx/crash');
    const pb = b.lock();
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/crash}:queue')) === 1, 'b queued');
    s.orphan(); // stops heartbeats, releases nothing
    let expiredAt: bigint | undefined;
    void waitFor(async () => (await admin.exists(s.key)) === 0, 'session key expired', 5000).then(() => (expiredAt = now()));
    const got = await pb;
    const gotAt = now();
    expect(await admin.exists(s.key)).toBe(0);
    expect(got.fencingToken).toBeGreaterThan(info.fencingToken);
    expect(expiredAt === undefined || expiredAt <= gotAt).toBe(true);
    await b.unlock();
  });

  it('close() after the session was lost still hands the lock over at once (before the key would expire)', async () => {
    const s = await RedisSession.create(server.client(), { ttl: 3, safetyMarginMs: 1500 });
    const a = new RedisMutex(s, 'mx/lost-close');
    await a.lock();
    const b = new RedisMutex(await session(10), 'mx/lost-close');
    const pb = b.lock().then(() => Date.now());
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/lost-close}:queue')) === 1, 'b queued');
    const lost = new Promise<void>((resolve) => a.once('lost', () => resolve()));
    s.pauseHeartbeats(true);
    await lost;
    const ttl = await admin.pttl(s.key);
    expect(ttl).toBeGreaterThan(0); // Redis still records a's session and its lock
    const expiresAt = Date.now() + ttl;
    await s.close();
    expect(await pb).toBeLessThan(expiresAt);
    await b.unlock();
  });

  it('session close() hands a held lock to the next waiter at once', async () => {
    const s = await session(30);
    const a = new RedisMutex(s, 'mx/close');
    await a.lock();
    const lost = new Promise<LockLostError>((resolve) => a.once('lost', resolve));
    const b = new RedisMutex(await session(30), 'mx/close');
    const pb = b.lock();
    await waitFor(async () => (await admin.zcard('coord:mutex:{mx/close}:queue')) === 1, 'b queued');
    const t0 = Date.now();
    await s.close();
    expect((await lost).reason).toBe('session-closed');
    await pb;
    expect(Date.now() - t0).toBeLessThan(5000); // far below the 30 s TTL
    expect(await admin.exists(s.key)).toBe(0);
    await b.unlock();
  });
});

describe('withLock', () => {
  it('releases the lock when fn throws, and passes the error through', async () => {
    const m = new RedisMutex(await session(), 'mx/with');
    await expect(
      m.withLock(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(m.state).toBe('idle');
    expect(await admin.exists(m.key)).toBe(0);
    expect(await m.withLock(({ fencingToken }) => fencingToken)).toBeGreaterThan(0n);
  });

  it('isOwner() asks Redis', async () => {
    const m = new RedisMutex(await session(), 'mx/owner');
    expect(await m.isOwner()).toBe(false);
    await m.lock();
    expect(await m.isOwner()).toBe(true);
    const g = m.ownerGuard();
    expect(await admin.hget(g.holderKey, 'fence')).toBe(g.fence);
    await m.unlock();
    expect(await m.isOwner()).toBe(false);
  });
});
