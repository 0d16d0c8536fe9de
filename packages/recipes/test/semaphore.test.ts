/**
 * Goal: Semaphore admits at most `limit` holders, in create-revision order, wakes O(1)
 * waiters per release (the first waiter, then by hand-off its successor), frees a slot when a
 * holder's session is lost, and tryAcquire never waits.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); contenders with their own
 * sessions and, where calls are counted, their own instrumented clients. Concurrency is
 * counted in the critical sections; the hand-off is checked by which keys each waiter watched
 * and how many reads it made.
 */
import { Client } from '@coord/client';
import { Semaphore, Session } from '../src';
import { startServer, type TestServer } from './helpers/server';
import { instrumentedClient, sleep, track, waitFor, type ClientStats } from './helpers/util';

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

const count = async (prefix: string) => (await client.getRange({ key: prefix, prefix: true })).kvs.length;

it('never more than limit holders; every contender gets through', async () => {
  const limit = 3;
  let inside = 0;
  let most = 0;
  let sections = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const sem = new Semaphore(await session(), 'sem/many', limit);
      for (let r = 0; r < 3; r++) {
        await sem.withPermit(async () => {
          inside++;
          most = Math.max(most, inside);
          await sleep(3);
          inside--;
          sections++;
        });
      }
    }),
  );
  expect(sections).toBe(24);
  expect(most).toBeLessThanOrEqual(limit);
  expect(await count('sem/many/')).toBe(0);
});

it('admits limit holders at once; the next waits; tryAcquire does not wait', async () => {
  const sems = await Promise.all([1, 2, 3].map(async () => new Semaphore(await session(), 'sem/three', 2)));
  await sems[0].acquire();
  await sems[1].acquire();
  expect(await sems[2].tryAcquire()).toBe(false);
  expect(await count('sem/three/')).toBe(2);
  const p = track(sems[2].acquire());
  await waitFor(async () => (await count('sem/three/')) === 3, 'the waiter to queue');
  expect(p.settled).toBe(false);
  await sems[0].release();
  await p.promise;
  expect((await sems[2].holders()).map((kv) => kv.keyString())).toEqual([sems[1].key, sems[2].key]);
  await sems[1].release();
  await sems[2].release();
});

it('a release wakes the first waiter only; its admission hands off to the next', async () => {
  const limit = 2;
  const holders = await Promise.all([1, 2].map(async () => new Semaphore(await session(), 'sem/herd', limit)));
  for (const h of holders) await h.acquire();
  const ws: { sem: Semaphore; stats: ClientStats; p: Promise<unknown> }[] = [];
  for (let i = 0; i < 3; i++) {
    const { client: c, stats } = instrumentedClient(server.endpoint);
    cleanup.push(() => c.close());
    const sem = new Semaphore(await session(10, c), 'sem/herd', limit);
    const p = sem.acquire();
    ws.push({ sem, stats, p });
    await waitFor(() => stats.watches.length === 1, `waiter ${i} to watch`);
  }
  // The first waiter watches the prefix (for its holders' deletes); the others their predecessor.
  expect(ws[0].stats.watches[0]).toBe('sem/herd/');
  expect(ws[1].stats.watches[0]).toBe(ws[0].sem.key);
  expect(ws[2].stats.watches[0]).toBe(ws[1].sem.key);
  // Release the second holder (not the one a naive "watch one predecessor" would watch).
  await holders[1].release();
  await ws[0].p;
  // w1's admission woke w2, which is now the first waiter; w3 did nothing.
  await waitFor(() => ws[1].stats.watches.length === 2, 'w2 to become the first waiter');
  expect(ws[1].stats.watches[1]).toBe('sem/herd/');
  expect(ws[2].stats.watches).toHaveLength(1);
  expect(ws[2].stats.ranges).toBe(1);
  expect((await holders[0].holders()).map((kv) => kv.keyString())).toEqual([holders[0].key, ws[0].sem.key]);
  await holders[0].release();
  await ws[1].p;
  await ws[0].sem.release();
  await ws[2].p;
  await ws[1].sem.release();
  await ws[2].sem.release();
});

it('a holder whose session is lost frees its slot and is told so', async () => {
  const s1 = await session(3);
  const a = new Semaphore(s1, 'sem/lost', 1);
  const permit = await a.acquire();
  const b = new Semaphore(await session(), 'sem/lost', 1);
  const lost = new Promise((resolve) => a.once('lost', resolve));
  const pb = b.acquire();
  await waitFor(async () => (await count('sem/lost/')) === 2, 'b to queue');
  await client.leaseRevoke(s1.leaseId);
  await lost;
  await pb;
  expect(permit.signal.aborted).toBe(true);
  expect(a.held).toBe(false);
  await b.release();
});
