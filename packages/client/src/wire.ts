/**
 * The messages exactly as `@coord/proto`'s loader options produce them (keepCase, int64 as
 * decimal strings, bytes as Buffer, enums as numbers, defaults filled in, oneofs named), and
 * the raw gRPC service clients built from the same package definition. This is the only
 * file that knows the wire shape; the rest of the client converts at this edge.
 */
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';

/** An int64/uint64 field: a decimal string on the way in and out. */
export type WireInt64 = string;

export interface WireResponseHeader {
  cluster_id: WireInt64;
  member_id: WireInt64;
  revision: WireInt64;
  raft_term: WireInt64;
}

export interface WireKeyValue {
  key: Buffer;
  create_revision: WireInt64;
  mod_revision: WireInt64;
  version: WireInt64;
  value: Buffer;
  lease: WireInt64;
}

export interface WireRangeRequest {
  key: Buffer;
  range_end?: Buffer;
  limit?: WireInt64;
  revision?: WireInt64;
  sort_order?: number;
  sort_target?: number;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: WireInt64;
  max_mod_revision?: WireInt64;
  min_create_revision?: WireInt64;
  max_create_revision?: WireInt64;
}

export interface WireRangeResponse {
  header: WireResponseHeader | null;
  kvs: WireKeyValue[];
  more: boolean;
  count: WireInt64;
}

export interface WirePutRequest {
  key: Buffer;
  value: Buffer;
  lease?: WireInt64;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
}

export interface WirePutResponse {
  header: WireResponseHeader | null;
  prev_kv: WireKeyValue | null;
}

export interface WireDeleteRangeRequest {
  key: Buffer;
  range_end?: Buffer;
  prev_kv?: boolean;
}

export interface WireDeleteRangeResponse {
  header: WireResponseHeader | null;
  deleted: WireInt64;
  prev_kvs: WireKeyValue[];
}

export type WireRequestOp =
  | { request_range: WireRangeRequest }
  | { request_put: WirePutRequest }
  | { request_delete_range: WireDeleteRangeRequest }
  | { request_txn: WireTxnRequest };

export interface WireResponseOp {
  response?: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: WireRangeResponse | null;
  response_put?: WirePutResponse | null;
  response_delete_range?: WireDeleteRangeResponse | null;
  response_txn?: WireTxnResponse | null;
}

/** `etcdserverpb.Compare`; exactly one of the target_union fields is set. */
export interface WireCompare {
  result: number;
  target: number;
  key: Buffer;
  range_end?: Buffer;
  version?: WireInt64;
  create_revision?: WireInt64;
  mod_revision?: WireInt64;
  value?: Buffer;
  lease?: WireInt64;
}

export interface WireTxnRequest {
  compare: WireCompare[];
  success: WireRequestOp[];
  failure: WireRequestOp[];
}

export interface WireTxnResponse {
  header: WireResponseHeader | null;
  succeeded: boolean;
  responses: WireResponseOp[];
}

export interface WireCompactionRequest {
  revision: WireInt64;
  physical?: boolean;
}

export interface WireCompactionResponse {
  header: WireResponseHeader | null;
}

export interface WireStatusResponse {
  header: WireResponseHeader | null;
  version: string;
  dbSize: WireInt64;
  leader: WireInt64;
  raftIndex: WireInt64;
  raftTerm: WireInt64;
  raftAppliedIndex: WireInt64;
  errors: string[];
  dbSizeInUse: WireInt64;
  isLearner: boolean;
}

export interface WireHashKVRequest {
  revision: WireInt64;
}

export interface WireHashKVResponse {
  header: WireResponseHeader | null;
  hash: number;
  compact_revision: WireInt64;
}

export interface WireMember {
  ID: WireInt64;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface WireMemberListRequest {
  linearizable?: boolean;
}

export interface WireMemberListResponse {
  header: WireResponseHeader | null;
  members: WireMember[];
}

// ---- raw service clients --------------------------------------------------------------

export type UnaryCallback<Res> = (err: grpc.ServiceError | null, res?: Res) => void;

/** A unary method of a generated client, as grpc-js exposes it. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: UnaryCallback<Res>,
) => grpc.ClientUnaryCall;

/** `etcdserverpb.KV`. */
export interface RawKVClient extends grpc.Client {
  Range: UnaryMethod<WireRangeRequest, WireRangeResponse>;
  Put: UnaryMethod<WirePutRequest, WirePutResponse>;
  DeleteRange: UnaryMethod<WireDeleteRangeRequest, WireDeleteRangeResponse>;
  Txn: UnaryMethod<WireTxnRequest, WireTxnResponse>;
  Compact: UnaryMethod<WireCompactionRequest, WireCompactionResponse>;
}

/** `etcdserverpb.Maintenance` (the methods this client wraps; the others are reachable by name). */
export interface RawMaintenanceClient extends grpc.Client {
  Status: UnaryMethod<Record<string, never>, WireStatusResponse>;
  HashKV: UnaryMethod<WireHashKVRequest, WireHashKVResponse>;
  [method: string]: unknown;
}

/** `etcdserverpb.Cluster`. */
export interface RawClusterClient extends grpc.Client {
  MemberList: UnaryMethod<WireMemberListRequest, WireMemberListResponse>;
  [method: string]: unknown;
}

/** A generated client whose methods are not typed yet (Lease, Watch, Auth). */
export interface RawServiceClient extends grpc.Client {
  [method: string]: unknown;
}

/** One gRPC service client per etcd service, all sharing one channel (one HTTP/2 connection). */
export interface RawClients {
  /** The endpoint's gRPC target, e.g. `127.0.0.1:2379`. */
  readonly target: string;
  readonly channel: grpc.Channel;
  readonly kv: RawKVClient;
  readonly maintenance: RawMaintenanceClient;
  readonly cluster: RawClusterClient;
  readonly lease: RawServiceClient;
  readonly watch: RawServiceClient;
  readonly auth: RawServiceClient;
}

export type ServiceName = 'kv' | 'maintenance' | 'cluster' | 'lease' | 'watch' | 'auth';

const SERVICE_PATHS: Record<ServiceName, string> = {
  kv: 'KV',
  maintenance: 'Maintenance',
  cluster: 'Cluster',
  lease: 'Lease',
  watch: 'Watch',
  auth: 'Auth',
};

let constructors: Record<ServiceName, grpc.ServiceClientConstructor> | undefined;

/** The generated client constructors for `etcdserverpb.*`, loaded once from `@coord/proto`. */
export function serviceConstructors(): Record<ServiceName, grpc.ServiceClientConstructor> {
  if (!constructors) {
    const loaded = grpc.loadPackageDefinition(packageDefinition()) as unknown as {
      etcdserverpb: Record<string, grpc.ServiceClientConstructor>;
    };
    const out = {} as Record<ServiceName, grpc.ServiceClientConstructor>;
    for (const [name, path] of Object.entries(SERVICE_PATHS) as [ServiceName, string][]) {
      const ctor = loaded.etcdserverpb[path];
      if (typeof ctor !== 'function') throw new Error(`@coord/proto does not define etcdserverpb.${path}`);
      out[name] = ctor;
    }
    constructors = out;
  }
  return constructors;
}

/**
 * Build the raw clients for one target over a fresh channel. The caller owns the channel and
 * must `channel.close()` it. Used by the Client for each endpoint and available to tools
 * (the benchmark) that manage their own connections.
 */
export function createRawClients(
  target: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  channelOptions: grpc.ChannelOptions = {},
): RawClients {
  const channel = new grpc.Channel(target, credentials, channelOptions);
  const ctors = serviceConstructors();
  const make = <T>(name: ServiceName): T =>
    new ctors[name](target, credentials, { ...channelOptions, channelOverride: channel }) as unknown as T;
  return Object.freeze({
    target,
    channel,
    kv: make<RawKVClient>('kv'),
    maintenance: make<RawMaintenanceClient>('maintenance'),
    cluster: make<RawClusterClient>('cluster'),
    lease: make<RawServiceClient>('lease'),
    watch: make<RawServiceClient>('watch'),
    auth: make<RawServiceClient>('auth'),
  });
}
