/**
 * Goal: RedisElection elects one leader at a time in campaign order, hands leadership over on
 * resign, on session close and when a leader's session expires; a leader stops believing it
 * leads before the next one is elected; observers see every change, including "no leader",
 * with versions that only grow, and no change twice.
 * Method: a real redis-server started by this file; every candidate has its own client and
 * session; observers run concurrently and their sequences are compared with what the
 * candidates did. Leadership is sampled through `elected`/`lost` events with monotonic times.
 */
import type { Redis } from 'ioredis';
import { LeadershipLostError, NotLeaderError, SessionExpiredError, WaitTimeoutError } from '../../src';
import { RedisElection, RedisSession, type RedisLeaderChange } from '../../src/redis';
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

async function session(ttl = 10): Promise<RedisSession> {
  const s = await RedisSession.create(server.client(), { ttl });
  cleanup.push(() => s.close());
  return s;
}

/** Collect an observer's changes until `stop` aborts; resolves once its first change is in. */
async function observer(name: string): Promise<{ changes: RedisLeaderChange[]; stop: () => Promise<void> }> {
  const ac = new AbortController();
  const changes: RedisLeaderChange[] = [];
  let first!: () => void;
  const ready = new Promise<void>((r) => (first = r));
  const done = (async () => {
    for await (const c of RedisElection.observe(server.client(), name, { signal: ac.signal })) {
      changes.push(c);
      first();
    }
  })();
  await ready;
  return {
    changes,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

const values = (changes: RedisLeaderChange[]) => changes.map((c) => c.leader?.value ?? null);

function expectGrowing(changes: RedisLeaderChange[]): void {
  for (let i = 1; i < changes.length; i++) expect(changes[i].revision).toBeGreaterThan(changes[i - 1].revision);
}

it('one leader at a time, in campaign order; observers see each leader and "no leader" before and after', async () => {
  const obs = await Promise.all([observer('el/order'), observer('el/order'), observer('el/order')]);
  const n = 4;
  const elections = await Promise.all(Array.from({ length: n }, async () => new RedisElection(await session(), 'el/order')));
  let leaders = 0;
  let maxLeaders = 0;
  const events: string[] = [];
  for (const [i, e] of elections.entries()) {
    e.on('elected', () => {
      leaders++;
      maxLeaders = Math.max(maxLeaders, leaders);
      events.push(`elected ${i}`);
    });
  }
  const campaigns: Promise<unknown>[] = [];
  for (const [i, e] of elections.entries()) {
    campaigns.push(e.campaign(`cand-${i}`));
    await waitFor(async () => (await admin.zcard('coord:election:{el/order}:queue')) === i || e.isLeader, `candidate ${i} queued`);
  }
  for (const [i, e] of elections.entries()) {
    await campaigns[i];
    expect(e.isLeader).toBe(true);
    expect(elections.filter((x) => x.isLeader)).toHaveLength(1);
    expect((await e.leader())?.value).toBe(`cand-${i}`);
    leaders--;
    await e.resign();
  }
  expect(maxLeaders).toBe(1);
  expect(events).toEqual(['elected 0', 'elected 1', 'elected 2', 'elected 3']);
  await waitFor(() => obs.every((o) => o.changes.length >= n + 2), 'observers saw everything');
  for (const o of obs) {
    await o.stop();
    expect(values(o.changes)).toEqual([null, 'cand-0', 'cand-1', 'cand-2', 'cand-3', null]);
    expectGrowing(o.changes);
    const tokens = o.changes.filter((c) => c.leader).map((c) => c.leader!.createRevision);
    expect([...tokens].sort((a, b) => (a < b ? -1 : 1))).toEqual(tokens);
  }
  expect(await RedisElection.leader(admin, 'el/order')).toBeUndefined();
});

it('proclaim changes the leader\'s value for observers; a non-leader cannot proclaim', async () => {
  const o = await observer('el/proclaim');
  const a = new RedisElection(await session(), 'el/proclaim');
  const b = new RedisElection(await session(), 'el/proclaim');
  await a.campaign('v1');
  const pb = b.campaign('b');
  await waitFor(async () => (await admin.zcard('coord:election:{el/proclaim}:queue')) === 1, 'b queued');
  await expect(b.proclaim('nope')).rejects.toBeInstanceOf(NotLeaderError);
  const v = await a.proclaim('v2');
  expect((await a.leader())?.value).toBe('v2');
  expect((await a.leader())?.modRevision).toBe(v);
  await a.resign();
  await pb;
  await b.resign();
  await waitFor(() => o.changes.length >= 5, 'observer saw everything');
  await o.stop();
  expect(values(o.changes)).toEqual([null, 'v1', 'v2', 'b', null]);
  expect(o.changes[1].leader!.createRevision).toBe(o.changes[2].leader!.createRevision);
  expectGrowing(o.changes);
});

it('never two leaders: a leader whose heartbeats stop loses leadership before the next one is elected; observers follow', async () => {
  const o = await observer('el/expire');
  const sa = await session(1);
  const a = new RedisElection(sa, 'el/expire');
  await a.campaign('a');
  let lostAt: bigint | undefined;
  let lostErr: LeadershipLostError | undefined;
  a.on('lost', (err) => {
    lostAt = now();
    lostErr = err;
  });
  const b = new RedisElection(await session(5), 'el/expire');
  const pb = b.campaign('b').then(() => now());
  await waitFor(async () => (await admin.zcard('coord:election:{el/expire}:queue')) === 1, 'b queued');
  sa.pauseHeartbeats(true);
  const electedAt = await pb;
  expect(lostAt).toBeDefined();
  expect(electedAt).toBeGreaterThan(lostAt!);
  expect(lostErr!.reason).toBe('session-lost');
  expect(a.isLeader).toBe(false);
  await waitFor(() => o.changes.some((c) => c.leader?.value === 'b'), 'observer saw b');
  await o.stop();
  expect(values(o.changes)).toEqual([null, 'a', 'b']);
});

it('observers see "no leader" when the last leader\'s session expires (nobody resigns)', async () => {
  const o = await observer('el/crash');
  const s = await session(1);
  const a = new RedisElection(s, 'el/crash');
  await a.campaign('only');
  await waitFor(() => o.changes.length === 2, 'observer saw the leader');
  s.orphan(); // a crash: no resign, no more heartbeats
  await waitFor(() => o.changes.length === 3, 'observer saw no leader', 5000);
  await o.stop();
  expect(values(o.changes)).toEqual([null, 'only', null]);
  expect(await admin.exists(s.key)).toBe(0);
});

it('campaigning stops with the session, and with a timeout, withdrawing the candidacy', async () => {
  const a = new RedisElection(await session(), 'el/stop');
  await a.campaign('a');
  const sb = await session(1);
  const b = new RedisElection(sb, 'el/stop');
  await expect(b.campaign('b', { timeoutMs: 100 })).rejects.toBeInstanceOf(WaitTimeoutError);
  expect(await admin.zcard('coord:election:{el/stop}:queue')).toBe(0);
  const pb = b.campaign('b');
  await waitFor(async () => (await admin.zcard('coord:election:{el/stop}:queue')) === 1, 'b queued');
  sb.pauseHeartbeats(true);
  await expect(pb).rejects.toBeInstanceOf(SessionExpiredError);
  await a.resign();
  // b withdrew (or, if its withdrawal lost the race, its key expires within its TTL)
  await waitFor(async () => (await RedisElection.leader(admin, 'el/stop')) === undefined, 'no leader', 3000);
});

it('evalIfLeader runs only while leading', async () => {
  const a = new RedisElection(await session(), 'el/guard');
  await a.campaign('a');
  const ok = await a.evalIfLeader(`return redis.call('INCR', KEYS[1])`, ['el-guard-counter']);
  expect(ok).toEqual({ succeeded: true, result: 1 });
  await admin.del(a.key); // an operator ends the leadership
  const no = await a.evalIfLeader(`return redis.call('INCR', KEYS[1])`, ['el-guard-counter']);
  expect(no.succeeded).toBe(false);
  expect(await admin.get('el-guard-counter')).toBe('1');
  expect(a.isLeader).toBe(false);
});
