/** Keys and values: `string | Buffer | Uint8Array` in, `Buffer` out. */
import type { Bytes } from './types';

const ZERO = Buffer.from([0]);

/** Encode a key or value for the wire. Strings are UTF-8. */
export function toBuffer(value: Bytes, name = 'key'): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${name} must be a string, Buffer or Uint8Array, got ${value === null ? 'null' : typeof value}`);
}

/**
 * The end of the range that holds every key with the given prefix: etcd's
 * `clientv3.GetPrefixRangeEnd`. Increment the last byte that is below 0xff and drop what
 * follows it; when every byte is 0xff (or the key is empty) there is no upper bound, which
 * etcd spells "\0" (meaning "to the end of the keyspace").
 */
export function prefixEnd(key: Buffer): Buffer {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i] < 0xff) {
      const end = Buffer.from(key.subarray(0, i + 1));
      end[i] = key[i] + 1;
      return end;
    }
  }
  return Buffer.from(ZERO);
}

/** The range end meaning "every key >= key" (etcd's WithFromKey). */
export function fromKeyEnd(): Buffer {
  return Buffer.from(ZERO);
}
