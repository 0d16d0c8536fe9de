/**
 * A multi-member cluster of real processes on loopback: N etcd 3.4 members or N
 * `coord server` members, started with etcd's flags.
 *
 * Goal: let a process-level test kill, pause, stop and restart individual members, find the
 * leader, compare the members' stores (HashKV at one revision), and change membership
 * (MemberAdd, then start the process with --initial-cluster-state existing; MemberPromote;
 * MemberRemove), the same way against etcd (which validates the tests) and against coord.
 *
 * Method:
 * - CLUSTER_TEST_TARGET=etcd|coord picks the implementation (default etcd until coord's
 *   replication is wired).
 * - Each member is a proc.ts Member (output capture, SIGKILL/SIGTERM, restart on the same
 *   data dir, kill on test-process exit). proc.ts always passes the single-member flags of
 *   etcdFlags(); the cluster's `--initial-cluster`, `--initial-cluster-state` and
 *   `--initial-cluster-token` come later on the command line and win: Go's flag package
 *   and coord's parseFlags both keep the last value of a repeated flag. Names and ports
 *   are chosen here, before any member starts, because every member's --initial-cluster
 *   names every peer URL.
 * - All members of a new cluster are spawned together (none can become ready alone: a
 *   member is ready when Maintenance.Status answers with a leader, which needs a quorum).
 *   That readiness probe is the same for both kinds and for learners (which etcd lets
 *   answer Status but not HashKV or linearizable reads). After all are ready, start()
 *   also waits until every member's MemberList shows every member with its name and client
 *   URL (etcd publishes those through raft shortly after the member starts).
 * - A start that fails because a port was taken meanwhile is retried once with fresh
 *   ports and empty data dirs.
 * - Process control: kill() (SIGKILL), pause()/resume() (SIGSTOP/SIGCONT), stop() (SIGTERM,
 *   then SIGKILL after 10 s), restart() (same flags and data dir, waits until ready). An
 *   exit the harness did not cause (a crash, or another process on the machine killing
 *   ours) is recorded; takeUnexpectedExits() lets a suite name it instead of failing on
 *   refused connections.
 * - leader(): asks every running, unpaused member for Maintenance.Status; a member is
 *   the leader when it says so (status.leader = its own header.member_id); if two say so
 *   (a just-resumed old leader that has not heard of the new term), the one most members
 *   follow wins, then the higher reported term. etcd's Status.raftTerm is the term of the
 *   last applied entry, so right after an election it may lag: termAbove() waits.
 * - destroy(): SIGKILL every process (a paused one too: SIGKILL needs no SIGCONT), remove
 *   every data dir, close every gRPC channel.
 */
import * as fs from 'node:fs';
import { MemberAdmin, PbHashKV, PbMember, PbStatus } from './cluster-grpc';
import { COORD_MAIN } from './coord';
import { ETCD_BIN, httpGet } from './etcd';
import { KvClient } from './kv-client';
import { canConnect, freePort } from './ports';
import { Member, MemberSpec, sleep } from './proc';

export type ClusterKind = 'etcd' | 'coord';

/** CLUSTER_TEST_TARGET (coord by default; etcd validates the tests). */
export function clusterKind(envVar = 'CLUSTER_TEST_TARGET'): ClusterKind {
  const v = (process.env[envVar] || 'coord').trim().toLowerCase();
  if (v !== 'coord' && v !== 'etcd') throw new Error(`${envVar} must be "coord" or "etcd", got ${JSON.stringify(v)}`);
  return v;
}

export interface ClusterOptions {
  kind?: ClusterKind;
  size: number;
  /** --heartbeat-interval (default 100 ms). */
  heartbeatMs?: number;
  /** --election-timeout (default 1000 ms). */
  electionMs?: number;
  /** --snapshot-count (default: the implementation's default). */
  snapshotCount?: number;
  /** More flags for every member. */
  extraArgs?: string[];
  /** Per member start deadline (default 30 s). */
  readyTimeoutMs?: number;
}

const READY_TIMEOUT_MS_DEFAULT = 30_000;
const STATUS_TIMEOUT_MS = 700;
const POLL_MS = 50;
const START_ATTEMPTS_MAX = 2;

let clusterCounter = 0;

/** Polls `fn` until it returns something other than undefined; throws `what()` at the deadline. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: () => string, pollMs = POLL_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const why = lastErr ? ` (last error: ${(lastErr as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}${why}`);
    }
    await sleep(pollMs);
  }
}

/** `p`'s value, or undefined if it has not settled after `ms` (the timer does not outlive the race). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** One member of a Cluster: a process plus the gRPC clients that talk to it. */
export class ClusterMember {
  /** The raft member ID, known once the member answered Status (or from MemberAdd). */
  id: bigint | undefined;
  /** SIGSTOPped and not yet SIGCONTed. */
  paused = false;
  /** Taken out of the cluster by MemberRemove. */
  removed = false;
  /**
   * A MemberRemove for it has been sent: a removed member stops itself (exit 0), possibly
   * before the call returns (the leader applies its own removal first), which is no surprise.
   */
  removing = false;
  private adminClient: MemberAdmin | undefined;
  private kvClient: KvClient | undefined;

  constructor(
    readonly proc: Member,
    readonly kind: ClusterKind,
  ) {}

  get name(): string {
    return this.proc.name;
  }
  get endpoint(): string {
    return this.proc.endpoint;
  }
  get clientUrl(): string {
    return this.proc.clientUrl;
  }
  get peerUrl(): string {
    return this.proc.peerUrl;
  }
  get dataDir(): string {
    return this.proc.dataDir;
  }
  get clientPort(): number {
    return this.proc.clientPort;
  }
  get peerPort(): number {
    return this.proc.peerPort;
  }
  get running(): boolean {
    return this.proc.running;
  }
  /** Running and not paused: it can answer. */
  get serving(): boolean {
    return this.proc.running && !this.paused;
  }
  /** `name (id hex)` for messages. */
  get label(): string {
    return `${this.name}${this.id !== undefined ? ` (${this.id.toString(16)})` : ''}`;
  }

  admin(): MemberAdmin {
    if (!this.adminClient) this.adminClient = new MemberAdmin(this.endpoint);
    return this.adminClient;
  }
  kv(): KvClient {
    if (!this.kvClient) this.kvClient = new KvClient(this.endpoint);
    return this.kvClient;
  }

  async status(timeoutMs = STATUS_TIMEOUT_MS): Promise<PbStatus> {
    const s = await this.admin().status(timeoutMs);
    this.id = BigInt(s.header.member_id);
    return s;
  }

  /**
   * The member's raft term once it exceeds `term`, or the last term it reported if that
   * does not happen within `timeoutMs`. (etcd's Status.raftTerm is the term of the last
   * entry the member APPLIED, so a just-elected leader reports the old term until its
   * first entry of the new term is applied: read it right after an election and it may
   * still show the previous term.)
   */
  async termAbove(term: bigint, timeoutMs = 5000): Promise<bigint> {
    let last = -1n;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        last = BigInt((await this.status()).raftTerm);
      } catch {
        // not answering this time
      }
      if (last > term || Date.now() > deadline) return last;
      await sleep(POLL_MS);
    }
  }

  /** SIGKILL; resolves when the process has exited. */
  async kill(): Promise<void> {
    this.paused = false;
    this.exitExpected = true;
    await this.proc.kill('SIGKILL');
  }

  /** SIGSTOP: the process stays, does nothing, answers nothing (its sockets stay open). */
  pause(): void {
    const pid = this.proc.pid;
    if (!this.proc.running || pid === undefined) throw new Error(`pause: ${this.label} is not running`);
    process.kill(pid, 'SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT after pause() (a no-op if the process has gone meanwhile). */
  resume(): void {
    const pid = this.proc.pid;
    if (!this.paused || pid === undefined) throw new Error(`resume: ${this.label} is not paused`);
    this.paused = false;
    if (this.proc.running) process.kill(pid, 'SIGCONT');
  }

  /** SIGTERM (SIGKILL after 10 s); resolves with the exit. */
  async stop(): Promise<void> {
    if (this.paused) this.resume();
    this.exitExpected = true;
    await this.proc.stop();
  }

  /** Start again on the same name, ports, flags and data dir; resolves once it is ready. */
  async restart(): Promise<this> {
    if (this.paused) this.resume();
    await this.start();
    return this;
  }

  /**
   * Spawns the process (first start or again) and waits until it is ready. An exit that
   * the harness did not cause (kill, stop, removal) is recorded in `unexpectedExits`.
   */
  async start(): Promise<void> {
    this.exitExpected = false;
    const started = this.proc.restart();
    void this.proc.waitExit().then((exit) => {
      if (!this.exitExpected && !this.removed && !(this.removing && exit.code === 0)) {
        this.unexpectedExits.push(`${this.label} exited by itself or was killed by someone else: code=${exit.code} signal=${exit.signal}`);
      }
    });
    await started;
  }

  /** Exits the harness did not cause (a crash, or another process killing ours). */
  readonly unexpectedExits: string[] = [];
  private exitExpected = false;

  /**
   * The sum of every sample of Prometheus metric `name` (all label sets) on the member's
   * `/metrics`, 0 when it has none. E.g. etcd_network_snapshot_receive_success: snapshots
   * this member received from a leader.
   */
  async metric(name: string): Promise<number> {
    const r = await httpGet(`${this.clientUrl}/metrics`, 2000);
    if (r.status !== 200) throw new Error(`GET ${this.clientUrl}/metrics: HTTP ${r.status}`);
    let sum = 0;
    const re = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)$`, 'gm');
    for (const m of r.body.matchAll(re)) sum += Number(m[1]);
    return sum;
  }

  closeClients(): void {
    this.adminClient?.close();
    this.kvClient?.close();
    this.adminClient = undefined;
    this.kvClient = undefined;
  }
}

/**
 * Runs a membership change, retrying while etcd's strict reconfiguration check refuses it
 * with "etcdserver: unhealthy cluster": etcd removes a member only when the leader has been
 * connected to a quorum of the remaining members for 5 s (HealthInterval), so a removal
 * right after the cluster (or a member) started is refused for a few seconds; adding a voter
 * is refused while too few members are started.
 */
export async function retryUnhealthy<T>(fn: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return retryWhile(fn, /unhealthy cluster|not enough started members/, timeoutMs, what);
}

/** Calls `fn` until it does not fail with a message matching `retryable`; other errors are thrown at once. */
export async function retryWhile<T>(fn: () => Promise<T>, retryable: RegExp, timeoutMs: number, what: string, pollMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const msg = (err as Error).message;
      if (!retryable.test(msg)) throw err;
      if (Date.now() > deadline) throw new Error(`${what}: still refused after ${timeoutMs} ms: ${msg}`);
    }
    await sleep(pollMs);
  }
}

/** Ready = the client port accepts connections and Maintenance.Status reports a leader. */
async function clusterProbe(m: Member, admin: () => MemberAdmin): Promise<boolean> {
  if (!(await canConnect(m.clientPort, 300))) return false;
  const s = await admin().status(STATUS_TIMEOUT_MS);
  return s.leader !== '0' && s.leader !== '';
}

/** A member's name and ports, chosen before it exists (its peer URL goes into MemberAdd and --initial-cluster). */
export interface Plan {
  name: string;
  clientPort: number;
  peerPort: number;
}

export function planPeerUrl(p: Plan): string {
  return `http://127.0.0.1:${p.peerPort}`;
}

export class Cluster {
  /** Members in the cluster (started, not removed), in the order they were added. */
  readonly members: ClusterMember[] = [];
  /** Members taken out by removeMember (their processes are still destroyed at the end). */
  readonly removedMembers: ClusterMember[] = [];
  readonly token: string;
  private readonly seq: number;
  private memberCounter = 0;

  private constructor(
    readonly kind: ClusterKind,
    readonly opts: Required<Pick<ClusterOptions, 'heartbeatMs' | 'electionMs' | 'readyTimeoutMs'>> & ClusterOptions,
  ) {
    clusterCounter += 1;
    this.seq = clusterCounter;
    this.token = `${kind}-cluster-${process.pid}-${this.seq}-${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  }

  /** Starts `size` members as one new cluster and waits until all are ready and published. */
  static async start(opts: ClusterOptions): Promise<Cluster> {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`cluster size must be a positive integer, got ${opts.size}`);
    const c = new Cluster(opts.kind ?? clusterKind(), {
      heartbeatMs: 100,
      electionMs: 1000,
      readyTimeoutMs: READY_TIMEOUT_MS_DEFAULT,
      ...opts,
    });
    for (let attempt = 1; ; attempt++) {
      const plans: Plan[] = [];
      for (let i = 0; i < opts.size; i++) plans.push(await c.plan());
      const initialCluster = plans.map((p) => `${p.name}=http://127.0.0.1:${p.peerPort}`).join(',');
      const members = plans.map((p) => c.makeMember(p, initialCluster, 'new'));
      const started = await Promise.allSettled(members.map((m) => m.start()));
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failed) {
        c.members.push(...members);
        break;
      }
      const portTaken = members.some((m) => /address already in use|EADDRINUSE/i.test(m.proc.logs()));
      await Promise.all(members.map(async (m) => {
        await m.kill();
        m.closeClients();
        await m.proc.destroy();
      }));
      if (!portTaken || attempt >= START_ATTEMPTS_MAX) {
        throw failed.reason;
      }
    }
    try {
      await c.waitPublished();
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** A fresh name and free ports for a member to be added (see addMember, startAdded). */
  async plan(): Promise<Plan> {
    this.memberCounter += 1;
    return {
      name: `${this.kind}-c${process.pid}-${this.seq}-m${this.memberCounter}`,
      clientPort: await freePort(),
      peerPort: await freePort(),
    };
  }

  /** A Member (not started) with the cluster's flags; `initialCluster` is name=peerURL,... */
  private makeMember(p: Plan, initialCluster: string, state: 'new' | 'existing'): ClusterMember {
    const clusterArgs = [
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', state,
      '--initial-cluster-token', this.token,
      '--heartbeat-interval', String(this.opts.heartbeatMs),
      '--election-timeout', String(this.opts.electionMs),
      ...(this.opts.snapshotCount !== undefined ? ['--snapshot-count', String(this.opts.snapshotCount)] : []),
      ...(this.opts.extraArgs ?? []),
    ];
    let cm: ClusterMember | undefined;
    const probe = (m: Member) => clusterProbe(m, () => cm!.admin());
    const spec: MemberSpec =
      this.kind === 'etcd'
        ? {
            kind: 'etcd',
            command: [ETCD_BIN],
            extraArgs: ['--logger=zap', '--log-outputs=stderr', ...clusterArgs],
            probe,
            readyTimeoutMs: this.opts.readyTimeoutMs,
            namePrefix: 'etcd',
          }
        : {
            kind: 'coord',
            command: [process.execPath, COORD_MAIN],
            extraArgs: clusterArgs,
            env: { NODE_OPTIONS: '' },
            probe,
            readyTimeoutMs: this.opts.readyTimeoutMs,
            namePrefix: 'coord',
          };
    if (this.kind === 'coord' && !fs.existsSync(COORD_MAIN)) {
      throw new Error(`coord server entry point ${COORD_MAIN} does not exist: build it first (npm run build), or run with CLUSTER_TEST_TARGET=etcd`);
    }
    const proc = new Member(spec);
    // Chosen here, not by proc.ts: the other members' --initial-cluster already names them.
    proc.name = p.name;
    proc.clientPort = p.clientPort;
    proc.peerPort = p.peerPort;
    cm = new ClusterMember(proc, this.kind);
    return cm;
  }

  /** Waits until every voter's MemberList names every member with its name and client URL. */
  async waitPublished(timeoutMs = 15_000): Promise<void> {
    const want = this.members.map((m) => `${m.name}=${m.clientUrl}`).sort();
    let last: string[] = [];
    await waitFor(
      async () => {
        for (const m of this.members.filter((x) => x.serving)) {
          let r;
          try {
            r = await m.admin().memberList({}, STATUS_TIMEOUT_MS * 2);
          } catch (err) {
            // etcd lets a learner answer Status and serializable Range only.
            if (/not supported for learner/.test((err as Error).message)) continue;
            throw err;
          }
          last = r.members.map((x) => `${x.name}=${x.clientURLs.join(',')}`).sort();
          if (JSON.stringify(last) !== JSON.stringify(want)) return undefined;
        }
        return true;
      },
      timeoutMs,
      () => `every member to list ${JSON.stringify(want)} (last seen ${JSON.stringify(last)})`,
    );
    await Promise.all(this.members.filter((m) => m.serving && m.id === undefined).map((m) => m.status()));
  }

  /** Members that are running and not paused. */
  serving(): ClusterMember[] {
    return this.members.filter((m) => m.serving);
  }

  /** Client endpoints (host:port) of the serving members. */
  endpoints(): string[] {
    return this.serving().map((m) => m.endpoint);
  }

  /**
   * Client endpoints of every member in the cluster, whatever its state: what a client
   * configured with the cluster's endpoints would try (a dead or paused member shows up as
   * a failed or timed-out call, as it would to that client).
   */
  allEndpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  byId(id: bigint): ClusterMember | undefined {
    return [...this.members, ...this.removedMembers].find((m) => m.id === id);
  }

  /** Every serving member's Status (members that do not answer in time are left out). */
  async statuses(timeoutMs = STATUS_TIMEOUT_MS): Promise<Map<ClusterMember, PbStatus>> {
    const out = new Map<ClusterMember, PbStatus>();
    await Promise.all(
      this.serving().map(async (m) => {
        try {
          out.set(m, await m.status(timeoutMs));
        } catch {
          // not answering: not a candidate
        }
      }),
    );
    return out;
  }

  /**
   * The member that says it is the leader, or undefined. If several do (a just-resumed old
   * leader that has not yet heard of the new term), the one most members follow wins, then
   * the higher reported term (etcd reports the term of the last applied entry).
   */
  async leader(): Promise<ClusterMember | undefined> {
    const statuses = await this.statuses();
    const followers = new Map<string, number>();
    for (const s of statuses.values()) followers.set(s.leader, (followers.get(s.leader) ?? 0) + 1);
    let best: { m: ClusterMember; votes: number; term: bigint } | undefined;
    for (const [m, s] of statuses) {
      if (s.leader === '0' || s.leader !== s.header.member_id) continue;
      const cand = { m, votes: followers.get(s.leader) ?? 0, term: BigInt(s.raftTerm) };
      if (!best || cand.votes > best.votes || (cand.votes === best.votes && cand.term > best.term)) best = cand;
    }
    return best?.m;
  }

  /**
   * Waits until a leader that is not in `exclude` is agreed on by a majority of the
   * members (voters and learners alike report the leader they follow).
   */
  async waitLeader(opts: { exclude?: ClusterMember[]; timeoutMs?: number } = {}): Promise<ClusterMember> {
    const exclude = new Set(opts.exclude ?? []);
    let seen = '';
    return waitFor(
      async () => {
        const statuses = await this.statuses();
        seen = [...statuses].map(([m, s]) => `${m.name}: leader=${BigInt(s.leader).toString(16)} term=${s.raftTerm}`).join('; ');
        const votes = new Map<string, number>();
        for (const s of statuses.values()) if (s.leader !== '0') votes.set(s.leader, (votes.get(s.leader) ?? 0) + 1);
        for (const [id, n] of votes) {
          const m = this.byId(BigInt(id));
          if (m && !exclude.has(m) && m.serving && n > this.members.length / 2) {
            const own = statuses.get(m);
            if (own && own.leader === own.header.member_id) return m;
          }
        }
        return undefined;
      },
      opts.timeoutMs ?? 15_000,
      () => `a leader (not ${[...exclude].map((m) => m.name).join(', ') || '-'}) agreed by a majority; statuses: ${seen}`,
    );
  }

  /** HashKV of `member` at `revision`. */
  async hashKV(member: ClusterMember, revision: bigint): Promise<PbHashKV> {
    return member.admin().hashKV(revision);
  }

  /** The cluster's current revision: a linearizable Range answered by any serving member. */
  async revision(timeoutMs = 5000): Promise<bigint> {
    return waitFor(
      async () => {
        for (const m of this.serving()) {
          try {
            const r = await m.kv().range('\0', {}, 2000);
            return BigInt(r.header.revision);
          } catch {
            // try the next member
          }
        }
        return undefined;
      },
      timeoutMs,
      () => 'a linearizable range to be answered',
    );
  }

  /**
   * Waits until every serving voter can answer HashKV at `revision` (it has applied it),
   * and returns each member's answer. Learners are skipped (etcd refuses HashKV on them).
   */
  async hashesAt(revision: bigint, timeoutMs = 20_000): Promise<Map<ClusterMember, PbHashKV>> {
    const out = new Map<ClusterMember, PbHashKV>();
    const voters = [];
    for (const m of this.serving()) {
      const s = await waitFor(() => m.status(), 5000, () => `Status from ${m.label}`);
      if (!s.isLearner) voters.push(m);
    }
    await Promise.all(
      voters.map(async (m) => {
        out.set(m, await waitFor(() => m.admin().hashKV(revision, 2000), timeoutMs, () => `${m.label} to answer HashKV at revision ${revision}`));
      }),
    );
    return out;
  }

  /**
   * Adds a member: MemberAdd through the leader (as a learner when `learner`), then starts
   * its process with --initial-cluster naming every member and --initial-cluster-state
   * existing, and waits until it is ready (it knows the leader).
   */
  async addMember(opts: { learner?: boolean; timeoutMs?: number } = {}): Promise<ClusterMember> {
    const p = await this.plan();
    const leader = await this.waitLeader();
    const res = await retryUnhealthy(() => leader.admin().memberAdd([planPeerUrl(p)], opts.learner ?? false), opts.timeoutMs ?? 15_000, `MemberAdd ${planPeerUrl(p)}`);
    return this.startAdded(p, BigInt(res.member.ID));
  }

  /**
   * Starts the process of a member that MemberAdd (ours, or etcdctl's `member add`) has
   * already added under `id` with `p`'s peer URL: --initial-cluster names every member and
   * it, --initial-cluster-state existing. Resolves once it is ready (it knows the leader).
   */
  async startAdded(p: Plan, id: bigint): Promise<ClusterMember> {
    const initialCluster = [...this.members.map((m) => `${m.name}=${m.peerUrl}`), `${p.name}=${planPeerUrl(p)}`].join(',');
    const m = this.makeMember(p, initialCluster, 'existing');
    m.id = id;
    this.members.push(m);
    await m.start();
    return m;
  }

  /** Moves leadership to `target` (MoveLeader through the current leader) and waits until a majority follows it. */
  async moveLeader(target: ClusterMember, timeoutMs = 15_000): Promise<void> {
    if (target.id === undefined) throw new Error(`moveLeader: ${target.name} has no known ID`);
    const leader = await this.waitLeader();
    if (leader !== target) await leader.admin().moveLeader(target.id, timeoutMs);
    await waitFor(async () => ((await this.waitLeader()) === target ? true : undefined), timeoutMs, () => `${target.label} to lead`);
  }

  /** The cluster ID, as a member reports it in its response headers. */
  async clusterId(): Promise<bigint> {
    const m = this.serving()[0];
    if (!m) throw new Error('clusterId: no serving member');
    return BigInt((await m.status(5000)).header.cluster_id);
  }


  /**
   * MemberPromote through the leader, retried while the leader says the learner is not in
   * sync yet (etcd: "can only promote a learner member which is in sync with leader").
   */
  async promote(member: ClusterMember, timeoutMs = 30_000): Promise<PbMember[]> {
    if (member.id === undefined) throw new Error(`promote: ${member.name} has no known ID`);
    const id = member.id;
    const res = await retryWhile(
      async () => (await this.waitLeader()).admin().memberPromote(id),
      /in sync with leader|unhealthy cluster/,
      timeoutMs,
      `MemberPromote ${member.label}`,
    );
    return res.members;
  }

  /**
   * MemberRemove through a serving member other than `member` (the leader if it is not
   * `member`), retried while the cluster answers "unhealthy cluster" (see retryUnhealthy).
   */
  async removeMember(member: ClusterMember, timeoutMs = 15_000): Promise<PbMember[]> {
    if (member.id === undefined) throw new Error(`remove: ${member.name} has no known ID`);
    const leader = await this.waitLeader();
    const via = leader !== member ? leader : this.serving().find((m) => m !== member);
    if (!via) throw new Error('remove: no other member to ask');
    const id = member.id;
    member.removing = true;
    // A MemberRemove that timed out (e.g. removing the leader, which steps down as it applies
    // its removal) has an unknown outcome, as in etcd: look at the member list, and retry only
    // if the member is still there.
    const res = await retryWhile(
      async () => {
        try {
          return await via.admin().memberRemove(id);
        } catch (err) {
          if (/request timed out|leader changed/.test((err as Error).message)) {
            const list = await via.admin().memberList({}, 2000).catch(() => undefined);
            if (list && !list.members.some((x) => BigInt(x.ID) === id)) return list;
          }
          throw err;
        }
      },
      /unhealthy cluster|request timed out|leader changed/,
      timeoutMs,
      `MemberRemove ${member.label}`,
    );
    member.removed = true;
    this.members.splice(this.members.indexOf(member), 1);
    this.removedMembers.push(member);
    return res.members;
  }

  /** Stops every member (SIGTERM, concurrently). */
  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** Starts every stopped member again, concurrently (a quorum must come up together). */
  async startAll(): Promise<void> {
    await Promise.all(this.members.filter((m) => !m.running).map((m) => m.restart()));
  }

  /** Every exit of a member the harness did not cause since the last call, with its code or signal. */
  takeUnexpectedExits(): string[] {
    return [...this.members, ...this.removedMembers].flatMap((m) => m.unexpectedExits.splice(0));
  }

  /** Resumes paused members and restarts stopped ones (after a test that failed midway). */
  async heal(): Promise<void> {
    for (const m of this.members) if (m.paused) m.resume();
    await this.startAll();
  }

  /** Output of every member (for failure messages). */
  logs(chars = 3000): string {
    return [...this.members, ...this.removedMembers].map((m) => `----- ${m.label}\n${m.proc.logTail(chars)}`).join('\n');
  }

  /** SIGKILL everything, remove the data dirs, close the channels. */
  async destroy(): Promise<void> {
    const all = [...this.members, ...this.removedMembers];
    await Promise.all(
      all.map(async (m) => {
        m.closeClients();
        await m.kill();
        await m.proc.destroy();
      }),
    );
  }
}
