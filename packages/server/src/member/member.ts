/**
 * One coord member: owns the WAL (laid out as the Raft log), the snapshot store and the
 * state machine, and turns client requests into log entries.
 *
 * Write path (single member; the Raft issue replaces `commit` with replication):
 *   propose → encode InternalRequest → size check (--max-request-bytes) → append to the
 *   WAL buffer → at the end of this event-loop turn one write + fdatasync covers every entry
 *   that arrived (group commit, done off the event loop by fs/promises) → once durable the
 *   entries are committed and applied in log order → each proposer is answered.
 * A write is acknowledged only after it is on disk (DESIGN.md principle 3).
 *
 * Read path: served from the applied state. With one member every acknowledged write is
 * already applied, so reading the applied state is linearizable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assert } from '../util/assert';
import { EtcdError } from '../errors';
import { MvccEvent, MvccStore } from '../mvcc/store';
import { KvApplier } from '../apply/kv-applier';
import { Lessor, MAX_LEASE_TTL_SECONDS } from '../lease/lessor';
import { LeaseExpiry } from '../lease/expiry';
import { DEFAULT_WATCH_LIMITS, WatchHub } from '../watch/hub';
import { fromKeyString } from '../mvcc/key-range';
import { EntryType, HardState, LogEntry, Wal } from '../storage/wal';
import { SnapshotStore } from '../storage/snapshot-store';
import { lockDataDir } from '../storage/dir-lock';
import { decodeInternalRequest, encodeInternalRequest } from './codec';
import { RequestIdGenerator, computeClusterId, computeMemberId } from './ids';
import type { MemberConfig } from './config';
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

/** etcd returns "too many requests" when applying lags committing by more than this. */
const PROPOSALS_PENDING_MAX = 5000;
/** How often the primary looks for expired leases (etcd: 500 ms). */
const LEASE_CHECK_INTERVAL_MS = 500;
/** Revokes proposed per check (etcd: leaseRevokeRate 1000/s). */
const LEASE_REVOKES_PER_CHECK_MAX = 500;
/** The member speaks the etcd 3.4 API. */
export const SERVER_VERSION = '3.4.0';

interface Waiter {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface PendingEntry {
  readonly index: bigint;
  readonly term: bigint;
  /** The proposer's object, so local entries are not decoded again on apply. */
  readonly request: PbInternalRequest | undefined;
  readonly data: Buffer;
}

export interface MemberInfo {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export type EventListener = (events: readonly MvccEvent[], rev: bigint) => void;

export class Member {
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
  private term = 0n;
  private lastIndex = 0n;
  private appliedIndex = 0n;
  private snapshotIndex = 0n;
  private readonly unapplied: PendingEntry[] = [];
  private readonly waiters = new Map<bigint, Waiter>();
  private snapshotting = false;
  private stopped = false;
  private readonly ids: RequestIdGenerator;
  private readonly eventListeners: EventListener[] = [];

  private constructor(
    readonly config: MemberConfig,
    private readonly wal: Wal,
    private readonly snapshots: SnapshotStore,
    readonly memberId: bigint,
    readonly clusterId: bigint,
    store: MvccStore,
  ) {
    this.store = store;
    this.applier = new KvApplier(store, this.lessor);
    this.ids = new RequestIdGenerator(memberId, Date.now());
    this.clusterIdText = String(clusterId);
    this.memberIdText = String(memberId);
    // etcd fragments watch responses at --max-request-bytes + grpcOverheadBytes (512 KiB).
    this.watchHub = new WatchHub(() => this.store, { ...DEFAULT_WATCH_LIMITS, fragmentBytesMax: config.maxRequestBytes + 512 * 1024 });
    const electionTicks = Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs);
    this.minLeaseTtlSeconds = BigInt(Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000));
  }

  /** Opens (or creates) the data dir, recovers the state, and becomes ready to serve. */
  static async start(config: MemberConfig, log: (msg: string) => void = () => undefined): Promise<Member> {
    const memberDir = path.join(config.dataDir, 'member');
    const walDir = path.join(memberDir, 'wal');
    const snapshots = new SnapshotStore(path.join(memberDir, 'snap'));
    await fs.promises.mkdir(memberDir, { recursive: true, mode: 0o700 });
    const unlock = lockDataDir(memberDir);
    let member: Member;
    try {
      member = await Member.open(config, memberDir, walDir, snapshots, log);
    } catch (err) {
      unlock();
      throw err;
    }
    member.unlockDataDir = unlock;
    return member;
  }

  private unlockDataDir: () => void = () => undefined;

  private static async open(config: MemberConfig, memberDir: string, walDir: string, snapshots: SnapshotStore, log: (msg: string) => void): Promise<Member> {
    let member: Member;
    if (Wal.exists(walDir)) {
      const snap = await snapshots.loadNewest();
      for (const s of snap?.skipped ?? []) log(`warning: skipped corrupt snapshot ${s}`);
      const decoded = snap ? decodeSnapshot(snap.data) : undefined;
      const { wal, recovered } = await Wal.open(walDir, snap ? snap.meta.index : 0n);
      if (recovered.tornTailTruncatedBytes > 0) log(`wal: truncated a torn record at the tail (${recovered.tornTailTruncatedBytes} bytes)`);
      const { memberId, clusterId } = recovered.metadata;
      member = new Member(config, wal, snapshots, memberId, clusterId, decoded ? decoded.store : new MvccStore());
      if (decoded && snap) {
        member.lessor.restore(decoded.leases);
        member.appliedIndex = snap.meta.index;
        member.snapshotIndex = snap.meta.index;
        member.lastIndex = snap.meta.index;
        member.term = snap.meta.term;
      }
      if (recovered.hardState.term > member.term) member.term = recovered.hardState.term;
      // Everything in the log of a single member is committed: it was durable on a quorum of one.
      for (const e of recovered.entries) {
        assert(e.index === member.lastIndex + 1n, 'recovered entries are contiguous');
        member.lastIndex = e.index;
        if (e.term > member.term) member.term = e.term;
        member.unapplied.push({ index: e.index, term: e.term, request: undefined, data: e.data });
      }
      member.applyUpTo(member.lastIndex);
      log(`recovered: applied index ${member.appliedIndex}, revision ${member.store.rev}, ${member.store.keyCount} keys`);
    } else {
      const peerUrls = config.initialCluster.get(config.name) ?? config.initialAdvertisePeerUrls;
      const memberId = computeMemberId(peerUrls, config.initialClusterToken);
      const allIds = [...config.initialCluster.values()].map((urls) => computeMemberId(urls, config.initialClusterToken));
      const clusterId = computeClusterId(allIds);
      const wal = await Wal.create(walDir, { memberId, clusterId });
      member = new Member(config, wal, snapshots, memberId, clusterId, new MvccStore());
      // Bootstrap as etcd does: term 1 holds the initial configuration.
      member.term = 1n;
      member.appendLocal(EntryType.ConfChange, Buffer.alloc(0), undefined);
    }
    // A (re)started single member elects itself: a new term, opened by an empty entry
    // (Raft §5.4.2: a leader commits an entry of its own term before serving).
    member.term += 1n;
    member.appendLocal(EntryType.Normal, Buffer.alloc(0), undefined);
    await member.flush();
    member.becomePrimary();
    return member;
  }

  /**
   * Takes charge of lease expiry: every lease gets its full TTL from now (etcd's
   * lessor.Promote), so a restart never expires a lease early.
   */
  private becomePrimary(): void {
    // etcd's lessor.Promote(extend): every lease gets TTL + the election timeout.
    for (const l of this.lessor.all()) this.expiry.refresh(l.id, l.ttlSeconds, this.config.electionTimeoutMs);
    this.watchHub.start();
    this.leaseTimer = setInterval(() => this.revokeExpiredLeases(), LEASE_CHECK_INTERVAL_MS);
    this.leaseTimer.unref();
  }

  private revokeExpiredLeases(): void {
    if (this.stopped) return;
    for (const id of this.expiry.expired(LEASE_REVOKES_PER_CHECK_MAX)) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.propose({ lease_revoke: { ID: String(id) } })
        .catch(() => undefined)
        .finally(() => this.revoking.delete(id));
    }
  }

  get rev(): bigint {
    return this.store.rev;
  }
  get raftTerm(): bigint {
    return this.term;
  }

  /** The IDs never change: format them once, not on every response (watch fan-out sends many). */
  private readonly clusterIdText: string;
  private readonly memberIdText: string;

  header(revision?: bigint): PbHeader {
    return {
      cluster_id: this.clusterIdText,
      member_id: this.memberIdText,
      revision: String(revision ?? this.store.rev),
      raft_term: String(this.term),
    };
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
    return [
      {
        id: this.memberId,
        name: this.config.name,
        peerUrls: this.config.initialCluster.get(this.config.name) ?? this.config.initialAdvertisePeerUrls,
        clientUrls: this.config.advertiseClientUrls,
        isLearner: false,
      },
    ];
  }

  // ---- reads ----

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

  status(): { dbSize: bigint; dbSizeInUse: bigint; raftIndex: bigint; raftTerm: bigint; appliedIndex: bigint; leader: bigint } {
    const size = BigInt(this.store.sizeBytes());
    return { dbSize: size, dbSizeInUse: size, raftIndex: this.lastIndex, raftTerm: this.term, appliedIndex: this.appliedIndex, leader: this.memberId };
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

  /** Keepalive: restarts the countdown; the granted TTL, or 0 for an unknown or expired lease. */
  leaseRenew(id: bigint): bigint {
    this.checkRunning();
    const l = this.lessor.get(id);
    if (!l || this.revoking.has(id) || this.expiry.remainingMs(id) === 0) return 0n;
    this.expiry.refresh(id, l.ttlSeconds);
    return l.ttlSeconds;
  }

  /** TTL remaining in whole seconds (-1 for an unknown lease), granted TTL, attached keys. */
  leaseTimeToLive(id: bigint): { ttl: bigint; granted: bigint; keys: Buffer[] } {
    this.checkRunning();
    const l = this.lessor.get(id);
    if (!l) return { ttl: -1n, granted: 0n, keys: [] };
    const remainingMs = this.expiry.remainingMs(id) ?? Number(l.ttlSeconds) * 1000;
    return { ttl: BigInt(Math.floor(remainingMs / 1000)), granted: l.ttlSeconds, keys: [...l.keys].sort().map(fromKeyString) };
  }

  leaseIds(): bigint[] {
    return [...this.lessor.all()].map((l) => l.id);
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

  /** Proposes a request to the log; resolves with its apply result once durable and applied. */
  propose(request: PbInternalRequest): Promise<unknown> {
    this.checkRunning();
    if (this.waiters.size >= PROPOSALS_PENDING_MAX) return Promise.reject(new EtcdError('tooManyRequests'));
    request.header = { ID: String(this.ids.next()) };
    const data = encodeInternalRequest(request);
    if (data.length > this.config.maxRequestBytes) return Promise.reject(new EtcdError('requestTooLarge'));
    return new Promise((resolve, reject) => {
      const index = this.appendLocal(EntryType.Normal, data, request);
      this.waiters.set(index, { resolve, reject });
    });
  }

  /**
   * Appends one entry and asks the WAL to make it durable. The WAL gathers every entry
   * appended in this turn of the event loop into one write + fdatasync (group commit);
   * sync promises resolve in log order, so entries are applied in log order.
   */
  private appendLocal(type: EntryType, data: Buffer, request: PbInternalRequest | undefined): bigint {
    const entry: LogEntry = { term: this.term, index: this.lastIndex + 1n, type, data };
    this.lastIndex = entry.index;
    // A single member's entry is committed once durable: the hard state says so in the same write.
    const hardState: HardState = { term: this.term, vote: this.memberId, commit: entry.index };
    this.wal.append([entry], hardState);
    this.unapplied.push({ index: entry.index, term: entry.term, request: type === EntryType.Normal ? request : undefined, data: type === EntryType.Normal ? data : Buffer.alloc(0) });
    this.wal.sync().then(
      () => this.applyUpTo(entry.index),
      (err: unknown) => this.fatal(err),
    );
    return entry.index;
  }

  /** Resolves once everything appended so far is durable and applied. */
  private async flush(): Promise<void> {
    await this.wal.sync();
    this.applyUpTo(this.lastIndex);
  }

  private applyUpTo(index: bigint): void {
    while (this.unapplied.length > 0 && this.unapplied[0].index <= index) {
      const e = this.unapplied.shift()!;
      assert(e.index === this.appliedIndex + 1n, 'entries are applied in log order, once');
      this.appliedIndex = e.index;
      const waiter = this.waiters.get(e.index);
      this.waiters.delete(e.index);
      if (e.data.length === 0) {
        waiter?.resolve(undefined);
        continue;
      }
      const request = e.request ?? decodeInternalRequest(e.data);
      try {
        const result = this.applyRequest(request);
        waiter?.resolve(result);
      } catch (err) {
        // Apply-time errors are answers (e.g. "lease not found"), and change nothing.
        if (!(err instanceof EtcdError)) throw err;
        waiter?.reject(err);
      }
    }
    this.maybeSnapshot();
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

  private maybeSnapshot(): void {
    if (this.snapshotting || this.appliedIndex - this.snapshotIndex < BigInt(this.config.snapshotCount)) return;
    this.snapshotting = true;
    const index = this.appliedIndex;
    const term = this.term;
    const data = encodeSnapshot(this.store, this.lessor);
    this.snapshots
      .save({ index, term }, data)
      .then(() => this.wal.saveSnapshotMarker(index, term))
      .then(() => this.wal.releaseTo(index))
      .then(() => {
        this.snapshotIndex = index;
        this.snapshotting = false;
      })
      .catch((err: unknown) => this.fatal(err));
  }

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
    clearInterval(this.leaseTimer);
    this.watchHub.stop();
    for (const [, w] of this.waiters) w.reject(new EtcdError('stopped'));
    this.waiters.clear();
    await this.wal.close();
    this.unlockDataDir();
  }
}

// ---- snapshot format: u32 meta length | JSON meta | mvcc bytes ----

function encodeSnapshot(store: MvccStore, lessor: Lessor): Buffer {
  const meta = Buffer.from(JSON.stringify({ version: 1, leases: lessor.serialize() }), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(meta.length, 0);
  return Buffer.concat([head, meta, store.serialize()]);
}

function decodeSnapshot(data: Buffer): { store: MvccStore; leases: unknown } {
  const metaLen = data.readUInt32BE(0);
  const meta = JSON.parse(data.toString('utf8', 4, 4 + metaLen)) as { version: number; leases: unknown };
  assert(meta.version === 1, 'snapshot format version 1');
  return { store: MvccStore.restore(data.subarray(4 + metaLen)), leases: meta.leases };
}
