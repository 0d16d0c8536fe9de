/**
 * Goal: unit tests of the Redis backend without a server: the Lua scripts' hand-over queue,
 * registry and config semantics, the notifier's bounded inbox, and the recipe classes end to
 * end on ioredis-mock.
 * Method: ioredis-mock 8 runs the scripts in fengari (Lua 5.3) and supports pub/sub between an
 * instance and its `duplicate()`, which is all the backend needs, so everything here runs on
 * it; what the mock cannot show (real expiry timing under load, TCP partitions, keyspace
 * notifications: it has no `CONFIG SET notify-keyspace-events`, and no BLPOP, which the backend
 * does not use) is covered by the integration tests against a real redis-server in this
 * directory. Every test starts from an empty mock database.
 */
import RedisMock from 'ioredis-mock';
import type { Redis } from 'ioredis';
import { LockLostError, SessionExpiredError } from '../../src';
import {
  Inbox,
  RedisConfigStore,
  RedisConfigWatcher,
  RedisElection,
  RedisKeys,
  RedisMutex,
  RedisServiceRegistry,
  RedisSession,
  type RedisLeaderChange,
  type RedisServiceChange,
} from '../../src/redis';
import { parseState, recheckDelayMs, TicketQueue } from '../../src/redis/queue';
import { RedisScripts } from '../../src/redis/scripts';
import { waitFor } from './helpers/redis-server';

let redis: Redis;
const cleanup: (() => unknown)[] = [];

beforeEach(async () => {
  redis = new RedisMock() as unknown as Redis;
  await redis.flushall();
});

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  redis.disconnect();
});

async function session(ttl = 10, client: Redis = redis): Promise<RedisSession> {
  const s = await RedisSession.create(client, { ttl });
  cleanup.push(() => s.close());
  return s;
}

describe('queue scripts', () => {
  it('hand the hold over in arrival order, skipping waiters whose session is gone, with growing fences', async () => {
    const [a, b, c, d] = await Promise.all([session(), session(), session(), session()]);
    const keys = a.keys.queue('mutex', 'q');
    const q = (s: RedisSession) => new TicketQueue(s, keys, false);
    const scripts = RedisScripts.of(redis);
    expect(await scripts.qAcquire(q(a).caller, 'wait', '')).toEqual([1, '1', '1']);
    expect((await scripts.qAcquire(q(b).caller, 'wait', ''))[0]).toBe(0);
    expect((await scripts.qAcquire(q(c).caller, 'wait', ''))[0]).toBe(0);
    expect((await scripts.qAcquire(q(d).caller, 'wait', ''))[0]).toBe(0);
    expect(await redis.zrange(keys.queue, 0, -1)).toEqual([b.id, c.id, d.id]);
    // b's session dies while it waits: the release skips it and hands over to c
    await redis.del(b.key);
    expect(await q(a).release(1n)).toBe(true);
    expect(await redis.hget(keys.holder, 'token')).toBe(c.id);
    expect(await redis.hget(keys.holder, 'fence')).toBe('2');
    expect(await redis.zrange(keys.queue, 0, -1)).toEqual([d.id]);
    // c's acquire now finds it holds
    expect(await scripts.qAcquire(q(c).caller, 'wait', '')).toEqual([1, '2', expect.any(String)]);
    // a wrong fence releases nothing
    expect(await q(c).release(1n)).toBe(false);
    expect(await q(c).release(2n)).toBe(true);
    expect(await redis.hget(keys.holder, 'token')).toBe(d.id);
  });

  it('try: acquires only when nobody holds or waits, and never queues', async () => {
    const [a, b] = await Promise.all([session(), session()]);
    const keys = a.keys.queue('mutex', 't');
    const scripts = RedisScripts.of(redis);
    expect((await scripts.qAcquire(new TicketQueue(a, keys, false).caller, 'try', ''))[0]).toBe(1);
    expect(await scripts.qAcquire(new TicketQueue(b, keys, false).caller, 'try', '')).toEqual([2]);
    expect(await redis.zcard(keys.queue)).toBe(0);
  });

  it('a holder whose session is gone is replaced by the next acquire; a caller without a session is refused', async () => {
    const [a, b] = await Promise.all([session(), session()]);
    const keys = a.keys.queue('mutex', 'dead');
    const scripts = RedisScripts.of(redis);
    await scripts.qAcquire(new TicketQueue(a, keys, false).caller, 'wait', '');
    await redis.del(a.key);
    expect(await scripts.qAcquire(new TicketQueue(a, keys, false).caller, 'wait', '')).toEqual([-1]);
    expect(await scripts.qAcquire(new TicketQueue(b, keys, false).caller, 'wait', '')).toEqual([1, '2', expect.any(String)]);
  });

  it('publish the holder state with a version that grows by one per change', async () => {
    const [a, b] = await Promise.all([session(), session()]);
    const e1 = new RedisElection(a, 'pub');
    const e2 = new RedisElection(b, 'pub');
    const sub = redis.duplicate();
    cleanup.push(() => sub.disconnect());
    const messages: string[] = [];
    sub.on('message', (_c: string, m: string) => messages.push(m));
    await sub.subscribe(e1.keys.events);
    await e1.campaign('one');
    const p2 = e2.campaign('two');
    await waitFor(async () => (await redis.zcard(e1.keys.queue)) === 1, 'two queued');
    await e1.proclaim('one+');
    await e1.resign();
    await p2;
    await e2.resign();
    await waitFor(() => messages.length === 4, 'four messages');
    const states = messages.map(parseState);
    expect(states.map((s) => s.version)).toEqual([1n, 2n, 3n, 4n]);
    expect(states.map((s) => s.holder?.value ?? null)).toEqual(['one', 'one+', 'two', null]);
    expect(states[2].holder!.fence).toBe(2n);
  });
});

describe('state and delays', () => {
  it('parseState reads values with newlines; recheckDelayMs waits past the expiry', () => {
    const s = parseState('7\nabc\n3\n6\n1500\nline1\nline2');
    expect(s).toEqual({ version: 7n, holder: { token: 'abc', fence: 3n, mod: 6n, value: 'line1\nline2' }, holderTtlMs: 1500 });
    expect(parseState('0\n\n\n\n-2\n').holder).toBeUndefined();
    expect(() => parseState('nonsense')).toThrow(/malformed/);
    expect(recheckDelayMs(1000, 60000)).toBeGreaterThan(1000);
    expect(recheckDelayMs(-2, 60000)).toBeLessThan(100);
    expect(recheckDelayMs(-1, 60000)).toBe(60000);
  });

  it('RedisKeys lays keys out under the namespace, honours keyPrefix in channels, and refuses bad names', () => {
    const k = new RedisKeys(new RedisMock({ keyPrefix: 'p:' }) as unknown as Redis, 'ns:');
    expect(k.session('t')).toBe('ns:session:t');
    expect(k.sessionPrefix).toBe('p:ns:session:');
    expect(k.queue('mutex', 'a/b').holder).toBe('ns:mutex:{a/b}:holder');
    expect(k.queue('mutex', 'a/b').wake).toBe('p:ns:mutex:{a/b}:wake:');
    expect(k.service('api').events).toBe('p:ns:svc:{api}:events');
    expect(k.config('c').keyspace).toEqual(['__keyspace@0__:p:ns:config:{c}:value', '__keyspace@0__:p:ns:config:{c}:fields']);
    expect(() => k.queue('mutex', 'a{b}')).toThrow(TypeError);
    expect(() => k.queue('mutex', '')).toThrow(TypeError);
    expect(() => k.service('a\nb')).toThrow(TypeError);
  });
});

describe('inbox', () => {
  it('delivers in order, times out, rejects on abort, and replaces an overflow with one resync', async () => {
    const inbox = new Inbox(() => undefined, ['c'], 3);
    inbox.push({ kind: 'message', channel: 'c', message: '1' });
    inbox.push({ kind: 'message', channel: 'c', message: '2' });
    expect(await inbox.next()).toEqual({ kind: 'message', channel: 'c', message: '1' });
    expect(await inbox.next()).toEqual({ kind: 'message', channel: 'c', message: '2' });
    expect(await inbox.next(undefined, 5)).toEqual({ kind: 'timeout' });
    const ac = new AbortController();
    const p = inbox.next(ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    for (let i = 0; i < 5; i++) inbox.push({ kind: 'message', channel: 'c', message: String(i) });
    expect(inbox.pending).toBe(3);
    expect(await inbox.next()).toEqual({ kind: 'resync' });
    expect(await inbox.next()).toEqual({ kind: 'message', channel: 'c', message: '3' });
    inbox.close();
    await expect(inbox.next()).rejects.toThrow('inbox closed');
  });
});

describe('recipes on ioredis-mock', () => {
  it('session: heartbeats keep the key; a deleted key makes it lost', async () => {
    const s = await RedisSession.create(redis, { ttl: 1 });
    cleanup.push(() => s.close());
    expect(await redis.pttl(s.key)).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1500)); // the test's subject is the passing of time
    expect(s.alive).toBe(true);
    const lost = new Promise<SessionExpiredError>((r) => s.once('lost', r));
    await redis.del(s.key);
    expect(await lost).toBeInstanceOf(SessionExpiredError);
  });

  it('mutex: FIFO hand-over through pub/sub, strictly growing fencing tokens, no overlap', async () => {
    const mutexes = await Promise.all(Array.from({ length: 5 }, async () => new RedisMutex(await session(), 'm')));
    const order: number[] = [];
    const tokens: bigint[] = [];
    let inside = 0;
    await mutexes[0].lock();
    const waits = mutexes.slice(1).map((m, i) =>
      (async () => {
        await waitFor(async () => (await redis.zcard(m.keys.queue)) === i, `queued ${i}`);
        await m.withLock(async ({ fencingToken }) => {
          inside++;
          expect(inside).toBe(1);
          order.push(i + 1);
          tokens.push(fencingToken);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
        });
      })(),
    );
    await waitFor(async () => (await redis.zcard(mutexes[0].keys.queue)) === 4, 'all queued');
    await mutexes[0].unlock();
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(tokens).toEqual([2n, 3n, 4n, 5n]);
  });

  it('mutex: a holder record deleted by an operator is lost at the next heartbeat', async () => {
    const s = await session(1.5);
    const m = new RedisMutex(s, 'gone');
    await m.lock();
    const lost = new Promise<LockLostError>((r) => m.once('lost', r));
    await redis.del(m.key);
    expect((await lost).reason).toBe('key-deleted');
  });

  it('election: observers see leaders and "no leader"', async () => {
    const ac = new AbortController();
    const seen: RedisLeaderChange[] = [];
    const done = (async () => {
      for await (const c of RedisElection.observe(redis, 'e', { signal: ac.signal })) seen.push(c);
    })();
    await waitFor(() => seen.length === 1, 'first observation');
    const a = new RedisElection(await session(), 'e');
    const b = new RedisElection(await session(), 'e');
    await a.campaign('a');
    const pb = b.campaign('b');
    await waitFor(async () => (await redis.zcard(a.keys.queue)) === 1, 'b queued');
    await a.resign();
    await pb;
    await b.resign();
    await waitFor(() => seen.length === 4, 'four observations');
    ac.abort();
    await done;
    expect(seen.map((c) => c.leader?.value ?? null)).toEqual([null, 'a', 'b', null]);
  });

  it('registry: register, discover, watch add/update/remove with consecutive versions', async () => {
    const reg = new RedisServiceRegistry(redis, { ttl: 5 });
    cleanup.push(() => reg.close());
    await reg.register({ service: 's', id: 'x', address: 'h', port: 1 });
    const ac = new AbortController();
    const seen: RedisServiceChange[] = [];
    const done = (async () => {
      for await (const c of reg.watch('s', { signal: ac.signal })) seen.push(c);
    })();
    await waitFor(() => seen.length === 1, 'snapshot');
    await reg.register({ service: 's', id: 'y', address: 'h', port: 2 });
    await reg.register({ service: 's', id: 'x', address: 'h2', port: 1 });
    await reg.deregister('s', 'y');
    await waitFor(() => seen.length === 4, 'three changes');
    ac.abort();
    await done;
    expect(seen.map((c) => c.type)).toEqual(['snapshot', 'added', 'updated', 'removed']);
    expect(seen.map((c) => c.revision)).toEqual([1n, 2n, 3n, 4n]);
    expect((await reg.discover('s')).instances.map((i) => `${i.id}@${i.address}`)).toEqual(['x@h2']);
  });

  it('registry: instances of a session whose key is gone are swept by readers (one removal each)', async () => {
    const s = await session(10);
    const reg = new RedisServiceRegistry(redis, { session: s });
    await reg.register({ service: 'sw', id: 'a', address: 'h', port: 1 });
    await reg.register({ service: 'sw', id: 'b', address: 'h', port: 1 });
    const keys = s.keys.service('sw');
    await redis.del(s.key);
    const list = await reg.discover('sw');
    expect(list.instances).toEqual([]);
    expect(list.revision).toBe(4n);
    expect(await redis.hlen(keys.owners)).toBe(0);
  });

  it('config: keeps the last good value on invalid JSON and reports it', async () => {
    const store = new RedisConfigStore(redis);
    await store.set('cfg', '{"n":1}');
    const w = new RedisConfigWatcher<{ n: number }>(redis, { key: 'cfg', parse: (v) => ({ n: Number((v as { n: unknown }).n) }) });
    cleanup.push(() => w.close());
    expect((await w.start()).value).toEqual({ n: 1 });
    const invalid = new Promise((r) => w.once('invalid', r));
    await store.set('cfg', '{"n":');
    await invalid;
    expect(w.value).toEqual({ n: 1 });
    const changed = new Promise((r) => w.once('change', r));
    await store.set('cfg', '{"n":2}');
    await changed;
    expect(w.value).toEqual({ n: 2 });
  });
});
