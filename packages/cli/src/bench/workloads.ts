/**
 * The requests of each bench command, as etcd's `benchmark` sends them.
 *
 * put:     PutRequest{key: varint key of key-size bytes, value: val-size random bytes}
 * range:   RangeRequest{key, range_end?, serializable: consistency === 's'}
 * txn-put: TxnRequest{success: txn-ops RequestPut ops}, keys (i*ops+j) % key-space-size
 *          (always sequential, as in etcd: keys in one txn must differ)
 *
 * Encoded requests are cached by key index when the key space is small (the common case
 * of 1 key), so the hot loop does not re-encode identical messages.
 */
import { KvMethod, kvMethod } from './conn';
import { benchKey, benchValue, keyIndexer } from './keys';
import type { Workload } from './runner';

const CACHE_KEYS_MAX = 4096;

function cached(space: number, encode: (index: number) => Buffer): (index: number) => Buffer {
  if (space > CACHE_KEYS_MAX) return encode;
  const cache: (Buffer | undefined)[] = new Array(space);
  return (index) => (cache[index] ??= encode(index));
}

export interface KeyOptions {
  keySize: number;
  valSize: number;
  keySpaceSize: number;
  sequentialKeys: boolean;
}

export function putWorkload(o: KeyOptions): Workload {
  const method = kvMethod('Put');
  const value = benchValue(o.valSize);
  const pick = keyIndexer(o.keySpaceSize, o.sequentialKeys);
  const encode = cached(o.keySpaceSize, (index) => method.encode({ key: benchKey(index, o.keySize), value }));
  return {
    method,
    request: (i) => encode(pick(i)),
    inspect: (r) => ({ revision: headerRevision(r) }),
  };
}

export interface RangeOptions {
  key: Buffer;
  rangeEnd?: Buffer;
  serializable: boolean;
}

export function rangeWorkload(o: RangeOptions): Workload {
  const method = kvMethod('Range');
  const request = method.encode({ key: o.key, range_end: o.rangeEnd ?? Buffer.alloc(0), serializable: o.serializable });
  return {
    method,
    request: () => request,
    inspect: (r) => ({
      revision: headerRevision(r),
      count: String(r.count ?? '0'),
      kvs: Array.isArray(r.kvs) ? r.kvs.length : 0,
    }),
  };
}

export interface TxnPutOptions extends KeyOptions {
  opsPerTxn: number;
}

export function txnPutWorkload(o: TxnPutOptions): Workload {
  if (o.keySpaceSize < o.opsPerTxn) {
    throw new Error(`--key-space-size (${o.keySpaceSize}) must be at least --txn-ops (${o.opsPerTxn}): keys in one txn must differ`);
  }
  const method: KvMethod = kvMethod('Txn');
  const value = benchValue(o.valSize);
  const ops = o.opsPerTxn;
  const space = o.keySpaceSize;
  // The request for i depends only on (i*ops) % space; cache per starting index when small.
  const encode = cached(space, (firstIndex) => {
    const success = [];
    for (let j = 0; j < ops; j++) {
      success.push({ request_put: { key: benchKey((firstIndex + j) % space, o.keySize), value } });
    }
    return method.encode({ compare: [], success, failure: [] });
  });
  return {
    method,
    request: (i) => encode((i * ops) % space),
    inspect: (r) => ({ revision: headerRevision(r), succeeded: r.succeeded === true }),
  };
}

function headerRevision(r: Record<string, unknown>): string | undefined {
  const h = r.header as { revision?: unknown } | undefined;
  return h?.revision !== undefined ? String(h.revision) : undefined;
}
