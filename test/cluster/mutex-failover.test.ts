/**
 * Mutual exclusion through a leader failover (issue: recipes, "leader failover once Raft
 * lands").
 *
 * Goal: @coord/recipes' Mutex keeps its promises while the cluster's leader is SIGKILLed:
 * critical sections never overlap, fencing tokens strictly increase in the order the
 * sections ran, and every guarded write that was acknowledged is counted exactly once.
 *
 * Method: a 3-member cluster (CLUSTER_TEST_TARGET); 5 contenders, each with its own client
 * over all three endpoints and its own session (TTL 5 s, longer than a failover). Each
 * loops: lock, read the counter, write counter+1 with txnIfOwner (fenced by ownership and
 * by the counter's value), record the section with its token and monotonic times, unlock.
 * Calls that fail during the failover are retried; a guarded write whose outcome is unknown
 * (timed out) is counted as ambiguous. After the leader is killed the loop runs until 30
 * more sections have completed.
 */
import { Client, op, compare } from '@coord/client';
import { Mutex, Session } from '@coord/recipes';
import { Cluster, clusterKind, waitFor } from '../harness/cluster';

const kind = clusterKind();

interface Section {
  token: bigint;
  start: bigint;
  end: bigint;
}

describe(`Mutex across a leader failover (${kind})`, () => {
  let cluster: Cluster;
  const clients: Client[] = [];
  /** Ends the contenders' loops; also on a failed test, so jest is not kept running. */
  let stop = false;

  beforeAll(async () => {
    cluster = await Cluster.start({ kind, size: 3, heartbeatMs: 100, electionMs: 1000 });
  }, 60_000);

  afterAll(async () => {
    stop = true;
    for (const c of clients) c.close();
    await cluster?.destroy();
  }, 30_000);

  test('no overlap, tokens only grow, every acknowledged guarded write counted once', async () => {
    const endpoints = cluster.allEndpoints();
    const admin = new Client({ endpoints, callTimeoutMs: 2000 });
    clients.push(admin);
    await admin.put('mxf/counter', '0');
    const sections: Section[] = [];
    let ambiguous = 0;
    let fencedOut = 0;
    let killedAt = -1;
    const contender = async (): Promise<void> => {
      const c = new Client({ endpoints, callTimeoutMs: 1500 });
      clients.push(c);
      const session = await waitFor(async () => Session.create(c, { ttl: 5 }).catch(() => undefined), 20_000, () => 'a session');
      const m = new Mutex(session, 'mxf/lock');
      while (!stop) {
        try {
          await m.withLock(async ({ fencingToken }) => {
            const start = process.hrtime.bigint();
            const n = Number((await c.get('mxf/counter'))!.valueString());
            let res;
            try {
              res = await m.txnIfOwner([op.put('mxf/counter', String(n + 1))], { compare: [compare.value('mxf/counter', '=', String(n))] });
            } catch (err) {
              ambiguous++;
              throw err;
            }
            // Refused: we no longer own the lock (the fence did its job); not a section.
            if (!res.succeeded) {
              fencedOut++;
              return;
            }
            sections.push({ token: fencingToken, start, end: process.hrtime.bigint() });
          }, { timeoutMs: 10_000 });
        } catch {
          // A failover or a lost lock: try again (the section was not recorded).
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await m.unlock().catch(() => undefined);
      await session.close().catch(() => undefined);
    };
    const running = Array.from({ length: 5 }, () => contender());
    await waitFor(async () => (sections.length >= 20 ? true : undefined), 30_000, () => 'sections before the kill');
    const leader = await cluster.waitLeader();
    await leader.kill();
    killedAt = sections.length;
    await waitFor(async () => (sections.length >= killedAt + 30 ? true : undefined), 60_000, () => `30 sections after the kill (have ${sections.length - killedAt})`);
    stop = true;
    await Promise.all(running);

    const sorted = [...sections].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i].start).toBeGreaterThan(sorted[i - 1].end);
      expect(sorted[i].token).toBeGreaterThan(sorted[i - 1].token);
    }
    const counter = BigInt((await admin.get('mxf/counter'))!.valueString());
    expect(counter).toBeGreaterThanOrEqual(BigInt(sections.length));
    expect(counter).toBeLessThanOrEqual(BigInt(sections.length + ambiguous));
    console.log(`mutex failover (${kind}): ${sections.length} sections (${sections.length - killedAt} after the leader's SIGKILL), ${ambiguous} ambiguous writes, ${fencedOut} refused by the fence, counter ${counter}`);
    await leader.restart();
  }, 120_000);
});
