/**
 * Goal: a kept-alive lease reacts correctly to outages. A restart shorter than the TTL is
 * ridden out (keep-alives resume on a new stream, no `lost`); an outage longer than the TTL
 * raises `lost` with reason 'deadline' while the server is still down (the client cannot know
 * the lease survived, so it must assume it did not) and keep-alives stop for good. In a
 * 3-member cluster, stopping the member the client talks to moves keep-alives to another
 * member and the lease lives on.
 * Method: restartable members (helpers/server.ts; etcd 3.4, or coord with
 * CLIENT_TEST_TARGET=coord), stopped with SIGTERM and started again on the same data dir and
 * ports. Liveness is checked through the `keepalive`/`lost` events and through another
 * client's `leaseTimeToLive`.
 */
import { Client, type Lease, type LeaseLostError } from '../src';
import { startCluster, startServer, type TestServer } from './helpers/server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const clients: Client[] = [];

function newClient(endpoints: string[]): Client {
  const c = new Client({ endpoints, dialTimeoutMs: 500, callTimeoutMs: 3000 });
  clients.push(c);
  return c;
}

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

/** Resolve once `n` more keep-alives have been acknowledged. */
function keepalives(lease: Lease, n: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => reject(new Error(`only ${seen} of ${n} keep-alives within ${ms} ms`)), ms);
    const on = () => {
      if (++seen < n) return;
      clearTimeout(timer);
      lease.removeListener('keepalive', on);
      resolve();
    };
    lease.on('keepalive', on);
  });
}

describe('single member', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('rides out a restart shorter than the TTL', async () => {
    const client = newClient([server.endpoint]);
    const lease = client.lease(10);
    const lost: unknown[] = [];
    lease.on('lost', (e) => lost.push(e));
    const id = await lease.grant();
    await lease.put('outage/short', 'v');
    await keepalives(lease, 1, 10000);

    await server.stop('SIGTERM');
    await sleep(300);
    await server.start();
    await keepalives(lease, 2, 15000);

    expect(lost).toEqual([]);
    expect(lease.state).toBe('alive');
    const check = newClient([server.endpoint]);
    expect((await check.leaseTimeToLive(id)).ttl).toBeGreaterThan(0n);
    expect((await check.get('outage/short'))!.lease).toBe(id);
    await lease.revoke();
  });

  it('raises lost while the server is down longer than the TTL, and stops keeping it alive', async () => {
    const client = newClient([server.endpoint]);
    const lease = client.lease(2);
    await lease.grant();
    await keepalives(lease, 1, 10000);
    let after = 0;
    let timer: NodeJS.Timeout | undefined;
    const lost = new Promise<LeaseLostError | undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 15000);
      lease.once('lost', resolve);
    });

    await server.stop('SIGTERM');
    try {
      const err = await lost;
      clearTimeout(timer);
      expect(err).toBeDefined();
      expect(err!.reason).toBe('deadline');
      expect(server.running).toBe(false); // declared while the member was still down
      expect(lease.signal.aborted).toBe(true);
      expect(lease.state).toBe('lost');
      lease.on('keepalive', () => after++);
    } finally {
      await server.start();
    }
    await sleep(1500);
    expect(after).toBe(0);
  });
});

describe('three-member cluster', () => {
  let members: TestServer[];
  beforeAll(async () => {
    members = await startCluster(3);
  });
  afterAll(async () => {
    await Promise.all((members ?? []).map((m) => m.destroy()));
  });

  it('moves keep-alives to another member when the one in use stops', async () => {
    const client = newClient(members.map((m) => m.endpoint));
    const lease = client.lease(6);
    const lost: unknown[] = [];
    lease.on('lost', (e) => lost.push(e));
    const id = await lease.grant();
    await keepalives(lease, 1, 10000);
    expect(client.activeEndpoint).toBe(members[0].endpoint);

    await members[0].stop('SIGTERM');
    try {
      await keepalives(lease, 3, 20000);
      expect(lost).toEqual([]);
      const check = newClient([members[1].endpoint, members[2].endpoint]);
      expect((await check.leaseTimeToLive(id)).ttl).toBeGreaterThan(0n);
    } finally {
      await members[0].start();
    }
    await lease.revoke();
  });
});
