/**
 * Goal: Barrier holds waiters until released (and falls with its session if given one);
 * DoubleBarrier lets `count` participants enter together and leave together, resets for the
 * next round, refuses a participant too many, and does not get stuck when one dies.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); participants with their
 * own sessions; progress is checked by which promises have settled after each step.
 */
import { Client } from '@coord/client';
import { Barrier, DoubleBarrier, Session, TooManyClientsError, WaitTimeoutError } from '../src';
import { startServer, type TestServer } from './helpers/server';
import { sleep, track, waitFor } from './helpers/util';

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

async function session(ttl = 10): Promise<Session> {
  const s = await Session.create(client, { ttl });
  cleanup.push(() => s.close());
  return s;
}

describe('Barrier', () => {
  it('waiters proceed only when the barrier is released; wait() on a lowered barrier returns at once', async () => {
    const b = new Barrier(client, 'bar/b1');
    await b.wait();
    expect(await b.hold()).toBe(true);
    expect(await b.hold()).toBe(false);
    const waits = [track(b.wait()), track(new Barrier(client, 'bar/b1').wait())];
    await expect(b.wait({ timeoutMs: 100 })).rejects.toBeInstanceOf(WaitTimeoutError);
    expect(waits.every((w) => !w.settled)).toBe(true);
    await b.release();
    await Promise.all(waits.map((w) => w.promise));
  });

  it('held with a session, it falls when the session ends', async () => {
    const s = await session(5);
    const b = new Barrier(client, 'bar/b2');
    await b.hold({ session: s });
    const w = track(b.wait());
    await sleep(50);
    expect(w.settled).toBe(false);
    await s.close();
    await w.promise;
  });
});

describe('DoubleBarrier', () => {
  it('count participants enter together and leave together, twice', async () => {
    const n = 3;
    const parts = await Promise.all(Array.from({ length: n }, async () => new DoubleBarrier(await session(), 'dbar/d1', n)));
    for (let round = 0; round < 2; round++) {
      const enters = parts.slice(0, n - 1).map((p) => track(p.enter()));
      await waitFor(async () => (await client.getRange({ key: 'dbar/d1/waiters/', prefix: true })).kvs.length === n - 1, 'the first to enter');
      expect(enters.every((e) => !e.settled)).toBe(true);
      await parts[n - 1].enter();
      await Promise.all(enters.map((e) => e.promise));
      const leaves = parts.slice(0, n - 1).map((p) => track(p.leave()));
      await sleep(50);
      expect(leaves.every((l) => !l.settled)).toBe(true);
      await parts[n - 1].leave();
      await Promise.all(leaves.map((l) => l.promise));
      expect((await client.getRange({ key: 'dbar/d1/', prefix: true })).kvs).toHaveLength(0);
    }
  });

  it('refuses a participant beyond the count', async () => {
    const parts = await Promise.all([1, 2, 3].map(async () => new DoubleBarrier(await session(), 'dbar/d2', 2)));
    await Promise.all([parts[0].enter(), parts[1].enter()]);
    await expect(parts[2].enter()).rejects.toBeInstanceOf(TooManyClientsError);
    await Promise.all([parts[0].leave(), parts[1].leave()]);
  });

  it('a participant that dies while the others leave does not keep them waiting', async () => {
    const doomed = await session(2);
    const parts = [new DoubleBarrier(await session(), 'dbar/d3', 2), new DoubleBarrier(doomed, 'dbar/d3', 2)];
    await Promise.all(parts.map((p) => p.enter()));
    const leaving = track(parts[0].leave());
    await sleep(50);
    expect(leaving.settled).toBe(false);
    await client.leaseRevoke(doomed.leaseId);
    await leaving.promise;
  });
});
