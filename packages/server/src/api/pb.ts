/**
 * TypeScript shapes of the etcd messages as @grpc/proto-loader and protobufjs decode them
 * for the server: field names as in the .proto, int64 as decimal strings, bytes as Buffer,
 * and (the server loads with `defaults: false`) absent fields left undefined. Only the
 * fields the server reads or writes are typed.
 */
export type Int64 = string;

export interface PbHeader {
  cluster_id?: Int64;
  member_id?: Int64;
  revision?: Int64;
  raft_term?: Int64;
}

export interface PbKeyValue {
  key: Buffer;
  create_revision?: Int64;
  mod_revision?: Int64;
  version?: Int64;
  value?: Buffer;
  lease?: Int64;
}

export interface PbRangeRequest {
  key?: Buffer;
  range_end?: Buffer;
  limit?: Int64;
  revision?: Int64;
  sort_order?: number;
  sort_target?: number;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: Int64;
  max_mod_revision?: Int64;
  min_create_revision?: Int64;
  max_create_revision?: Int64;
}
export interface PbRangeResponse {
  header: PbHeader;
  kvs: PbKeyValue[];
  more: boolean;
  count: Int64;
}

export interface PbPutRequest {
  key?: Buffer;
  value?: Buffer;
  lease?: Int64;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
}
export interface PbPutResponse {
  header: PbHeader;
  prev_kv?: PbKeyValue;
}

export interface PbDeleteRangeRequest {
  key?: Buffer;
  range_end?: Buffer;
  prev_kv?: boolean;
}
export interface PbDeleteRangeResponse {
  header: PbHeader;
  deleted: Int64;
  prev_kvs: PbKeyValue[];
}

export interface PbRequestOp {
  request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  request_range?: PbRangeRequest;
  request_put?: PbPutRequest;
  request_delete_range?: PbDeleteRangeRequest;
  request_txn?: PbTxnRequest;
}
export interface PbResponseOp {
  response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: PbRangeResponse;
  response_put?: PbPutResponse;
  response_delete_range?: PbDeleteRangeResponse;
  response_txn?: PbTxnResponse;
}

export const enum CompareResult {
  EQUAL = 0,
  GREATER = 1,
  LESS = 2,
  NOT_EQUAL = 3,
}
export const enum CompareTarget {
  VERSION = 0,
  CREATE = 1,
  MOD = 2,
  VALUE = 3,
  LEASE = 4,
}
export interface PbCompare {
  result?: number;
  target?: number;
  key?: Buffer;
  target_union?: 'version' | 'create_revision' | 'mod_revision' | 'value' | 'lease';
  version?: Int64;
  create_revision?: Int64;
  mod_revision?: Int64;
  value?: Buffer;
  lease?: Int64;
  range_end?: Buffer;
}

export interface PbTxnRequest {
  compare?: PbCompare[];
  success?: PbRequestOp[];
  failure?: PbRequestOp[];
}
export interface PbTxnResponse {
  header: PbHeader;
  succeeded: boolean;
  responses: PbResponseOp[];
}

export interface PbCompactionRequest {
  revision?: Int64;
  physical?: boolean;
}

export interface PbLeaseGrantRequest {
  TTL?: Int64;
  ID?: Int64;
}
export interface PbLeaseRevokeRequest {
  ID?: Int64;
}
export interface PbLeaseCheckpointRequest {
  checkpoints?: { ID?: Int64; remaining_TTL?: Int64 }[];
}

/** A raft log entry's payload (coordpb.InternalRequest, field numbers as etcd's). */
export interface PbInternalRequest {
  header?: { ID?: Int64; username?: string; auth_revision?: Int64 };
  ID?: Int64;
  put?: PbPutRequest;
  delete_range?: PbDeleteRangeRequest;
  txn?: PbTxnRequest;
  compaction?: PbCompactionRequest;
  lease_grant?: PbLeaseGrantRequest;
  lease_revoke?: PbLeaseRevokeRequest;
  lease_checkpoint?: PbLeaseCheckpointRequest;
  member_attr_set?: { member_id?: Int64; name?: string; client_urls?: string[] };
  member_peer_urls_set?: { member_id?: Int64; peer_urls?: string[] };
}

export const int64 = (s: Int64 | undefined): bigint => (s === undefined || s === '' ? 0n : BigInt(s));
export const EMPTY_BUFFER = Buffer.alloc(0);
