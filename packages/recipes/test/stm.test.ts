/**
 * Goal: stm() runs retrying transactions with etcd's isolation levels: under serializable
 * snapshot isolation (the default) concurrent transfers between accounts conserve the total
 * (no lost update) and write skew is prevented; read-committed does not check; retries are
 * bounded.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord); concurrent transactions
 * in one process, with conflicts forced by writing between a transaction's read and its
 * commit; the checks are on the final store state and the attempt counts.
 */
import { Client } from '@coord/client';
import { StmRetriesExceededError, stm } from '../src';
import { startServer, type TestServer } from './helpers/server';

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

it('concurrent transfers conserve the total (serializable snapshot, the default)', async () => {
  const accounts = 5;
  for (let i = 0; i < accounts; i++) await client.put(`stm/acct/${i}`, '100');
  await Promise.all(
    Array.from({ length: 10 }, async (_, t) => {
      const from = `stm/acct/${t % accounts}`;
      const to = `stm/acct/${(t * 3 + 1) % accounts}`;
      await stm(client, async (tx) => {
        const a = Number(await tx.get(from));
        const b = Number(await tx.get(to));
        if (from !== to) {
          tx.put(from, String(a - 10));
          tx.put(to, String(b + 10));
        }
      });
    }),
  );
  const kvs = (await client.getRange({ key: 'stm/acct/', prefix: true })).kvs;
  expect(kvs.reduce((sum, kv) => sum + Number(kv.valueString()), 0)).toBe(accounts * 100);
});

it('retries when a key it read changes before commit, and sees the new value', async () => {
  await client.put('stm/x', '1');
  let runs = 0;
  const res = await stm(client, async (tx) => {
    runs++;
    const x = Number(await tx.get('stm/x'));
    if (runs === 1) await client.put('stm/x', '5'); // a concurrent writer
    tx.put('stm/y', String(x * 2));
    return x;
  });
  expect(res.attempts).toBe(2);
  expect(res.value).toBe(5);
  expect((await client.get('stm/y'))!.valueString()).toBe('10');
});

it('prevents write skew (two txns read a and b, each turns one off) under both snapshot levels', async () => {
  // Invariant: at least one of a, b stays "on". Each txn reads both and turns one off if both are on.
  for (const isolation of ['serializable-snapshot', 'serializable'] as const) {
    await client.put('stm/ws/a', 'on');
    await client.put('stm/ws/b', 'on');
    let gate!: () => void;
    const bothRead = new Promise<void>((r) => (gate = r));
    let reads = 0;
    const txn = (mine: string) =>
      stm(
        client,
        async (tx) => {
          const a = await tx.get('stm/ws/a');
          const b = await tx.get('stm/ws/b');
          if (++reads === 2) gate();
          await bothRead;
          if (a === 'on' && b === 'on') tx.put(mine, 'off');
        },
        { isolation },
      );
    await Promise.all([txn('stm/ws/a'), txn('stm/ws/b')]);
    const a = (await client.get('stm/ws/a'))!.valueString();
    const b = (await client.get('stm/ws/b'))!.valueString();
    // Both read sets contain both keys, so the second commit sees the first one's write and retries.
    expect(a === 'off' && b === 'off').toBe(false);
  }
});

it('serializable snapshot also refuses to overwrite a key written after its snapshot that it did not read', async () => {
  await client.put('stm/snap/r', 'r');
  await client.put('stm/snap/w', 'old');
  let runs = 0;
  const res = await stm(client, async (tx) => {
    runs++;
    await tx.get('stm/snap/r'); // takes the snapshot
    if (runs === 1) await client.put('stm/snap/w', 'concurrent');
    tx.put('stm/snap/w', `mine-${runs}`);
  });
  expect(res.attempts).toBe(2);
  expect((await client.get('stm/snap/w'))!.valueString()).toBe('mine-2');

  // Serializable and repeatable read guard only what was read: the blind overwrite goes through.
  for (const isolation of ['serializable', 'repeatable-read'] as const) {
    await client.put('stm/snap/w', 'old');
    runs = 0;
    const rr = await stm(
      client,
      async (tx) => {
        runs++;
        await tx.get('stm/snap/r');
        if (runs === 1) await client.put('stm/snap/w', 'concurrent');
        tx.put('stm/snap/w', `mine-${runs}`);
      },
      { isolation },
    );
    expect(rr.attempts).toBe(1);
    expect((await client.get('stm/snap/w'))!.valueString()).toBe('mine-1');
  }
});

it('read-committed commits without checks; retries are bounded', async () => {
  await client.put('stm/rc', '1');
  const res = await stm(
    client,
    async (tx) => {
      const v = Number(await tx.get('stm/rc'));
      await client.put('stm/rc', '100');
      tx.put('stm/rc', String(v + 1));
    },
    { isolation: 'read-committed' },
  );
  expect(res.attempts).toBe(1);
  expect((await client.get('stm/rc'))!.valueString()).toBe('2');

  await expect(
    stm(
      client,
      async (tx) => {
        await tx.get('stm/rc');
        await client.put('stm/rc', String(Math.random()));
        tx.put('stm/other', 'x');
      },
      { retriesMax: 3 },
    ),
  ).rejects.toBeInstanceOf(StmRetriesExceededError);
});
