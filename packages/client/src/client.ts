/**
 * The entry point: one Client per cluster. It owns the connection pool and exposes each
 * service as a namespace (`client.kv`, `client.maintenance`, `client.cluster`,
 * `client.watches`, `client.leases`), each in its own file, plus flat shortcuts for the
 * common calls. `client.watch(...)` and `client.lease(...)` are the shortcuts that create a
 * watcher and a kept-alive lease, which is why those two namespaces take plural names.
 */
import {
  Cluster,
  type MemberAddOptions,
  type MemberAddResult,
  type MemberListOptions,
  type MemberListResult,
  type MemberPromoteResult,
  type MemberRemoveResult,
  type MemberUpdateResult,
} from './cluster';
import { ConnectionPool, type ClientOptions, type ResolvedOptions } from './connection';
import {
  KV,
  type CompactOptions,
  type CompactResult,
  type DeleteCallOptions,
  type GetOptions,
  type GetRangeOptions,
  type PutCallOptions,
  type TxnCallOptions,
} from './kv';
import {
  Lease,
  Leases,
  type LeaseGrantOptions,
  type LeaseGrantResult,
  type LeaseKeepAliveResult,
  type LeaseLeasesResult,
  type LeaseOptions,
  type LeaseRevokeResult,
  type LeaseTimeToLiveOptions,
  type LeaseTimeToLiveResult,
} from './lease';
import {
  Maintenance,
  type AlarmListResult,
  type EndpointCallOptions,
  type HashKVResult,
  type MoveLeaderResult,
  type StatusResult,
} from './maintenance';
import type { DeleteResult, PutResult, RangeResult, TxnResult } from './ops';
import type { Bytes, CallOptions, Int64Input, KeyValue, ResponseHeader } from './types';
import { Watches, type WatchOptions, type Watcher } from './watch';
import type { RawClients } from './wire';

/** `put` options of the client shortcut: `lease` may also be a kept-alive `Lease`. */
export type ClientPutOptions = Omit<PutCallOptions, 'lease'> & { lease?: Int64Input | Lease };

export class Client {
  readonly kv: KV;
  readonly maintenance: Maintenance;
  readonly cluster: Cluster;
  readonly watches: Watches;
  readonly leases: Leases;
  private readonly pool: ConnectionPool;

  constructor(options: ClientOptions) {
    this.pool = new ConnectionPool(options);
    this.kv = new KV(this.pool);
    this.maintenance = new Maintenance(this.pool);
    this.cluster = new Cluster(this.pool);
    this.watches = new Watches(this.pool);
    this.leases = new Leases(this.pool, this.kv);
  }

  /** The validated, frozen options. */
  get options(): ResolvedOptions {
    return this.pool.options;
  }

  /** The endpoint the next call tries first: the one that last answered. */
  get activeEndpoint(): string {
    return this.pool.activeEndpoint;
  }

  /**
   * The underlying grpc-js service clients of one endpoint (default: the active one), for
   * advanced use such as benchmarks. Messages use `@coord/proto`'s wire shape (snake_case,
   * int64 as decimal strings, bytes as Buffer). They share the Client's channel: do not close
   * them; `client.close()` does.
   */
  raw(endpoint?: number | string): RawClients {
    return this.pool.raw(endpoint);
  }

  /**
   * Close every channel; later calls reject with `ClientClosedError`. Watchers end with
   * `ClientClosedError`; kept-alive leases stop being renewed (not revoked, not 'lost').
   */
  close(): void {
    this.watches.close();
    this.leases.close();
    this.pool.close();
  }

  // ---- shortcuts -------------------------------------------------------------------------

  get(key: Bytes, options?: GetOptions): Promise<KeyValue | undefined> {
    return this.kv.get(key, options);
  }

  getRange(options: GetRangeOptions): Promise<RangeResult> {
    return this.kv.getRange(options);
  }

  async put(key: Bytes, value: Bytes, options?: ClientPutOptions): Promise<PutResult> {
    const lease = options?.lease;
    if (lease instanceof Lease) return this.kv.put(key, value, { ...options, lease: await lease.grant() });
    return this.kv.put(key, value, options as PutCallOptions | undefined);
  }

  delete(key: Bytes, options?: DeleteCallOptions): Promise<DeleteResult> {
    return this.kv.delete(key, options);
  }

  txn(request: TxnCallOptions): Promise<TxnResult> {
    return this.kv.txn(request);
  }

  compact(revision: Int64Input, options?: CompactOptions): Promise<CompactResult> {
    return this.kv.compact(revision, options);
  }

  /** Status of the active endpoint's member, or of `options.endpoint`'s. */
  status(options?: EndpointCallOptions): Promise<StatusResult> {
    return this.maintenance.status(options);
  }

  /** Transfer leadership to `targetId` (sent to the endpoint that leads; see maintenance.ts). */
  moveLeader(targetId: Int64Input, options?: EndpointCallOptions): Promise<MoveLeaderResult> {
    return this.maintenance.moveLeader(targetId, options);
  }

  alarmList(options?: CallOptions): Promise<AlarmListResult> {
    return this.maintenance.alarmList(options);
  }

  hashKV(revision?: Int64Input, options?: CallOptions): Promise<HashKVResult> {
    return this.maintenance.hashKV(revision, options);
  }

  memberList(options?: MemberListOptions): Promise<MemberListResult> {
    return this.cluster.memberList(options);
  }

  /** Add a member (`{ isLearner: true }`: as a learner). See cluster.ts for etcd's rules. */
  memberAdd(peerURLs: readonly string[], options?: MemberAddOptions): Promise<MemberAddResult> {
    return this.cluster.memberAdd(peerURLs, options);
  }

  memberRemove(id: Int64Input, options?: CallOptions): Promise<MemberRemoveResult> {
    return this.cluster.memberRemove(id, options);
  }

  memberUpdate(id: Int64Input, peerURLs: readonly string[], options?: CallOptions): Promise<MemberUpdateResult> {
    return this.cluster.memberUpdate(id, peerURLs, options);
  }

  memberPromote(id: Int64Input, options?: CallOptions): Promise<MemberPromoteResult> {
    return this.cluster.memberPromote(id, options);
  }

  /** Watch a key or range: an async iterable of responses, resumed across failures. See watch.ts. */
  watch(options: WatchOptions): Watcher {
    return this.watches.watch(options);
  }

  /** Ask for a progress notification on the shared watch stream. */
  watchProgress(options?: CallOptions): Promise<ResponseHeader> {
    return this.watches.progress(options);
  }

  /** A lease kept alive by this client, with a `lost` signal. See lease.ts. */
  lease(ttlSeconds: Int64Input, options?: LeaseOptions): Lease {
    return this.leases.lease(ttlSeconds, options);
  }

  leaseGrant(ttlSeconds: Int64Input, options?: LeaseGrantOptions): Promise<LeaseGrantResult> {
    return this.leases.grant(ttlSeconds, options);
  }

  leaseRevoke(id: Int64Input, options?: CallOptions): Promise<LeaseRevokeResult> {
    return this.leases.revoke(id, options);
  }

  leaseTimeToLive(id: Int64Input, options?: LeaseTimeToLiveOptions): Promise<LeaseTimeToLiveResult> {
    return this.leases.timeToLive(id, options);
  }

  leaseLeases(options?: CallOptions): Promise<LeaseLeasesResult> {
    return this.leases.list(options);
  }

  leaseKeepAliveOnce(id: Int64Input, options?: CallOptions): Promise<LeaseKeepAliveResult> {
    return this.leases.keepAliveOnce(id, options);
  }
}
