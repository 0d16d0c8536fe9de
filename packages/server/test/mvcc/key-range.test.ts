/**
 * Goal: pin etcd's key-range conventions as key-range.ts encodes them, since the store, the
 * applier and the txn validator all build on them.
 *
 * Method: example tests, each citing the etcd rule it checks:
 * - RangeRequest.range_end (rpc.proto): empty = the single key; "\0" = every key >= key
 *   (applier's mkGteRange); otherwise the half-open interval [key, range_end).
 * - clientv3.GetPrefixRangeEnd: increment the last byte < 0xff and truncate after it; an all-0xff
 *   (or empty) prefix gives "\0".
 * - Keys are bytes compared with bytes.Compare; latin1 strings keep that order in JavaScript.
 * - adt.NewStringAffinePoint(k) is [k, k+"\0"), used by checkIntervals for point deletes/puts.
 */
import { fromKeyString, keyRange, prefixEnd, rangeContains, rangesIntersect, toKeyString } from '../../src/mvcc/key-range';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('toKeyString / fromKeyString', () => {
  it('round-trips every byte value', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(fromKeyString(toKeyString(all)).equals(all)).toBe(true);
    expect(toKeyString(all).length).toBe(256);
  });

  it('respects the view of a Buffer that is a slice of a larger ArrayBuffer', () => {
    const big = Buffer.from('xxabcxx', 'latin1');
    expect(toKeyString(big.subarray(2, 5))).toBe('abc');
  });

  it('orders strings as bytes.Compare orders the bytes (including 0x00 and 0x80..0xff)', () => {
    const keys = [b('a'), b('\x00'), b('\xff'), b('a\x00'), b('\x80'), b('ab'), b(''), b('\x7f')];
    const byBytes = keys.slice().sort(Buffer.compare).map(toKeyString);
    const byString = keys.map(toKeyString).sort();
    expect(byString).toEqual(byBytes);
  });
});

describe('keyRange (etcd RangeRequest.range_end)', () => {
  it('empty or absent range_end means the single key', () => {
    expect(keyRange(b('k'), undefined)).toEqual({ start: 'k', end: undefined });
    expect(keyRange(b('k'), Buffer.alloc(0))).toEqual({ start: 'k', end: undefined });
  });

  it('range_end "\\0" means every key >= key (mkGteRange)', () => {
    expect(keyRange(b('k'), b('\x00'))).toEqual({ start: 'k', end: '' });
  });

  it('"\\0\\0" is an ordinary end, not the from-key marker', () => {
    expect(keyRange(b('k'), b('\x00\x00'))).toEqual({ start: 'k', end: '\x00\x00' });
  });

  it('otherwise [key, range_end)', () => {
    expect(keyRange(b('a'), b('c'))).toEqual({ start: 'a', end: 'c' });
  });

  it('an absent key is the empty key', () => {
    expect(keyRange(undefined, b('\x00'))).toEqual({ start: '', end: '' });
  });
});

describe('rangeContains', () => {
  it('single key contains only that key', () => {
    const r = keyRange(b('a'), undefined);
    expect(rangeContains(r, 'a')).toBe(true);
    expect(rangeContains(r, 'a\x00')).toBe(false);
    expect(rangeContains(r, '')).toBe(false);
  });

  it('[a, c) is half-open', () => {
    const r = keyRange(b('a'), b('c'));
    expect(['a', 'a\x00', 'b', 'bzzz', 'c', 'c\x00', '\x00'].map((k) => rangeContains(r, k))).toEqual([true, true, true, true, false, false, false]);
  });

  it('from-key contains every key >= start, including 0xff keys', () => {
    const r = keyRange(b('b'), b('\x00'));
    expect(['a', 'b', 'z', '\xff\xff'].map((k) => rangeContains(r, k))).toEqual([false, true, true, true]);
  });

  it('an inverted range [c, a) is empty', () => {
    const r = keyRange(b('c'), b('a'));
    expect(['a', 'b', 'c'].some((k) => rangeContains(r, k))).toBe(false);
  });
});

describe('rangesIntersect (checkIntervals overlap test)', () => {
  const single = (k: string) => keyRange(b(k), undefined);
  it('a point intersects a range that contains it and nothing else', () => {
    const r = keyRange(b('a'), b('c'));
    expect(rangesIntersect(r, single('b'))).toBe(true);
    expect(rangesIntersect(single('a'), r)).toBe(true);
    expect(rangesIntersect(r, single('c'))).toBe(false);
    expect(rangesIntersect(r, single('\x00'))).toBe(false);
  });

  it('two points intersect only when equal ("a" and "a\\0" are different keys)', () => {
    expect(rangesIntersect(single('a'), single('a'))).toBe(true);
    expect(rangesIntersect(single('a'), single('a\x00'))).toBe(false);
  });

  it('adjacent half-open ranges do not intersect; overlapping ones do', () => {
    expect(rangesIntersect(keyRange(b('a'), b('c')), keyRange(b('c'), b('e')))).toBe(false);
    expect(rangesIntersect(keyRange(b('a'), b('c')), keyRange(b('b'), b('e')))).toBe(true);
  });

  it('a from-key range intersects every key at or after its start', () => {
    const r = keyRange(b('m'), b('\x00'));
    expect(rangesIntersect(r, single('zzz'))).toBe(true);
    expect(rangesIntersect(r, single('\xff'))).toBe(true);
    expect(rangesIntersect(r, single('l'))).toBe(false);
  });
});

describe('prefixEnd (clientv3.GetPrefixRangeEnd)', () => {
  it('increments the last byte', () => {
    expect(prefixEnd(b('foo'))).toEqual(b('fop'));
  });

  it('drops trailing 0xff bytes before incrementing', () => {
    expect(prefixEnd(b('a\xff\xff'))).toEqual(b('b'));
  });

  it('an all-0xff or empty prefix means "every key" ("\\0")', () => {
    expect(prefixEnd(b('\xff\xff'))).toEqual(b('\x00'));
    expect(prefixEnd(Buffer.alloc(0))).toEqual(b('\x00'));
  });

  it('does not modify its argument', () => {
    const p = b('abc');
    prefixEnd(p);
    expect(p).toEqual(b('abc'));
  });

  it('every key with the prefix is inside [prefix, prefixEnd(prefix)) and the next sibling is not', () => {
    const p = b('ab');
    const r = keyRange(p, prefixEnd(p));
    expect(['ab', 'ab\x00', 'ab\xff\xff', 'abzz'].every((k) => rangeContains(r, k))).toBe(true);
    expect(['aa\xff', 'ac', 'b'].some((k) => rangeContains(r, k))).toBe(false);
  });
});
