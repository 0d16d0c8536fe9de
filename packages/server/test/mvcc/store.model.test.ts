/**
 * Goal: MvccStore answers every read exactly as etcd 3.4's mvcc would, for any sequence of
 * writes, compactions and historical reads, and keeps doing so after serialize()/restore().
 *
 * Method: a fast-check property against a deliberately naive model. The model stores a full
 * copy of the key space after every revision (revision -> Map<key, kv>) plus a log of every
 * change, and answers reads by looking the snapshot up and filtering it. Random sequences of
 * ops on a six-key space with awkward bytes ("\0", "a\0", "\xff"):
 * - write: one request of 1..3 puts / deletes (single key, [start, end), from-key); the model
 *   gives the request the next revision only if something changed (etcd: txn.End), and
 *   predicts every event (Put with prev_kv; Delete with etcd's key+mod_revision shape);
 * - compact at a revision in (compacted, current]; afterwards keyCount and sizeBytes must match
 *   what keyIndex.compact keeps (the newest version <= C unless it is a tombstone, plus
 *   everything after C);
 * - range at a requested revision (<= 0, historical, compacted, future), with limit and
 *   count_only; kvs with every field, count, and the etcd error are compared.
 * At the end of each run: every read at every revision >= the compacted one, get(),
 * keysWithLease(), and the same again on MvccStore.restore(serialize()), plus hashKV equality
 * with the original and with a replay.
 *
 * 200 runs by default; fast-check prints the seed and shrunk counterexample on failure.
 * Replay one with FC_SEED=<seed> [FC_PATH=<path>] npx jest ... store.model.
 */
import fc from 'fast-check';
import { MvccCompactedError, MvccFutureRevError } from '../../src/errors';
import { KeyRange } from '../../src/mvcc/key-range';
import { EventType, KeyValue, MvccEvent, MvccStore } from '../../src/mvcc/store';
import { b } from './helpers';

// ---------------------------------------------------------------------------------------------
// Ops

const KEYS = ['\x00', 'a', 'a\x00', 'ab', 'b', '\xff'] as const;
const END_KEYS = ['\x00', 'a', 'a\x00', 'ab', 'b', 'c', '\xff'] as const;

type End = { kind: 'single' } | { kind: 'to'; end: string } | { kind: 'fromKey' };
type Change = { kind: 'put'; key: string; value: string; lease: bigint } | { kind: 'del'; start: string; end: End };
type Op =
  | { kind: 'write'; changes: Change[] }
  | { kind: 'compact'; pick: number }
  | { kind: 'range'; start: string; end: End; rev: number; limit: number; countOnly: boolean };

const keyArb = fc.constantFrom(...KEYS);
const endArb: fc.Arbitrary<End> = fc.oneof(
  fc.constant<End>({ kind: 'single' }),
  fc.constantFrom(...END_KEYS).map((end): End => ({ kind: 'to', end })),
  fc.constant<End>({ kind: 'fromKey' }),
);
const valueArb = fc.uint8Array({ maxLength: 3 }).map((u) => Buffer.from(u).toString('latin1'));
const changeArb: fc.Arbitrary<Change> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant<'put'>('put'), key: keyArb, value: valueArb, lease: fc.constantFrom(0n, 1n, 2n) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant<'del'>('del'), start: keyArb, end: endArb }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant<'write'>('write'), changes: fc.array(changeArb, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant<'compact'>('compact'), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant<'range'>('range'),
      start: keyArb,
      end: endArb,
      rev: fc.integer({ min: -1, max: 45 }),
      limit: fc.integer({ min: 0, max: 3 }),
      countOnly: fc.boolean(),
    }),
  },
);

const toRange = (start: string, end: End): KeyRange =>
  end.kind === 'single' ? { start, end: undefined } : end.kind === 'fromKey' ? { start, end: '' } : { start, end: end.end };

// ---------------------------------------------------------------------------------------------
// The naive model

interface MKv {
  key: string;
  create: bigint;
  mod: bigint;
  version: bigint;
  value: string;
  lease: bigint;
}
interface MEvent {
  type: 'put' | 'delete';
  kv: MKv;
  prev: MKv | undefined;
}
type MRead = { kvs: MKv[]; count: number } | 'future' | 'compacted';

/** Byte order, computed on Buffers (independently of the store's latin1-string trick). */
const byteCmp = (x: string, y: string): number => Buffer.compare(b(x), b(y));

/** Membership, written from the RangeRequest doc rather than from key-range.ts. */
function inRange(start: string, end: End, k: string): boolean {
  if (end.kind === 'single') return k === start;
  if (byteCmp(k, start) < 0) return false;
  return end.kind === 'fromKey' || byteCmp(k, end.end) < 0;
}

class Model {
  /** snapshots[r] is the key space at revision r; index 0 is unused. */
  readonly snapshots: Map<string, MKv>[] = [new Map(), new Map()];
  /** Every change in order, for predicting what compaction keeps. */
  readonly log: { rev: bigint; key: string; tomb: boolean; value: string }[] = [];
  compacted = -1n; // etcd: compactMainRev starts at -1

  get rev(): bigint {
    return BigInt(this.snapshots.length - 1);
  }

  write(changes: Change[]): MEvent[] {
    const rev = this.rev + 1n;
    const work = new Map(this.snapshots[this.snapshots.length - 1]);
    const events: MEvent[] = [];
    for (const c of changes) {
      if (c.kind === 'put') {
        const prev = work.get(c.key);
        const kv: MKv = { key: c.key, create: prev ? prev.create : rev, mod: rev, version: prev ? prev.version + 1n : 1n, value: c.value, lease: c.lease };
        work.set(c.key, kv);
        events.push({ type: 'put', kv, prev });
        this.log.push({ rev, key: c.key, tomb: false, value: c.value });
      } else {
        const doomed = [...work.keys()].filter((k) => inRange(c.start, c.end, k)).sort(byteCmp);
        for (const k of doomed) {
          events.push({ type: 'delete', kv: { key: k, create: 0n, mod: rev, version: 0n, value: '', lease: 0n }, prev: work.get(k) });
          work.delete(k);
          this.log.push({ rev, key: k, tomb: true, value: '' });
        }
      }
    }
    if (events.length > 0) this.snapshots.push(work);
    return events;
  }

  read(start: string, end: End, requested: bigint, limit: number, countOnly: boolean): MRead {
    if (requested > this.rev) return 'future';
    const rev = requested <= 0n ? this.rev : requested;
    if (rev < this.compacted) return 'compacted';
    const hits = [...this.snapshots[Number(rev)].values()].filter((kv) => inRange(start, end, kv.key)).sort((x, y) => byteCmp(x.key, y.key));
    return { kvs: countOnly ? [] : limit > 0 ? hits.slice(0, limit) : hits, count: hits.length };
  }

  /** What keyIndex.compact keeps at `this.compacted`: per key, every change after C, plus the newest change <= C if it is a put. */
  retained(): { key: string; value: string }[] {
    const c = this.compacted;
    const lastAtOrBefore = new Map<string, number>();
    this.log.forEach((e, i) => {
      if (e.rev <= c) lastAtOrBefore.set(e.key, i);
    });
    return this.log.filter((e, i) => e.rev > c || (lastAtOrBefore.get(e.key) === i && !e.tomb));
  }
}

// ---------------------------------------------------------------------------------------------
// Driving the store the same way

const plainKv = (kv: KeyValue): MKv => ({
  key: kv.key.toString('latin1'),
  create: kv.createRevision,
  mod: kv.modRevision,
  version: kv.version,
  value: kv.value.toString('latin1'),
  lease: kv.lease,
});
const plainEvent = (e: MvccEvent): MEvent => ({ type: e.type === EventType.Put ? 'put' : 'delete', kv: plainKv(e.kv), prev: e.prevKv && plainKv(e.prevKv) });

function storeWrite(s: MvccStore, changes: Change[]): { rev: bigint; events: MEvent[] } {
  s.beginWrite();
  for (const c of changes) {
    if (c.kind === 'put') s.put(c.key, b(c.value), c.lease);
    else s.deleteRange(toRange(c.start, c.end));
  }
  const { rev, events } = s.endWrite();
  return { rev, events: events.map(plainEvent) };
}

function storeRead(s: MvccStore, start: string, end: End, requested: bigint, limit: number, countOnly: boolean): MRead {
  let rev: bigint;
  try {
    rev = s.resolveReadRevision(requested);
  } catch (e) {
    if (e instanceof MvccFutureRevError) return 'future';
    if (e instanceof MvccCompactedError) return 'compacted';
    throw e;
  }
  const r = s.range(toRange(start, end), rev, { limit, countOnly });
  return { kvs: r.kvs.map(plainKv), count: r.count };
}

/** Bytes the store accounts per retained version beyond key and value, measured once. */
const VERSION_OVERHEAD_BYTES = (() => {
  const s = new MvccStore();
  storeWrite(s, [{ kind: 'put', key: 'k', value: '', lease: 0n }]);
  return s.sizeBytes() - 1;
})();

/** Every read the end-of-run sweep compares: all ranges over the key space, at each revision. */
const SWEEP_RANGES: [string, End][] = [
  ['', { kind: 'fromKey' }],
  ...KEYS.map((k): [string, End] => [k, { kind: 'single' }]),
  ...KEYS.map((k): [string, End] => [k, { kind: 'fromKey' }]),
  ...KEYS.map((k): [string, End] => [k, { kind: 'to', end: 'b' }]),
];

function sweep(s: MvccStore, m: Model): void {
  // Collected first and compared once: one deep equality is much cheaper than thousands of expects.
  const got: unknown[] = [];
  const want: unknown[] = [];
  const both = (start: string, end: End, rev: bigint, limit: number, countOnly: boolean): void => {
    got.push([start, end, rev, limit, countOnly, storeRead(s, start, end, rev, limit, countOnly)]);
    want.push([start, end, rev, limit, countOnly, m.read(start, end, rev, limit, countOnly)]);
  };
  for (let rev = -1n; rev <= m.rev + 1n; rev++) {
    for (const [start, end] of SWEEP_RANGES) both(start, end, rev, 0, false);
    both('', { kind: 'fromKey' }, rev, 2, false);
    both('', { kind: 'fromKey' }, rev, 0, true);
  }
  const latest = m.snapshots[m.snapshots.length - 1];
  for (const k of KEYS) {
    const kv = s.get(k);
    got.push(['get', k, kv && plainKv(kv)]);
    want.push(['get', k, latest.get(k)]);
  }
  for (const lease of [1n, 2n]) {
    got.push(['lease', lease, s.keysWithLease(lease)]);
    want.push(['lease', lease, [...latest.values()].filter((kv) => kv.lease === lease).map((kv) => kv.key).sort(byteCmp)]);
  }
  expect(got).toEqual(want);
}

function checkRetention(s: MvccStore, m: Model): void {
  const kept = m.retained();
  expect(s.keyCount).toBe(new Set(kept.map((e) => e.key)).size);
  expect(s.sizeBytes()).toBe(kept.reduce((n, e) => n + e.key.length + e.value.length + VERSION_OVERHEAD_BYTES, 0));
}

function run(ops: Op[]): void {
  const s = new MvccStore();
  const m = new Model();
  for (const op of ops) {
    switch (op.kind) {
      case 'write': {
        const expected = m.write(op.changes);
        const got = storeWrite(s, op.changes);
        expect(got.events).toEqual(expected);
        expect(got.rev).toBe(m.rev);
        expect(s.rev).toBe(m.rev);
        break;
      }
      case 'compact': {
        // etcd refuses C <= compacted (ErrCompacted) and C > current (ErrFutureRev) before
        // reaching the store; only valid revisions get here.
        if (m.rev <= m.compacted) break;
        const c = m.compacted + 1n + (BigInt(op.pick) % (m.rev - m.compacted));
        s.compact(c);
        m.compacted = c;
        expect(s.compactedRev).toBe(c);
        checkRetention(s, m);
        break;
      }
      case 'range':
        expect(storeRead(s, op.start, op.end, BigInt(op.rev), op.limit, op.countOnly)).toEqual(m.read(op.start, op.end, BigInt(op.rev), op.limit, op.countOnly));
        break;
    }
  }
  sweep(s, m);
  checkRetention(s, m);

  // A snapshot keeps every answer, and the restored store hashes the same.
  const restored = MvccStore.restore(s.serialize());
  expect(restored.rev).toBe(s.rev);
  expect(restored.compactedRev).toBe(s.compactedRev);
  sweep(restored, m);
  checkRetention(restored, m);
  expect(restored.hashKV(restored.rev)).toBe(s.hashKV(s.rev));

  // Determinism: replaying the same requests gives the same hash.
  const replay = new MvccStore();
  for (const op of ops) {
    if (op.kind === 'write') storeWrite(replay, op.changes);
    else if (op.kind === 'compact' && replay.rev > replay.compactedRev) {
      replay.compact(replay.compactedRev + 1n + (BigInt(op.pick) % (replay.rev - replay.compactedRev)));
    }
  }
  expect(replay.hashKV(replay.rev)).toBe(s.hashKV(s.rev));

  // The restored store continues the history exactly as the original does.
  const next: Change[] = [
    { kind: 'put', key: 'a', value: 'next', lease: 1n },
    { kind: 'del', start: 'b', end: { kind: 'fromKey' } },
  ];
  const expected = m.write(next);
  expect(storeWrite(s, next).events).toEqual(expected);
  expect(storeWrite(restored, next).events).toEqual(expected);
  expect(restored.hashKV(restored.rev)).toBe(s.hashKV(s.rev));
}

const fcParams = (): fc.Parameters<[Op[]]> => ({
  numRuns: Number(process.env.FC_RUNS ?? 200),
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
  ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
});

describe('MvccStore against a naive snapshot-per-revision model', () => {
  it('agrees on every write, read, error and compaction, also after serialize/restore', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => run(ops)),
      fcParams(),
    );
  });

  it('the model itself: a known sequence gives the etcd answers (guards the oracle)', () => {
    const m = new Model();
    m.write([{ kind: 'put', key: 'a', value: '1', lease: 0n }]); // 2
    m.write([{ kind: 'put', key: 'a', value: '2', lease: 0n }]); // 3
    m.write([{ kind: 'del', start: 'a', end: { kind: 'single' } }]); // 4
    m.write([{ kind: 'put', key: 'a', value: '3', lease: 0n }]); // 5
    expect(m.write([{ kind: 'del', start: 'zz', end: { kind: 'fromKey' } }])).toEqual([]);
    expect(m.rev).toBe(5n);
    expect(m.read('a', { kind: 'single' }, 3n, 0, false)).toEqual({ kvs: [{ key: 'a', create: 2n, mod: 3n, version: 2n, value: '2', lease: 0n }], count: 1 });
    expect(m.read('a', { kind: 'single' }, 4n, 0, false)).toEqual({ kvs: [], count: 0 });
    expect(m.read('a', { kind: 'single' }, 0n, 0, false)).toEqual({ kvs: [{ key: 'a', create: 5n, mod: 5n, version: 1n, value: '3', lease: 0n }], count: 1 });
    expect(m.read('a', { kind: 'single' }, 6n, 0, false)).toBe('future');
    m.compacted = 4n;
    expect(m.read('a', { kind: 'single' }, 3n, 0, false)).toBe('compacted');
    // Kept at C=4: the tombstone at 4 ends a's first generation (dropped); the put at 5 stays.
    expect(m.retained()).toEqual([{ rev: 5n, key: 'a', tomb: false, value: '3' }]);
  });
});
