/**
 * KV operations as pure data: request encoders for range/put/delete/txn, the `compare` and
 * `op` helpers for transactions, and the response decoders. No I/O here (kv.ts sends them),
 * so a txn's nested ops and the top-level calls share one encoder each.
 */
import { fromKeyEnd, prefixEnd, toBuffer } from './bytes';
import { fromWire, int64ToWire } from './int64';
import { KeyValue, type Bytes, type Int64Input, type ResponseHeader } from './types';
import type {
  WireCompare,
  WireDeleteRangeRequest,
  WireDeleteRangeResponse,
  WireKeyValue,
  WirePutRequest,
  WirePutResponse,
  WireRangeRequest,
  WireRangeResponse,
  WireRequestOp,
  WireResponseHeader,
  WireResponseOp,
  WireTxnRequest,
  WireTxnResponse,
} from './wire';

// ---- range selection shared by get, delete and compare ---------------------------------

/** Which keys an operation covers besides `key` itself. At most one may be given. */
export interface RangeSelector {
  /** Exclusive end of the range `[key, rangeEnd)`. */
  rangeEnd?: Bytes;
  /** Every key starting with `key` (etcd's WithPrefix). An empty key with prefix means all keys. */
  prefix?: boolean;
  /** Every key >= `key` (etcd's WithFromKey). */
  fromKey?: boolean;
}

/** Resolve key + selector to the wire's key and range_end (etcd clientv3 op.go semantics). */
export function resolveRange(key: Bytes, sel: RangeSelector): { key: Buffer; rangeEnd: Buffer | undefined } {
  const given = [sel.rangeEnd !== undefined, sel.prefix === true, sel.fromKey === true].filter(Boolean).length;
  if (given > 1) throw new TypeError('rangeEnd, prefix and fromKey are mutually exclusive');
  let k = toBuffer(key, 'key');
  if (sel.rangeEnd !== undefined) return { key: k, rangeEnd: toBuffer(sel.rangeEnd, 'rangeEnd') };
  if (sel.prefix) {
    // clientv3: WithPrefix on an empty key means the whole keyspace: key "\0", end "\0".
    if (k.length === 0) return { key: fromKeyEnd(), rangeEnd: fromKeyEnd() };
    return { key: k, rangeEnd: prefixEnd(k) };
  }
  if (sel.fromKey) {
    if (k.length === 0) k = fromKeyEnd();
    return { key: k, rangeEnd: fromKeyEnd() };
  }
  return { key: k, rangeEnd: undefined };
}

// ---- results ---------------------------------------------------------------------------

export interface RangeResult {
  header: ResponseHeader;
  /** The matching keys (empty with `countOnly`; values empty with `keysOnly`). */
  kvs: KeyValue[];
  /** True when `limit` cut the result short. */
  more: boolean;
  /** Number of keys in the range (ignores `limit`). */
  count: bigint;
}

export interface PutResult {
  header: ResponseHeader;
  /** The previous key-value pair, when `prevKv` was requested and the key existed. */
  prevKv?: KeyValue;
}

export interface DeleteResult {
  header: ResponseHeader;
  deleted: bigint;
  /** The deleted pairs, when `prevKv` was requested. */
  prevKvs: KeyValue[];
}

export type OpResult =
  | ({ op: 'range' } & RangeResult)
  | ({ op: 'put' } & PutResult)
  | ({ op: 'delete' } & DeleteResult)
  | ({ op: 'txn' } & TxnResult);

export interface TxnResult {
  header: ResponseHeader;
  /** Whether every compare held (the success branch ran). */
  succeeded: boolean;
  /** One result per op of the branch that ran, in order. */
  responses: OpResult[];
}

// ---- request options -------------------------------------------------------------------

export type SortOrder = 'none' | 'ascend' | 'descend';
export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';

const SORT_ORDER: Record<SortOrder, number> = { none: 0, ascend: 1, descend: 2 };
const SORT_TARGET: Record<SortTarget, number> = { key: 0, version: 1, create: 2, mod: 3, value: 4 };

/** Options of a range read (everything of `RangeRequest` but the key). */
export interface RangeOptions extends RangeSelector {
  /** At most this many keys; 0 means no limit. */
  limit?: Int64Input;
  /** Read at this revision; 0 or absent means the latest. */
  revision?: Int64Input;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Serve from the local member without a linearizable read (may be stale). */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: Int64Input;
  maxModRevision?: Int64Input;
  minCreateRevision?: Int64Input;
  maxCreateRevision?: Int64Input;
}

export interface PutOptions {
  /** Attach the key to this lease (0 or absent: no lease). */
  lease?: Int64Input;
  /** Return the previous key-value pair. */
  prevKv?: boolean;
  /** Keep the current value (the value argument must be empty). */
  ignoreValue?: boolean;
  /** Keep the current lease (`lease` must be absent). */
  ignoreLease?: boolean;
}

export interface DeleteOptions extends RangeSelector {
  /** Return the deleted pairs. */
  prevKv?: boolean;
}

function choose<K extends string>(table: Record<K, number>, value: K | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = table[value];
  if (n === undefined) throw new TypeError(`${name} must be one of ${Object.keys(table).join(', ')}, got ${String(value)}`);
  return n;
}

const optInt64 = (value: Int64Input | undefined, name: string): string | undefined =>
  value === undefined ? undefined : int64ToWire(value, name);

export function encodeRange(key: Bytes, o: RangeOptions = {}): WireRangeRequest {
  const r = resolveRange(key, o);
  return {
    key: r.key,
    range_end: r.rangeEnd,
    limit: optInt64(o.limit, 'limit'),
    revision: optInt64(o.revision, 'revision'),
    sort_order: choose(SORT_ORDER, o.sortOrder, 'sortOrder'),
    sort_target: choose(SORT_TARGET, o.sortTarget, 'sortTarget'),
    serializable: o.serializable,
    keys_only: o.keysOnly,
    count_only: o.countOnly,
    min_mod_revision: optInt64(o.minModRevision, 'minModRevision'),
    max_mod_revision: optInt64(o.maxModRevision, 'maxModRevision'),
    min_create_revision: optInt64(o.minCreateRevision, 'minCreateRevision'),
    max_create_revision: optInt64(o.maxCreateRevision, 'maxCreateRevision'),
  };
}

export function encodePut(key: Bytes, value: Bytes, o: PutOptions = {}): WirePutRequest {
  return {
    key: toBuffer(key, 'key'),
    value: toBuffer(value, 'value'),
    lease: optInt64(o.lease, 'lease'),
    prev_kv: o.prevKv,
    ignore_value: o.ignoreValue,
    ignore_lease: o.ignoreLease,
  };
}

export function encodeDelete(key: Bytes, o: DeleteOptions = {}): WireDeleteRangeRequest {
  const r = resolveRange(key, o);
  return { key: r.key, range_end: r.rangeEnd, prev_kv: o.prevKv };
}

// ---- transactions: compares and ops ----------------------------------------------------

export type CompareOperator = '=' | '==' | '!=' | '<' | '>';
export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';

const COMPARE_RESULT: Record<CompareOperator, number> = { '=': 0, '==': 0, '>': 1, '<': 2, '!=': 3 };
const COMPARE_TARGET: Record<CompareTarget, number> = { version: 0, create: 1, mod: 2, value: 3, lease: 4 };

/** One guard of a transaction. Build it with the `compare` helpers. */
export interface Compare {
  readonly kind: 'compare';
  readonly target: CompareTarget;
  readonly operator: CompareOperator;
  readonly key: Buffer;
  readonly rangeEnd?: Buffer;
  /** A bigint for version/create/mod/lease, a Buffer for value. */
  readonly value: bigint | Buffer;
}

/** Options of a compare: compare every key in a range (etcd 3.3+) instead of one key. */
export type CompareOptions = RangeSelector;

function makeCompare(
  target: CompareTarget,
  key: Bytes,
  operator: CompareOperator,
  value: bigint | Buffer,
  o: CompareOptions = {},
): Compare {
  if (COMPARE_RESULT[operator] === undefined) {
    throw new TypeError(`compare operator must be one of ${Object.keys(COMPARE_RESULT).join(' ')}, got ${String(operator)}`);
  }
  const r = resolveRange(key, o);
  return Object.freeze({ kind: 'compare', target, operator, key: r.key, rangeEnd: r.rangeEnd, value });
}

const int64Compare =
  (target: Exclude<CompareTarget, 'value'>, name: string) =>
  (key: Bytes, operator: CompareOperator, value: Int64Input, o?: CompareOptions): Compare =>
    makeCompare(target, key, operator, BigInt(int64ToWire(value, name)), o);

/**
 * Compare constructors: `compare.version('k', '=', 0)` holds when `k` does not exist;
 * `compare.mod('k', '<', rev)`, `compare.value('k', '=', 'v')`, `compare.lease('k', '=', id)`.
 */
export const compare = Object.freeze({
  /** The key's version (0 when absent). */
  version: int64Compare('version', 'version'),
  /** The key's create revision. */
  create: int64Compare('create', 'createRevision'),
  /** Alias of `create`. */
  createRevision: int64Compare('create', 'createRevision'),
  /** The key's mod revision. */
  mod: int64Compare('mod', 'modRevision'),
  /** Alias of `mod`. */
  modRevision: int64Compare('mod', 'modRevision'),
  /** The key's lease ID (0 when none). */
  lease: int64Compare('lease', 'lease'),
  /** The key's value, compared bytewise. */
  value: (key: Bytes, operator: CompareOperator, value: Bytes, o?: CompareOptions): Compare =>
    makeCompare('value', key, operator, toBuffer(value, 'value'), o),
});

export function encodeCompare(c: Compare): WireCompare {
  const w: WireCompare = {
    result: COMPARE_RESULT[c.operator],
    target: COMPARE_TARGET[c.target],
    key: c.key,
    range_end: c.rangeEnd,
  };
  switch (c.target) {
    case 'version':
      w.version = (c.value as bigint).toString();
      break;
    case 'create':
      w.create_revision = (c.value as bigint).toString();
      break;
    case 'mod':
      w.mod_revision = (c.value as bigint).toString();
      break;
    case 'lease':
      w.lease = (c.value as bigint).toString();
      break;
    case 'value':
      w.value = c.value as Buffer;
      break;
  }
  return w;
}

/** One operation inside a transaction. Build it with the `op` helpers. */
export type Op =
  | { readonly kind: 'range'; readonly request: WireRangeRequest }
  | { readonly kind: 'put'; readonly request: WirePutRequest }
  | { readonly kind: 'delete'; readonly request: WireDeleteRangeRequest }
  | { readonly kind: 'txn'; readonly request: WireTxnRequest };

export interface TxnRequest {
  /** All must hold for `success` to run; otherwise `failure` runs. Empty: always success. */
  compare?: Compare[];
  success?: Op[];
  failure?: Op[];
}

export function encodeOp(o: Op): WireRequestOp {
  switch (o.kind) {
    case 'range':
      return { request_range: o.request };
    case 'put':
      return { request_put: o.request };
    case 'delete':
      return { request_delete_range: o.request };
    case 'txn':
      return { request_txn: o.request };
    default:
      throw new TypeError(`not a txn op: ${JSON.stringify(o)}`);
  }
}

function assertArray<T>(value: T[] | undefined, name: string): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`${name} must be an array`);
  return value;
}

export function encodeTxn(t: TxnRequest): WireTxnRequest {
  const compares = assertArray(t.compare, 'compare');
  for (const c of compares) {
    if (!c || c.kind !== 'compare') throw new TypeError('compare entries must be built with compare.*()');
  }
  return {
    compare: compares.map(encodeCompare),
    success: assertArray(t.success, 'success').map(encodeOp),
    failure: assertArray(t.failure, 'failure').map(encodeOp),
  };
}

/** Op constructors for `client.txn()`: `op.get`, `op.put`, `op.delete`, `op.txn`. */
export const op = Object.freeze({
  get: (key: Bytes, o?: RangeOptions): Op => Object.freeze({ kind: 'range', request: encodeRange(key, o) }),
  put: (key: Bytes, value: Bytes, o?: PutOptions): Op => Object.freeze({ kind: 'put', request: encodePut(key, value, o) }),
  delete: (key: Bytes, o?: DeleteOptions): Op => Object.freeze({ kind: 'delete', request: encodeDelete(key, o) }),
  txn: (t: TxnRequest): Op => Object.freeze({ kind: 'txn', request: encodeTxn(t) }),
});

// ---- decoders --------------------------------------------------------------------------

/** Nested txn responses carry a partial header (etcd fills in only the revision). */
export function decodeHeader(h: WireResponseHeader | null | undefined): ResponseHeader {
  return {
    clusterId: fromWire(h?.cluster_id),
    memberId: fromWire(h?.member_id),
    revision: fromWire(h?.revision),
    raftTerm: fromWire(h?.raft_term),
  };
}

export function decodeKeyValue(kv: WireKeyValue): KeyValue {
  return new KeyValue(
    kv.key ?? Buffer.alloc(0),
    kv.value ?? Buffer.alloc(0),
    fromWire(kv.create_revision),
    fromWire(kv.mod_revision),
    fromWire(kv.version),
    fromWire(kv.lease),
  );
}

export function decodeRange(r: WireRangeResponse): RangeResult {
  return { header: decodeHeader(r.header), kvs: (r.kvs ?? []).map(decodeKeyValue), more: !!r.more, count: fromWire(r.count) };
}

export function decodePut(r: WirePutResponse): PutResult {
  const out: PutResult = { header: decodeHeader(r.header) };
  if (r.prev_kv) out.prevKv = decodeKeyValue(r.prev_kv);
  return out;
}

export function decodeDelete(r: WireDeleteRangeResponse): DeleteResult {
  return { header: decodeHeader(r.header), deleted: fromWire(r.deleted), prevKvs: (r.prev_kvs ?? []).map(decodeKeyValue) };
}

function decodeResponseOp(r: WireResponseOp): OpResult {
  // With `oneofs: true` the loader names the set field in `response`; fall back to probing.
  const which =
    r.response ??
    (r.response_range ? 'response_range' : r.response_put ? 'response_put' : r.response_delete_range ? 'response_delete_range' : r.response_txn ? 'response_txn' : undefined);
  switch (which) {
    case 'response_range':
      return { op: 'range', ...decodeRange(r.response_range as WireRangeResponse) };
    case 'response_put':
      return { op: 'put', ...decodePut(r.response_put as WirePutResponse) };
    case 'response_delete_range':
      return { op: 'delete', ...decodeDelete(r.response_delete_range as WireDeleteRangeResponse) };
    case 'response_txn':
      return { op: 'txn', ...decodeTxn(r.response_txn as WireTxnResponse) };
    default:
      throw new TypeError('txn response op has no response set');
  }
}

export function decodeTxn(r: WireTxnResponse): TxnResult {
  return { header: decodeHeader(r.header), succeeded: !!r.succeeded, responses: (r.responses ?? []).map(decodeResponseOp) };
}
