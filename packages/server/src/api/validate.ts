/**
 * Request checks made before anything is proposed, as etcd's api/v3rpc/key.go makes them.
 * A request that fails here changes nothing and gets etcd's code and text.
 */
import { EtcdError } from '../errors';
import { keyRange, rangesIntersect, KeyRange, toKeyString } from '../mvcc/key-range';
import { PbDeleteRangeRequest, PbPutRequest, PbRangeRequest, PbRequestOp, PbTxnRequest, int64 } from './pb';

const isEmpty = (b: Buffer | undefined): boolean => !b || b.length === 0;

export function checkRangeRequest(r: PbRangeRequest): void {
  if (isEmpty(r.key)) throw new EtcdError('emptyKey');
}

export function checkPutRequest(r: PbPutRequest): void {
  if (isEmpty(r.key)) throw new EtcdError('emptyKey');
  if (r.ignore_value && !isEmpty(r.value)) throw new EtcdError('valueProvided');
  if (r.ignore_lease && int64(r.lease) !== 0n) throw new EtcdError('leaseProvided');
}

export function checkDeleteRequest(r: PbDeleteRangeRequest): void {
  if (isEmpty(r.key)) throw new EtcdError('emptyKey');
}

/** etcd checkTxnRequest: op counts against --max-txn-ops, empty keys, nested ops. */
export function checkTxnRequest(r: PbTxnRequest, maxTxnOps: number): void {
  const opc = Math.max(r.compare?.length ?? 0, r.success?.length ?? 0, r.failure?.length ?? 0);
  if (opc > maxTxnOps) throw new EtcdError('tooManyOps');
  for (const c of r.compare ?? []) if (isEmpty(c.key)) throw new EtcdError('emptyKey');
  for (const op of [...(r.success ?? []), ...(r.failure ?? [])]) checkRequestOp(op, maxTxnOps - opc);
}

function checkRequestOp(op: PbRequestOp, maxTxnOps: number): void {
  if (op.request_range) checkRangeRequest(op.request_range);
  else if (op.request_put) checkPutRequest(op.request_put);
  else if (op.request_delete_range) checkDeleteRequest(op.request_delete_range);
  else if (op.request_txn) checkTxnRequest(op.request_txn, maxTxnOps);
  // etcd answers an empty op with "key not found".
  else throw new EtcdError('keyNotFound');
}

/**
 * etcd checkIntervals: within one branch (nested txns included) no key may be put twice,
 * and no put may fall inside a deleted range. The two branches of a nested txn exclude
 * each other, so the same key may be put in both.
 */
export function checkTxnIntervals(r: PbTxnRequest): void {
  checkIntervals(r.success ?? []);
  checkIntervals(r.failure ?? []);
}

function checkIntervals(ops: readonly PbRequestOp[]): { puts: Set<string>; dels: KeyRange[] } {
  const dels: KeyRange[] = [];
  for (const op of ops) if (op.request_delete_range) dels.push(keyRange(op.request_delete_range.key, op.request_delete_range.range_end));
  const hitsDelete = (k: string): boolean => dels.some((d) => rangesIntersect(d, { start: k, end: undefined }));
  const puts = new Set<string>();
  for (const op of ops) {
    if (!op.request_txn) continue;
    const then = checkIntervals(op.request_txn.success ?? []);
    const otherwise = checkIntervals(op.request_txn.failure ?? []);
    for (const k of then.puts) {
      if (puts.has(k) || hitsDelete(k)) throw new EtcdError('duplicateKey');
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if (puts.has(k) && !then.puts.has(k)) throw new EtcdError('duplicateKey');
      if (hitsDelete(k)) throw new EtcdError('duplicateKey');
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (!op.request_put) continue;
    const k = toKeyString(op.request_put.key ?? Buffer.alloc(0));
    if (puts.has(k) || hitsDelete(k)) throw new EtcdError('duplicateKey');
    puts.add(k);
  }
  return { puts, dels };
}
