/**
 * One coord member: the state machine (MVCC store, leases, membership) fed by the Raft
 * log, and the entry points the API calls.
 *
 * Write path: propose → encode InternalRequest (with a request ID) → size check
 * (--max-request-bytes) → raft (forwarded to the leader by a follower) → replicated and
 * committed by a quorum, each member appending to its WAL with fdatasync (raft-driver.ts)
 * → applied in log order on every member → the member that took the request finds its
 * waiter by request ID and answers. Nothing is acknowledged before it is durable on a
 * quorum (DESIGN.md principle 3).
 *
 * Read path: serializable reads are served from the applied state; linearizable reads wait
 * for a ReadIndex round (read-index.ts). The one exception: the only voter of a cluster
 * of one is its own quorum, and every acknowledged write is already applied there, so it
 * serves linearizable reads from the applied state at once.
 *
 * Leases: expiry is decided by the leader and carried out as a logged revoke; keepalives
 * and TTL queries reaching a follower are forwarded to the leader (as etcd forwards them).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdError } from '../errors';
import { MvccEvent, MvccStore } from '../mvcc/store';
import { KvApplier } from '../apply/kv-applier';
import { Lessor, MAX_LEASE_TTL_SECONDS } from '../lease/lessor';
import { LeaseExpiry } from '../lease/expiry';
import { DEFAULT_WATCH_LIMITS, WatchHub } from '../watch/hub';
import { fromKeyString } from '../mvcc/key-range';
import { SnapshotStore } from '../storage/snapshot-store';
import { lockDataDir } from '../storage/dir-lock';
import { decodeInternalRequest, encodeInternalRequest } from './codec';
import { RequestIdGenerator } from './ids';
import { Membership, type MemberInfo } from './membership';
import { decodeSnapshot, encodeSnapshot } from './snapshot-codec';
import { RaftDriver, type StateMachine } from './raft-driver';
import { ProposalWaiters } from './proposal-waiters';
import { ReadIndexBatcher } from './read-index';
import { openDataDir, type FetchMembers } from './bootstrap';
import { runClusterOp } from './cluster-ops';
import { AppliedRequests } from './applied-requests';
import type { MemberConfig } from './config';
import type { Wal } from '../storage/wal';
import { isRaftError, type ConfChange, type ConfState, type Entry, type Message, type ReadState, type Snapshot, type SoftState } from '../raft';
import type {
  PbDeleteRangeResponse,
  PbHeader,
  PbInternalRequest,
  PbPutResponse,
  PbRangeRequest,
  PbRangeResponse,
  PbTxnRequest,
  PbTxnResponse,
} from '../api/pb';
import { int64 } from '../api/pb';

export type { MemberInfo } from './membership';

/** etcd returns "too many requests" when this many proposals are pending. */
const PROPOSALS_PENDING_MAX = 5000;
/** How often the leader looks for expired leases (etcd: 500 ms). */
const LEASE_CHECK_INTERVAL_MS = 500;
/** Revokes proposed per check (etcd: leaseRevokeRate 1000/s). */
const LEASE_REVOKES_PER_CHECK_MAX = 500;
/** How long a member that applied its own removal keeps running (to answer the request that removed it). */
const REMOVED_STOP_DELAY_MS = 1000;
/** A database page: the least a member reports as its database size. */
const DB_PAGE_BYTES = 4096;
/** The member speaks the etcd 3.4 API. */
export const SERVER_VERSION = '3.4.0';

/** The peer network as the member uses it (peer-transport.ts implements it). */
export interface PeerNetwork {
  send(msgs: readonly Message[]): void;
  addPeer(id: bigint, urls: readonly string[]): void;
  updatePeer(id: bigint, urls: readonly string[]): void;
  removePeer(id: bigint): void;
  markRemoved(id: bigint): void;
  request(peerId: bigint, path: string, body: unknown, timeoutMs?: number): Promise<unknown>;
  route(path: string, handler: (body: unknown, fromId: bigint) => Promise<unknown>): void;
  close(): Promise<void>;
}

export interface MemberDeps {
  /** Builds the peer network once the member knows its ID and cluster (absent: a member that never has peers, e.g. unit tests). */
  readonly network?: (ids: { memberId: bigint; clusterId: bigint; onMessages(msgs: Message[]): void; onUnreachable(id: bigint): void; onSnapshotStatus(id: bigint, s: 'finish' | 'failure'): void; onRemoved(): void }) => PeerNetwork;
  /** Asks a peer URL for the membership (joining an existing cluster). */
  readonly fetchMembers?: FetchMembers;
  /** Called when this member learns it was removed from the cluster. */
  readonly onRemoved?: () => void;
}

export type EventListener = (events: readonly MvccEvent[], rev: bigint) => void;

export class Member implements StateMachine {
  private store: MvccStore;
  private applier: KvApplier;
  private readonly lessor = new Lessor();
  private readonly expiry = new LeaseExpiry(() => Date.now());
  /** Leases whose expiry revoke is proposed but not yet applied. */
  private readonly revoking = new Set<bigint>();
  private leaseTimer: NodeJS.Timeout | undefined;
  readonly watchHub: WatchHub;
  /** etcd's minimum lease TTL: ceil(((3 * electionTicks) / 2) * heartbeat) in seconds. */
  readonly minLeaseTtlSeconds: bigint;
  private membership: Membership;
  /** Exactly-once: request IDs of the latest applied entries (applied-requests.ts). */
  private appliedRequests = new AppliedRequests();
  private driver!: RaftDriver;
  private network: PeerNetwork | undefined;
  private readonly waiters: ProposalWaiters;
  private readonly reads: ReadIndexBatcher;
  /** Proposals raft could not take (no leader yet), resent when one is known. */
  private waitingForLeader: { id: bigint; data: Buffer }[] = [];
  /** Local proposals by their entry data, so the proposer's object is applied without decoding it again. */
  private readonly localRequests = new WeakMap<Uint8Array, PbInternalRequest>();
  private lead = 0n;
  private isLeaderNow = false;
  private term = 0n;
  private commitIndex = 0n;
  private stopped = false;
  private readonly ids: RequestIdGenerator;
  private readonly eventListeners: EventListener[] = [];
  private attributesPublished = false;
  private readonly clusterIdText: string;
  private readonly memberIdText: string;
  private unlockDataDir: () => void = () => undefined;
  /** For /metrics (etcd's names): monotonic counters since start. */
  readonly counters = { leaderChanges: 0, snapshotsReceived: 0, snapshotsSent: 0 };

  private constructor(
    readonly config: MemberConfig,
    private readonly wal: Wal,
    readonly memberId: bigint,
    readonly clusterId: bigint,
    store: MvccStore,
    membership: Membership,
    private readonly deps: MemberDeps,
  ) {
    this.store = store;
    this.membership = membership;
    this.applier = new KvApplier(store, this.lessor);
    this.ids = new RequestIdGenerator(memberId, Date.now());
    this.clusterIdText = String(clusterId);
    this.memberIdText = String(memberId);
    // etcd fragments watch responses at --max-request-bytes + grpcOverheadBytes (512 KiB).
    this.watchHub = new WatchHub(() => this.store, { ...DEFAULT_WATCH_LIMITS, fragmentBytesMax: config.maxRequestBytes + 512 * 1024 });
    const electionTicks = Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs);
    this.minLeaseTtlSeconds = BigInt(Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000));
    // etcd's request timeout: 5 s + 2 × the election timeout.
    const requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs;
    this.waiters = new ProposalWaiters(requestTimeoutMs, PROPOSALS_PENDING_MAX);
    this.reads = new ReadIndexBatcher((ctx) => this.driver.readIndex(ctx), () => this.driver.appliedIndex, requestTimeoutMs);
  }

  /** Opens (or creates) the data dir, recovers the state, and starts taking part in the cluster. */
  static async start(config: MemberConfig, log: (msg: string) => void = () => undefined, deps: MemberDeps = {}): Promise<Member> {
    const memberDir = path.join(config.dataDir, 'member');
    const walDir = path.join(memberDir, 'wal');
    const snapshots = new SnapshotStore(path.join(memberDir, 'snap'));
    await fs.promises.mkdir(memberDir, { recursive: true, mode: 0o700 });
    const unlock = lockDataDir(memberDir);
    try {
      const fetchMembers = deps.fetchMembers ?? (() => Promise.reject(new Error('no peer network to join through')));
      const d = await openDataDir(config, walDir, snapshots, fetchMembers, log);
      const member = new Member(config, d.wal, d.memberId, d.clusterId, d.store, d.membership, deps);
      member.unlockDataDir = unlock;
      member.lessor.restore(d.leases);
      member.appliedRequests = AppliedRequests.fromJSON(d.appliedRequests);
      member.driver = new RaftDriver({
        id: d.memberId,
        wal: d.wal,
        snapshots,
        storage: d.storage,
        confState: d.confState,
        applied: d.applied,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        electionTimeoutMs: config.electionTimeoutMs,
        snapshotCount: config.snapshotCount,
        send: (msgs) => member.network?.send(msgs),
        sm: member,
        fatal: (err) => member.fatal(err),
        log,
      });
      member.term = d.storage.initialState().hardState.term;
      member.commitIndex = d.storage.initialState().hardState.commit;
      member.startNetwork();
      member.waiters.start(250);
      member.reads.start();
      member.watchHub.start();
      member.leaseTimer = setInterval(() => member.revokeExpiredLeases(), LEASE_CHECK_INTERVAL_MS);
      member.leaseTimer.unref();
      member.driver.start();
      // etcd: a member removed from the cluster stops at once, also when restarted on its data dir.
      if (member.membership.isRemoved(member.memberId)) setImmediate(() => member.removedFromCluster());
      else await member.waitUntilReady();
      log(`recovered: applied index ${member.driver.appliedIndex}, revision ${member.store.rev}, ${member.store.keyCount} keys`);
      return member;
    } catch (err) {
      unlock();
      throw err;
    }
  }

  /**
   * A member of a single-member cluster serves once it leads (at once); a member of a larger
   * cluster serves right away (requests wait for a leader, as etcd's do).
   */
  private async waitUntilReady(): Promise<void> {
    const cs = this.driver.configuration;
    if (!(cs.voters.length === 1 && cs.voters[0] === this.memberId)) return;
    const deadline = Date.now() + 10_000;
    while (!this.isLeaderNow || this.driver.appliedIndex < this.commitIndex) {
      if (Date.now() > deadline) throw new Error('a single-member cluster did not elect itself within 10 s');
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  // ---- the peer network ----

  private startNetwork(): void {
    if (!this.deps.network) return;
    this.network = this.deps.network({
      memberId: this.memberId,
      clusterId: this.clusterId,
      onMessages: (msgs) => this.driver.step(msgs),
      onUnreachable: (id) => this.driver.reportUnreachable(id),
      onSnapshotStatus: (id, s) => {
        if (s === 'finish') this.counters.snapshotsSent++;
        this.driver.reportSnapshot(id, s);
      },
      onRemoved: () => this.removedFromCluster(),
    });
    for (const m of this.membership.list()) if (m.id !== this.memberId) this.setPeer(m.id, m.peerUrls);
    const net = this.network;
    // Peer RPC handlers answer etcd errors as values ({ error }), so the forwarding member re-raises the same error.
    const route = (p: string, handler: (body: unknown) => Promise<unknown>): void =>
      net.route(p, (body) =>
        handler(body).catch((err: unknown) => {
          if (err instanceof EtcdError) return { error: err.name_, detail: undefined };
          throw err;
        }),
      );
    route('/coord/members', async () => ({ clusterId: String(this.clusterId), membership: this.membership.toJSON() }));
    route('/coord/lease/renew', async (body) => ({ ttl: String(await this.leaseRenew(BigInt((body as { id: string }).id))) }));
    route('/coord/lease/ttl', async (body) => {
      const t = await this.leaseTimeToLive(BigInt((body as { id: string }).id));
      return { ttl: String(t.ttl), granted: String(t.granted), keys: t.keys.map((k) => k.toString('base64')) };
    });
    route('/coord/cluster', async (body) => this.clusterOpOnLeader(body as ClusterOp));
  }

  /**
   * Points the network at a member's peer URLs. A URL the transport cannot use (etcd also
   * accepts unix:// and https:// peer URLs; coord's transport speaks http:// only) is logged,
   * never thrown: this runs while applying the log, which must not fail.
   */
  private setPeer(id: bigint, urls: readonly string[]): void {
    try {
      this.network?.addPeer(id, urls);
    } catch (err) {
      process.stderr.write(`coord: cannot reach member ${id.toString(16)} at ${urls.join(',')}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }

  private removedFromCluster(): void {
    if (this.stopped) return;
    process.stderr.write(`coord: the member has been permanently removed from the cluster (member ${this.memberId.toString(16)})\n`);
    this.deps.onRemoved?.();
  }

  // ---- headers and status ----

  get rev(): bigint {
    return this.store.rev;
  }
  get raftTerm(): bigint {
    return this.term;
  }
  get leaderId(): bigint {
    return this.lead;
  }
  get isLeader(): boolean {
    return this.isLeaderNow;
  }
  /** This member is a learner now (it receives the log but does not vote or serve most RPCs). */
  get isLearnerNow(): boolean {
    return this.membership.get(this.memberId)?.isLearner ?? false;
  }
  get pendingProposals(): number {
    return this.waiters.size;
  }

  header(revision?: bigint): PbHeader {
    return { cluster_id: this.clusterIdText, member_id: this.memberIdText, revision: String(revision ?? this.store.rev), raft_term: String(this.term) };
  }

  /** Fills a response header as etcd's api/v3rpc header.fill does. */
  fillHeader(h: PbHeader): PbHeader {
    h.cluster_id = this.clusterIdText;
    h.member_id = this.memberIdText;
    h.raft_term = String(this.term);
    if (h.revision === undefined || h.revision === '0') h.revision = String(this.store.rev);
    return h;
  }

  onEvents(listener: EventListener): void {
    this.eventListeners.push(listener);
  }

  members(): MemberInfo[] {
    return this.membership.list();
  }

  status(): { dbSize: bigint; dbSizeInUse: bigint; raftIndex: bigint; raftTerm: bigint; appliedIndex: bigint; leader: bigint; isLearner: boolean } {
    // etcd reports its backend file's size, never 0 (etcdctl's JSON omits zero fields): one page of overhead on our estimate.
    const size = BigInt(this.store.sizeBytes() + DB_PAGE_BYTES);
    return {
      dbSize: size,
      dbSizeInUse: size,
      // etcd 3.4 reports the committed index as raftIndex.
      raftIndex: this.commitIndex,
      raftTerm: this.term,
      appliedIndex: this.driver.appliedIndex,
      leader: this.lead,
      isLearner: this.membership.get(this.memberId)?.isLearner ?? false,
    };
  }

  // ---- reads ----

  /** True when this member alone is the quorum: its applied state is linearizable. */
  private get soleVoterLeader(): boolean {
    if (!this.isLeaderNow) return false;
    const cs = this.driver.configuration;
    return cs.voters.length === 1 && cs.voters[0] === this.memberId;
  }

  /** Wait before a linearizable read; undefined when none is needed. */
  readBarrier(): Promise<void> | undefined {
    this.checkRunning();
    if (this.soleVoterLeader) return undefined;
    return this.reads.barrier();
  }

  range(r: PbRangeRequest): PbRangeResponse {
    this.checkRunning();
    return this.applier.range(r);
  }

  /** A txn with no writes is served as a read, without the log (etcd does the same). */
  readOnlyTxn(r: PbTxnRequest): PbTxnResponse {
    this.checkRunning();
    return this.applier.txn(r).response;
  }

  compactedRev(): bigint {
    return this.store.compactedRev;
  }

  hashKV(revision: bigint): { hash: number; compactRevision: bigint; revision: bigint } {
    // etcd (HashByRev): hashing at or below the compacted revision is refused.
    if (revision > 0n && revision <= this.store.compactedRev) throw new EtcdError('compacted');
    if (revision > this.store.rev) throw new EtcdError('futureRev');
    const rev = revision <= 0n ? this.store.rev : revision;
    return { hash: this.store.hashKV(rev), compactRevision: this.store.compactedRev, revision: this.store.rev };
  }

  // ---- leases ----

  leaseGrant(ttlSeconds: bigint, id: bigint): Promise<{ header: PbHeader; ID: string; TTL: string; error: string }> {
    if (ttlSeconds > MAX_LEASE_TTL_SECONDS) return Promise.reject(new EtcdError('leaseTTLTooLarge'));
    // The ID is chosen before proposing, so every member applies the same one (etcd does this).
    const chosen = id === 0n ? this.ids.next() & ((1n << 63n) - 1n) : id;
    return this.propose({ lease_grant: { TTL: String(ttlSeconds), ID: String(chosen) } }) as Promise<{ header: PbHeader; ID: string; TTL: string; error: string }>;
  }

  leaseRevoke(id: bigint): Promise<{ header: PbHeader }> {
    return this.propose({ lease_revoke: { ID: String(id) } }) as Promise<{ header: PbHeader }>;
  }

  /**
   * Keepalive: restarts the countdown on the leader; the granted TTL, or 0 for an unknown or
   * expired lease. On a follower it is forwarded to the leader (synchronous on the leader,
   * so a keepalive stream to the leader costs no promise per request).
   */
  leaseRenew(id: bigint): bigint | Promise<bigint> {
    this.checkRunning();
    if (!this.isLeaderNow) {
      return this.toLeader<{ ttl: string }>('/coord/lease/renew', { id: String(id) }).then((r) => BigInt(r.ttl));
    }
    const l = this.lessor.get(id);
    if (!l || this.revoking.has(id) || this.expiry.remainingMs(id) === 0) return 0n;
    this.expiry.refresh(id, l.ttlSeconds);
    return l.ttlSeconds;
  }

  /** TTL remaining in whole seconds (-1 for an unknown lease), granted TTL, attached keys; the leader's view. */
  async leaseTimeToLive(id: bigint): Promise<{ ttl: bigint; granted: bigint; keys: Buffer[] }> {
    this.checkRunning();
    if (!this.isLeaderNow) {
      const r = await this.toLeader<{ ttl: string; granted: string; keys: string[] }>('/coord/lease/ttl', { id: String(id) });
      return { ttl: BigInt(r.ttl), granted: BigInt(r.granted), keys: r.keys.map((k) => Buffer.from(k, 'base64')) };
    }
    const l = this.lessor.get(id);
    if (!l) return { ttl: -1n, granted: 0n, keys: [] };
    const remainingMs = this.expiry.remainingMs(id) ?? Number(l.ttlSeconds) * 1000;
    return { ttl: BigInt(Math.floor(remainingMs / 1000)), granted: l.ttlSeconds, keys: [...l.keys].sort().map(fromKeyString) };
  }

  leaseIds(): bigint[] {
    return [...this.lessor.all()].map((l) => l.id);
  }

  /** etcd's lessor.Promote(extend): a new leader gives every lease its TTL + the election timeout. */
  private promoteLeases(): void {
    for (const l of this.lessor.all()) this.expiry.refresh(l.id, l.ttlSeconds, this.config.electionTimeoutMs);
  }

  private revokeExpiredLeases(): void {
    if (this.stopped || !this.isLeaderNow) return;
    for (const id of this.expiry.expired(LEASE_REVOKES_PER_CHECK_MAX)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.propose({ lease_revoke: { ID: String(id) } })
        .catch(() => undefined)
        .finally(() => this.revoking.delete(id));
    }
  }

  /** A peer RPC to the current leader; "no leader" when none is known. */
  private async toLeader<T>(route: string, body: unknown, timeoutMs = this.config.electionTimeoutMs * 2): Promise<T> {
    const lead = this.lead;
    if (lead === 0n || !this.network) throw new EtcdError('noLeader');
    const answer = (await this.network.request(lead, route, body, timeoutMs).catch(() => {
      throw new EtcdError(this.lead === lead ? 'timeout' : 'leaderChanged');
    })) as { error?: string; detail?: string } & T;
    if (answer && typeof answer === 'object' && typeof answer.error === 'string') throw remoteError(answer.error, answer.detail);
    return answer;
  }

  // ---- writes ----

  put(r: PbInternalRequest['put']): Promise<PbPutResponse> {
    return this.propose({ put: r }) as Promise<PbPutResponse>;
  }
  deleteRange(r: PbInternalRequest['delete_range']): Promise<PbDeleteRangeResponse> {
    return this.propose({ delete_range: r }) as Promise<PbDeleteRangeResponse>;
  }
  txn(r: PbTxnRequest): Promise<PbTxnResponse> {
    return this.propose({ txn: r }) as Promise<PbTxnResponse>;
  }
  compact(revision: bigint, physical: boolean): Promise<{ header: PbHeader }> {
    return this.propose({ compaction: { revision: String(revision), physical } }) as Promise<{ header: PbHeader }>;
  }

  /** Proposes a request to the log; resolves with its apply result once committed and applied here. */
  propose(request: PbInternalRequest): Promise<unknown> {
    this.checkRunning();
    if (this.waiters.full) return Promise.reject(new EtcdError('tooManyRequests'));
    const id = this.ids.next();
    request.header = { ID: String(id) };
    const data = encodeInternalRequest(request);
    if (data.length > this.config.maxRequestBytes) return Promise.reject(new EtcdError('requestTooLarge'));
    const result = this.waiters.wait(id);
    this.localRequests.set(data, request);
    this.submit(id, data);
    return result;
  }

  private submit(id: bigint, data: Buffer): void {
    try {
      this.driver.propose(data);
    } catch (err) {
      if (!isRaftError(err, 'ERR_PROPOSAL_DROPPED')) throw err;
      // No leader (or a transfer in progress): wait for one, as etcd's proposals do, until the request times out.
      this.waitingForLeader.push({ id, data });
    }
  }

  private resubmitWaiting(): void {
    const waiting = this.waitingForLeader;
    this.waitingForLeader = [];
    for (const w of waiting) if (this.waiters.has(w.id)) this.submit(w.id, w.data);
  }

  // ---- StateMachine (called by the raft driver) ----

  applyEntries(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.data.byteLength === 0) {
        // A new leader's first entry (Raft §5.4.2): etcd promotes the lessor when applying it.
        if (this.isLeaderNow) this.promoteLeases();
        continue;
      }
      const request = this.localRequests.get(e.data) ?? decodeInternalRequest(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
      const id = int64(request.header?.ID);
      if (id !== 0n) {
        // A second copy of a request already applied (Raft §8): skip it on every member alike.
        if (this.appliedRequests.has(id)) continue;
        this.appliedRequests.add(id);
      }
      try {
        this.waiters.trigger(id, this.applyRequest(request));
      } catch (err) {
        // Apply-time errors are answers (e.g. "lease not found"), and change nothing.
        if (!(err instanceof EtcdError)) throw err;
        this.waiters.fail(id, err);
      }
    }
  }

  private applyRequest(r: PbInternalRequest): unknown {
    let outcome: { response: unknown; events: MvccEvent[] };
    if (r.put) outcome = this.applier.put(r.put);
    else if (r.delete_range) outcome = this.applier.deleteRange(r.delete_range);
    else if (r.txn) outcome = this.applier.txn(r.txn);
    else if (r.lease_grant) {
      const id = int64(r.lease_grant.ID);
      if (this.lessor.exists(id)) throw new EtcdError('leaseExist');
      let ttl = int64(r.lease_grant.TTL);
      if (ttl < this.minLeaseTtlSeconds) ttl = this.minLeaseTtlSeconds;
      this.lessor.grant(id, ttl);
      this.expiry.refresh(id, ttl);
      return { header: {}, ID: String(id), TTL: String(ttl), error: '' };
    } else if (r.lease_revoke) {
      const id = int64(r.lease_revoke.ID);
      if (!this.lessor.exists(id)) throw new EtcdError('leaseNotFound');
      // Every attached key goes in one revision, in key order (etcd's lessor.Revoke).
      outcome = { response: { header: {} }, events: this.applier.deleteKeys(this.lessor.revoke(id)) };
      this.expiry.forget(id);
    } else if (r.compaction) {
      const rev = int64(r.compaction.revision);
      if (rev <= this.store.compactedRev) throw new EtcdError('compacted');
      if (rev > this.store.rev) throw new EtcdError('futureRev');
      this.store.compact(rev);
      return { header: { revision: String(this.store.rev) } };
    } else if (r.member_attr_set) {
      const a = r.member_attr_set;
      this.membership.setAttributes(int64(a.member_id), a.name ?? '', a.client_urls ?? []);
      return {};
    } else if (r.member_peer_urls_set) {
      const id = int64(r.member_peer_urls_set.member_id);
      const urls = r.member_peer_urls_set.peer_urls ?? [];
      this.membership.setPeerUrls(id, urls);
      if (id !== this.memberId) this.setPeer(id, urls);
      return {};
    } else {
      // A request this version does not know must not be skipped silently.
      throw new Error(`assertion failed: unknown request in log entry: ${JSON.stringify(Object.keys(r))}`);
    }
    if (outcome.events.length > 0) {
      this.watchHub.notify(outcome.events, this.store.rev);
      for (const l of this.eventListeners) l(outcome.events, this.store.rev);
    }
    return outcome.response;
  }

  applyConfChange(cc: ConfChange, confState: ConfState, _index: bigint): void {
    const ctx = cc.context.byteLength > 0 ? (JSON.parse(Buffer.from(cc.context).toString('utf8')) as ConfChangeContext) : {};
    const requestId = ctx.requestId !== undefined ? BigInt(ctx.requestId) : undefined;
    const inVoters = confState.voters.includes(cc.nodeId);
    const inLearners = confState.learners.includes(cc.nodeId);
    // raft ignores an invalid change (etcd does the same at apply): so does the membership.
    const tookEffect = cc.type === 'removeNode' ? !inVoters && !inLearners : cc.type === 'addNode' ? inVoters : inLearners;
    if (tookEffect) {
      if (cc.type === 'removeNode') {
        this.membership.remove(cc.nodeId);
        if (cc.nodeId === this.memberId) {
          if (requestId !== undefined) this.waiters.trigger(requestId, this.membership.list());
          // Stop a moment later, so the answer to the MemberRemove that removed us (ours or a
          // forwarded one) still leaves, and the others hear from us once more.
          setTimeout(() => this.removedFromCluster(), REMOVED_STOP_DELAY_MS).unref();
          return;
        }
        this.network?.removePeer(cc.nodeId);
        this.network?.markRemoved(cc.nodeId);
      } else if (this.membership.has(cc.nodeId)) {
        if (cc.type === 'addNode') this.membership.promote(cc.nodeId);
      } else {
        const peerUrls = ctx.peerUrls ?? [];
        this.membership.add({ id: cc.nodeId, name: '', peerUrls, clientUrls: [], isLearner: cc.type === 'addLearner' });
        if (cc.nodeId !== this.memberId) this.setPeer(cc.nodeId, peerUrls);
      }
    }
    if (requestId !== undefined) {
      if (tookEffect) this.waiters.trigger(requestId, this.membership.list());
      else this.waiters.fail(requestId, new EtcdError('memberNotFound'));
    }
  }

  snapshotData(confState: ConfState): Buffer {
    return encodeSnapshot(this.store, this.lessor, this.membership, confState, this.appliedRequests.toJSON());
  }

  installSnapshot(s: Snapshot): void {
    this.counters.snapshotsReceived++;
    const d = decodeSnapshot(Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength));
    this.store = d.store;
    this.applier = new KvApplier(d.store, this.lessor);
    this.lessor.restore(d.leases);
    this.appliedRequests = AppliedRequests.fromJSON(d.appliedRequests);
    for (const l of this.lessor.all()) this.expiry.refresh(l.id, l.ttlSeconds, this.config.electionTimeoutMs);
    const before = new Set(this.membership.list().map((m) => m.id));
    this.membership = d.membership;
    for (const m of d.membership.list()) if (m.id !== this.memberId) this.setPeer(m.id, m.peerUrls);
    for (const id of before) if (!d.membership.has(id) && id !== this.memberId) this.network?.removePeer(id);
    // Watchers were synced to the old store: catch them up from the new one (etcd's watchable store restore).
    this.watchHub.restored();
  }

  onSoftState(ss: SoftState): void {
    const wasLeader = this.isLeaderNow;
    const leaderChanged = ss.lead !== this.lead;
    this.lead = ss.lead;
    this.isLeaderNow = ss.role === 'leader';
    if (leaderChanged) {
      if (ss.lead !== 0n) this.counters.leaderChanges++;
      this.waiters.leaderChanged();
      this.reads.leaderChanged(ss.lead !== 0n);
      if (ss.lead !== 0n) setImmediate(() => this.resubmitWaiting());
    }
    // A member that stops leading stops expiring leases (etcd's lessor.Demote).
    if (wasLeader && !this.isLeaderNow) this.revoking.clear();
    if (ss.lead !== 0n && !this.attributesPublished) setImmediate(() => this.publishAttributes());
  }

  onReadStates(rs: readonly ReadState[]): void {
    this.reads.onReadStates(rs);
  }

  onApplied(_index: bigint): void {
    const hs = this.driver.node.basicStatus().hardState;
    this.term = hs.term;
    this.commitIndex = hs.commit;
    this.reads.onApplied();
  }

  /** etcd's publish: once a leader is known, the member records its name and client URLs in the log. */
  private publishAttributes(): void {
    if (this.attributesPublished || this.stopped || this.lead === 0n) return;
    const me = this.membership.get(this.memberId);
    const clientUrls = [...this.config.advertiseClientUrls];
    if (me && me.name === this.config.name && me.clientUrls.length === clientUrls.length && me.clientUrls.every((u, i) => u === clientUrls[i])) {
      this.attributesPublished = true;
      return;
    }
    this.attributesPublished = true;
    this.propose({ member_attr_set: { member_id: String(this.memberId), name: this.config.name, client_urls: clientUrls } }).catch(() => {
      // Retry at the next leader change or after a while.
      this.attributesPublished = false;
      if (!this.stopped) setTimeout(() => this.publishAttributes(), 1000).unref();
    });
  }

  // ---- cluster membership (etcdserverpb.Cluster, Maintenance.MoveLeader) ----

  memberAdd(peerUrls: readonly string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    return this.clusterOp({ op: 'add', peerUrls: [...peerUrls], isLearner }) as Promise<{ member: MemberInfo; members: MemberInfo[] }>;
  }
  memberRemove(id: bigint): Promise<{ members: MemberInfo[] }> {
    return this.clusterOp({ op: 'remove', id: String(id) }) as Promise<{ members: MemberInfo[] }>;
  }
  memberUpdate(id: bigint, peerUrls: readonly string[]): Promise<{ members: MemberInfo[] }> {
    return this.clusterOp({ op: 'update', id: String(id), peerUrls: [...peerUrls] }) as Promise<{ members: MemberInfo[] }>;
  }
  memberPromote(id: bigint): Promise<{ members: MemberInfo[] }> {
    return this.clusterOp({ op: 'promote', id: String(id) }) as Promise<{ members: MemberInfo[] }>;
  }

  /** Membership changes are checked and proposed by the leader (it knows the followers' progress); followers forward them. */
  private async clusterOp(op: ClusterOp): Promise<unknown> {
    this.checkRunning();
    if (this.isLeaderNow) return decodeClusterResult(await this.clusterOpOnLeader(op));
    // A membership change may wait for a previous one to apply: give it etcd's whole request timeout.
    return decodeClusterResult(await this.toLeader<ClusterResultJson>('/coord/cluster', op, 5000 + 2 * this.config.electionTimeoutMs));
  }

  private async clusterOpOnLeader(op: ClusterOp): Promise<ClusterResultJson> {
    try {
      if (!this.isLeaderNow) throw new EtcdError('notLeader');
      return encodeClusterResult(await runClusterOp(this, op));
    } catch (err) {
      if (err instanceof EtcdError) return { error: err.name_, detail: undefined };
      throw err;
    }
  }

  /** For cluster-ops.ts: the leader's view of each member's replication progress. */
  raftProgress(): ReadonlyMap<bigint, { match: bigint; recentActive: boolean; isLearner: boolean }> | null {
    return this.driver.status().progress;
  }

  raftConfiguration(): ConfState {
    return this.driver.configuration;
  }

  membershipView(): Membership {
    return this.membership;
  }

  /** Proposes a conf change and waits for it to be applied; retries while another change is pending. */
  async proposeConfChange(type: ConfChange['type'], nodeId: bigint, peerUrls: readonly string[]): Promise<MemberInfo[]> {
    const requestId = this.ids.next();
    const context = Buffer.from(JSON.stringify({ requestId: String(requestId), peerUrls: [...peerUrls] } satisfies ConfChangeContext), 'utf8');
    const result = this.waiters.wait(requestId);
    const deadline = Date.now() + this.config.electionTimeoutMs * 5;
    for (;;) {
      try {
        this.driver.proposeConfChange({ type, nodeId, context });
        break;
      } catch (err) {
        if (!isRaftError(err)) throw err;
        if (Date.now() > deadline) {
          this.waiters.fail(requestId, new EtcdError('timeout'));
          break;
        }
        // A change is pending, or the leader has not yet applied its first entry: try again shortly.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    return (await result) as MemberInfo[];
  }

  /** Proposes a normal request (for cluster-ops.ts). */
  proposeRequest(r: PbInternalRequest): Promise<unknown> {
    return this.propose(r);
  }

  newRequestId(): bigint {
    return this.ids.next();
  }

  /** etcd's MoveLeader: only the leader accepts it; waits until the transferee leads. */
  async moveLeader(target: bigint): Promise<void> {
    this.checkRunning();
    if (!this.isLeaderNow) throw new EtcdError('notLeader');
    const m = this.membership.get(target);
    if (!m || m.isLearner) throw new EtcdError('badLeaderTransferee');
    if (target === this.memberId) return;
    this.driver.transferLeader(target);
    const deadline = Date.now() + 5000 + 2 * this.config.electionTimeoutMs;
    while (this.lead !== target) {
      if (Date.now() > deadline) throw new EtcdError('timeoutDueToLeaderFail');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  // ---- lifecycle ----

  private checkRunning(): void {
    if (this.stopped) throw new EtcdError('stopped');
  }

  private fatal(err: unknown): never {
    // Losing the disk under us means we can no longer promise durability: stop (etcd panics).
    process.stderr.write(`coord: fatal storage error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.driver.stop();
    clearInterval(this.leaseTimer);
    this.watchHub.stop();
    this.waiters.failAll(new EtcdError('stopped'));
    this.reads.failAll(new EtcdError('stopped'));
    await this.network?.close();
    await this.driver.snapshotWritten();
    await this.wal.close();
    this.unlockDataDir();
  }
}

// ---- cluster operations (kept here: small, and they need the member's internals) ----

interface ConfChangeContext {
  requestId?: string;
  peerUrls?: string[];
}

export type ClusterOp =
  | { op: 'add'; peerUrls: string[]; isLearner: boolean }
  | { op: 'remove'; id: string }
  | { op: 'update'; id: string; peerUrls: string[] }
  | { op: 'promote'; id: string };

interface MemberJson {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}
type ClusterResultJson = { member?: MemberJson; members: MemberJson[]; error?: undefined } | { error: string; detail: string | undefined };

const memberToJson = (m: MemberInfo): MemberJson => ({ id: String(m.id), name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: m.isLearner });
const memberFromJson = (m: MemberJson): MemberInfo => ({ ...m, id: BigInt(m.id) });

function encodeClusterResult(r: { member?: MemberInfo; members: MemberInfo[] }): ClusterResultJson {
  return { member: r.member ? memberToJson(r.member) : undefined, members: r.members.map(memberToJson) };
}

function decodeClusterResult(r: ClusterResultJson): { member?: MemberInfo; members: MemberInfo[] } {
  if (r.error !== undefined) throw remoteError(r.error, r.detail);
  return { member: r.member ? memberFromJson(r.member) : undefined, members: r.members.map(memberFromJson) };
}

function remoteError(name: string, detail: string | undefined): EtcdError {
  return new EtcdError(name as ConstructorParameters<typeof EtcdError>[0], detail);
}

