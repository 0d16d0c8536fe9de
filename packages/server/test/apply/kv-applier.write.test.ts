/**
 * Goal: KvApplier.put and KvApplier.deleteRange behave as etcd 3.4's applierV3backend.Put and
 * DeleteRange (etcdserver/apply.go): prev_kv, ignore_value, ignore_lease ("key not found" when
 * the key is missing), the lease check ("requested lease not found"), lease attach/detach,
 * deleted counts and prev_kvs, and no revision bump when a delete deletes nothing.
 *
 * Method: example tests on a fresh store; the error cases also check that nothing changed
 * (revision, every read, hash). Where it mattered, answers were confirmed on etcd 3.4.23.
 */
import { EventType } from '../../src/mvcc/store';
import { Code, FakeLeases, b, delReq, expectEtcdError, observe, pkv, putReq, rangeReq, setup } from './helpers';

describe('put', () => {
  it('creates a key at the next revision; the header carries it', () => {
    const { kv, store } = setup();
    const { response, events } = kv.put(putReq('k', 'v'));
    expect(response).toEqual({ header: { revision: '2' } });
    expect(store.rev).toBe(2n);
    expect(kv.range(rangeReq('k')).kvs).toEqual([pkv('k', 2, 2, 1, 'v')]);
    expect(events).toHaveLength(1);
    expect(events[0].type).toBe(EventType.Put);
    expect(events[0].prevKv).toBeUndefined();
  });

  it('an absent value is the empty value (proto3 bytes)', () => {
    const { kv } = setup();
    kv.put(putReq('k', undefined));
    expect(kv.range(rangeReq('k')).kvs).toEqual([pkv('k', 2, 2, 1, '')]);
  });

  it('prev_kv returns the previous kv when there was one, and nothing otherwise', () => {
    const { kv } = setup();
    expect(kv.put(putReq('k', 'v1', { prev_kv: true })).response.prev_kv).toBeUndefined();
    expect(kv.put(putReq('k', 'v2', { prev_kv: true })).response).toEqual({ header: { revision: '3' }, prev_kv: pkv('k', 2, 2, 1, 'v1') });
    // Without the flag the field is absent.
    expect('prev_kv' in kv.put(putReq('k', 'v3')).response).toBe(false);
  });

  it('overwriting keeps create_revision and bumps version and mod_revision', () => {
    const { kv } = setup();
    kv.put(putReq('k', 'v1'));
    kv.put(putReq('other', 'x'));
    kv.put(putReq('k', 'v2'));
    expect(kv.range(rangeReq('k')).kvs).toEqual([pkv('k', 2, 4, 2, 'v2')]);
  });

  describe('ignore_value (apply.go Put: value taken from the existing key)', () => {
    it('keeps the value, bumps version and mod_revision, applies the new lease', () => {
      const leases = new FakeLeases([7n]);
      const { kv } = setup(leases);
      kv.put(putReq('k', 'keep'));
      const { response } = kv.put(putReq('k', undefined, { ignore_value: true, lease: '7', prev_kv: true }));
      expect(response).toEqual({ header: { revision: '3' }, prev_kv: pkv('k', 2, 2, 1, 'keep') });
      expect(kv.range(rangeReq('k')).kvs).toEqual([pkv('k', 2, 3, 2, 'keep', 7)]);
      expect(leases.attached).toEqual([['k', 0n, 7n]]);
    });

    it('on a missing key: "etcdserver: key not found", nothing written', () => {
      const { kv, store } = setup();
      kv.put(putReq('other', 'x'));
      const before = observe(store);
      expectEtcdError(() => kv.put(putReq('k', undefined, { ignore_value: true })), 'etcdserver: key not found', Code.InvalidArgument);
      expect(observe(store)).toEqual(before);
    });

    it('on a deleted key: "etcdserver: key not found"', () => {
      const { kv } = setup();
      kv.put(putReq('k', 'x'));
      kv.deleteRange(delReq('k'));
      expectEtcdError(() => kv.put(putReq('k', undefined, { ignore_value: true })), 'etcdserver: key not found', Code.InvalidArgument);
    });
  });

  describe('ignore_lease (apply.go Put: lease taken from the existing key)', () => {
    it('keeps the lease and takes the new value; the lessor hears nothing new', () => {
      const leases = new FakeLeases([5n]);
      const { kv } = setup(leases);
      kv.put(putReq('k', 'v1', { lease: '5' }));
      kv.put(putReq('k', 'v2', { ignore_lease: true }));
      expect(kv.range(rangeReq('k')).kvs).toEqual([pkv('k', 2, 3, 2, 'v2', 5)]);
      expect(leases.attached).toEqual([['k', 0n, 5n]]);
    });

    it('ignore_value and ignore_lease together rewrite the same value and lease', () => {
      const leases = new FakeLeases([5n]);
      const { kv } = setup(leases);
      kv.put(putReq('k', 'v1', { lease: '5' }));
      kv.put(putReq('k', undefined, { ignore_lease: true, ignore_value: true }));
      expect(kv.range(rangeReq('k')).kvs).toEqual([pkv('k', 2, 3, 2, 'v1', 5)]);
    });

    it('on a missing key: "etcdserver: key not found", nothing written', () => {
      const { kv, store } = setup();
      const before = observe(store);
      expectEtcdError(() => kv.put(putReq('k', 'v', { ignore_lease: true })), 'etcdserver: key not found', Code.InvalidArgument);
      expect(observe(store)).toEqual(before);
    });
  });

  describe('leases', () => {
    it('a lease the lessor does not know: "etcdserver: requested lease not found" (NotFound), nothing written', () => {
      const { kv, store } = setup(); // NO_LEASES
      kv.put(putReq('k', 'v'));
      const before = observe(store);
      expectEtcdError(() => kv.put(putReq('k', 'v2', { lease: '42' })), 'etcdserver: requested lease not found', Code.NotFound);
      expect(observe(store)).toEqual(before);
    });

    it('lease 0 means no lease and is never looked up', () => {
      const { kv } = setup();
      kv.put(putReq('k', 'v', { lease: '0' }));
      expect(kv.range(rangeReq('k')).kvs[0].lease).toBe('0');
    });

    it('for a plain Put, the lease is checked before ignore_value (apply.go Put; etcd 3.4.23 answers "requested lease not found")', () => {
      const { kv } = setup();
      expectEtcdError(() => kv.put(putReq('missing', undefined, { ignore_value: true, lease: '12345' })), 'etcdserver: requested lease not found', Code.NotFound);
    });

    it('attach is told of every change of a key\'s lease, including a delete', () => {
      const leases = new FakeLeases([5n, 6n]);
      const { kv } = setup(leases);
      kv.put(putReq('k', 'v', { lease: '5' }));
      kv.put(putReq('k', 'v', { lease: '5' })); // unchanged: no call
      kv.put(putReq('k', 'v', { lease: '6' }));
      kv.put(putReq('k', 'v'));
      kv.put(putReq('k', 'v', { lease: '6' }));
      kv.put(putReq('plain', 'v'));
      kv.deleteRange(delReq('a', { range_end: b('\x00') }));
      expect(leases.attached).toEqual([
        ['k', 0n, 5n],
        ['k', 5n, 6n],
        ['k', 6n, 0n],
        ['k', 0n, 6n],
        ['k', 6n, 0n],
      ]);
    });
  });
});

describe('deleteRange', () => {
  const abc = () => {
    const t = setup();
    t.kv.put(putReq('a', '1')); // 2
    t.kv.put(putReq('b', '2')); // 3
    t.kv.put(putReq('c', '3')); // 4
    return t;
  };

  it('a single key: deleted 1, next revision, no prev_kvs unless asked', () => {
    const { kv, store } = abc();
    const { response, events } = kv.deleteRange(delReq('b'));
    expect(response).toEqual({ header: { revision: '5' }, deleted: '1', prev_kvs: [] });
    expect(store.rev).toBe(5n);
    expect(events.map((e) => [e.type, e.kv.key.toString(), e.kv.modRevision])).toEqual([[EventType.Delete, 'b', 5n]]);
    expect(kv.range(rangeReq('b')).count).toBe('0');
  });

  it('prev_kv returns every deleted kv as it was', () => {
    const { kv } = abc();
    const { response } = kv.deleteRange(delReq('a', { range_end: b('c'), prev_kv: true }));
    expect(response).toEqual({ header: { revision: '5' }, deleted: '2', prev_kvs: [pkv('a', 2, 2, 1, '1'), pkv('b', 3, 3, 1, '2')] });
  });

  it('from-key ("\\0") deletes every key >= key, in one revision', () => {
    const { kv } = abc();
    const { response, events } = kv.deleteRange(delReq('b', { range_end: b('\x00') }));
    expect(response.deleted).toBe('2');
    expect(response.header.revision).toBe('5');
    expect(events.map((e) => e.kv.modRevision)).toEqual([5n, 5n]);
    expect(kv.range(rangeReq('\x00', { range_end: b('\x00') })).kvs.map((k) => k.key.toString())).toEqual(['a']);
  });

  it('deleting nothing: deleted 0, header at the current revision, no revision taken, no events (etcd 3.4.23 agrees)', () => {
    const { kv, store } = abc();
    const before = observe(store);
    const { response, events } = kv.deleteRange(delReq('zz', { prev_kv: true }));
    expect(response).toEqual({ header: { revision: '4' }, deleted: '0', prev_kvs: [] });
    expect(events).toEqual([]);
    expect(observe(store)).toEqual(before);
    // The next write takes 5.
    expect(kv.put(putReq('d', '4')).response.header.revision).toBe('5');
  });

  it('deleting an already deleted key deletes nothing', () => {
    const { kv } = abc();
    kv.deleteRange(delReq('a'));
    expect(kv.deleteRange(delReq('a')).response.deleted).toBe('0');
  });

  it('re-creating a deleted key starts a new generation', () => {
    const { kv } = abc();
    kv.deleteRange(delReq('a')); // 5
    kv.put(putReq('a', 'again')); // 6
    expect(kv.range(rangeReq('a')).kvs).toEqual([pkv('a', 6, 6, 1, 'again')]);
    // History is still there.
    expect(kv.range(rangeReq('a', { revision: '4' })).kvs).toEqual([pkv('a', 2, 2, 1, '1')]);
    expect(kv.range(rangeReq('a', { revision: '5' })).kvs).toEqual([]);
  });
});
