/**
 * Differential test of etcdctl's cluster commands: a 3-member etcd cluster against a
 * 3-member coord cluster, the same commands on both, outputs compared after normalization.
 *
 * CLUSTER_DIFF_TARGET=etcd compares etcd with a second etcd cluster, which validates the
 * scenario and the normalization; that must always pass. CLUSTER_DIFF_DUMP=1 prints the
 * reference's normalized transcript.
 *
 * Goal: the commands operators run against a cluster (member list in every format, member
 * add --learner, member promote and its refusals, member remove, endpoint status and
 * health --cluster, move-leader and its refusals) print what etcd prints, exit with the
 * same codes, and agree on which member is which (the leader, the learner, the member
 * just added or removed).
 *
 * Method: both clusters start together (heartbeat 100 ms, election timeout 1 s). Before
 * the scenario, leadership is moved to m1 on both sides (through the harness), so "who
 * leads" is the same role on both. Each step runs on both sides concurrently against the
 * same role's endpoint(s); outputs are normalized by cluster-normalize.ts (members by role:
 * <m2>, <m2.id>, <m2.client>; terms, indexes, sizes, durations erased; rows and arrays
 * sorted); the reference's exit code must be the one the step states (so the scenario also
 * records what etcd 3.4 does), and the target's normalized result must equal the
 * reference's. Membership changes that etcd refuses while the cluster is young ("unhealthy
 * cluster": the leader must have seen its peers for 5 s) and promotions of a learner that is
 * still catching up ("in sync with leader") are retried on each side until etcd's answer
 * changes; only the final answer is compared. The member added with etcdctl (m4) is
 * started by the harness with --initial-cluster-state existing, on each side.
 */
import { Cluster, clusterKind, ClusterKind, ClusterMember, Plan, planPeerUrl, waitFor, within } from '../harness/cluster';
import { ClusterNormalizer } from '../harness/cluster-normalize';
import { etcdctl, EtcdctlResult } from '../harness/etcdctl';
import type { Normalized } from '../harness/normalize';
import { sleep } from '../harness/proc';

/** CLUSTER_DIFF_TARGET=coord (default) or etcd. */
const targetKind: ClusterKind = process.env.CLUSTER_DIFF_TARGET ? clusterKind('CLUSTER_DIFF_TARGET') : 'coord';
const DUMP = process.env.CLUSTER_DIFF_DUMP === '1';
const NOT_A_MEMBER = 'abcdef0123';

interface Side {
  kind: ClusterKind;
  cluster: Cluster;
  norm: ClusterNormalizer;
  /** The member the scenario adds with etcdctl (planned before it exists). */
  plan4: Plan;
  m4?: ClusterMember;
  transcript: (Normalized & { cmd: string })[];
}

/** Role → member (m1..m3 in start order, m4 once added). */
function role(s: Side, label: string): ClusterMember {
  if (label === 'm4') {
    if (!s.m4) throw new Error('m4 is not started');
    return s.m4;
  }
  const m = s.cluster.members[Number(label.slice(1)) - 1];
  if (!m) throw new Error(`no member ${label}`);
  return m;
}

function hexId(s: Side, label: string): string {
  if (label === 'm4') {
    const id = s.norm.members.find((m) => m.label === 'm4')?.id;
    if (id === undefined) throw new Error('m4 has no ID yet');
    return id.toString(16);
  }
  return role(s, label).id!.toString(16);
}

interface Cmd {
  /** etcdctl arguments for this side. */
  args: (s: Side) => string[];
  /** Roles whose endpoints etcdctl gets (default ['m1']). */
  on?: string[];
  /** Exit code etcd's etcdctl must give (default 0). */
  code?: number;
  /** Retry on each side while stderr matches (the final answer is compared). */
  retryWhile?: RegExp;
  /** Runs on each side's result before it is normalized (e.g. to learn a new member's ID). */
  learn?: (s: Side, r: EtcdctlResult) => void;
}

describe(`etcdctl cluster commands: etcd cluster vs ${targetKind} cluster`, () => {
  let ref: Side;
  let tgt: Side;

  beforeAll(async () => {
    const start = async (kind: ClusterKind): Promise<Side> => {
      const cluster = await Cluster.start({ kind, size: 3, heartbeatMs: 100, electionMs: 1000 });
      const norm = new ClusterNormalizer();
      cluster.members.forEach((m, i) => norm.set({ label: `m${i + 1}`, name: m.name, clientPort: m.clientPort, peerPort: m.peerPort, id: m.id }));
      norm.clusterId = await cluster.clusterId();
      const plan4 = await cluster.plan();
      norm.set({ label: 'm4', name: plan4.name, clientPort: plan4.clientPort, peerPort: plan4.peerPort });
      await cluster.moveLeader(cluster.members[0]);
      return { kind, cluster, norm, plan4, transcript: [] };
    };
    const [r, t] = await Promise.allSettled([start('etcd'), start(targetKind)]);
    if (r.status === 'fulfilled') ref = r.value;
    if (t.status === 'fulfilled') tgt = t.value;
    if (r.status === 'rejected') throw r.reason;
    if (t.status === 'rejected') throw t.reason;
  }, 90_000);

  afterAll(async () => {
    if (DUMP && ref) console.log(`reference transcript:\n${ref.transcript.map((e) => `$ ${e.cmd}\n[${e.code}]\n${e.stdout}${e.stderr ? `--- stderr\n${e.stderr}\n` : ''}`).join('\n')}`);
    await Promise.all([ref?.cluster.destroy(), tgt?.cluster.destroy()]);
  }, 30_000);

  async function runSide(s: Side, c: Cmd): Promise<{ args: string[]; r: EtcdctlResult }> {
    const eps = (c.on ?? ['m1']).map((l) => (l === 'm4' && !s.m4 ? `127.0.0.1:${s.plan4.clientPort}` : role(s, l).endpoint));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const args = c.args(s);
      const r = await etcdctl(eps, args, { dialTimeout: '2s', commandTimeout: '5s' });
      if (!c.retryWhile || !c.retryWhile.test(r.stderr) || Date.now() > deadline) return { args, r };
      await sleep(200);
    }
  }

  /** Runs `c` on both sides, checks etcd's exit code, compares the normalized outputs. */
  async function both(c: Cmd): Promise<[EtcdctlResult, EtcdctlResult]> {
    const [a, b] = await Promise.all([runSide(ref, c), runSide(tgt, c)]);
    c.learn?.(ref, a.r);
    c.learn?.(tgt, b.r);
    const entry = (s: Side, x: { args: string[]; r: EtcdctlResult }) => ({ cmd: `etcdctl ${s.norm.literals(x.args.join(' '))}`, ...s.norm.normalize(x.args, x.r) });
    const e1 = entry(ref, a);
    const e2 = entry(tgt, b);
    ref.transcript.push(e1);
    tgt.transcript.push(e2);
    expect({ cmd: e1.cmd, code: e1.code, stderr: e1.code === (c.code ?? 0) ? '' : e1.stderr }).toEqual({ cmd: e1.cmd, code: c.code ?? 0, stderr: '' });
    expect(e2).toEqual(e1);
    return [a.r, b.r];
  }

  /** Runs `fn` on both sides concurrently. */
  async function eachSide(fn: (s: Side) => Promise<void>): Promise<void> {
    await Promise.all([fn(ref), fn(tgt)]);
  }

  test('member list in every format; endpoint status and health --cluster', async () => {
    await both({ args: () => ['member', 'list'] });
    await both({ args: () => ['member', 'list', '-w', 'table'] });
    await both({ args: () => ['member', 'list', '-w', 'json'] });
    await both({ args: () => ['endpoint', 'status', '--cluster'] });
    await both({ args: () => ['endpoint', 'status', '--cluster', '-w', 'table'] });
    await both({ args: () => ['endpoint', 'status', '--cluster', '-w', 'json'] });
    await both({ args: () => ['endpoint', 'health', '--cluster'] });
    await both({ args: () => ['endpoint', 'health', '--cluster', '-w', 'table'] });
    await both({ args: () => ['endpoint', 'health', '--cluster', '-w', 'json'] });
  });

  test('member add --learner, the refusals of member add and promote, then start, promote and remove the learner', async () => {
    await both({
      args: (s) => ['member', 'add', s.plan4.name, `--peer-urls=${planPeerUrl(s.plan4)}`, '--learner'],
      retryWhile: /unhealthy cluster/,
      learn: (s, r) => {
        const id = /Member\s+([0-9a-f]+) added/.exec(r.stdout)?.[1];
        if (id) s.norm.set({ label: 'm4', id: BigInt('0x' + id) });
      },
    });
    for (const s of [ref, tgt]) expect({ side: s.kind, m4: s.norm.members.find((m) => m.label === 'm4')?.id !== undefined }).toEqual({ side: s.kind, m4: true });
    // The learner is listed as unstarted, with no name and no client URLs.
    await both({ args: () => ['member', 'list', '-w', 'table'] });
    await both({ args: () => ['member', 'list', '-w', 'json'] });
    await both({ args: () => ['member', 'list'] });
    // Refusals.
    await both({ args: (s) => ['member', 'promote', hexId(s, 'm4')], code: 1 }); // not started: not in sync
    await both({ args: (s) => ['member', 'promote', hexId(s, 'm2')], code: 1 }); // a voter
    await both({ args: () => ['member', 'promote', NOT_A_MEMBER], code: 1 });
    await both({ args: () => ['member', 'remove', NOT_A_MEMBER], code: 1 });
    await both({ args: () => ['member', 'add', 'second-learner', '--peer-urls=http://127.0.0.1:1', '--learner'], code: 1 }); // one learner at a time
    // A started member's peer URL. (Not the learner's just added: etcd derives an added member's
    // ID from its URLs and the current second, so a second add of those URLs within the same
    // second is refused as "member ID already exist", later as "Peer URLs already exists".)
    await both({ args: (s) => ['member', 'add', 'same-peer-url', `--peer-urls=${role(s, 'm2').peerUrl}`], code: 1 });
    await both({ args: () => ['member', 'add', 'no-peer-url'], code: 128 });

    // Start the learner's process; promote it once it has caught up.
    await eachSide(async (s) => {
      s.m4 = await s.cluster.startAdded(s.plan4, s.norm.members.find((m) => m.label === 'm4')!.id!);
      await s.cluster.waitPublished();
    });
    await both({ args: () => ['endpoint', 'status', '--cluster', '-w', 'table'] });
    await both({ args: (s) => ['member', 'promote', hexId(s, 'm4')], retryWhile: /in sync with leader/ });
    await both({ args: () => ['member', 'list', '-w', 'table'] });
    await both({ args: () => ['endpoint', 'status', '--cluster', '-w', 'table'] });
    await both({ args: () => ['endpoint', 'health', '--cluster'] });
    await both({ args: (s) => ['member', 'promote', hexId(s, 'm4')], code: 1 }); // no longer a learner

    // Remove it: the process exits by itself (code 0) on both sides.
    for (const s of [ref, tgt]) s.m4!.removed = true;
    await both({ args: (s) => ['member', 'remove', hexId(s, 'm4')], retryWhile: /unhealthy cluster/ });
    await eachSide(async (s) => {
      const exit = await within(s.m4!.proc.waitExit(), 15_000);
      expect({ side: s.kind, exit }).toEqual({ side: s.kind, exit: { code: 0, signal: null } });
      s.cluster.members.splice(s.cluster.members.indexOf(s.m4!), 1);
      s.cluster.removedMembers.push(s.m4!);
    });
    await both({ args: (s) => ['member', 'remove', hexId(s, 'm4')], code: 1 });
    await both({ args: () => ['member', 'list', '-w', 'table'] });
    await both({ args: () => ['endpoint', 'health', '--cluster', '-w', 'table'] });
  }, 90_000);

  test('move-leader: to a follower, to the leader itself, and its refusals', async () => {
    await eachSide((s) => s.cluster.moveLeader(role(s, 'm1')));
    const all = ['m1', 'm2', 'm3'];
    await both({ args: (s) => ['move-leader', hexId(s, 'm2')], on: all });
    await eachSide(async (s) => {
      await waitFor(async () => ((await s.cluster.leader()) === role(s, 'm2') ? true : undefined), 10_000, () => `${s.kind}: m2 to lead`);
    });
    await both({ args: () => ['endpoint', 'status', '--cluster', '-w', 'table'] });
    await both({ args: (s) => ['move-leader', hexId(s, 'm2')], on: all });
    await both({ args: () => ['move-leader', NOT_A_MEMBER], on: all, code: 1 });
    // Only followers' endpoints given: etcdctl finds no leader to ask.
    await both({ args: (s) => ['move-leader', hexId(s, 'm3')], on: ['m1'], code: 128 });
    await both({ args: () => ['move-leader'], on: all, code: 128 });
  }, 60_000);
});
