/**
 * Goal: MvccStore keeps etcd 3.4's multi-version semantics (mvcc/kvstore.go, kvstore_txn.go,
 * key_index.go): one revision counter starting at 1, one revision per write request shared by
 * all its changes, key generations with create_revision/mod_revision/version, tombstones,
 * historical reads, compaction as keyIndex.compact does it, and a snapshot format that keeps
 * every read.
 *
 * Method: hand-built histories with the expected answer at each revision written out; each
 * test cites the etcd rule. The randomised comparison against a naive model is in
 * store.model.test.ts.
 */
import { MvccCompactedError, MvccFutureRevError } from '../../src/errors';
import { keyRange, prefixEnd } from '../../src/mvcc/key-range';
import { EventType, MvccStore } from '../../src/mvcc/store';
import { all, b, del, everyRevision, from, one, plain, put, read, span, write } from './helpers';

const kv = (key: string, create: number, mod: number, version: number, value: string, lease = 0) => ({
  key,
  create: BigInt(create),
  mod: BigInt(mod),
  version: BigInt(version),
  value,
  lease: BigInt(lease),
});

describe('revisions', () => {
  it('a new store is at revision 1, empty, never compacted (etcd: store starts at currentRev 1)', () => {
    const s = new MvccStore();
    expect(s.rev).toBe(1n);
    expect(s.compactedRev).toBe(-1n) // etcd: compactMainRev starts at -1, so `compact 0` succeeds once;
    expect(s.keyCount).toBe(0);
    expect(read(s, all, 1n)).toEqual({ kvs: [], count: 0 });
  });

  it('each write request takes the next revision', () => {
    const s = new MvccStore();
    expect(put(s, 'a', '1').rev).toBe(2n);
    expect(put(s, 'b', '1').rev).toBe(3n);
    expect(del(s, one('a')).rev).toBe(4n);
    expect(s.rev).toBe(4n);
  });

  it('all changes of one request share its revision, in request order (etcd: storeTxnWrite, sub-revisions)', () => {
    const s = new MvccStore();
    put(s, 'c', 'old');
    expect(s.beginWrite()).toBe(3n);
    s.put('a', b('1'), 0n);
    s.put('b', b('1'), 0n);
    s.deleteRange(one('c'));
    const { rev, events } = s.endWrite();
    expect(rev).toBe(3n);
    expect(events.map((e) => [e.type, e.kv.key.toString(), e.kv.modRevision])).toEqual([
      [EventType.Put, 'a', 3n],
      [EventType.Put, 'b', 3n],
      [EventType.Delete, 'c', 3n],
    ]);
    expect(read(s, all, 3n).kvs).toEqual([kv('a', 3, 3, 1, '1'), kv('b', 3, 3, 1, '1')]);
  });

  it('a write request that changes nothing does not take a revision (etcd: txn.End with no changes)', () => {
    const s = new MvccStore();
    put(s, 'a', '1');
    const { rev, events } = del(s, one('zzz'));
    expect(rev).toBe(2n);
    expect(events).toEqual([]);
    expect(s.rev).toBe(2n);
    // The next write still takes 3, not 4.
    expect(put(s, 'b', '1').rev).toBe(3n);
  });

  it('one write request at a time (assertion)', () => {
    const s = new MvccStore();
    s.beginWrite();
    expect(() => s.beginWrite()).toThrow(/assertion failed/);
  });

  it('put, deleteRange and writeReadRev outside a write request are assertion failures', () => {
    const s = new MvccStore();
    expect(() => s.put('a', b('1'), 0n)).toThrow(/assertion failed/);
    expect(() => s.deleteRange(one('a'))).toThrow(/assertion failed/);
    expect(() => s.writeReadRev).toThrow(/assertion failed/);
    expect(() => s.endWrite()).toThrow(/assertion failed/);
  });
});

describe('key generations (etcd key_index.go: generations, version from 1, tombstone ends one)', () => {
  // rev 2: put a=x   rev 3: put a=y   rev 4: delete a   rev 5: put a=z   rev 6: put a=w
  const build = () => {
    const s = new MvccStore();
    put(s, 'a', 'x');
    put(s, 'a', 'y');
    del(s, one('a'));
    put(s, 'a', 'z', 7n);
    put(s, 'a', 'w');
    return s;
  };

  it('create_revision stays, mod_revision and version advance within a generation', () => {
    const s = build();
    expect(read(s, one('a'), 2n).kvs).toEqual([kv('a', 2, 2, 1, 'x')]);
    expect(read(s, one('a'), 3n).kvs).toEqual([kv('a', 2, 3, 2, 'y')]);
  });

  it('a tombstone hides the key at its revision and after', () => {
    const s = build();
    expect(read(s, one('a'), 4n)).toEqual({ kvs: [], count: 0 });
  });

  it('re-creating starts a new generation: version 1, create_revision = the put revision', () => {
    const s = build();
    expect(read(s, one('a'), 5n).kvs).toEqual([kv('a', 5, 5, 1, 'z', 7)]);
    expect(read(s, one('a'), 6n).kvs).toEqual([kv('a', 5, 6, 2, 'w', 0)]);
    expect(plain(s.get('a')!)).toEqual(kv('a', 5, 6, 2, 'w'));
  });

  it('revision 1 (before any write) sees nothing', () => {
    expect(read(build(), all, 1n)).toEqual({ kvs: [], count: 0 });
  });

  it('put events carry prev_kv; delete events have etcd\'s shape (key + mod_revision, rest zero)', () => {
    const s = new MvccStore();
    put(s, 'a', 'x', 3n);
    const p = put(s, 'a', 'y');
    expect(p.events).toHaveLength(1);
    expect(p.events[0].type).toBe(EventType.Put);
    expect(plain(p.events[0].kv)).toEqual(kv('a', 2, 3, 2, 'y'));
    expect(plain(p.events[0].prevKv!)).toEqual(kv('a', 2, 2, 1, 'x', 3));
    const d = del(s, one('a'));
    expect(d.events).toHaveLength(1);
    expect(d.events[0].type).toBe(EventType.Delete);
    expect(plain(d.events[0].kv)).toEqual(kv('a', 0, 4, 0, ''));
    expect(plain(d.events[0].prevKv!)).toEqual(kv('a', 2, 3, 2, 'y'));
    // A put that creates a key has no prev_kv.
    expect(put(s, 'a', 'z').events[0].prevKv).toBeUndefined();
  });

  it('deleteRange returns the deleted (previous) kvs, in key order', () => {
    const s = new MvccStore();
    put(s, 'b', '2');
    put(s, 'a', '1');
    put(s, 'c', '3');
    let deleted: ReturnType<MvccStore['deleteRange']> = [];
    write(s, () => {
      deleted = s.deleteRange(span('a', 'c'));
    });
    expect(deleted.map(plain)).toEqual([kv('a', 3, 3, 1, '1'), kv('b', 2, 2, 1, '2')]);
  });

  it('deleting an already deleted key in the same request deletes nothing the second time', () => {
    const s = new MvccStore();
    put(s, 'a', '1');
    let second: ReturnType<MvccStore['deleteRange']> = [];
    const { events } = write(s, () => {
      s.deleteRange(one('a'));
      second = s.deleteRange(from('a'));
    });
    expect(second).toEqual([]);
    expect(events).toHaveLength(1);
  });
});

describe('historical reads at every revision', () => {
  it('answers the whole key space at each revision', () => {
    const s = new MvccStore();
    put(s, 'b', 'b1'); // 2
    put(s, 'a', 'a1'); // 3
    write(s, () => {
      // 4
      s.put('b', b('b2'), 0n);
      s.put('c', b('c1'), 0n);
    });
    del(s, span('a', 'c')); // 5: deletes a and b
    put(s, 'a', 'a2'); // 6
    const expected = new Map([
      [1n, []],
      [2n, [kv('b', 2, 2, 1, 'b1')]],
      [3n, [kv('a', 3, 3, 1, 'a1'), kv('b', 2, 2, 1, 'b1')]],
      [4n, [kv('a', 3, 3, 1, 'a1'), kv('b', 2, 4, 2, 'b2'), kv('c', 4, 4, 1, 'c1')]],
      [5n, [kv('c', 4, 4, 1, 'c1')]],
      [6n, [kv('a', 6, 6, 1, 'a2'), kv('c', 4, 4, 1, 'c1')]],
    ]);
    expect(everyRevision(s, 1n)).toEqual(expected);
  });
});

describe('range semantics (RangeRequest key/range_end)', () => {
  const keys = ['\x00', 'a', 'a\x00', 'ab', 'abc', 'b', 'c', '\xff', '\xff\xff'];
  const build = () => {
    const s = new MvccStore();
    write(s, () => keys.forEach((k) => s.put(k, b('v' + k), 0n)));
    return s;
  };
  const keysOf = (s: MvccStore, r: Parameters<MvccStore['range']>[0]) => s.range(r, s.rev).kvs.map((x) => x.key.toString('latin1'));

  it('single key: exact match only', () => {
    const s = build();
    expect(keysOf(s, one('a'))).toEqual(['a']);
    expect(keysOf(s, one('a\x00'))).toEqual(['a\x00']);
    expect(keysOf(s, one('zz'))).toEqual([]);
  });

  it('[key, range_end) is half-open and in byte order', () => {
    const s = build();
    expect(keysOf(s, span('a', 'b'))).toEqual(['a', 'a\x00', 'ab', 'abc']);
    expect(keysOf(s, span('a\x00', 'abc'))).toEqual(['a\x00', 'ab']);
  });

  it('range_end "\\0" (end "") is every key >= key, including 0xff keys', () => {
    const s = build();
    expect(keysOf(s, from('b'))).toEqual(['b', 'c', '\xff', '\xff\xff']);
    expect(keysOf(s, from('\x00'))).toEqual(keys);
    expect(keysOf(s, from(''))).toEqual(keys);
  });

  it('a prefix range [p, prefixEnd(p)) holds exactly the keys with that prefix', () => {
    const s = build();
    const prefix = (p: string) => keyRange(b(p), prefixEnd(b(p)));
    expect(keysOf(s, prefix('a'))).toEqual(keys.filter((k) => k.startsWith('a')));
    expect(keysOf(s, prefix('ab'))).toEqual(['ab', 'abc']);
    // An all-0xff prefix has no finite end: GetPrefixRangeEnd gives "\0", i.e. from-key.
    expect(keysOf(s, prefix('\xff'))).toEqual(['\xff', '\xff\xff']);
  });

  it('an inverted range (end <= start) is empty', () => {
    const s = build();
    expect(keysOf(s, span('c', 'a'))).toEqual([]);
    expect(keysOf(s, span('b', 'b'))).toEqual([]);
  });

  it('limit returns the first keys in key order; count is every key in the range (etcd rangeKeys: Count = len(revpairs))', () => {
    const s = build();
    const r = s.range(span('a', 'b'), s.rev, { limit: 2 });
    expect(r.kvs.map((x) => x.key.toString('latin1'))).toEqual(['a', 'a\x00']);
    expect(r.count).toBe(4);
    expect(s.range(span('a', 'b'), s.rev, { limit: 10 }).kvs).toHaveLength(4);
    expect(s.range(span('a', 'b'), s.rev, { limit: 0 }).kvs).toHaveLength(4);
  });

  it('countOnly returns the count and no kvs', () => {
    const s = build();
    expect(s.range(from(''), s.rev, { countOnly: true })).toEqual({ kvs: [], count: keys.length });
  });

  it('count ignores keys deleted at the read revision', () => {
    const s = build();
    del(s, one('ab'));
    expect(s.range(span('a', 'b'), s.rev).count).toBe(3);
    expect(s.range(span('a', 'b'), s.rev - 1n).count).toBe(4);
  });
});

describe('resolveReadRevision (etcd rangeKeys: ErrFutureRev, ErrCompacted)', () => {
  const build = () => {
    const s = new MvccStore();
    for (let i = 0; i < 5; i++) put(s, 'k', String(i)); // revisions 2..6
    return s;
  };

  it('0 and negative mean the current revision', () => {
    const s = build();
    expect(s.resolveReadRevision(0n)).toBe(6n);
    expect(s.resolveReadRevision(-3n)).toBe(6n);
  });

  it('a revision after the current one is a future revision', () => {
    const s = build();
    expect(() => s.resolveReadRevision(7n)).toThrow(MvccFutureRevError);
    expect(() => s.resolveReadRevision(7n)).toThrow('etcdserver: mvcc: required revision is a future revision');
  });

  it('below the compacted revision is compacted; at it is fine', () => {
    const s = build();
    s.compact(4n);
    expect(() => s.resolveReadRevision(3n)).toThrow(MvccCompactedError);
    expect(() => s.resolveReadRevision(3n)).toThrow('etcdserver: mvcc: required revision has been compacted');
    expect(s.resolveReadRevision(4n)).toBe(4n);
    expect(read(s, one('k'), 4n).kvs).toEqual([kv('k', 2, 4, 3, '2')]);
  });
});

describe('reads inside a write request (etcd storeTxnWrite.Range: rev = beginRev, +1 once changed)', () => {
  it('sees the request\'s earlier changes at writeReadRev; readers at s.rev do not', () => {
    const s = new MvccStore();
    put(s, 'a', '1');
    s.beginWrite();
    expect(s.writeReadRev).toBe(2n);
    s.put('a', b('2'), 0n);
    expect(s.writeReadRev).toBe(3n);
    expect(read(s, one('a'), s.writeReadRev).kvs).toEqual([kv('a', 2, 3, 2, '2')]);
    expect(plain(s.get('a')!)).toEqual(kv('a', 2, 3, 2, '2'));
    // The committed view is unchanged until endWrite.
    expect(s.rev).toBe(2n);
    expect(read(s, one('a'), s.rev).kvs).toEqual([kv('a', 2, 2, 1, '1')]);
    s.deleteRange(one('a'));
    expect(s.get('a')).toBeUndefined();
    s.endWrite();
    expect(s.rev).toBe(3n);
  });

  it('a delete then a put of the same key in one request starts a new generation at that revision', () => {
    const s = new MvccStore();
    put(s, 'a', '1'); // 2
    put(s, 'a', '2'); // 3
    write(s, () => {
      s.deleteRange(one('a'));
      s.put('a', b('3'), 0n);
    }); // 4
    expect(read(s, one('a'), 4n).kvs).toEqual([kv('a', 4, 4, 1, '3')]);
  });
});

describe('compaction (etcd keyIndex.compact)', () => {
  // a: put@2, put@3, put@5          -> at C=4 keeps a@3 (the version visible at 4) and a@5
  // b: put@2, delete@4               -> tombstone at C: whole generation dropped, key gone
  // c: put@2, delete@5               -> tombstone after C: c@2 and the tombstone kept
  // d: put@3, delete@3-same-request? -> see dedicated test
  // e: put@6                         -> after C, untouched
  const build = () => {
    const s = new MvccStore();
    write(s, () => {
      s.put('a', b('a1'), 0n);
      s.put('b', b('b1'), 0n);
      s.put('c', b('c1'), 0n);
    }); // 2
    put(s, 'a', 'a2'); // 3
    del(s, one('b')); // 4
    write(s, () => {
      s.put('a', b('a3'), 0n);
      s.deleteRange(one('c'));
    }); // 5
    put(s, 'e', 'e1'); // 6
    return s;
  };

  it('every read at or after the compacted revision is unchanged', () => {
    const s = build();
    const before = everyRevision(s, 4n);
    s.compact(4n);
    expect(s.compactedRev).toBe(4n);
    expect(everyRevision(s, 4n)).toEqual(before);
  });

  it('reads below the compacted revision are refused by resolveReadRevision', () => {
    const s = build();
    s.compact(4n);
    for (const rev of [1n, 2n, 3n]) expect(() => s.resolveReadRevision(rev)).toThrow(MvccCompactedError);
  });

  it('a key whose tombstone is at or before C disappears; one deleted after C stays', () => {
    const s = build();
    expect(s.keyCount).toBe(4); // a b c e
    s.compact(4n);
    expect(s.keyCount).toBe(3); // b gone
    expect(read(s, one('c'), 4n).kvs).toEqual([kv('c', 2, 2, 1, 'c1')]);
    s.compact(5n);
    expect(s.keyCount).toBe(2); // c gone: its tombstone is at 5
  });

  it('superseded versions are dropped (less is held)', () => {
    const s = build();
    const size = s.sizeBytes();
    s.compact(4n);
    expect(s.sizeBytes()).toBeLessThan(size);
    const after4 = s.sizeBytes();
    s.compact(6n);
    expect(s.sizeBytes()).toBeLessThan(after4);
    // Nothing left but the live versions: a@5 and e@6.
    expect(read(s, all, 6n).kvs).toEqual([kv('a', 2, 5, 3, 'a3'), kv('e', 6, 6, 1, 'e1')]);
    expect(s.keyCount).toBe(2);
  });

  it('a live version written exactly at C is kept and readable at C', () => {
    const s = new MvccStore();
    put(s, 'a', '1'); // 2
    put(s, 'a', '2'); // 3
    s.compact(3n);
    expect(read(s, one('a'), 3n).kvs).toEqual([kv('a', 2, 3, 2, '2')]);
  });

  it('a key deleted and re-created in the same revision keeps its live value (cf. etcd issue #22376)', () => {
    const s = new MvccStore();
    put(s, 'a', '1'); // 2
    write(s, () => {
      s.deleteRange(from('a'));
      s.put('a', b('2'), 0n);
    }); // 3
    s.compact(3n);
    expect(s.keyCount).toBe(1);
    expect(read(s, one('a'), 3n).kvs).toEqual([kv('a', 3, 3, 1, '2')]);
    // And the store still works after more writes.
    put(s, 'a', '3');
    expect(plain(s.get('a')!)).toEqual(kv('a', 3, 4, 2, '3'));
  });

  it('compacting at the current revision after deleting everything leaves an empty store that keeps counting', () => {
    const s = new MvccStore();
    put(s, 'a', '1');
    put(s, 'b', '1');
    del(s, from(''));
    s.compact(s.rev);
    expect(s.keyCount).toBe(0);
    expect(s.sizeBytes()).toBe(0);
    expect(put(s, 'a', '2').rev).toBe(5n);
    expect(read(s, one('a'), 5n).kvs).toEqual([kv('a', 5, 5, 1, '2')]);
  });

  it('compaction must move forward and not pass the current revision (assertions; callers return etcd errors)', () => {
    const s = build();
    s.compact(4n);
    expect(() => s.compact(4n)).toThrow(/assertion failed/);
    expect(() => s.compact(3n)).toThrow(/assertion failed/);
    expect(() => s.compact(7n)).toThrow(/assertion failed/);
  });
});

describe('serialize / restore', () => {
  const build = () => {
    const s = new MvccStore();
    write(s, () => {
      s.put('\x00', b(''), 0n);
      s.put('\xff\xfe', b('\x00\xff'), 5n);
      s.put('a', b('1'), 0n);
    }); // 2
    put(s, 'a', '2', 9n); // 3
    del(s, one('\x00')); // 4
    put(s, 'b', 'x'.repeat(1000)); // 5
    put(s, 'a', '3'); // 6
    del(s, span('b', 'c')); // 7
    put(s, '\x00', 'back'); // 8
    return s;
  };

  it('a restored store answers every read at every revision exactly as the original', () => {
    const s = build();
    const r = MvccStore.restore(s.serialize());
    expect(r.rev).toBe(s.rev);
    expect(r.compactedRev).toBe(s.compactedRev);
    expect(r.keyCount).toBe(s.keyCount);
    expect(everyRevision(r, 1n)).toEqual(everyRevision(s, 1n));
    expect(r.hashKV(r.rev)).toBe(s.hashKV(s.rev));
    expect(r.keysWithLease(5n)).toEqual(s.keysWithLease(5n));
  });

  it('keeps the compacted revision and only what compaction retained', () => {
    const s = build();
    s.compact(5n);
    const r = MvccStore.restore(s.serialize());
    expect(r.compactedRev).toBe(5n);
    expect(() => r.resolveReadRevision(4n)).toThrow(MvccCompactedError);
    expect(everyRevision(r, 5n)).toEqual(everyRevision(s, 5n));
    expect(r.sizeBytes()).toBe(s.sizeBytes());
  });

  it('a restored store continues the same history (revisions, generations, sub-revisions)', () => {
    const s = build();
    const r = MvccStore.restore(s.serialize());
    for (const st of [s, r]) {
      write(st, () => {
        st.put('a', b('4'), 0n);
        st.put('b', b('new'), 0n);
      });
    }
    expect(everyRevision(r, 1n)).toEqual(everyRevision(s, 1n));
    expect(r.hashKV(r.rev)).toBe(s.hashKV(s.rev));
  });

  it('serializing is deterministic and restore∘serialize is the identity on bytes', () => {
    const s = build();
    const snap = s.serialize();
    expect(build().serialize().equals(snap)).toBe(true);
    expect(MvccStore.restore(snap).serialize().equals(snap)).toBe(true);
  });

  it('an empty store round-trips', () => {
    const r = MvccStore.restore(new MvccStore().serialize());
    expect(r.rev).toBe(1n);
    expect(r.keyCount).toBe(0);
  });

  it('rejects a snapshot with a bad magic or trailing bytes (assertions)', () => {
    const snap = build().serialize();
    const badMagic = Buffer.from(snap);
    badMagic.write('XXXXXXXX', 0, 'latin1');
    expect(() => MvccStore.restore(badMagic)).toThrow(/assertion failed: mvcc snapshot magic/);
    expect(() => MvccStore.restore(Buffer.concat([snap, Buffer.from([0])]))).toThrow(/assertion failed/);
  });

  it('restore takes ownership of the snapshot buffer: values are views into it, not copies', () => {
    // Recovery reads the snapshot file once and keeps its bytes as the values' storage
    // (no per-value copy on restart); the caller must not reuse the buffer.
    const s = build();
    const snap = s.serialize();
    const r = MvccStore.restore(snap);
    expect(everyRevision(r, 1n)).toEqual(everyRevision(s, 1n));
    const kv = r.get(r.range({ start: '', end: '' }, r.rev).kvs[0].key.toString('latin1'));
    expect(kv && kv.value.length > 0 ? kv.value.buffer : snap.buffer).toBe(snap.buffer);
  });
});

describe('hashKV', () => {
  const history = (s: MvccStore) => {
    put(s, 'a', '1');
    write(s, () => {
      s.put('b', b('2'), 3n);
      s.put('c', b('3'), 0n);
    });
    del(s, one('a'));
  };

  it('equal histories give equal hashes at every revision', () => {
    const x = new MvccStore();
    const y = new MvccStore();
    history(x);
    history(y);
    for (let rev = 1n; rev <= x.rev; rev++) expect(x.hashKV(rev)).toBe(y.hashKV(rev));
  });

  it('hashKV(rev) ignores versions after rev', () => {
    const x = new MvccStore();
    const y = new MvccStore();
    history(x);
    history(y);
    put(y, 'z', 'later');
    expect(y.hashKV(x.rev)).toBe(x.hashKV(x.rev));
    expect(y.hashKV(y.rev)).not.toBe(x.hashKV(x.rev));
  });

  it('any change changes the hash: another write, another value, another lease, another request split', () => {
    const base = new MvccStore();
    history(base);
    const h = base.hashKV(base.rev);

    const value = new MvccStore();
    put(value, 'a', '1');
    write(value, () => {
      value.put('b', b('X'), 3n);
      value.put('c', b('3'), 0n);
    });
    del(value, one('a'));
    expect(value.hashKV(value.rev)).not.toBe(h);

    const lease = new MvccStore();
    put(lease, 'a', '1');
    write(lease, () => {
      lease.put('b', b('2'), 4n);
      lease.put('c', b('3'), 0n);
    });
    del(lease, one('a'));
    expect(lease.hashKV(lease.rev)).not.toBe(h);

    // Same final state, but b and c written in separate requests: different revisions.
    const split = new MvccStore();
    put(split, 'a', '1');
    put(split, 'b', '2', 3n);
    put(split, 'c', '3');
    del(split, one('a'));
    expect(read(split, all, split.rev).kvs.map((k) => [k.key, k.value])).toEqual(read(base, all, base.rev).kvs.map((k) => [k.key, k.value]));
    expect(split.hashKV(split.rev)).not.toBe(h);

    put(base, 'd', '4');
    expect(base.hashKV(base.rev)).not.toBe(h);
  });

  it('compaction that drops history changes the hash (retained versions are hashed, as etcd HashByRev)', () => {
    const s = new MvccStore();
    history(s);
    const h = s.hashKV(s.rev);
    s.compact(s.rev);
    expect(s.hashKV(s.rev)).not.toBe(h);
  });

  it('compaction that drops nothing leaves the hash equal: etcd reports compact_revision beside the hash, not in it', () => {
    // NOTE for the store's owner: hashKV's doc says "plus the compacted revision", but the code
    // does not mix it in. etcd's HashByRev hashes key/value pairs only and returns
    // compact_revision separately in HashKVResponse, which is what this test pins.
    const x = new MvccStore();
    const y = new MvccStore();
    put(x, 'a', '1');
    put(y, 'a', '1');
    y.compact(2n);
    expect(y.compactedRev).toBe(2n);
    expect(y.hashKV(2n)).toBe(x.hashKV(2n));
  });
});

describe('keysWithLease', () => {
  it('lists live keys attached to the lease at the newest revision, in key order', () => {
    const s = new MvccStore();
    write(s, () => {
      s.put('c', b('1'), 7n);
      s.put('a', b('1'), 7n);
      s.put('b', b('1'), 7n);
      s.put('d', b('1'), 8n);
    });
    del(s, one('b'));
    put(s, 'c', '2', 0n); // detached by a put without the lease
    expect(s.keysWithLease(7n)).toEqual(['a']);
    expect(s.keysWithLease(8n)).toEqual(['d']);
    expect(s.keysWithLease(9n)).toEqual([]);
  });
});
