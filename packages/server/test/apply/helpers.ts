/**
 * Builders and fakes shared by the KvApplier tests (not a test file: jest only runs *.test.ts).
 *
 * Enum numbers are written out from etcd's rpc.proto rather than imported from pb.ts, so a
 * wrong number in pb.ts would be caught here instead of being agreed with.
 */
import { KvApplier, LeaseLookup, NO_LEASES } from '../../src/apply/kv-applier';
import { EtcdError } from '../../src/errors';
import { MvccStore } from '../../src/mvcc/store';
import { PbCompare, PbDeleteRangeRequest, PbKeyValue, PbPutRequest, PbRangeRequest, PbRangeResponse, PbRequestOp, PbTxnRequest } from '../../src/api/pb';

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** etcdserverpb.RangeRequest.SortOrder / SortTarget. */
export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
/** etcdserverpb.Compare.CompareTarget / CompareResult. */
export const Target = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;
export const Result = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;

/** A lessor double: a fixed set of granted leases, and a record of every attach call. */
export class FakeLeases implements LeaseLookup {
  readonly attached: [string, bigint, bigint][] = [];
  constructor(private readonly granted: bigint[]) {}
  exists(id: bigint): boolean {
    return this.granted.includes(id);
  }
  attach(key: Buffer, oldLease: bigint, newLease: bigint): void {
    this.attached.push([key.toString('latin1'), oldLease, newLease]);
  }
}

export function setup(leases: LeaseLookup = NO_LEASES): { store: MvccStore; kv: KvApplier } {
  const store = new MvccStore();
  return { store, kv: new KvApplier(store, leases) };
}

type Extra<T> = Omit<T, 'key'>;

export const rangeReq = (key: string, extra: Extra<PbRangeRequest> = {}): PbRangeRequest => ({ key: b(key), ...extra });
export const putReq = (key: string, value: string | undefined, extra: Extra<PbPutRequest> = {}): PbPutRequest => ({
  key: b(key),
  ...(value === undefined ? {} : { value: b(value) }),
  ...extra,
});
export const delReq = (key: string, extra: Extra<PbDeleteRangeRequest> = {}): PbDeleteRangeRequest => ({ key: b(key), ...extra });

export const rangeOp = (key: string, extra: Extra<PbRangeRequest> = {}): PbRequestOp => ({ request: 'request_range', request_range: rangeReq(key, extra) });
export const putOp = (key: string, value: string | undefined, extra: Extra<PbPutRequest> = {}): PbRequestOp => ({
  request: 'request_put',
  request_put: putReq(key, value, extra),
});
export const delOp = (key: string, extra: Extra<PbDeleteRangeRequest> = {}): PbRequestOp => ({ request: 'request_delete_range', request_delete_range: delReq(key, extra) });
export const txnOp = (txn: PbTxnRequest): PbRequestOp => ({ request: 'request_txn', request_txn: txn });

/** A compare as proto-loader decodes it: target_union names the set member. */
export function cmp(key: string, target: number, result: number, operand: string | bigint | number | undefined, extra: Partial<PbCompare> = {}): PbCompare {
  const c: PbCompare = { key: b(key), target, result, ...extra };
  if (operand === undefined) return c;
  switch (target) {
    case Target.VALUE:
      return { ...c, target_union: 'value', value: b(String(operand)) };
    case Target.VERSION:
      return { ...c, target_union: 'version', version: String(operand) };
    case Target.CREATE:
      return { ...c, target_union: 'create_revision', create_revision: String(operand) };
    case Target.MOD:
      return { ...c, target_union: 'mod_revision', mod_revision: String(operand) };
    case Target.LEASE:
      return { ...c, target_union: 'lease', lease: String(operand) };
    default:
      return c;
  }
}

/** The PbKeyValue the applier returns (every int64 as a decimal string). */
export const pkv = (key: string, create: number, mod: number, version: number, value: string, lease: number | bigint = 0): PbKeyValue => ({
  key: b(key),
  create_revision: String(create),
  mod_revision: String(mod),
  version: String(version),
  value: b(value),
  lease: String(lease),
});

export const keysOf = (r: PbRangeResponse): string => r.kvs.map((kv) => kv.key.toString('latin1')).join(',');

/** Runs fn and checks it throws an EtcdError with etcd's exact text and gRPC code. */
export function expectEtcdError(fn: () => unknown, message: string, grpcCode: number): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(EtcdError);
  expect((thrown as EtcdError).message).toBe(message);
  expect((thrown as EtcdError).code).toBe(grpcCode);
}

/** gRPC status codes used by the errors under test. */
export const Code = { InvalidArgument: 3, NotFound: 5, OutOfRange: 11 } as const;

/** Everything a client could observe of the store: revision, compaction, every read at every revision, hash. */
export function observe(store: MvccStore): unknown {
  const reads: unknown[] = [];
  for (let rev = store.compactedRev > 0n ? store.compactedRev : 1n; rev <= store.rev; rev++) {
    reads.push(store.range({ start: '', end: '' }, rev).kvs);
  }
  return { rev: store.rev, compacted: store.compactedRev, reads, hash: store.hashKV(store.rev) };
}
