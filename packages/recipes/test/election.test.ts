/**
 * Goal: Election elects one leader at a time in create-revision order with etcd's layout;
 * observers see every leader change including "no leader"; a leader whose session is lost
 * stops believing it leads before another candidate is elected; campaigning stops when the
 * session ends; proclaim/resign/leader behave as etcd's.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord). Candidates have their own
 * sessions; observers are started before the candidates and their sequences are compared to
 * the leaderships that happened. Partition: the leader's client goes through a TCP proxy that
 * the test black-holes. Compaction: the observer's first list is followed, before its watch
 * starts, by changes and a compaction, forcing a re-list.
 */
import { Client, type GetRangeOptions } from '@coord/client';
import {
  Election,
  NotLeaderError,
  Session,
  SessionClosedError,
  SessionExpiredError,
  WaitTimeoutError,
  type LeaderChange,
} from '../src';
import { startProxy } from './helpers/proxy';
import { startServer, type TestServer } from './helpers/server';
import { now, sleep, track, waitFor } from './helpers/util';

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

/**
 * Collect an observer's changes until stopped. Resolves once the observer has reported its
 * first list, so the candidates a test starts afterwards are seen as changes (without this
 * wait, a loaded machine could list after the first campaign and never report "no leader").
 */
async function observe(name: string, c: Client = client) {
  const ac = new AbortController();
  const seen: LeaderChange[] = [];
  let relists = 0;
  const done = (async () => {
    for await (const change of Election.observe(c, name, { signal: ac.signal, onRelist: () => relists++ })) seen.push(change);
  })();
  cleanup.push(() => ac.abort());
  await waitFor(() => seen.length > 0, `${name} observer's first list`);
  return {
    seen,
    values: () => seen.map((s) => s.leader?.value),
    relists: () => relists,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

async function candidates(prefix: string) {
  return (await client.getRange({ key: prefix, prefix: true })).kvs;
}

it('uses etcd\'s layout and reports the leader (lowest create revision) or undefined', async () => {
  expect(await Election.leader(client, 'layout/elect')).toBeUndefined();
  const s = await session();
  const e = new Election(s, 'layout/elect');
  const l = await e.campaign('me');
  expect(l.key).toBe(`layout/elect/${s.leaseId.toString(16)}`);
  const kv = (await client.get(l.key))!;
  expect(kv.valueString()).toBe('me');
  expect(kv.lease).toBe(s.leaseId);
  const leader = await e.leader();
  expect(leader).toMatchObject({ key: l.key, value: 'me', createRevision: kv.createRevision, leaseId: s.leaseId });
  await e.resign();
  expect(e.isLeader).toBe(false);
  expect(await client.get(l.key)).toBeUndefined();
});

it('one leader at a time, in create-revision order; observers see each leader and "no leader" before and after', async () => {
  const obs = await observe('one/elect');
  await waitFor(() => obs.seen.length === 1, 'the observer\'s first report');
  const n = 5;
  const terms: { who: number; rev: bigint; start: bigint; end: bigint }[] = [];
  let leaders = 0;
  let maxLeaders = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const e = new Election(await session(), 'one/elect');
      const l = await e.campaign(`c${i}`);
      leaders++;
      maxLeaders = Math.max(maxLeaders, leaders);
      const start = now();
      await sleep(5);
      const end = now();
      leaders--;
      await e.resign();
      terms.push({ who: i, rev: l.createRevision, start, end });
    }),
  );
  await waitFor(() => obs.seen.length === n + 2, 'the observer to see every leader and the end');
  await obs.stop();
  expect(maxLeaders).toBe(1);
  terms.sort((a, b) => (a.start < b.start ? -1 : 1));
  for (let i = 1; i < terms.length; i++) {
    expect(terms[i].start).toBeGreaterThan(terms[i - 1].end);
    expect(terms[i].rev).toBeGreaterThan(terms[i - 1].rev);
  }
  expect(obs.seen[0].leader).toBeUndefined();
  expect(obs.seen[n + 1].leader).toBeUndefined();
  expect(obs.seen.slice(1, n + 1).map((s) => s.leader!.value)).toEqual(terms.map((t) => `c${t.who}`));
  expect(obs.seen.slice(1, n + 1).map((s) => s.leader!.createRevision)).toEqual(terms.map((t) => t.rev));
  const revs = obs.seen.map((s) => s.revision);
  for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]);
});

it('proclaim changes the leader\'s value for observers; a non-leader cannot proclaim', async () => {
  const obs = await observe('proclaim/elect');
  const a = new Election(await session(), 'proclaim/elect');
  const b = new Election(await session(), 'proclaim/elect');
  await a.campaign('v1');
  const pb = track(b.campaign('b'));
  await waitFor(async () => (await candidates('proclaim/elect/')).length === 2, 'b to queue');
  await expect(b.proclaim('x')).rejects.toBeInstanceOf(NotLeaderError);
  await a.proclaim('v2');
  await a.resign();
  await pb.promise;
  await b.resign();
  await waitFor(() => obs.values().length === 5, 'five observations');
  expect(obs.values()).toEqual([undefined, 'v1', 'v2', 'b', undefined]);
  await obs.stop();
});

it('a leader whose lease is revoked loses leadership; the next candidate is elected and observed', async () => {
  const obs = await observe('revoke/elect');
  const sa = await session(3);
  const a = new Election(sa, 'revoke/elect');
  const la = await a.campaign('a');
  const b = new Election(await session(), 'revoke/elect');
  const log: string[] = [];
  a.on('lost', (err) => log.push(`a lost ${err.reason}`));
  const pb = b.campaign('b').then((l) => {
    log.push('b elected');
    return l;
  });
  await waitFor(async () => (await candidates('revoke/elect/')).length === 2, 'b to queue');
  await client.leaseRevoke(sa.leaseId);
  const lb = await pb;
  expect(log[0]).toMatch(/^a lost (key-deleted|session-lost)$/);
  expect(log[1]).toBe('b elected');
  expect(a.isLeader).toBe(false);
  expect(la.signal.aborted).toBe(true);
  expect(lb.createRevision).toBeGreaterThan(la.createRevision);
  await expect(a.proclaim('zombie')).rejects.toBeInstanceOf(NotLeaderError);
  await b.resign();
  await waitFor(() => obs.values().length === 4, 'four observations');
  expect(obs.values()).toEqual([undefined, 'a', 'b', undefined]);
  await obs.stop();
});

it('never two leaders: a partitioned leader stops believing it leads before the next one is elected', async () => {
  const proxy = await startProxy(server.endpoint);
  const cut = new Client({ endpoints: [proxy.endpoint], callTimeoutMs: 1000 });
  cleanup.push(async () => {
    cut.close();
    await proxy.close();
  });
  const a = new Election(await Session.create(cut, { ttl: 2 }), 'part/elect');
  await a.campaign('a');
  const b = new Election(await session(), 'part/elect');
  let aStopped: bigint | undefined;
  a.on('lost', () => (aStopped = now()));
  const pb = b.campaign('b');
  await waitFor(async () => (await candidates('part/elect/')).length === 2, 'b to queue');
  proxy.cut();
  await pb;
  const bElected = now();
  expect(aStopped).toBeDefined();
  expect(aStopped!).toBeLessThan(bElected);
  expect(a.isLeader).toBe(false);
  await b.resign();
});

it('campaigning stops with the session: expired (SessionExpiredError) or closed (SessionClosedError)', async () => {
  const a = new Election(await session(), 'stop/elect');
  await a.campaign('a');
  const s1 = await session(2);
  const p1 = new Election(s1, 'stop/elect').campaign('b');
  await waitFor(async () => (await candidates('stop/elect/')).length === 2, 'b to queue');
  await client.leaseRevoke(s1.leaseId);
  await expect(p1).rejects.toBeInstanceOf(SessionExpiredError);
  const s2 = await session();
  const p2 = new Election(s2, 'stop/elect').campaign('c');
  await waitFor(async () => (await candidates('stop/elect/')).length === 2, 'c to queue');
  await s2.close();
  await expect(p2).rejects.toBeInstanceOf(SessionClosedError);
  await expect(new Election(await session(), 'stop/elect').campaign('d', { timeoutMs: 100 })).rejects.toBeInstanceOf(WaitTimeoutError);
  expect(await candidates('stop/elect/')).toHaveLength(1);
  await a.resign();
});

it('observers see "no leader" when the last candidate\'s lease expires', async () => {
  const obs = await observe('expire/elect');
  const s = await session(2);
  await new Election(s, 'expire/elect').campaign('short-lived');
  await waitFor(() => obs.values().length === 2, 'the leader to be observed');
  s.orphan(); // stop keep-alives: the server expires the lease
  await waitFor(() => obs.values().length === 3, '"no leader" to be observed', 10000);
  expect(obs.values()).toEqual([undefined, 'short-lived', undefined]);
  await obs.stop();
});

it('observe re-lists after its history was compacted and reports the leader it missed', async () => {
  const hooked = new Client({ endpoints: [server.endpoint] });
  cleanup.push(() => hooked.close());
  const a = new Election(await session(), 'compact/elect');
  await a.campaign('a');
  const b = new Election(await session(), 'compact/elect');
  const getRange = hooked.getRange.bind(hooked);
  let first = true;
  hooked.getRange = async (o: GetRangeOptions) => {
    const res = await getRange(o);
    if (first) {
      first = false;
      // Between the observer's list and its watch: a leader change, then a compaction.
      const pb = b.campaign('b');
      await a.resign();
      await pb;
      const rev = (await client.put('compact/filler', 'x')).header.revision;
      await client.compact(rev);
    }
    return res;
  };
  const obs = await observe('compact/elect', hooked);
  await waitFor(() => obs.values().length === 2, 'the re-listed leader');
  expect(obs.values()).toEqual(['a', 'b']);
  expect(obs.relists()).toBe(1);
  await b.resign();
  await waitFor(() => obs.values().length === 3, 'no leader');
  expect(obs.values()).toEqual(['a', 'b', undefined]);
  await obs.stop();
});
