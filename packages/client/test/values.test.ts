/**
 * Goal: values cross the client edge exactly: int64 inputs are validated (no silent
 * rounding), outputs are bigint, keys become Buffers, prefix ranges follow etcd's
 * GetPrefixRangeEnd, and txn compares/ops encode to the wire fields etcd expects.
 * Method: pure unit tests of int64.ts, bytes.ts and ops.ts (no server); the same encodings
 * are exercised end to end against etcd in kv.test.ts.
 */
import { fromKeyEnd, prefixEnd, toBuffer } from '../src/bytes';
import { fromWire, int64ToWire, toInt64, uint64ToWire } from '../src/int64';
import { compare, encodeCompare, encodeOp, encodeRange, encodeTxn, op, resolveRange } from '../src/ops';

describe('int64', () => {
  it('accepts bigint, decimal strings and safe integers, returning exact decimal strings', () => {
    expect(int64ToWire(0x694d6280d047720fn, 'lease')).toBe('7587829252578832911');
    expect(int64ToWire('7587829252578832911', 'lease')).toBe('7587829252578832911');
    expect(int64ToWire(42, 'x')).toBe('42');
    expect(int64ToWire(-1, 'x')).toBe('-1');
    expect(int64ToWire(Number.MAX_SAFE_INTEGER, 'x')).toBe('9007199254740991');
    expect(int64ToWire((1n << 63n) - 1n, 'x')).toBe('9223372036854775807');
    expect(toInt64('-9223372036854775808')).toBe(-(1n << 63n));
  });

  it.each([
    [1.5, 'safe integer'],
    [2 ** 53, 'safe integer'],
    [Number.NaN, 'safe integer'],
    [Number.POSITIVE_INFINITY, 'safe integer'],
    ['1e3', 'decimal'],
    ['0x10', 'decimal'],
    [' 1', 'decimal'],
    ['', 'decimal'],
    [1n << 63n, 'int64 range'],
    ['-9223372036854775809', 'int64 range'],
  ])('rejects %p with a TypeError', (value, why) => {
    expect(() => int64ToWire(value as never, 'revision')).toThrow(TypeError);
    expect(() => int64ToWire(value as never, 'revision')).toThrow(new RegExp(`revision.*${why}`));
  });

  it('rejects non-numeric types', () => {
    expect(() => int64ToWire(null as never, 'lease')).toThrow(TypeError);
    expect(() => int64ToWire({} as never, 'lease')).toThrow(TypeError);
  });

  it('checks uint64 bounds for member IDs', () => {
    expect(uint64ToWire((1n << 64n) - 1n, 'id')).toBe('18446744073709551615');
    expect(() => uint64ToWire(-1, 'id')).toThrow(TypeError);
    expect(() => uint64ToWire(1n << 64n, 'id')).toThrow(TypeError);
  });

  it('decodes wire strings to exact bigints', () => {
    expect(fromWire('18446744073709551615')).toBe((1n << 64n) - 1n);
    expect(fromWire('7587829252578832911')).toBe(0x694d6280d047720fn);
    expect(fromWire('-1')).toBe(-1n);
    expect(fromWire(undefined)).toBe(0n);
    expect(fromWire(null)).toBe(0n);
  });
});

describe('bytes', () => {
  it('encodes strings as UTF-8 and keeps Buffers', () => {
    expect(toBuffer('é')).toEqual(Buffer.from([0xc3, 0xa9]));
    const b = Buffer.from([1, 2, 3]);
    expect(toBuffer(b)).toBe(b);
    expect(toBuffer(new Uint8Array([9, 8]))).toEqual(Buffer.from([9, 8]));
    expect(() => toBuffer(5 as never)).toThrow(TypeError);
  });

  it.each([
    [[0x61], [0x62]],
    [[0x61, 0x62], [0x61, 0x63]],
    [[0x61, 0xff], [0x62]],
    [[0x61, 0xff, 0xff], [0x62]],
    [[0x01, 0xfe, 0xff], [0x01, 0xff]],
    [[0xff], [0x00]],
    [[0xff, 0xff], [0x00]],
    [[], [0x00]],
  ])('prefixEnd(%j) = %j (etcd GetPrefixRangeEnd)', (key, end) => {
    expect(prefixEnd(Buffer.from(key))).toEqual(Buffer.from(end));
  });

  it('prefixEnd does not modify its argument', () => {
    const key = Buffer.from('ab');
    prefixEnd(key);
    expect(key.toString()).toBe('ab');
  });
});

describe('range selection', () => {
  it('resolves prefix, fromKey and explicit rangeEnd like clientv3', () => {
    expect(resolveRange('foo', { prefix: true })).toEqual({ key: Buffer.from('foo'), rangeEnd: Buffer.from('fop') });
    expect(resolveRange('', { prefix: true })).toEqual({ key: fromKeyEnd(), rangeEnd: fromKeyEnd() });
    expect(resolveRange('a', { fromKey: true })).toEqual({ key: Buffer.from('a'), rangeEnd: Buffer.from([0]) });
    expect(resolveRange('a', { rangeEnd: 'c' })).toEqual({ key: Buffer.from('a'), rangeEnd: Buffer.from('c') });
    expect(resolveRange('a', {})).toEqual({ key: Buffer.from('a'), rangeEnd: undefined });
  });

  it('rejects more than one of rangeEnd, prefix and fromKey', () => {
    expect(() => resolveRange('a', { prefix: true, fromKey: true })).toThrow(TypeError);
    expect(() => resolveRange('a', { prefix: true, rangeEnd: 'b' })).toThrow(/mutually exclusive/);
  });

  it('encodes every range option to its wire field', () => {
    expect(
      encodeRange('k', {
        prefix: true,
        limit: 3,
        revision: 7n,
        sortOrder: 'descend',
        sortTarget: 'mod',
        serializable: true,
        keysOnly: true,
        countOnly: false,
        minModRevision: '1',
        maxModRevision: 2,
        minCreateRevision: 3n,
        maxCreateRevision: 4,
      }),
    ).toEqual({
      key: Buffer.from('k'),
      range_end: Buffer.from('l'),
      limit: '3',
      revision: '7',
      sort_order: 2,
      sort_target: 3,
      serializable: true,
      keys_only: true,
      count_only: false,
      min_mod_revision: '1',
      max_mod_revision: '2',
      min_create_revision: '3',
      max_create_revision: '4',
    });
    expect(() => encodeRange('k', { sortOrder: 'sideways' as never })).toThrow(TypeError);
    expect(() => encodeRange('k', { limit: 0.5 })).toThrow(TypeError);
  });
});

describe('txn encoding', () => {
  it('puts each compare target in its oneof field with the right enums', () => {
    expect(encodeCompare(compare.version('k', '=', 0))).toEqual({ result: 0, target: 0, key: Buffer.from('k'), range_end: undefined, version: '0' });
    expect(encodeCompare(compare.create('k', '>', 5))).toMatchObject({ result: 1, target: 1, create_revision: '5' });
    expect(encodeCompare(compare.mod('k', '<', 6n))).toMatchObject({ result: 2, target: 2, mod_revision: '6' });
    expect(encodeCompare(compare.value('k', '!=', 'v'))).toMatchObject({ result: 3, target: 3, value: Buffer.from('v') });
    expect(encodeCompare(compare.lease('k', '==', 0x694d6280d047720fn))).toMatchObject({ result: 0, target: 4, lease: '7587829252578832911' });
    expect(encodeCompare(compare.modRevision('p', '>', 0, { prefix: true }))).toMatchObject({ key: Buffer.from('p'), range_end: Buffer.from('q') });
  });

  it('validates compares eagerly', () => {
    expect(() => compare.version('k', '~' as never, 0)).toThrow(TypeError);
    expect(() => compare.lease('k', '=', 2 ** 60)).toThrow(TypeError);
    expect(() => encodeTxn({ compare: [{} as never] })).toThrow(TypeError);
  });

  it('nests ops and transactions', () => {
    const t = encodeTxn({
      compare: [compare.value('a', '=', 'x')],
      success: [op.put('a', 'y', { prevKv: true }), op.txn({ success: [op.get('b')] })],
      failure: [op.delete('a', { prefix: true })],
    });
    expect(t.success[0]).toEqual({ request_put: expect.objectContaining({ key: Buffer.from('a'), value: Buffer.from('y'), prev_kv: true }) });
    expect(t.success[1]).toEqual({ request_txn: { compare: [], success: [{ request_range: expect.objectContaining({ key: Buffer.from('b') }) }], failure: [] } });
    expect(t.failure[0]).toEqual({ request_delete_range: { key: Buffer.from('a'), range_end: Buffer.from('b'), prev_kv: undefined } });
    expect(() => encodeOp({ kind: 'nope' } as never)).toThrow(TypeError);
  });
});
