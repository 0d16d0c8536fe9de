/**
 * Process-level failover of a 3-member cluster: leader SIGKILL, follower and leader
 * SIGSTOP, and a full stop/start, under concurrent write load.
 *
 * Goal: DESIGN.md §4 "Process-level cluster tests": with real processes on loopback, a
 * dead or frozen member (the leader included) does not stop the cluster, a new leader is
 * elected when the leader is gone, writes resume, and nothing the cluster acknowledged is
 * lost; a member that was dead or frozen catches up; every member ends with the same store
 * (HashKV at one revision); and a cluster stopped entirely comes back with its data.
 *
 * Method: one 3-member cluster for the file (CLUSTER_TEST_TARGET=etcd|coord, default
 * etcd; --heartbeat-interval 100 --election-timeout 1000). Each scenario runs a WriteLoad
 * (harness/write-load.ts): 10 writers, 1 s per put, unique keys, each failed put retried on
 * the next endpoint of all three, acknowledgements recorded with their revisions. The
 * fault is injected once the load is flowing; conditions are waited for, not slept on,
 * except the SIGSTOP of a follower, which is held for 3 election timeouts by design.
 * Failover times are printed, not asserted, beyond a 15 s bound that catches a hang
 * (wall-clock speed is for scripts/failover-time.js). Each scenario ends with
 * verify.ts expectConverged: every acknowledged put of the file, with its value and
 * revision, on every member; nothing that was not attempted; HashKV equal everywhere.
 * A scenario that fails midway leaves the cluster healed (paused members resumed, dead
 * ones restarted) for the next.
 */
import { Cluster, clusterKind, waitFor } from '../harness/cluster';
import { killLeader } from '../harness/failover';
import { sleep } from '../harness/proc';
import { WriteLoad } from '../harness/write-load';
import { expectConverged } from './verify';

const kind = clusterKind();
const ELECTION_MS = 1000;
const HANG_BOUND_MS = 15_000;
const PREFIX = `/failover/${process.pid}-${Date.now()}/`;

describe(`3-member cluster failover (${kind})`, () => {
  let cluster: Cluster;
  const loads: WriteLoad[] = [];
  const load = (name: string): WriteLoad => {
    const l = new WriteLoad(() => cluster.allEndpoints(), { prefix: `${PREFIX}${name}/`, writers: 10, timeoutMs: 1000 });
    loads.push(l);
    return l.start();
  };

  beforeAll(async () => {
    cluster = await Cluster.start({ kind, size: 3, heartbeatMs: 100, electionMs: ELECTION_MS });
  }, 60_000);

  afterEach(async () => {
    await Promise.all(loads.map((l) => l.stop()));
    // A member that died without the test killing it (a crash, or something else on the
    // machine killing our processes) is named here, not only seen as refused connections.
    const unexpected = cluster?.takeUnexpectedExits() ?? [];
    if (unexpected.length > 0) console.log(`unexpected exits: ${unexpected.join('; ')}\n${cluster.logs(3000)}`);
    await cluster?.heal();
    expect(unexpected).toEqual([]);
  }, 60_000);

  afterAll(async () => {
    await cluster?.destroy();
  }, 30_000);

  test('SIGKILL the leader under write load: a new leader, writes resume, the old leader rejoins and catches up, nothing acknowledged is lost', async () => {
    const l = load('kill-leader');
    await l.waitAcks(100);
    const f = await killLeader(cluster, l, { timeoutMs: HANG_BOUND_MS });
    console.log(
      `failover (${kind}): SIGKILL leader ${f.killed.name}: new leader ${f.newLeader.name} after ${f.electedMs} ms, ` +
        `first acknowledged write after ${f.gapMs} ms (term ${f.termBefore} -> ${f.termAfter})`,
    );
    expect(f.newLeader).not.toBe(f.killed);
    expect(f.termAfter).toBeGreaterThan(f.termBefore);
    expect(f.gapMs).toBeLessThan(HANG_BOUND_MS);
    expect(f.killed.proc.exitInfo?.signal).toBe('SIGKILL');

    // Writes keep flowing on two members, then the killed one comes back under load.
    await l.waitAcks(100, { sentSince: Date.now() });
    await f.killed.restart();
    const back = Date.now();
    await l.waitAcks(100, { sentSince: back });
    // The restarted member serves writes itself again (not only its peers).
    await waitFor(
      async () => (l.sentSince(back).some((a) => a.endpoint === f.killed.endpoint) ? true : undefined),
      HANG_BOUND_MS,
      () => `an acknowledged put through the restarted ${f.killed.label}`,
    );
    await l.stop();
    const c = await expectConverged(cluster, PREFIX, loads, 'after leader SIGKILL');
    console.log(`failover (${kind}): ${l.acks.length} puts acknowledged, ${l.failures} failed; converged at revision ${c.revision}, hash ${c.hash}`);
  }, 90_000);

  test('SIGSTOP a follower for 3 election timeouts: the cluster keeps serving with the same leader; on SIGCONT it catches up', async () => {
    const leader = await cluster.waitLeader();
    const termBefore = BigInt((await leader.status()).raftTerm);
    const follower = cluster.members.find((m) => m !== leader)!;
    const l = load('pause-follower');
    await l.waitAcks(50);
    follower.pause();
    const pausedAt = Date.now();
    await Promise.all([l.waitAcks(100, { sentSince: pausedAt, timeoutMs: HANG_BOUND_MS }), sleep(3 * ELECTION_MS)]);
    // Writes went through the two others while it was frozen; the leader did not change.
    const whilePaused = l.sentSince(pausedAt);
    expect(whilePaused.some((a) => a.endpoint === follower.endpoint)).toBe(false);
    expect(await cluster.leader()).toBe(leader);
    expect(BigInt((await leader.status()).raftTerm)).toBe(termBefore);
    const revWhilePaused = await cluster.revision();

    follower.resume();
    const resumedAt = Date.now();
    // It catches up: its own store reaches the revision written while it was frozen...
    await waitFor(
      async () => (BigInt((await follower.kv().range('\0', { serializable: true }, 1000)).header.revision) >= revWhilePaused ? true : undefined),
      HANG_BOUND_MS,
      () => `${follower.label} to apply revision ${revWhilePaused}`,
    );
    // ... and serves writes again.
    await waitFor(
      async () => (l.sentSince(resumedAt).some((a) => a.endpoint === follower.endpoint) ? true : undefined),
      HANG_BOUND_MS,
      () => `an acknowledged put through the resumed ${follower.label}`,
    );
    await l.stop();
    console.log(`failover (${kind}): follower ${follower.name} frozen for ${resumedAt - pausedAt} ms; ${whilePaused.length} puts acknowledged meanwhile`);
    await expectConverged(cluster, PREFIX, loads, 'after follower SIGSTOP/SIGCONT');
  }, 90_000);

  test('SIGSTOP the leader: the others elect a new leader and serve; on SIGCONT the old leader steps down and catches up', async () => {
    const l = load('pause-leader');
    await l.waitAcks(50);
    const old = await cluster.waitLeader();
    const termBefore = BigInt((await old.status()).raftTerm);
    const t0 = Date.now();
    old.pause();
    const newLeader = await cluster.waitLeader({ exclude: [old], timeoutMs: HANG_BOUND_MS });
    const electedMs = Date.now() - t0;
    const [first] = await l.waitAcks(1, { sentSince: t0, timeoutMs: HANG_BOUND_MS });
    const gapMs = first.ackMs - t0;
    const termAfter = await newLeader.termAbove(termBefore);
    console.log(`failover (${kind}): SIGSTOP leader ${old.name}: new leader ${newLeader.name} after ${electedMs} ms, first acknowledged write after ${gapMs} ms`);
    expect(newLeader).not.toBe(old);
    expect(termAfter).toBeGreaterThan(termBefore);
    expect(gapMs).toBeLessThan(HANG_BOUND_MS);
    await l.waitAcks(100, { sentSince: Date.now() });

    old.resume();
    const resumedAt = Date.now();
    // The old leader learns of the higher term and follows the new leader.
    await waitFor(
      async () => {
        const s = await old.status();
        return s.leader === newLeader.id!.toString() && BigInt(s.raftTerm) >= termAfter ? true : undefined;
      },
      HANG_BOUND_MS,
      () => `${old.label} to step down and follow ${newLeader.label}`,
    );
    expect(await cluster.leader()).not.toBe(old);
    await waitFor(
      async () => (l.sentSince(resumedAt).some((a) => a.endpoint === old.endpoint) ? true : undefined),
      HANG_BOUND_MS,
      () => `an acknowledged put through the resumed ${old.label}`,
    );
    await l.stop();
    await expectConverged(cluster, PREFIX, loads, 'after leader SIGSTOP/SIGCONT');
  }, 90_000);

  test('stop every member, start them all again: data intact, same revision and HashKV, writes accepted', async () => {
    const l = load('restart-all');
    await l.waitAcks(100);
    await l.stop();
    const before = await expectConverged(cluster, PREFIX, loads, 'before full restart');
    await cluster.stopAll();
    expect(cluster.members.every((m) => !m.running)).toBe(true);
    await cluster.startAll();
    await cluster.waitLeader();
    const after = await expectConverged(cluster, PREFIX, loads, 'after full restart');
    expect(after).toEqual(before);
    // And it takes writes again.
    const l2 = load('after-restart-all');
    await l2.waitAcks(50);
    await l2.stop();
    await expectConverged(cluster, PREFIX, loads, 'writes after full restart');
  }, 90_000);
});
