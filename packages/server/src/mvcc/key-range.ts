/**
 * etcd's key-range conventions, in one place. Keys are bytes; inside mvcc they are held as
 * latin1 strings (one char per byte), so JavaScript's string order is etcd's byte order.
 *
 * - range_end empty: the single key `key`.
 * - range_end "\0": every key >= key (etcd's mkGteRange).
 * - otherwise the half-open interval [key, range_end).
 */
export type KeyString = string;

export const toKeyString = (b: Buffer | Uint8Array): KeyString => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
export const fromKeyString = (s: KeyString): Buffer => Buffer.from(s, 'latin1');

export interface KeyRange {
  readonly start: KeyString;
  /** undefined: single key; '' : unbounded (all keys >= start); else exclusive end. */
  readonly end: KeyString | undefined;
}

export function keyRange(key: Buffer | undefined, rangeEnd: Buffer | undefined): KeyRange {
  const start = key ? toKeyString(key) : '';
  if (!rangeEnd || rangeEnd.length === 0) return { start, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: '' };
  return { start, end: toKeyString(rangeEnd) };
}

export function rangeContains(r: KeyRange, k: KeyString): boolean {
  if (r.end === undefined) return k === r.start;
  if (k < r.start) return false;
  return r.end === '' || k < r.end;
}

/** Whether two ranges share at least one key (used by txn duplicate-key checks). */
export function rangesIntersect(a: KeyRange, b: KeyRange): boolean {
  const aEnd = a.end === undefined ? a.start + '\0' : a.end;
  const bEnd = b.end === undefined ? b.start + '\0' : b.end;
  const aBeforeB = aEnd !== '' && aEnd <= b.start;
  const bBeforeA = bEnd !== '' && bEnd <= a.start;
  return !aBeforeB && !bBeforeA;
}

/** etcd's GetPrefixRangeEnd: the smallest key greater than every key with this prefix. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
