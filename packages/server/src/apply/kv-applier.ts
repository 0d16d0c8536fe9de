/**
 * Applies committed KV requests to the mvcc store, deterministically: the same committed
 * log gives every member the same state and the same answers. Nothing here reads a clock
 * or depends on anything but the store, the lessor and the request.
 *
 * Semantics follow etcd 3.4's applierV3backend (server/etcdserver/apply.go): limits, sort,
 * min/max filters and `count`/`more` of Range; ignore_value/ignore_lease of Put; txn
 * compares evaluated (nested ones too) against the state before any of the txn's writes;
 * every write of a txn shares one revision.
 */
import { EtcdError } from '../errors';
import { KeyValue, MvccEvent, MvccStore } from '../mvcc/store';
import { keyRange, toKeyString } from '../mvcc/key-range';
import {
  CompareResult,
  CompareTarget,
  EMPTY_BUFFER,
  PbCompare,
  PbDeleteRangeRequest,
  PbDeleteRangeResponse,
  PbKeyValue,
  PbPutRequest,
  PbPutResponse,
  PbRangeRequest,
  PbRangeResponse,
  PbRequestOp,
  PbResponseOp,
  PbTxnRequest,
  PbTxnResponse,
  int64,
} from '../api/pb';

/** What apply needs from the lessor. */
export interface LeaseLookup {
  exists(id: bigint): boolean;
  /** Records which lease a key is attached to now (0 = none). */
  attach(key: Buffer, oldLease: bigint, newLease: bigint): void;
}

export const NO_LEASES: LeaseLookup = { exists: () => false, attach: () => undefined };

export interface WriteOutcome<R> {
  readonly response: R;
  readonly events: MvccEvent[];
}

export function toPbKeyValue(kv: KeyValue, keysOnly = false): PbKeyValue {
  return {
    key: kv.key,
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
    value: keysOnly ? EMPTY_BUFFER : kv.value,
    lease: String(kv.lease),
  };
}

export class KvApplier {
  constructor(
    private readonly store: MvccStore,
    private readonly leases: LeaseLookup,
  ) {}

  /** A read outside any write request (also used for read-only txns). */
  range(r: PbRangeRequest): PbRangeResponse {
    return this.rangeAt(r, this.store.rev);
  }

  put(r: PbPutRequest): WriteOutcome<PbPutResponse> {
    this.checkPut(r);
    this.store.beginWrite();
    const response = this.applyPut(r);
    const { rev, events } = this.store.endWrite();
    response.header.revision = String(rev);
    return { response, events };
  }

  deleteRange(r: PbDeleteRangeRequest): WriteOutcome<PbDeleteRangeResponse> {
    this.store.beginWrite();
    const response = this.applyDelete(r);
    const { rev, events } = this.store.endWrite();
    response.header.revision = String(rev);
    return { response, events };
  }

  /** Deletes the given keys in one write request (lease revoke); returns the events. */
  deleteKeys(keys: readonly string[]): MvccEvent[] {
    this.store.beginWrite();
    for (const k of keys) this.store.deleteRange({ start: k, end: undefined });
    return this.store.endWrite().events;
  }

  txn(r: PbTxnRequest): WriteOutcome<PbTxnResponse> {
    // Decide every branch first, against the state before the txn (etcd: compareToPath).
    const path = new Map<PbTxnRequest, boolean>();
    this.decide(r, path);
    const readOnly = isTxnReadOnly(r);
    if (!readOnly) this.checkChosen(r, path, (op) => op.request_put && this.checkPut(op.request_put, true));
    this.checkChosen(r, path, (op) => op.request_range && this.checkRangeRevision(op.request_range));
    if (readOnly) {
      const response = this.applyTxn(r, path, this.store.rev);
      response.header.revision = String(this.store.rev);
      return { response, events: [] };
    }
    this.store.beginWrite();
    const response = this.applyTxn(r, path, undefined);
    const { rev, events } = this.store.endWrite();
    response.header.revision = String(rev);
    return { response, events };
  }

  private decide(r: PbTxnRequest, path: Map<PbTxnRequest, boolean>): void {
    const ok = (r.compare ?? []).every((c) => this.compare(c));
    path.set(r, ok);
    for (const op of (ok ? r.success : r.failure) ?? []) if (op.request_txn) this.decide(op.request_txn, path);
  }

  private checkChosen(r: PbTxnRequest, path: Map<PbTxnRequest, boolean>, check: (op: PbRequestOp) => void): void {
    for (const op of (path.get(r) ? r.success : r.failure) ?? []) {
      check(op);
      if (op.request_txn) this.checkChosen(op.request_txn, path, check);
    }
  }

  private applyTxn(r: PbTxnRequest, path: Map<PbTxnRequest, boolean>, readRev: bigint | undefined): PbTxnResponse {
    const succeeded = path.get(r)!;
    const responses: PbResponseOp[] = [];
    for (const op of (succeeded ? r.success : r.failure) ?? []) {
      if (op.request_range) {
        const rev = readRev ?? this.store.writeReadRev;
        responses.push({ response: 'response_range', response_range: this.rangeAt(op.request_range, rev) });
      } else if (op.request_put) {
        const resp = this.applyPut(op.request_put);
        responses.push({ response: 'response_put', response_put: resp });
      } else if (op.request_delete_range) {
        responses.push({ response: 'response_delete_range', response_delete_range: this.applyDelete(op.request_delete_range) });
      } else if (op.request_txn) {
        // etcd leaves a nested txn's header empty.
        const nested = this.applyTxn(op.request_txn, path, readRev);
        responses.push({ response: 'response_txn', response_txn: nested });
      }
    }
    return { header: {}, succeeded, responses };
  }

  private rangeAt(r: PbRangeRequest, currentRev: bigint): PbRangeResponse {
    const requested = int64(r.revision);
    if (requested > currentRev) throw new EtcdError('futureRev');
    const rev = requested <= 0n ? currentRev : requested;
    if (rev < this.store.compactedRev) throw new EtcdError('compacted');
    const limit = Number(int64(r.limit));
    const requestedOrder = r.sort_order ?? 0;
    const sortTarget = r.sort_target ?? 0;
    // etcd: a non-KEY sort target with no order means ascending -- but whether to fetch
    // the whole range is decided from the order as sent (etcd 3.4 apply.go Range).
    const sortOrder = sortTarget !== 0 && requestedOrder === 0 ? 1 : requestedOrder;
    const minMod = int64(r.min_mod_revision);
    const maxMod = int64(r.max_mod_revision);
    const minCreate = int64(r.min_create_revision);
    const maxCreate = int64(r.max_create_revision);
    const filtered = minMod !== 0n || maxMod !== 0n || minCreate !== 0n || maxCreate !== 0n;
    // Fetch one more than the limit to know `more`, unless sort or filters need everything.
    const fetch = requestedOrder !== 0 || filtered || limit <= 0 ? 0 : limit + 1;
    const result = this.store.range(keyRange(r.key, r.range_end), rev, { limit: fetch, countOnly: r.count_only === true });
    let kvs = result.kvs;
    if (filtered) {
      kvs = kvs.filter(
        (kv) =>
          (minMod === 0n || kv.modRevision >= minMod) &&
          (maxMod === 0n || kv.modRevision <= maxMod) &&
          (minCreate === 0n || kv.createRevision >= minCreate) &&
          (maxCreate === 0n || kv.createRevision <= maxCreate),
      );
    }
    if (sortOrder !== 0) {
      const cmp = sortComparator(sortTarget);
      kvs = kvs.slice().sort(sortOrder === 2 ? (a, b) => cmp(b, a) : cmp);
    }
    let more = false;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    return {
      header: { revision: String(currentRev) },
      kvs: kvs.map((kv) => toPbKeyValue(kv, r.keys_only === true)),
      more,
      count: String(result.count),
    };
  }

  private checkRangeRevision(r: PbRangeRequest): void {
    const rev = int64(r.revision);
    if (rev > this.store.rev) throw new EtcdError('futureRev');
    if (rev > 0n && rev < this.store.compactedRev) throw new EtcdError('compacted');
  }

  /**
   * Apply-time checks of a put, made before anything is written. etcd checks the lease
   * first for a plain put (applyPut) but the key first inside a txn (checkRequestPut).
   */
  private checkPut(r: PbPutRequest, inTxn = false): void {
    const lease = int64(r.lease);
    const checkLease = (): void => {
      if (lease !== 0n && !this.leases.exists(lease)) throw new EtcdError('leaseNotFound');
    };
    if (!inTxn) checkLease();
    if (r.ignore_value || r.ignore_lease) {
      if (!this.store.get(toKeyString(r.key ?? EMPTY_BUFFER))) throw new EtcdError('keyNotFound');
    }
    if (inTxn) checkLease();
  }

  private applyPut(r: PbPutRequest): PbPutResponse {
    const key = r.key ?? EMPTY_BUFFER;
    const ks = toKeyString(key);
    const current = this.store.get(ks);
    let value = r.value ?? EMPTY_BUFFER;
    let lease = int64(r.lease);
    if (current) {
      if (r.ignore_value) value = current.value;
      if (r.ignore_lease) lease = current.lease;
    }
    const { prev } = this.store.put(ks, value, lease);
    const oldLease = prev ? prev.lease : 0n;
    if (oldLease !== lease) this.leases.attach(key, oldLease, lease);
    const response: PbPutResponse = { header: { revision: String(this.store.writeReadRev) } };
    if (r.prev_kv && prev) response.prev_kv = toPbKeyValue(prev);
    return response;
  }

  private applyDelete(r: PbDeleteRangeRequest): PbDeleteRangeResponse {
    const deleted = this.store.deleteRange(keyRange(r.key, r.range_end));
    for (const kv of deleted) if (kv.lease !== 0n) this.leases.attach(kv.key, kv.lease, 0n);
    return {
      header: { revision: String(this.store.writeReadRev) },
      deleted: String(deleted.length),
      prev_kvs: r.prev_kv ? deleted.map((kv) => toPbKeyValue(kv)) : [],
    };
  }

  /** etcd's applyCompare: every key in the range must satisfy it; absent keys compare as zero. */
  private compare(c: PbCompare): boolean {
    const result = this.store.range(keyRange(c.key, c.range_end), this.store.rev);
    if (result.kvs.length === 0) {
      // A missing key has no value to compare: VALUE compares always fail (etcd).
      if ((c.target ?? 0) === CompareTarget.VALUE) return false;
      return compareKeyValue(c, undefined);
    }
    return result.kvs.every((kv) => compareKeyValue(c, kv));
  }
}

function compareKeyValue(c: PbCompare, kv: KeyValue | undefined): boolean {
  let result: number;
  const target = c.target ?? 0;
  // Only the union member matching the target counts; another one compares as zero.
  const given = (field: 'version' | 'create_revision' | 'mod_revision' | 'lease'): bigint =>
    c.target_union === field ? int64(c[field]) : 0n;
  switch (target) {
    case CompareTarget.VALUE:
      result = Buffer.compare(kv?.value ?? EMPTY_BUFFER, c.target_union === 'value' ? (c.value ?? EMPTY_BUFFER) : EMPTY_BUFFER);
      break;
    case CompareTarget.CREATE:
      result = cmpBig(kv?.createRevision ?? 0n, given('create_revision'));
      break;
    case CompareTarget.MOD:
      result = cmpBig(kv?.modRevision ?? 0n, given('mod_revision'));
      break;
    case CompareTarget.VERSION:
      result = cmpBig(kv?.version ?? 0n, given('version'));
      break;
    case CompareTarget.LEASE:
      result = cmpBig(kv?.lease ?? 0n, given('lease'));
      break;
    default:
      // etcd: an unknown target compares as equal.
      result = 0;
  }
  switch (c.result ?? 0) {
    case CompareResult.EQUAL:
      return result === 0;
    case CompareResult.NOT_EQUAL:
      return result !== 0;
    case CompareResult.GREATER:
      return result > 0;
    case CompareResult.LESS:
      return result < 0;
    default:
      // etcd: an unknown result operator holds.
      return true;
  }
}

const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

function sortComparator(target: number): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 1:
      return (a, b) => cmpBig(a.version, b.version);
    case 2:
      return (a, b) => cmpBig(a.createRevision, b.createRevision);
    case 3:
      return (a, b) => cmpBig(a.modRevision, b.modRevision);
    case 4:
      return (a, b) => Buffer.compare(a.value, b.value);
    default:
      return (a, b) => Buffer.compare(a.key, b.key);
  }
}

/** etcd's isTxnReadonly: no put, delete or writing nested txn in either branch. */
export function isTxnReadOnly(r: PbTxnRequest): boolean {
  const ops = [...(r.success ?? []), ...(r.failure ?? [])];
  return ops.every((op) => (op.request_txn ? isTxnReadOnly(op.request_txn) : !op.request_put && !op.request_delete_range));
}

/** etcd's isTxnSerializable: every range in the txn (nested ones too) asks for a serializable read. */
export function isTxnSerializable(r: PbTxnRequest): boolean {
  const ops = [...(r.success ?? []), ...(r.failure ?? [])];
  return ops.every((op) => (op.request_txn ? isTxnSerializable(op.request_txn) : op.request_range ? op.request_range.serializable === true : true));
}
