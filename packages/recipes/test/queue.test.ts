/**
 * Goal: Queue delivers items first-in first-out by create revision, each to exactly one
 * consumer, and a consumer waiting on an empty queue gets the next item enqueued.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); producers and competing
 * consumers in one process; the checks are on the multiset and the order of what was taken.
 */
import { Client } from '@coord/client';
import { Queue, WaitTimeoutError } from '../src';
import { startServer, type TestServer } from './helpers/server';
import { track } from './helpers/util';

let server: TestServer;
let client: Client;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  client?.close();
  await server?.destroy();
});

it('is FIFO for one consumer', async () => {
  const q = new Queue(client, 'q/fifo');
  for (let i = 0; i < 5; i++) await q.enqueue(`item${i}`);
  expect(await q.length()).toBe(5);
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push((await q.dequeue()).value.toString());
  expect(got).toEqual(['item0', 'item1', 'item2', 'item3', 'item4']);
  expect(await q.tryDequeue()).toBeUndefined();
  await expect(q.dequeue({ timeoutMs: 100 })).rejects.toBeInstanceOf(WaitTimeoutError);
});

it('gives each item to exactly one of several competing consumers, each in queue order', async () => {
  const q = new Queue(client, 'q/many');
  const n = 30;
  for (let i = 0; i < n; i++) await q.enqueue(String(i));
  const taken: number[][] = [[], [], [], []];
  await Promise.all(
    taken.map(async (mine) => {
      for (;;) {
        const item = await q.tryDequeue();
        if (!item) return;
        mine.push(Number(item.value.toString()));
      }
    }),
  );
  expect(taken.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
  for (const mine of taken) expect(mine).toEqual([...mine].sort((a, b) => a - b));
});

it('a consumer waiting on an empty queue gets the next item', async () => {
  const q = new Queue(client, 'q/wait');
  const waiting = track(q.dequeue());
  await new Promise((r) => setTimeout(r, 50));
  expect(waiting.settled).toBe(false);
  await q.enqueue('late');
  expect((await waiting.promise).value.toString()).toBe('late');
  expect(await q.length()).toBe(0);
});
