/**
 * Goal: coord's membership commands are etcdctl 3.4's: `member add|remove|update|promote`,
 * `endpoint health [--cluster]`, `endpoint status --cluster`, `move-leader` print the same
 * bytes on stdout and stderr and exit with the same codes, in every output format, for
 * successes, argument errors and server errors.
 * Method: a real 3-member cluster (helpers/etcd-cluster.ts; CLUSTER_TEST_TARGET=etcd|coord
 * picks the server, etcd by default). Each case runs `etcdctl` and `coord` with the same
 * arguments against the same cluster.
 * - Cases that change nothing (argument errors, server refusals, reads) must be
 *   byte-identical; argument errors and reads run side by side, refusals one at a time
 *   (a refused change is still a raft conf change, and raft allows one pending at a time). `endpoint health` is compared once its timings ("took") are
 *   replaced and its lines put in one order (etcdctl prints them as the checks complete).
 * - Changes run in lockstep: etcdctl makes the change and undoes it, then coord makes the
 *   same change. The new member's ID differs between the two runs (etcd draws it at random):
 *   it is replaced by <NEW>, and the lists it appears in are sorted, since etcd orders
 *   members by ID. Nothing else is normalized.
 * - A real fourth member per tool: `member add --learner`, started with the printed
 *   ETCD_INITIAL_CLUSTER and --initial-cluster-state existing, `member promote` retried until
 *   it is in sync, then removed.
 * - Leadership moves from leader L to follower F with etcdctl, back with etcdctl, then from L
 *   to F with coord: both print "Leadership transferred from L to F", unnormalized.
 * Member commands use one endpoint so that the member answering (in JSON headers) is the same.
 */
import { Client, MemberNotFoundError, UnhealthyError, type Member } from '@coord/client';
import { StopWaiting, freePort, startCluster, waitFor, type TestCluster } from './helpers/etcd-cluster';
import { coord, etcdctl, type RunResult } from './helpers/run';
import { goDuration } from '../src/membership';
import { newMembershipPrinter } from '../src/output/membership';
import { renderTable } from '../src/output/table';

jest.setTimeout(60000);

interface View {
  stdout: string;
  stderr: string;
  code: number;
}

const view = (r: RunResult): View => ({ stdout: r.stdout.toString('utf8'), stderr: r.stderr, code: r.code });

let cluster: TestCluster;
let client: Client;
/** The first member's endpoint: member commands go there (same member_id in both headers). */
let one: string;
/** The learner whose peer URL points nowhere: never in sync, so never promotable. */
let stale: bigint;
let nowhere: string;

const hex = (id: bigint): string => id.toString(16);

/**
 * etcdctl and coord with the same arguments; at the same time unless `sequential` (refused
 * membership changes are still raft conf changes, and raft drops a conf change proposed while
 * another is pending: the dropped one would time out instead of being refused).
 */
async function both(args: readonly string[], endpoints = one, sequential = false): Promise<{ ref: View; ours: View }> {
  const full = ['--endpoints', endpoints, ...args];
  if (sequential) {
    const ref = view(await etcdctl(full));
    return { ref, ours: view(await coord(full)) };
  }
  const [ref, ours] = await Promise.all([etcdctl(full), coord(full)]);
  return { ref: view(ref), ours: view(ours) };
}

async function members(): Promise<Member[]> {
  return (await client.memberList()).members;
}

/** Members present now that were not in `before`. */
async function newMembers(before: readonly Member[]): Promise<bigint[]> {
  const known = new Set(before.map((m) => m.id));
  return (await members()).map((m) => m.id).filter((id) => !known.has(id));
}

/** Remove these members; one the steps removed already (a follower's list may lag) is fine. */
async function removeAll(ids: readonly bigint[]): Promise<void> {
  for (const id of ids) await client.memberRemove(id).catch((err: unknown) => {
    if (!(err instanceof MemberNotFoundError)) throw err;
  });
}

async function leaderId(): Promise<bigint> {
  return waitFor('a leader every member agrees on', async () => {
    const leaders = await Promise.all(cluster.members.map(async (m) => (await client.status({ endpoint: m.endpoint })).leader));
    return leaders[0] !== 0n && leaders.every((l) => l === leaders[0]) ? leaders[0] : undefined;
  });
}

// ---- normalization: only what legitimately differs -------------------------------------------

/** The new member's ID, in every form etcdctl prints it (`%16x`, hex, decimal), becomes <NEW>. */
function withoutIds(s: string, ids: readonly bigint[]): string {
  for (const id of ids) {
    s = s.split(hex(id).padStart(16, ' ')).join('<NEW>').split(hex(id)).join('<NEW>').split(id.toString()).join('<NEW>');
  }
  return s;
}

/** Lists ordered by member ID, put in one order: JSON member arrays, ETCD_INITIAL_CLUSTER, list lines. */
function memberOrder(s: string): string {
  s = s.replace(/"members":\[((?:\{[^{}]*\},?)*)\]/g, (_m, inner: string) => `"members":[${(inner.match(/\{[^{}]*\}/g) ?? []).sort().join(',')}]`);
  s = s.replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_m, v: string) => `ETCD_INITIAL_CLUSTER="${v.split(',').sort().join(',')}"`);
  return s;
}

const sortLines = (s: string): string => s.split('\n').filter((l) => l !== '').sort().join('\n');

function lockstep(v: View, ids: readonly bigint[], sortAllLines = false): View {
  const f = (s: string): string => {
    const t = memberOrder(withoutIds(s, ids));
    return sortAllLines ? sortLines(t) : t;
  };
  return { stdout: f(v.stdout), stderr: f(v.stderr), code: v.code };
}

/** etcdctl's table, parsed back into cells. */
function tableCells(text: string): { header: string[]; rows: string[][] } {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  const cells = lines.map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
  return { header: cells[0], rows: cells.slice(1) };
}

/** `endpoint health` in any format, with "took" replaced and the endpoints in one order. */
function health(v: View, format: string): View {
  let out = v.stdout;
  let err = v.stderr;
  switch (format) {
    case 'simple':
      err = sortLines(err.replace(/took = \S+/g, 'took = <T>'));
      break;
    case 'json':
      out = out.replace(/"took":"[^"]*"/g, '"took":"<T>"');
      out = `[${(out.match(/\{[^{}]*\}/g) ?? []).sort().join(',')}]`;
      break;
    case 'fields':
      out = out.replace(/"Took" : \S*/g, '"Took" : <T>').split('\n\n').filter((b) => b.trim() !== '').sort().join('\n\n');
      break;
    case 'table': {
      // The table must be what etcdctl's tablewriter draws for its cells (checked against
      // etcdctl's own output by re-rendering it), then compare the cells without timings.
      const t = tableCells(out);
      out = JSON.stringify({ header: t.header, rows: t.rows.map((r) => [r[0], r[1], '<T>', r[3]]).sort() });
      break;
    }
  }
  return { stdout: out, stderr: err, code: v.code };
}

function expectTableAsEtcdctlDraws(text: string): void {
  const t = tableCells(text);
  expect(renderTable(['endpoint', 'health', 'took', 'error'], t.rows).join('\n') + '\n').toBe(text);
}

// ---- the cluster ----------------------------------------------------------------------------

/** Resolves once the stale learner is in: the cluster then accepts membership changes. */
let staleAdded: Promise<void>;
/** A port nobody listens on. */
let deadPort = 0;
/** m1's ID in hex: a voter. */
let voterHex = '';

beforeAll(async () => {
  cluster = await startCluster(3);
  one = cluster.members[0].endpoint;
  client = new Client({ endpoints: cluster.members.map((m) => m.endpoint), callTimeoutMs: 3000 });
  nowhere = `http://127.0.0.1:${await freePort()}`;
  deadPort = await freePort();
  const m1 = (await members()).find((m) => m.name === 'm1') as Member;
  voterHex = hex(m1.id);
  // The single-endpoint move-leader refusal needs a follower at members[1]: make m1 lead
  // (before any membership change, which a leadership transfer could disturb).
  if ((await leaderId()) !== m1.id) {
    await client.moveLeader(m1.id);
    await waitFor('m1 to lead', async () => (await leaderId()) === m1.id);
  }
  // etcd refuses membership changes until the leader has heard from every voter for 5 s: the
  // first change (the stale learner) is retried on "unhealthy cluster" only, in the background
  // while the argument errors (which change nothing) run.
  staleAdded = waitFor(
    'the cluster to accept a membership change',
    async () => {
      try {
        return await client.memberAdd([nowhere], { isLearner: true });
      } catch (err) {
        if (err instanceof UnhealthyError) return undefined;
        throw new StopWaiting(err);
      }
    },
    20000,
    250,
  ).then((added) => {
    stale = added.member.id;
  });
  staleAdded.catch(() => undefined); // awaited (and reported) by the groups that need it
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

type Case = readonly string[] | { readonly args: readonly string[]; readonly endpoints: string };

/**
 * Run cases side by side (a few at a time), each `it` awaiting its own. The cases are built
 * when the group starts (some need the cluster's IDs); jest needs their names up front.
 */
function sideBySide(
  title: string,
  names: readonly string[],
  cases: () => Case[],
  options: { prepare?: () => Promise<void>; sequential?: boolean } = {},
): void {
  const concurrency = options.sequential ? 1 : 3;
  const count = names.length;
  describe(title, () => {
    let list: { args: readonly string[]; endpoints: string }[] = [];
    const outcomes: Promise<{ ref: View; ours: View }>[] = [];
    beforeAll(async () => {
      await options.prepare?.();
      list = cases().map((c) => ('endpoints' in c ? c : { args: c as readonly string[], endpoints: one }));
      expect(list).toHaveLength(count);
      const queue = [...list.keys()];
      const resolvers: ((o: Promise<{ ref: View; ours: View }>) => void)[] = [];
      for (let i = 0; i < list.length; i++) outcomes.push(new Promise<Promise<{ ref: View; ours: View }>>((r) => resolvers.push(r)).then((p) => p));
      const worker = async (): Promise<void> => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          const p = both(list[i].args, list[i].endpoints, options.sequential);
          resolvers[i](p);
          await p.catch(() => undefined);
        }
      };
      for (let i = 0; i < concurrency; i++) void worker();
    });
    for (let i = 0; i < count; i++) {
      it(names[i], async () => {
        const { ref, ours } = await outcomes[i];
        expect({ args: list[i].args, ...ours }).toEqual({ args: list[i].args, ...ref });
      });
    }
  });
}

const ARG_ERRORS: Case[] = [
  ['member', 'add'],
  ['member', 'add', 'n5'],
  ['member', 'add', 'a', 'b', 'http://x', 'HTTPS://y'],
  ['member', 'add', 'n5', '--peer-urls=foo'],
  ['member', 'add', 'n5', '--peer-urls=127.0.0.1:2380'],
  ['member', 'add', 'n5', '--peer-urls=http://127.0.0.1:9', '-w', 'bogus'],
  ['member', 'remove'],
  ['member', 'remove', 'xyz'],
  ['member', 'remove', '1ffffffffffffffff'],
  ['member', 'update', '1', '--peer-urls=http://h'],
  ['move-leader'],
  ['move-leader', 'zz'],
];
const label = (c: Case): string => ('endpoints' in c ? c.args : (c as readonly string[])).join(' ');
sideBySide('argument errors', ARG_ERRORS.map(label), () => ARG_ERRORS);

sideBySide('server refusals', [
  'member remove <unknown>: member not found',
  'member update <unknown>: member not found',
  'member promote <unknown>: member not found',
  'member promote <learner not in sync> -w json',
  'member promote <voter>: can only promote a learner member',
  'member add <peer URL in use>: Peer URLs already exists',
  'member add --learner <a second learner>: too many learner members',
  'move-leader <not a member>: bad leader transferee',
  'move-leader, first endpoint dead, --command-timeout 1s: context deadline exceeded',
  'move-leader with a follower as the only endpoint: no leader endpoint given',
], () => [
  ['member', 'remove', '1234'],
  ['member', 'update', '1234', '--peer-urls=http://127.0.0.1:9'],
  ['member', 'promote', '1234'],
  ['member', 'promote', hex(stale), '-w', 'json'],
  ['member', 'promote', voterHex],
  ['member', 'add', 'n5', `--peer-urls=${cluster.members[0].peerUrl}`],
  ['member', 'add', 'n5', '--learner', '--peer-urls=http://127.0.0.1:9'],
  { args: ['move-leader', '1234'], endpoints: cluster.endpoints },
  { args: ['--command-timeout', '1s', 'move-leader', '1234'], endpoints: `127.0.0.1:${deadPort},${cluster.endpoints}` },
  { args: ['move-leader', '1'], endpoints: cluster.members[1].endpoint },
], { prepare: () => staleAdded, sequential: true });

// (Every format of `member list` and `endpoint status` is compared in etcdctl-parity.test.ts;
// here: a learner row, and --cluster.)
const READS: Case[] = [
  ['member', 'list'],
  ['member', 'list', '-w', 'table'],
  ['endpoint', 'status', '--cluster'],
  ['endpoint', 'status', '--cluster', '-w', 'json'],
];
sideBySide('reads with an unstarted learner in the cluster', READS.map(label), () => READS, { prepare: () => staleAdded });

describe('endpoint health', () => {
  it.each(['simple', 'json', 'fields', 'table'])('-w %s, every endpoint', async (format) => {
    const { ref, ours } = await both(['endpoint', 'health', '-w', format], cluster.endpoints);
    expect(ref.code).toBe(0);
    if (format === 'table') {
      expectTableAsEtcdctlDraws(ref.stdout);
      expectTableAsEtcdctlDraws(ours.stdout);
    }
    expect(health(ours, format)).toEqual(health(ref, format));
  });

  it.each(['simple'])('--cluster -w %s: every member\'s client URL', async (format) => {
    const { ref, ours } = await both(['endpoint', 'health', '--cluster', '-w', format]);
    expect(ref.stderr + ref.stdout).toContain(cluster.members[2].clientUrl);
    expect(health(ours, format)).toEqual(health(ref, format));
  });

  it.each(['simple', 'json'])('-w %s with an endpoint nobody listens on: unhealthy, exit 1', async (format) => {
    const { ref, ours } = await both(['--command-timeout', '1s', 'endpoint', 'health', '-w', format], `${one},127.0.0.1:${deadPort}`);
    expect(ref.code).toBe(1);
    expect(ref.stderr).toContain('Error: unhealthy cluster');
    if (format === 'table') expectTableAsEtcdctlDraws(ours.stdout);
    expect(health(ours, format)).toEqual(health(ref, format));
  });
});

describe('changes, in lockstep (etcdctl, undone, then coord)', () => {
  beforeAll(async () => {
    await client.memberRemove(stale);
  });

  /** Run `args(tool)` with etcdctl, undo, run with coord, undo; compare with the new IDs replaced. */
  async function lockstepCase(steps: (readonly string[])[], options: { sortLines?: boolean } = {}): Promise<void> {
    const outputs: { tool: string; views: View[]; ids: bigint[] }[] = [];
    for (const [tool, run] of [
      ['etcdctl', etcdctl],
      ['coord', coord],
    ] as const) {
      const before = await members();
      const views: View[] = [];
      let ids: bigint[] = [];
      for (const step of steps) {
        const argv = step.map((a) => a.replace('<ID>', ids.length > 0 ? hex(ids[0]) : '<ID>'));
        views.push(view(await run(['--endpoints', one, ...argv])));
        if (ids.length === 0) ids = await newMembers(before);
      }
      await removeAll(await newMembers(before));
      outputs.push({ tool, views, ids });
    }
    const [ref, ours] = outputs;
    expect(ours.views.map((v) => lockstep(v, ours.ids, options.sortLines))).toEqual(ref.views.map((v) => lockstep(v, ref.ids, options.sortLines)));
  }

  it('add --learner, update, remove (simple)', async () => {
    const u1 = `http://127.0.0.1:${await freePort()}`;
    const u2 = `http://127.0.0.1:${await freePort()}`;
    await lockstepCase([
      ['member', 'add', 'n5', '--learner', `--peer-urls=${u1}`],
      ['member', 'update', '<ID>', `--peer-urls=${u2}`],
      ['member', 'remove', '<ID>'],
    ]);
  });

  it('add --learner, update, remove (json)', async () => {
    const u1 = `http://127.0.0.1:${await freePort()}`;
    await lockstepCase([
      ['member', 'add', 'n5', '--learner', `--peer-urls=${u1},http://127.0.0.1:9`, '-w', 'json'],
      ['member', 'update', '<ID>', `--peer-urls=${u1}`, '-w', 'json'],
      ['member', 'remove', '<ID>', '-w', 'json'],
    ]);
  });

  it('fields and table: the change is made, then "not supported as output format" (exit 4)', async () => {
    const u1 = `http://127.0.0.1:${await freePort()}`;
    await lockstepCase([
      ['member', 'add', 'n5', '--learner', `--peer-urls=${u1}`, '-w', 'fields'],
      ['member', 'update', '<ID>', `--peer-urls=${u1}`, '-w', 'table'],
      ['member', 'remove', '<ID>', '-w', 'fields'],
    ]);
  });
});

describe('a real fourth member per tool: add --learner, start, promote when in sync, remove', () => {
  it('prints what etcdctl prints at each step', async () => {
    const spec = { name: 'm4', clientPort: await freePort(), peerPort: await freePort() };
    const peerUrl = `http://127.0.0.1:${spec.peerPort}`;
    const runs: { views: View[]; id: bigint }[] = [];
    for (const run of [etcdctl, coord]) {
      const before = await members();
      const views: View[] = [];
      const add = view(await run(['--endpoints', one, 'member', 'add', 'm4', '--learner', `--peer-urls=${peerUrl}`]));
      views.push(add);
      const [id] = await newMembers(before);
      expect(add.code).toBe(0);
      // Start it exactly as the printed environment says.
      const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(add.stdout)?.[1] as string;
      expect(/ETCD_INITIAL_CLUSTER_STATE="existing"/.test(add.stdout)).toBe(true);
      const m4 = cluster.startMember(spec, initialCluster);
      // Refused (not in sync) until the learner has caught up; then promoted.
      const promoted = await waitFor(`${run === etcdctl ? 'etcdctl' : 'coord'} member promote to succeed`, async () => {
        if (m4.hasExited()) throw new StopWaiting(new Error(`m4 exited:\n${m4.output()}`));
        const r = view(await run(['--endpoints', one, 'member', 'promote', hex(id)]));
        if (r.code === 0) return r;
        if (!r.stderr.includes('etcdserver: can only promote a learner member which is in sync with leader')) throw new StopWaiting(new Error(JSON.stringify(r)));
        return undefined;
      });
      views.push(promoted);
      await waitFor('m4 to be listed as started', async () => (await members()).some((m) => m.id === id && m.name === 'm4'));
      views.push(view(await run(['--endpoints', one, 'member', 'list'])));
      views.push(view(await run(['--endpoints', one, 'member', 'remove', hex(id)])));
      await m4.kill();
      expect((await members()).map((m) => m.id)).not.toContain(id);
      runs.push({ views, id });
    }
    const [ref, ours] = runs;
    expect(ref.views[1].stdout).toMatch(/^Member .* promoted in cluster /);
    expect(ours.views.map((v) => lockstep(v, [ours.id], true))).toEqual(ref.views.map((v) => lockstep(v, [ref.id], true)));
  });
});

describe('move-leader', () => {
  it('etcdctl moves L to F and back; coord moves L to F: same line, and F leads', async () => {
    const leader = await leaderId();
    const follower = (await members()).find((m) => m.id !== leader) as Member;
    const ref = view(await etcdctl(['--endpoints', cluster.endpoints, 'move-leader', hex(follower.id)]));
    expect(await leaderId()).toBe(follower.id);
    expect((await etcdctl(['--endpoints', cluster.endpoints, 'move-leader', hex(leader)])).code).toBe(0);
    expect(await leaderId()).toBe(leader);
    const ours = view(await coord(['--endpoints', cluster.endpoints, 'move-leader', hex(follower.id)]));
    expect(ours).toEqual(ref);
    expect(ours.stdout).toBe(`Leadership transferred from ${hex(leader)} to ${hex(follower.id)}\n`);
    expect(await leaderId()).toBe(follower.id);
  });

  it.each(['json', 'fields', 'table'])('-w %s (json: etcd 3.4 sends no header, "{}"; fields, table: moved, then exit 4)', async (format) => {
    const outputs: View[] = [];
    for (const run of [etcdctl, coord]) {
      const leader = await leaderId();
      const target = (await members()).find((m) => m.id !== leader) as Member;
      outputs.push(view(await run(['--endpoints', cluster.endpoints, 'move-leader', hex(target.id), '-w', format])));
      expect(await leaderId()).toBe(target.id);
    }
    expect(outputs[1]).toEqual(outputs[0]);
  });
});

describe('printer details', () => {
  it.each([
    [0n, '0s'],
    [850n, '850ns'],
    [1500n, '1.5\u00b5s'],
    [6_557_467n, '6.557467ms'],
    [5_000_393_452n, '5.000393452s'],
    [62_500_000_000n, '1m2.5s'],
    [3_600_000_000_000n, '1h0m0s'],
  ])("Go's Duration.String(%p) = %p", (ns, text) => {
    expect(goDuration(ns)).toBe(text);
  });

  it("pads IDs as Go's %16x does (spaces, not zeros)", () => {
    const lines: string[] = [];
    const p = newMembershipPrinter('simple', { out: (l) => lines.push(String(l)), err: () => undefined });
    const header = { clusterId: 0xabcn, memberId: 1n, revision: 0n, raftTerm: 1n };
    p?.memberRemove(0x1caf4efa0901824n, { header, members: [] });
    expect(lines).toEqual(['Member  1caf4efa0901824 removed from cluster              abc']);
  });
});
