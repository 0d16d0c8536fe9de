/**
 * @coord/client: a typed, promise-based, int64-exact client for the etcd v3 API.
 *
 *   const client = new Client({ endpoints: ['127.0.0.1:2379'] });
 *   await client.put('k', 'v');
 *   const kv = await client.get('k');              // KeyValue | undefined, revisions as bigint
 *   await client.txn({ compare: [compare.version('k', '=', 0)], success: [op.put('k', 'v')] });
 *   for await (const res of client.watch({ key: 'k', prefix: true })) console.log(res.events);
 *   const lease = client.lease(10);                // kept alive; lease.signal aborts if lost
 *   await lease.put('service/a', 'addr');
 */
export { Client } from './client';
export type { ClientPutOptions } from './client';
export type { ClientOptions, ResolvedOptions, UnaryPolicy } from './connection';
export { ConnectionPool, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_DIAL_TIMEOUT_MS, parseEndpoint } from './connection';
export { KV } from './kv';
export type { CompactOptions, CompactResult, DeleteCallOptions, GetOptions, GetRangeOptions, PutCallOptions, TxnCallOptions } from './kv';
export { Maintenance } from './maintenance';
export type {
  AlarmListResult,
  AlarmMember,
  AlarmName,
  EndpointCallOptions,
  HashKVResult,
  MoveLeaderResult,
  StatusResult,
} from './maintenance';
export { Cluster, checkPeerURLs } from './cluster';
export type {
  Member,
  MemberAddOptions,
  MemberAddResult,
  MemberChangeResult,
  MemberListOptions,
  MemberListResult,
  MemberPromoteResult,
  MemberRemoveResult,
  MemberUpdateResult,
} from './cluster';
export { Watches, Watcher, DEFAULT_WATCH_QUEUED_RESPONSES_MAX } from './watch';
export type { WatchEvent, WatchEventType, WatchOptions, WatchResponse } from './watch';
export { Lease, Leases, LEASE_SAFETY_MARGIN_MS_MAX, leaseIdToHex, parseLeaseId } from './lease';
export type {
  LeaseGrantOptions,
  LeaseGrantResult,
  LeaseKeepAliveResult,
  LeaseLeasesResult,
  LeaseOptions,
  LeaseRevokeResult,
  LeaseState,
  LeaseTimeToLiveOptions,
  LeaseTimeToLiveResult,
} from './lease';
export { compare, op, encodeCompare, encodeOp, encodeRange, encodePut, encodeDelete, encodeTxn } from './ops';
export type {
  Compare,
  CompareOperator,
  CompareOptions,
  CompareTarget,
  DeleteOptions,
  DeleteResult,
  Op,
  OpResult,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult,
  RangeSelector,
  SortOrder,
  SortTarget,
  TxnRequest,
  TxnResult,
} from './ops';
export { KeyValue } from './types';
export type { Bytes, CallOptions, Int64Input, ResponseHeader } from './types';
export { prefixEnd, toBuffer } from './bytes';
export { fromWire, int64ToWire, toInt64, uint64ToWire } from './int64';
export * from './errors';
export { createRawClients, serviceConstructors } from './wire';
export type * from './wire';
