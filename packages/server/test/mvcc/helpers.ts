/**
 * Small helpers shared by the mvcc tests (not a test file: jest only runs *.test.ts).
 * Keys are latin1 strings, one char per byte, as MvccStore holds them.
 */
import { KeyRange } from '../../src/mvcc/key-range';
import { KeyValue, MvccEvent, MvccStore } from '../../src/mvcc/store';

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The single key `k` (range_end empty). */
export const one = (k: string): KeyRange => ({ start: k, end: undefined });
/** [start, end). */
export const span = (start: string, end: string): KeyRange => ({ start, end });
/** Every key >= start (range_end "\0"). */
export const from = (start: string): KeyRange => ({ start, end: '' });
export const all: KeyRange = from('');

/** Runs `fn` as one write request and returns what endWrite returns. */
export function write(s: MvccStore, fn: () => void): { rev: bigint; events: MvccEvent[] } {
  s.beginWrite();
  fn();
  return s.endWrite();
}

export const put = (s: MvccStore, key: string, value: string, lease = 0n) => write(s, () => s.put(key, b(value), lease));
export const del = (s: MvccStore, r: KeyRange) => write(s, () => s.deleteRange(r));

/** A KeyValue as a plain comparable record (Buffers as latin1 strings, bigints kept). */
export interface PlainKv {
  key: string;
  create: bigint;
  mod: bigint;
  version: bigint;
  value: string;
  lease: bigint;
}

export const plain = (kv: KeyValue): PlainKv => ({
  key: kv.key.toString('latin1'),
  create: kv.createRevision,
  mod: kv.modRevision,
  version: kv.version,
  value: kv.value.toString('latin1'),
  lease: kv.lease,
});

/** Reads a range at `rev` and returns plain records (key order) and count. */
export function read(s: MvccStore, r: KeyRange, rev: bigint, limit = 0): { kvs: PlainKv[]; count: number } {
  const res = s.range(r, rev, { limit });
  return { kvs: res.kvs.map(plain), count: res.count };
}

/** The whole key space at every revision from `lo` to the store's current revision. */
export function everyRevision(s: MvccStore, lo: bigint): Map<bigint, PlainKv[]> {
  const out = new Map<bigint, PlainKv[]>();
  for (let rev = lo; rev <= s.rev; rev++) out.set(rev, read(s, all, rev).kvs);
  return out;
}
