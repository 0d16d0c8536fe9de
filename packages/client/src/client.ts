/**
 * The entry point: one Client per cluster. It owns the connection pool and exposes each
 * service as a namespace (`client.kv`, `client.maintenance`, `client.cluster`; Lease and
 * Watch will join as `client.lease` and `client.watch`, each in its own file), plus flat
 * shortcuts for the common calls.
 */
import { Cluster, type MemberListOptions, type MemberListResult } from './cluster';
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
import { Maintenance, type HashKVResult, type StatusResult } from './maintenance';
import type { DeleteResult, PutResult, RangeResult, TxnResult } from './ops';
import type { Bytes, CallOptions, Int64Input, KeyValue } from './types';
import type { RawClients } from './wire';

export class Client {
  readonly kv: KV;
  readonly maintenance: Maintenance;
  readonly cluster: Cluster;
  private readonly pool: ConnectionPool;

  constructor(options: ClientOptions) {
    this.pool = new ConnectionPool(options);
    this.kv = new KV(this.pool);
    this.maintenance = new Maintenance(this.pool);
    this.cluster = new Cluster(this.pool);
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

  /** Close every channel; later calls reject with `ClientClosedError`. */
  close(): void {
    this.pool.close();
  }

  // ---- shortcuts -------------------------------------------------------------------------

  get(key: Bytes, options?: GetOptions): Promise<KeyValue | undefined> {
    return this.kv.get(key, options);
  }

  getRange(options: GetRangeOptions): Promise<RangeResult> {
    return this.kv.getRange(options);
  }

  put(key: Bytes, value: Bytes, options?: PutCallOptions): Promise<PutResult> {
    return this.kv.put(key, value, options);
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

  status(options?: CallOptions): Promise<StatusResult> {
    return this.maintenance.status(options);
  }

  hashKV(revision?: Int64Input, options?: CallOptions): Promise<HashKVResult> {
    return this.maintenance.hashKV(revision, options);
  }

  memberList(options?: MemberListOptions): Promise<MemberListResult> {
    return this.cluster.memberList(options);
  }
}
