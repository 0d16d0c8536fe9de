/**
 * int64 at the client edge. proto-loader hands us int64/uint64 fields as decimal strings
 * (`longs: String`); we turn them into `bigint` and never into a lossy `number`. Inputs may be
 * `bigint | string | number`; a number must be a safe integer, otherwise the caller has
 * already lost precision and we refuse it rather than send a different ID.
 */
import type { Int64Input } from './types';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
const DECIMAL = /^-?[0-9]+$/;

function toBigIntChecked(value: Int64Input, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`${name} must be a safe integer (use a bigint or a decimal string for larger values), got ${value}`);
    }
    return BigInt(value);
  }
  if (typeof value === 'string') {
    if (!DECIMAL.test(value)) throw new TypeError(`${name} must be a decimal integer string, got ${JSON.stringify(value)}`);
    return BigInt(value);
  }
  throw new TypeError(`${name} must be a bigint, a decimal string or a safe integer, got ${typeof value}`);
}

/** Validate a signed 64-bit input and return it as the decimal string the wire layer wants. */
export function int64ToWire(value: Int64Input, name: string): string {
  const n = toBigIntChecked(value, name);
  if (n < INT64_MIN || n > INT64_MAX) throw new TypeError(`${name} is outside the int64 range: ${n}`);
  return n.toString();
}

/** Validate an unsigned 64-bit input (member and cluster IDs) and return its decimal string. */
export function uint64ToWire(value: Int64Input, name: string): string {
  const n = toBigIntChecked(value, name);
  if (n < 0n || n > UINT64_MAX) throw new TypeError(`${name} is outside the uint64 range: ${n}`);
  return n.toString();
}

/** Normalise any int64 input to a bigint (validated as int64). */
export function toInt64(value: Int64Input, name = 'value'): bigint {
  return BigInt(int64ToWire(value, name));
}

/** Convert a decoded int64/uint64 field (decimal string with `longs: String`) to bigint. */
export function fromWire(value: string | number | null | undefined): bigint {
  if (value === null || value === undefined || value === '') return 0n;
  if (typeof value === 'number') {
    // Only reachable if the loader options change; a non-safe number would already be wrong.
    if (!Number.isSafeInteger(value)) throw new TypeError(`int64 field decoded as unsafe number ${value}`);
    return BigInt(value);
  }
  return BigInt(value);
}
