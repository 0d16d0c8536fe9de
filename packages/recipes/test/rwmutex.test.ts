/**
 * Goal: RWMutex lets readers share and writers exclude everybody, in create-revision order:
 * a reader queued behind a waiting writer waits for it (writers are not starved), and readers
 * and writers interleave without a writer ever overlapping anybody.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); each participant has its
 * own session; sections count readers and writers inside and the checks are on those counts
 * and on which promises settled.
 */
import { Client } from '@coord/client';
import { RWMutex, Session } from '../src';
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

async function rw(name: string): Promise<RWMutex> {
  const s = await Session.create(client, { ttl: 10 });
  cleanup.push(() => s.close());
  return new RWMutex(s, name);
}

const count = async (prefix: string) => (await client.getRange({ key: prefix, prefix: true })).kvs.length;

it('readers share; a writer waits for them; a reader after a waiting writer waits for it', async () => {
  const [r1, r2, w, r3] = await Promise.all([rw('rw/a'), rw('rw/a'), rw('rw/a'), rw('rw/a')]);
  await r1.rLock();
  await r2.rLock();
  expect(r1.mode).toBe('read');
  const pw = track(w.lock());
  await waitFor(async () => (await count('rw/a/')) === 3, 'the writer to queue');
  const pr3 = track(r3.rLock());
  await waitFor(async () => (await count('rw/a/')) === 4, 'the late reader to queue');
  await sleep(50);
  expect(pw.settled).toBe(false);
  expect(pr3.settled).toBe(false);
  await r1.unlock();
  await sleep(20);
  expect(pw.settled).toBe(false);
  await r2.unlock();
  await pw.promise;
  expect(w.mode).toBe('write');
  await sleep(20);
  expect(pr3.settled).toBe(false);
  await w.unlock();
  await pr3.promise;
  await r3.unlock();
  expect(await count('rw/a/')).toBe(0);
});

it('under a mixed load, a writer never overlaps anybody', async () => {
  let readers = 0;
  let writers = 0;
  let violations = 0;
  let readOverlap = 0;
  await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const m = await rw('rw/load');
      for (let round = 0; round < 4; round++) {
        if (i % 3 === 0) {
          await m.lock();
          writers++;
          if (writers > 1 || readers > 0) violations++;
          await sleep(2);
          writers--;
        } else {
          await m.rLock();
          readers++;
          if (writers > 0) violations++;
          readOverlap = Math.max(readOverlap, readers);
          await sleep(4);
          readers--;
        }
        await m.unlock();
      }
    }),
  );
  expect(violations).toBe(0);
  expect(await count('rw/load/')).toBe(0);
});
