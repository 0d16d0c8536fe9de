/**
 * The KV service: range, put, delete, txn, compact. Reads are idempotent and fail over
 * freely; writes fail over only before they are sent (see connection.ts for why).
 */
import type { ConnectionPool } from './connection';
import { int64ToWire } from './int64';
import {
  decodeDelete,
  decodeHeader,
  decodePut,
  decodeRange,
  decodeTxn,
  encodeDelete,
  encodePut,
  encodeRange,
  encodeTxn,
  type DeleteOptions,
  type DeleteResult,
  type PutOptions,
  type PutResult,
  type RangeOptions,
  type RangeResult,
  type TxnRequest,
  type TxnResult,
} from './ops';
import type { Bytes, CallOptions, Int64Input, KeyValue, ResponseHeader } from './types';
import type {
  WireCompactionResponse,
  WireDeleteRangeResponse,
  WirePutResponse,
  WireRangeResponse,
  WireTxnResponse,
} from './wire';

const READ = { idempotent: true } as const;
/** Not retried after it may have reached a server: a second attempt could apply it twice. */
const WRITE = { idempotent: false } as const;

/** Options of `get`: a single-key read. */
export type GetOptions = Pick<RangeOptions, 'revision' | 'serializable' | 'keysOnly'> & CallOptions;

/** Options of `getRange`: the key plus every field of `RangeRequest`. */
export interface GetRangeOptions extends RangeOptions, CallOptions {
  key: Bytes;
}

export type PutCallOptions = PutOptions & CallOptions;
export type DeleteCallOptions = DeleteOptions & CallOptions;
export type TxnCallOptions = TxnRequest & CallOptions;

export interface CompactOptions extends CallOptions {
  /** Wait until the compaction is physically applied to the backend. */
  physical?: boolean;
}

export interface CompactResult {
  header: ResponseHeader;
}

function callOf(o: CallOptions | undefined): CallOptions {
  return { signal: o?.signal, timeoutMs: o?.timeoutMs };
}

export class KV {
  constructor(private readonly pool: ConnectionPool) {}

  /** The key-value pair at `key`, or undefined when it does not exist. */
  async get(key: Bytes, options: GetOptions = {}): Promise<KeyValue | undefined> {
    const res = await this.getRange({
      key,
      revision: options.revision,
      serializable: options.serializable,
      keysOnly: options.keysOnly,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
    });
    return res.kvs[0];
  }

  /** A full `Range` call: a key, a range (`rangeEnd | prefix | fromKey`) and every option. */
  async getRange(options: GetRangeOptions): Promise<RangeResult> {
    if (!options || options.key === undefined) throw new TypeError('getRange needs options.key');
    const req = encodeRange(options.key, options);
    const res = await this.pool.unary<typeof req, WireRangeResponse>('kv', 'Range', req, READ, callOf(options));
    return decodeRange(res);
  }

  async put(key: Bytes, value: Bytes, options: PutCallOptions = {}): Promise<PutResult> {
    const req = encodePut(key, value, options);
    const res = await this.pool.unary<typeof req, WirePutResponse>('kv', 'Put', req, WRITE, callOf(options));
    return decodePut(res);
  }

  /** Delete `key`, or a range of keys with `rangeEnd | prefix | fromKey`. */
  async delete(key: Bytes, options: DeleteCallOptions = {}): Promise<DeleteResult> {
    const req = encodeDelete(key, options);
    const res = await this.pool.unary<typeof req, WireDeleteRangeResponse>('kv', 'DeleteRange', req, WRITE, callOf(options));
    return decodeDelete(res);
  }

  /**
   * A transaction: if every `compare` holds, run `success`, else `failure`. Build compares and
   * ops with `compare.*` and `op.*`. Not retried after it may have been sent, even when all its
   * ops are reads (we do not inspect them; use getRange for retried reads).
   */
  async txn(request: TxnCallOptions): Promise<TxnResult> {
    if (!request) throw new TypeError('txn needs { compare, success, failure }');
    const req = encodeTxn(request);
    const res = await this.pool.unary<typeof req, WireTxnResponse>('kv', 'Txn', req, WRITE, callOf(request));
    return decodeTxn(res);
  }

  /** Compact the history up to `revision`: older revisions can no longer be read or watched. */
  async compact(revision: Int64Input, options: CompactOptions = {}): Promise<CompactResult> {
    const req = { revision: int64ToWire(revision, 'revision'), physical: options.physical };
    const res = await this.pool.unary<typeof req, WireCompactionResponse>('kv', 'Compact', req, WRITE, callOf(options));
    return { header: decodeHeader(res.header) };
  }
}
