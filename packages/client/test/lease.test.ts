/**
 * Goal: the Lease calls behave as etcd defines them and lease IDs stay exact: grant (with and
 * without a chosen ID), revoke (attached keys are deleted, watchers see the deletes),
 * timeToLive (TTL -1 for an unknown lease, attached keys), leases, keepAliveOnce; IDs print
 * and parse as etcdctl does. `client.lease()` keeps a lease alive (a 2 s lease outlives 6 s),
 * attaches keys, and raises `lost` when the lease is revoked elsewhere, when it is not kept
 * alive past its TTL (before the server forgets it), and when its grant fails; `close()` and
 * `revoke()` end it without `lost`.
 * Method: a real etcd 3.4 (helpers/server.ts; coord with CLIENT_TEST_TARGET=coord) and, for
 * the hex format, the reference etcdctl run against it. Results are checked against what was
 * granted and written, and against a second client's view.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  Client,
  LeaseExistsError,
  LeaseLostError,
  LeaseNotFoundError,
  leaseIdToHex,
  parseLeaseId,
  type WatchEvent,
} from '../src';
import { startServer, type TestServer } from './helpers/server';

const ETCDCTL = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

let server: TestServer;
let client: Client;
let other: Client;

beforeAll(async () => {
  server = await startServer();
  client = new Client({ endpoints: [server.endpoint] });
  other = new Client({ endpoints: [server.endpoint] });
});

afterAll(async () => {
  client?.close();
  other?.close();
  await server?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolve with the first `lost` error, or fail clearly instead of hanging. */
function lostWithin(lease: ReturnType<Client['lease']>, ms: number): Promise<LeaseLostError> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lease not lost within ${ms} ms`)), ms);
    lease.once('lost', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

describe('lease IDs', () => {
  it('print as etcdctl prints them and parse back exactly', () => {
    expect(leaseIdToHex(0x694d6280d047720fn)).toBe('694d6280d047720f');
    expect(parseLeaseId('694d6280d047720f')).toBe(0x694d6280d047720fn);
    expect(leaseIdToHex(42)).toBe('000000000000002a');
    expect(leaseIdToHex('9223372036854775807')).toBe('7fffffffffffffff');
    expect(parseLeaseId('7FFFFFFFFFFFFFFF')).toBe(9223372036854775807n);
    expect(parseLeaseId('0x2a')).toBe(42n);
    // Go's %016x of a negative int64: the sign counts in the width.
    expect(leaseIdToHex(-1n)).toBe('-000000000000001');
    expect(parseLeaseId('-000000000000001')).toBe(-1n);
    expect(() => parseLeaseId('8000000000000000')).toThrow(TypeError);
    expect(() => parseLeaseId('xyz')).toThrow(TypeError);
    expect(() => parseLeaseId('')).toThrow(TypeError);
  });

  it('agree with the reference etcdctl in both directions', async () => {
    if (!fs.existsSync(ETCDCTL)) return;
    const ctl = (...args: string[]) =>
      execFileSync(ETCDCTL, ['--endpoints', server.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } }).toString();
    const printed = /lease ([0-9a-f]+) granted with TTL\((\d+)s\)/.exec(ctl('lease', 'grant', '120'));
    expect(printed).not.toBeNull();
    const fromCtl = parseLeaseId(printed![1]);
    expect(leaseIdToHex(fromCtl)).toBe(printed![1]);
    const ttl = await client.leaseTimeToLive(fromCtl);
    expect(ttl.id).toBe(fromCtl);
    expect(ttl.grantedTtl).toBe(120n);

    const ours = await client.leaseGrant(120);
    expect(ctl('lease', 'list')).toContain(leaseIdToHex(ours.id));
    expect(ctl('lease', 'timetolive', leaseIdToHex(ours.id))).toContain(`lease ${leaseIdToHex(ours.id)} granted with TTL(120s)`);
    await client.leaseRevoke(ours.id);
    await client.leaseRevoke(fromCtl);
  });
});

describe('lease calls', () => {
  it('grant, timeToLive with keys, leases, revoke', async () => {
    const g = await client.leaseGrant(60);
    expect(typeof g.id).toBe('bigint');
    expect(g.id).toBeGreaterThan(0n);
    expect(g.ttl).toBe(60n);
    await client.put('calls/a', '1', { lease: g.id });
    await client.put('calls/b', '2', { lease: g.id });

    const t = await client.leaseTimeToLive(g.id, { keys: true });
    expect(t.id).toBe(g.id);
    expect(t.grantedTtl).toBe(60n);
    expect(t.ttl).toBeGreaterThan(0n);
    expect(t.ttl).toBeLessThanOrEqual(60n);
    expect(t.keys.map((k) => k.toString()).sort()).toEqual(['calls/a', 'calls/b']);
    expect((await client.leaseTimeToLive(g.id)).keys).toEqual([]);

    expect((await client.leaseLeases()).leases).toContain(g.id);
    expect((await client.get('calls/a'))!.lease).toBe(g.id);

    await client.leaseRevoke(g.id);
    expect(await client.get('calls/a')).toBeUndefined();
    expect(await client.get('calls/b')).toBeUndefined();
    const gone = await client.leaseTimeToLive(g.id);
    expect(gone.ttl).toBe(-1n);
    expect((await client.leaseLeases()).leases).not.toContain(g.id);
    await expect(client.leaseRevoke(g.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
  });

  it('grants a chosen int64 ID exactly, and refuses it twice', async () => {
    const id = 0x7fffffffffff0a1bn; // beyond 2^53: a number would have lost it
    const g = await client.leaseGrant(30, { id });
    expect(g.id).toBe(id);
    expect((await client.leaseTimeToLive(id)).id).toBe(id);
    await expect(client.leaseGrant(30, { id })).rejects.toBeInstanceOf(LeaseExistsError);
    await client.leaseRevoke(id);
  });

  it('keepAliveOnce renews a lease and rejects for an unknown one', async () => {
    const g = await client.leaseGrant(20);
    const k = await client.leaseKeepAliveOnce(g.id);
    expect(k.id).toBe(g.id);
    expect(k.ttl).toBe(20n);
    await client.leaseRevoke(g.id);
    await expect(client.leaseKeepAliveOnce(g.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
  });
});

describe('client.lease()', () => {
  it('keeps a 2 s lease alive for 6 s', async () => {
    const lease = client.lease(2);
    const lost: unknown[] = [];
    lease.on('lost', (e) => lost.push(e));
    let keepalives = 0;
    lease.on('keepalive', () => keepalives++);
    const id = await lease.grant();
    expect(lease.id).toBe(id);
    expect(lease.ttl).toBe(2n);
    expect(lease.state).toBe('alive');
    await lease.put('kept/k', 'v');

    await sleep(6000);
    expect(lost).toEqual([]);
    expect(lease.state).toBe('alive');
    expect(lease.signal.aborted).toBe(false);
    expect(keepalives).toBeGreaterThanOrEqual(3);
    expect((await other.get('kept/k'))!.lease).toBe(id);
    expect((await other.leaseTimeToLive(id)).ttl).toBeGreaterThan(0n);

    await lease.revoke();
    expect(lease.state).toBe('revoked');
    expect(await other.get('kept/k')).toBeUndefined();
    expect(lost).toEqual([]);
  });

  it('revoke() deletes the attached keys, and a watcher sees the deletes', async () => {
    const lease = client.lease(30);
    await lease.put('attached/a', '1');
    await lease.put('attached/b', '2');
    await client.put('attached/c', '3', { lease }); // a Lease object works as the put's lease
    await client.put('attached/keep', 'no lease');
    const w = other.watch({ key: 'attached/', prefix: true });
    await w.ready();
    const revoked = await lease.revoke();
    const events: WatchEvent[] = [];
    while (events.length < 3) events.push(...((await w.next()).value?.events ?? []));
    w.cancel();
    expect(events.map((e) => `${e.type} ${e.kv.keyString()}`).sort()).toEqual(['delete attached/a', 'delete attached/b', 'delete attached/c']);
    expect(new Set(events.map((e) => e.kv.modRevision))).toEqual(new Set([revoked!.header.revision]));
    expect((await client.get('attached/keep'))!.valueString()).toBe('no lease');
  });

  it('raises lost (signal and event) when another client revokes the lease', async () => {
    const lease = client.lease(5);
    const id = await lease.grant();
    const lost = lostWithin(lease, 10000);
    await other.leaseRevoke(id);
    const err = await lost;
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(err.reason).toBe('expired');
    expect(err.leaseId).toBe(id);
    expect(lease.state).toBe('lost');
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBe(err);
    expect(lease.lostReason).toBe(err);
  });

  it('without keep-alives, raises lost at its deadline, before the server forgets the lease', async () => {
    const lease = client.lease(2, { keepAlive: false });
    const id = await lease.grant();
    const err = await lostWithin(lease, 10000);
    expect(err.reason).toBe('deadline');
    // The deadline counts from when the grant was sent, minus a margin: the server still has it.
    const ttl = await other.leaseTimeToLive(id);
    expect(ttl.ttl).toBeGreaterThanOrEqual(0n);
    await other.leaseRevoke(id).catch(() => undefined);
  });

  it('keepAliveOnce() on a Lease renews it; on a revoked one it rejects and raises lost', async () => {
    const lease = client.lease(10, { keepAlive: false });
    const id = await lease.grant();
    expect((await lease.keepAliveOnce()).ttl).toBe(10n);
    const lost = lostWithin(lease, 5000);
    await other.leaseRevoke(id);
    await expect(lease.keepAliveOnce()).rejects.toBeInstanceOf(LeaseNotFoundError);
    expect((await lost).reason).toBe('expired');
  });

  it('close() stops keep-alives without revoking and without raising lost', async () => {
    const lease = client.lease(10);
    const id = await lease.grant();
    const lost: unknown[] = [];
    lease.on('lost', (e) => lost.push(e));
    lease.close();
    expect(lease.state).toBe('closed');
    const t = await other.leaseTimeToLive(id);
    expect(t.ttl).toBeGreaterThan(0n);
    await sleep(200);
    expect(lost).toEqual([]);
    expect(lease.signal.aborted).toBe(false);
    await other.leaseRevoke(id);
  });

  it('raises lost with reason grant-failed when the grant is refused', async () => {
    const taken = await client.leaseGrant(30);
    const lease = client.lease(30, { id: taken.id });
    const lost = lostWithin(lease, 5000);
    await expect(lease.grant()).rejects.toBeInstanceOf(LeaseExistsError);
    const err = await lost;
    expect(err.reason).toBe('grant-failed');
    expect(err.cause).toBeInstanceOf(LeaseExistsError);
    expect(lease.signal.aborted).toBe(true);
    await client.leaseRevoke(taken.id);
  });
});
