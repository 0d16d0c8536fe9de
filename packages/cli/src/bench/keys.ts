/**
 * Keys and values as etcd's `benchmark` tool makes them, so a run of `coord bench` writes
 * the same workload as `benchmark put` would.
 *
 * etcd: `k := make([]byte, keySize); binary.PutVarint(k, int64(i))` — a key of exactly
 * key-size bytes that starts with the zig-zag varint of the key index and is zero-padded.
 * With the default key space of 1 every request writes the same key (eight zero bytes).
 * The value is one random byte string of val-size bytes, shared by all requests.
 */
import { randomBytes } from 'node:crypto';

/** Bytes that Go's `binary.PutVarint` writes for a non-negative `index`. */
export function varintLength(index: number): number {
  let ux = index * 2; // zig-zag for x >= 0
  let n = 1;
  while (ux >= 0x80) {
    ux = Math.floor(ux / 128);
    n++;
  }
  return n;
}

/** Writes Go's `binary.PutVarint(buf, index)` at the start of `buf` (index >= 0). */
export function putVarint(buf: Buffer, index: number): void {
  let ux = index * 2;
  let i = 0;
  while (ux >= 0x80) {
    buf[i++] = (ux % 128) | 0x80;
    ux = Math.floor(ux / 128);
  }
  buf[i] = ux;
}

/** The key for `index`: key-size bytes, varint-prefixed, zero-padded (a fresh buffer). */
export function benchKey(index: number, keySize: number): Buffer {
  if (varintLength(index) > keySize) {
    throw new Error(`key index ${index} needs ${varintLength(index)} bytes; --key-size ${keySize} is too small`);
  }
  const k = Buffer.alloc(keySize);
  putVarint(k, index);
  return k;
}

/** Checks up front that every key of the key space fits in key-size bytes. */
export function checkKeySpace(keySpaceSize: number, keySize: number): void {
  const need = varintLength(Math.max(0, keySpaceSize - 1));
  if (need > keySize) {
    throw new Error(`--key-space-size ${keySpaceSize} needs keys of at least ${need} bytes (--key-size ${keySize})`);
  }
}

/** Picks key indices as etcd's benchmark does: i % space when sequential, else uniform random. */
export function keyIndexer(keySpaceSize: number, sequential: boolean): (i: number) => number {
  if (keySpaceSize <= 1) return () => 0;
  return sequential ? (i) => i % keySpaceSize : () => Math.floor(Math.random() * keySpaceSize);
}

export function benchValue(valSize: number): Buffer {
  return randomBytes(valSize);
}
