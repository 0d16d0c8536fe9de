/**
 * Public value types shared by every part of the client. int64 values are `bigint` on the
 * way out and `bigint | string | number` on the way in (see int64.ts); keys and values are
 * `string | Buffer` in and `Buffer` out.
 */

/** A key or value as accepted by the client: strings are encoded as UTF-8. */
export type Bytes = string | Buffer | Uint8Array;

/** An int64 as accepted by the client. Numbers must be safe integers; strings are decimal. */
export type Int64Input = bigint | string | number;

/** Options every call accepts. */
export interface CallOptions {
  /** Aborting cancels the gRPC call; the promise rejects with `AbortError`. */
  signal?: AbortSignal;
  /**
   * Deadline for the whole call, including connecting and any failover, in milliseconds.
   * Defaults to the client's `callTimeoutMs`.
   */
  timeoutMs?: number;
}

/** `etcdserverpb.ResponseHeader`, int64-exact. */
export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  /** The key-value store revision when the request was applied. */
  revision: bigint;
  raftTerm: bigint;
}

/** `mvccpb.KeyValue`, int64-exact, with string helpers. */
export class KeyValue {
  constructor(
    readonly key: Buffer,
    readonly value: Buffer,
    /** Revision of the last creation of this key (0 when the key does not exist). */
    readonly createRevision: bigint,
    /** Revision of the last modification of this key. */
    readonly modRevision: bigint,
    /** Number of modifications since creation; a delete resets it to 0. */
    readonly version: bigint,
    /** ID of the lease attached to the key, 0n when none. */
    readonly lease: bigint,
  ) {}

  keyString(encoding: BufferEncoding = 'utf8'): string {
    return this.key.toString(encoding);
  }

  valueString(encoding: BufferEncoding = 'utf8'): string {
    return this.value.toString(encoding);
  }
}
