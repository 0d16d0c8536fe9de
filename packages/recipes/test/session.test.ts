/**
 * Goal: a Session is a lease kept alive in the background whose `lost` signal fires before the
 * server could expire the lease, and whose `close()` revokes it.
 * Method: a real etcd 3.4 (or coord with RECIPES_TEST_TARGET=coord). Keys attached to the
 * session are observed from a second client. "Before the server could expire it" is checked
 * directly: the session's client goes through a TCP proxy that the test black-holes; when
 * `lost` fires, a direct client asks the server for the lease's remaining TTL, which must still
 * be positive (the lease exists). Then the lease is seen to expire.
 */
import { Client } from '@coord/client';
import { DEFAULT_SESSION_TTL_SECONDS, Session, SessionClosedError, SessionExpiredError } from '../src';
import { startProxy } from './helpers/proxy';
import { startServer, type TestServer } from './helpers/server';
import { waitFor } from './helpers/util';

let server: TestServer;
let client: Client;
let observer: Client;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
  observer = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  client?.close();
  observer?.close();
  await server?.destroy();
});

it('grants a lease with etcd\'s default TTL of 60 s and keeps it alive', async () => {
  const session = await Session.create(client);
  expect(DEFAULT_SESSION_TTL_SECONDS).toBe(60);
  const ttl = await observer.leaseTimeToLive(session.leaseId);
  expect(ttl.grantedTtl).toBe(60n);
  expect(session.alive).toBe(true);
  expect(session.leaseHex).toBe(session.leaseId.toString(16));
  await session.close();
});

it('close() ends the session (signal first) and revokes the lease, deleting its keys', async () => {
  const session = await Session.create(client, { ttl: 5 });
  await client.put('session/close/k', 'v', { lease: session.leaseId });
  const events: string[] = [];
  session.signal.addEventListener('abort', () => events.push('signal'));
  session.on('closed', () => events.push('closed'));
  session.on('lost', () => events.push('lost'));
  await session.close();
  expect(events).toEqual(['signal', 'closed']);
  expect(session.signal.reason).toBeInstanceOf(SessionClosedError);
  expect(session.state).toBe('closed');
  expect(await observer.get('session/close/k')).toBeUndefined();
  expect((await observer.leaseTimeToLive(session.leaseId)).ttl).toBe(-1n);
  // A second close is harmless.
  await session.close();
});

it('is lost when its lease is revoked from outside', async () => {
  const session = await Session.create(client, { ttl: 3 });
  const lost = new Promise<SessionExpiredError>((resolve) => session.once('lost', resolve));
  await observer.leaseRevoke(session.leaseId);
  const err = await lost;
  expect(err).toBeInstanceOf(SessionExpiredError);
  expect(session.signal.aborted).toBe(true);
  expect(session.signal.reason).toBe(err);
  expect(session.state).toBe('lost');
  expect(() => session.throwIfEnded()).toThrow(SessionExpiredError);
});

it('declares itself lost while the server still has the lease when keep-alives stop (partition)', async () => {
  const proxy = await startProxy(server.endpoint);
  const cut = new Client({ endpoints: [proxy.endpoint], callTimeoutMs: 1000 });
  try {
    const session = await Session.create(cut, { ttl: 2 });
    await cut.put('session/partition/k', 'v', { lease: session.leaseId });
    const atLost = new Promise<bigint>((resolve, reject) =>
      session.once('lost', () => {
        // Ask the server at once: the lease must still exist, with time left.
        observer.leaseTimeToLive(session.leaseId).then((r) => resolve(r.ttl), reject);
      }),
    );
    proxy.cut();
    const remaining = await atLost;
    expect(remaining).toBeGreaterThanOrEqual(0n); // -1n would mean: already expired
    expect(await observer.get('session/partition/k')).toBeDefined();
    // And the server does expire it afterwards, deleting the key.
    await waitFor(async () => (await observer.get('session/partition/k')) === undefined, 'the lease to expire', 10000);
  } finally {
    cut.close();
    await proxy.close();
  }
});

it('is lost when its client is closed (nobody renews the lease any more)', async () => {
  const own = new Client({ endpoints: [server.endpoint] });
  const session = await Session.create(own, { ttl: 2 });
  const lost = new Promise<SessionExpiredError>((resolve) => session.once('lost', resolve));
  own.close();
  expect((await lost).message).toMatch(/stopped keeping the lease alive/);
  // It noticed before the server expired the lease.
  expect((await observer.leaseTimeToLive(session.leaseId)).ttl).toBeGreaterThanOrEqual(0n);
});

it('orphan() stops the keep-alives without revoking: keys live until the TTL runs out', async () => {
  const session = await Session.create(client, { ttl: 2 });
  await client.put('session/orphan/k', 'v', { lease: session.leaseId });
  session.orphan();
  expect(session.state).toBe('closed');
  expect(await observer.get('session/orphan/k')).toBeDefined();
  await waitFor(async () => (await observer.get('session/orphan/k')) === undefined, 'the orphaned lease to expire', 10000);
});

it('claim() refuses a key already claimed by another recipe object of the session', async () => {
  const session = await Session.create(client, { ttl: 5 });
  const release = session.claim('x/1');
  expect(() => session.claim('x/1')).toThrow(/already in use/);
  release();
  session.claim('x/1')();
  await session.close();
});
