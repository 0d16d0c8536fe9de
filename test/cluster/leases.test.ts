/**
 * Leases in a 3-member cluster, across a leader failover.
 *
 * Goal: etcd's lease semantics hold when the member a client talks to is not the leader and
 * when the leader dies: keepalives and TimeToLive sent to a follower reach the leader
 * (etcd forwards them); after the leader is SIGKILLed, the new leader keeps every lease
 * alive (etcd's lessor.Promote gives each its TTL again, so no lease expires early because
 * of the failover) and the attached keys stay; once keepalives stop, the new leader expires
 * the lease and every member deletes its keys.
 *
 * Method: one cluster (CLUSTER_TEST_TARGET=coord|etcd); @coord/client pinned to one
 * follower. A lease of 4 s (longer than a failover) with one attached key.
 */
import { Client } from '@coord/client';
import { Cluster, clusterKind, waitFor } from '../harness/cluster';

const kind = clusterKind();
const TTL = 4n;

describe(`leases in a 3-member cluster (${kind})`, () => {
  let cluster: Cluster;
  const clients: Client[] = [];
  const clientOf = (endpoint: string): Client => {
    const c = new Client({ endpoints: [endpoint], callTimeoutMs: 2000 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await Cluster.start({ kind, size: 3, heartbeatMs: 100, electionMs: 1000 });
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster?.destroy();
  }, 30_000);

  test('keepalive through a follower; the lease outlives a leader SIGKILL; then expires on every member', async () => {
    const leader = await cluster.waitLeader();
    const followers = cluster.serving().filter((m) => m !== leader);
    const [f1, f2] = followers;
    const viaF1 = clientOf(f1.endpoint);
    const granted = await viaF1.leaseGrant(TTL);
    expect(granted.ttl).toBe(TTL);
    await viaF1.put('lease/key', 'v', { lease: granted.id });

    // A keepalive answered through the follower carries the granted TTL; TimeToLive too.
    await new Promise((r) => setTimeout(r, 1500));
    const ka = await viaF1.leaseKeepAliveOnce(granted.id);
    expect(ka.ttl).toBe(TTL);
    const ttl = await viaF1.leaseTimeToLive(granted.id, { keys: true });
    expect(ttl.grantedTtl).toBe(TTL);
    expect(ttl.ttl).toBeGreaterThanOrEqual(TTL - 1n);
    expect(ttl.keys.map(String)).toEqual(['lease/key']);

    // Kill the leader; keep the lease alive through the follower while the others elect.
    await leader.kill();
    const keeping = setInterval(() => void viaF1.leaseKeepAliveOnce(granted.id).catch(() => undefined), 500);
    try {
      const newLeader = await cluster.waitLeader({ exclude: [leader], timeoutMs: 15_000 });
      // Well past the TTL counted from before the kill: still alive, keys still there, on both survivors.
      await new Promise((r) => setTimeout(r, Number(TTL) * 1000 + 1000));
      for (const m of [f1, f2]) {
        const c = clientOf(m.endpoint);
        expect((await c.leaseTimeToLive(granted.id)).ttl).toBeGreaterThan(0n);
        expect((await c.get('lease/key', { serializable: true }))?.value.toString()).toBe('v');
      }
      expect(newLeader).not.toBe(leader);
    } finally {
      clearInterval(keeping);
    }

    // Keepalives stop: the new leader expires the lease; every serving member deletes the key.
    for (const m of [f1, f2]) {
      const c = clientOf(m.endpoint);
      await waitFor(async () => ((await c.get('lease/key', { serializable: true })) === undefined ? true : undefined), 15_000, () => `${m.label} to delete the expired lease's key`);
      expect((await c.leaseTimeToLive(granted.id)).ttl).toBe(-1n);
    }
    await leader.restart();
    const c = clientOf(leader.endpoint);
    await waitFor(async () => ((await c.get('lease/key', { serializable: true })) === undefined ? true : undefined), 15_000, () => `restarted ${leader.label} to catch up the deletion`);
  }, 90_000);
});
