/**
 * Goal: the request checks made before a request is proposed reproduce etcd 3.4's
 * api/v3rpc/key.go: checkRangeRequest/checkPutRequest/checkDeleteRequest (empty key, value or
 * lease given with ignore_value/ignore_lease), checkTxnRequest (--max-txn-ops counted as the
 * largest of compare/success/failure, nested txns get what is left, empty keys, empty ops ->
 * "key not found") and checkIntervals (no key put twice in one branch, no put inside a
 * deleted range, nested txns included; the two branches of a nested txn exclude each other).
 *
 * Method: example tests with etcd's exact error text and gRPC code. Every checkIntervals case
 * marked "etcd 3.4.23" was sent to a real etcd 3.4.23 (/v3/kv/txn) and gave the same
 * accept/reject answer; the --max-txn-ops budget cases (nested, two levels, count before keys,
 * empty op, empty compare key) were checked on etcd 3.4.23 started with --max-txn-ops 4.
 * One case where coord is deliberately stricter than etcd is marked.
 */
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnIntervals, checkTxnRequest } from '../../src/api/validate';
import { EtcdError } from '../../src/errors';
import { PbRequestOp, PbTxnRequest } from '../../src/api/pb';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const InvalidArgument = 3;

const put = (key: string, extra: Record<string, unknown> = {}): PbRequestOp => ({ request: 'request_put', request_put: { key: b(key), value: b('v'), ...extra } });
const get = (key: string): PbRequestOp => ({ request: 'request_range', request_range: { key: b(key) } });
const del = (key: string, rangeEnd?: string): PbRequestOp => ({
  request: 'request_delete_range',
  request_delete_range: { key: b(key), ...(rangeEnd === undefined ? {} : { range_end: b(rangeEnd) }) },
});
const txn = (success: PbRequestOp[], failure: PbRequestOp[] = [], compare: PbTxnRequest['compare'] = []): PbRequestOp => ({
  request: 'request_txn',
  request_txn: { compare, success, failure },
});
const cmp = (key: string) => ({ key: b(key), target: 0, result: 0, target_union: 'version' as const, version: '0' });
const n = <T>(count: number, f: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => f(i));

function expectError(fn: () => void, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(EtcdError);
  expect((thrown as EtcdError).message).toBe(message);
  expect((thrown as EtcdError).code).toBe(InvalidArgument);
}

const EMPTY_KEY = 'etcdserver: key is not provided';
const KEY_NOT_FOUND = 'etcdserver: key not found';
const VALUE_PROVIDED = 'etcdserver: value is provided';
const LEASE_PROVIDED = 'etcdserver: lease is provided';
const TOO_MANY_OPS = 'etcdserver: too many operations in txn request';
const DUPLICATE_KEY = 'etcdserver: duplicate key given in txn request';

describe('checkRangeRequest / checkDeleteRequest', () => {
  it.each([
    ['absent', undefined],
    ['empty', Buffer.alloc(0)],
  ])('%s key: "key is not provided", even with a range_end', (_name, key) => {
    expectError(() => checkRangeRequest({ key }), EMPTY_KEY);
    expectError(() => checkRangeRequest({ key, range_end: b('\x00') }), EMPTY_KEY);
    expectError(() => checkDeleteRequest({ key }), EMPTY_KEY);
    expectError(() => checkDeleteRequest({ key, range_end: b('\x00') }), EMPTY_KEY);
  });

  it('a key of one 0x00 byte is a key (how clients spell "from the start")', () => {
    expect(() => checkRangeRequest({ key: b('\x00'), range_end: b('\x00') })).not.toThrow();
    expect(() => checkDeleteRequest({ key: b('\x00'), range_end: b('\x00') })).not.toThrow();
  });
});

describe('checkPutRequest', () => {
  it('empty key', () => {
    expectError(() => checkPutRequest({ value: b('v') }), EMPTY_KEY);
    expectError(() => checkPutRequest({ key: Buffer.alloc(0), value: b('v') }), EMPTY_KEY);
  });

  it('ignore_value with a value: "value is provided"; with an absent or empty value: fine', () => {
    expectError(() => checkPutRequest({ key: b('k'), value: b('v'), ignore_value: true }), VALUE_PROVIDED);
    expect(() => checkPutRequest({ key: b('k'), ignore_value: true })).not.toThrow();
    expect(() => checkPutRequest({ key: b('k'), value: Buffer.alloc(0), ignore_value: true })).not.toThrow();
  });

  it('ignore_lease with a lease: "lease is provided"; with lease 0 or absent: fine', () => {
    expectError(() => checkPutRequest({ key: b('k'), lease: '5', ignore_lease: true }), LEASE_PROVIDED);
    expect(() => checkPutRequest({ key: b('k'), lease: '0', ignore_lease: true })).not.toThrow();
    expect(() => checkPutRequest({ key: b('k'), ignore_lease: true })).not.toThrow();
  });

  it('checks in etcd\'s order: key, then value, then lease', () => {
    expectError(() => checkPutRequest({ value: b('v'), ignore_value: true, lease: '5', ignore_lease: true }), EMPTY_KEY);
    expectError(() => checkPutRequest({ key: b('k'), value: b('v'), ignore_value: true, lease: '5', ignore_lease: true }), VALUE_PROVIDED);
  });

  it('a value and a lease without the ignore flags are fine', () => {
    expect(() => checkPutRequest({ key: b('k'), value: b('v'), lease: '5' })).not.toThrow();
  });
});

describe('checkTxnRequest: --max-txn-ops', () => {
  it.each([
    ['compare', { compare: n(4, (i) => cmp(`k${i}`)) }],
    ['success', { success: n(4, (i) => get(`k${i}`)) }],
    ['failure', { failure: n(4, (i) => get(`k${i}`)) }],
  ])('more than max ops in %s: "too many operations in txn request"', (_name, r) => {
    expectError(() => checkTxnRequest(r, 3), TOO_MANY_OPS);
  });

  it('exactly max is fine, and the limit is the largest of the three lists, not their sum', () => {
    const r = { compare: n(3, (i) => cmp(`k${i}`)), success: n(3, (i) => put(`s${i}`)), failure: n(3, (i) => put(`f${i}`)) };
    expect(() => checkTxnRequest(r, 3)).not.toThrow();
  });

  it('a nested txn gets maxTxnOps minus the outer count (etcd: checkRequestOp(u, maxTxnOps-opc))', () => {
    // max 4, outer success has 2 ops -> nested may have 2.
    expect(() => checkTxnRequest({ success: [put('a'), txn([put('b'), put('c')])] }, 4)).not.toThrow();
    expectError(() => checkTxnRequest({ success: [put('a'), txn([put('b'), put('c'), put('d')])] }, 4), TOO_MANY_OPS);
    // The outer count is the largest list: 3 compares leave 1 for the nested txn.
    expectError(() => checkTxnRequest({ compare: n(3, (i) => cmp(`k${i}`)), failure: [txn([get('a'), get('b')])] }, 4), TOO_MANY_OPS);
    // Two levels down the budget shrinks again: 4 - 1 = 3, then 3 - 1 = 2.
    expect(() => checkTxnRequest({ success: [txn([txn([get('a'), get('b')])])] }, 4)).not.toThrow();
    expectError(() => checkTxnRequest({ success: [txn([txn([get('a'), get('b'), get('c')])])] }, 4), TOO_MANY_OPS);
  });

  it('the op count is checked before the keys', () => {
    expectError(() => checkTxnRequest({ compare: [{ key: Buffer.alloc(0) }], success: n(4, (i) => get(`k${i}`)) }, 3), TOO_MANY_OPS);
  });

  it('an empty txn is fine', () => {
    expect(() => checkTxnRequest({}, 1)).not.toThrow();
  });
});

describe('checkTxnRequest: keys and ops', () => {
  it('a compare with an empty key', () => {
    expectError(() => checkTxnRequest({ compare: [cmp('a'), { key: Buffer.alloc(0), target: 0, result: 0 }] }, 128), EMPTY_KEY);
    expectError(() => checkTxnRequest({ compare: [{ target: 0 }] }, 128), EMPTY_KEY);
  });

  it.each([
    ['range', get('')],
    ['put', put('')],
    ['delete', del('')],
  ])('an empty key in a %s op, in either branch or nested', (_name, op) => {
    expectError(() => checkTxnRequest({ success: [op] }, 128), EMPTY_KEY);
    expectError(() => checkTxnRequest({ failure: [get('ok'), op] }, 128), EMPTY_KEY);
    expectError(() => checkTxnRequest({ success: [txn([], [op])] }, 128), EMPTY_KEY);
  });

  it('an empty op: "etcdserver: key not found" (etcd checkRequestOp default case)', () => {
    expectError(() => checkTxnRequest({ success: [{}] }, 128), KEY_NOT_FOUND);
    expectError(() => checkTxnRequest({ failure: [get('a'), {}] }, 128), KEY_NOT_FOUND);
    expectError(() => checkTxnRequest({ success: [txn([txn([{}])])] }, 128), KEY_NOT_FOUND);
    // The discriminator alone is still an empty op.
    expectError(() => checkTxnRequest({ success: [{ request: 'request_put' }] }, 128), KEY_NOT_FOUND);
  });

  it('put checks apply inside txns, in both branches, nested too', () => {
    expectError(() => checkTxnRequest({ success: [put('a', { ignore_value: true })] }, 128), VALUE_PROVIDED);
    expectError(() => checkTxnRequest({ failure: [put('a', { ignore_lease: true, lease: '3' })] }, 128), LEASE_PROVIDED);
    expectError(() => checkTxnRequest({ failure: [txn([put('a', { ignore_value: true })])] }, 128), VALUE_PROVIDED);
  });

  it('a well-formed txn with every kind of op passes', () => {
    const r: PbTxnRequest = {
      compare: [cmp('a'), { ...cmp('b'), range_end: b('\x00') }],
      success: [get('a'), put('b'), del('c', 'd'), txn([put('e', { ignore_value: true, value: Buffer.alloc(0) })], [get('f')], [cmp('g')])],
      failure: [put('h', { lease: '7' })],
    };
    expect(() => checkTxnRequest(r, 128)).not.toThrow();
  });
});

describe('checkTxnIntervals: one branch', () => {
  it.each<[string, PbRequestOp[], boolean]>([
    ['two puts of the same key (etcd 3.4.23)', [put('a'), put('a')], false],
    ['put then delete of the same key (etcd 3.4.23)', [put('b'), del('b')], false],
    ['delete then put of the same key', [del('b'), put('b')], false],
    ['a put inside a deleted range [a, c)', [del('a', 'c'), put('b')], false],
    ['a put at the start of a deleted range', [del('a', 'c'), put('a')], false],
    ['a put at the (exclusive) end of a deleted range', [del('a', 'c'), put('c')], true],
    ['a put before a deleted range', [del('b', 'c'), put('a')], true],
    ['a put inside a deleted prefix', [del('pre/', 'pre0'), put('pre/x')], false],
    ['a put of "a\\0" next to a deleted point "a"', [del('a'), put('a\x00')], true],
    ['two overlapping deletes (etcd 3.4.23)', [del('a', 'c'), del('b', 'd')], true],
    ['the same key deleted twice', [del('a'), del('a')], true],
    ['a range and a put of the same key', [get('a'), put('a')], true],
    ['distinct puts', [put('a'), put('b'), put('a\x00')], true],
  ])('%s -> %s', (_name, ops, ok) => {
    for (const r of [{ success: ops }, { failure: ops }]) {
      if (ok) expect(() => checkTxnIntervals(r)).not.toThrow();
      else expectError(() => checkTxnIntervals(r), DUPLICATE_KEY);
    }
  });

  it('the same key in success and in failure is fine: only one branch runs', () => {
    expect(() => checkTxnIntervals({ success: [put('a')], failure: [put('a'), put('b')] })).not.toThrow();
    expect(() => checkTxnIntervals({ success: [del('a', 'z')], failure: [put('b')] })).not.toThrow();
  });
});

describe('checkTxnIntervals: nested txns', () => {
  it.each<[string, PbRequestOp[], boolean]>([
    ['nested then-put collides with an outer put', [put('b'), txn([put('b')])], false],
    ['nested else-put collides with an outer put (etcd 3.4.23)', [put('b'), txn([], [put('b')])], false],
    ['the SAME key put in both branches of a nested txn (etcd 3.4.23)', [txn([put('b')], [put('b')])], true],
    ['...and that key is also put by the outer txn', [txn([put('b')], [put('b')]), put('b')], false],
    ['nested then-put, sibling nested else-put of the same key (etcd 3.4.23)', [txn([put('b')]), txn([], [put('b')])], false],
    ['nested then-put, sibling nested then-put of the same key', [txn([put('b')]), txn([put('b')])], false],
    ['a nested delete and an outer put (etcd 3.4.23)', [txn([del('b')]), put('b')], false],
    ['a nested else-delete and an outer put', [txn([], [del('a', 'c')]), put('b')], false],
    ['a nested then-put inside an outer deleted range (etcd 3.4.23)', [del('a', 'c'), txn([put('b')])], false],
    ['a nested else-put inside an outer deleted range', [del('a', 'c'), txn([], [put('b')])], false],
    ['nested then-delete and else-put of the same key (etcd 3.4.23)', [txn([del('b')], [put('b')])], true],
    ['a put two levels down colliding with an outer put', [put('x'), txn([txn([], [put('x')])])], false],
    ['a put two levels down inside an outer delete', [del('x', 'y'), txn([txn([put('xx')])])], false],
    ['distinct keys at every level', [put('a'), txn([put('b'), txn([put('c')], [put('c')])], [put('d')])], true],
  ])('%s -> %s', (_name, ops, ok) => {
    if (ok) expect(() => checkTxnIntervals({ success: ops })).not.toThrow();
    else expectError(() => checkTxnIntervals({ success: ops }), DUPLICATE_KEY);
  });

  it('matches etcd 3.4 where its checkIntervals is order-dependent (etcd issue #16380): a nested put before a sibling nested delete of the same key is accepted', () => {
    // etcd 3.4 checks a nested txn's puts against the deletes collected so far, so a later
    // sibling's delete is not seen. etcd 3.4.23 accepts the first txn and rejects the second.
    expect(() => checkTxnIntervals({ success: [txn([put('b')]), txn([del('b')])] })).not.toThrow();
    expectError(() => checkTxnIntervals({ success: [txn([del('b')]), txn([put('b')])] }), DUPLICATE_KEY);
  });
});

describe('checkTxnIntervals: from-key deletes (coord deliberately stricter than etcd 3.4)', () => {
  // etcd 3.4's checkIntervals builds the interval [key, "\x00") for a range_end of "\0", which
  // is empty, so `delete a --from-key` + `put b` in one branch is ACCEPTED by etcd 3.4.23 (see
  // etcd issues #22445 / PR #22395, still open upstream). coord treats "\0" as "every key >=
  // key" here as everywhere else and rejects it, which is what the duplicate-key rule intends.
  // If exact etcd 3.4 parity is wanted instead, this test is the one to flip.
  it('a put inside a from-key delete is a duplicate key', () => {
    expectError(() => checkTxnIntervals({ success: [del('a', '\x00'), put('b')] }), DUPLICATE_KEY);
    expectError(() => checkTxnIntervals({ success: [del('\x00', '\x00'), put('\xff')] }), DUPLICATE_KEY);
    expectError(() => checkTxnIntervals({ success: [txn([del('a', '\x00')]), put('zzz')] }), DUPLICATE_KEY);
  });

  it('a put before the start of a from-key delete is fine', () => {
    expect(() => checkTxnIntervals({ success: [del('m', '\x00'), put('a')] })).not.toThrow();
  });
});
