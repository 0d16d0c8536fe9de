/**
 * The multi-version key-value store, as etcd's mvcc package defines it:
 *
 * - The store has one revision counter, starting at 1. Every write request (a put, a
 *   delete that deletes something, a txn that writes) takes the next revision; all changes
 *   of one request share it and are ordered inside it by a sub-revision.
 * - Each key keeps its history: create_revision (revision of the put that created the
 *   current generation), mod_revision, version (puts in this generation, from 1), value and
 *   lease. A delete writes a tombstone that ends the generation; a later put starts a new
 *   one with version 1.
 * - Reads can ask for any revision >= the compacted revision and <= the current one.
 *   Compaction at revision C forgets every version superseded at or before C, and tombstones
 *   at or before C, as etcd's keyIndex.compact does.
 *
 * All state is in memory; durability comes from the WAL and snapshots (see storage/).
 * Keys are latin1 strings internally (see key-range.ts) so that string order is byte order.
 */
import { crc32c } from '../util/crc32c';
import { assert } from '../util/assert';
import { MvccCompactedError, MvccFutureRevError } from '../errors';
import { KeyRange, KeyString, fromKeyString } from './key-range';
import { SortedKeys } from './sorted-keys';

export interface KeyValue {
  readonly key: Buffer;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  readonly value: Buffer;
  readonly lease: bigint;
}

export const enum EventType {
  Put = 0,
  Delete = 1,
}

/** One change, as a watcher sees it (mvccpb.Event). */
export interface MvccEvent {
  readonly type: EventType;
  /** For a delete: key, mod_revision = the delete's revision, other fields zero (etcd's shape). */
  readonly kv: KeyValue;
  readonly prevKv: KeyValue | undefined;
}

interface Version {
  readonly createRev: bigint;
  readonly modRev: bigint;
  readonly sub: number;
  readonly version: bigint;
  readonly value: Buffer;
  readonly lease: bigint;
  readonly tombstone: boolean;
}

export interface RangeOptions {
  /** 0 = no limit. */
  readonly limit?: number;
  readonly countOnly?: boolean;
}

export interface RangeResult {
  readonly kvs: KeyValue[];
  /** Keys in the range at that revision, regardless of limit. */
  readonly count: number;
}

const EMPTY = Buffer.alloc(0);

export class MvccStore {
  private readonly histories = new Map<KeyString, Version[]>();
  /** Every key with any retained history, in byte order. */
  private readonly keyIndex = new SortedKeys();
  private currentRevision = 1n;
  /** etcd's compactMainRev starts at -1: `compact 0` on a fresh store succeeds once. */
  private compactRevision = -1n;
  /** Set while a write request is being applied. */
  private pendingWrite: { rev: bigint; sub: number; events: MvccEvent[] } | undefined;

  get rev(): bigint {
    return this.currentRevision;
  }
  get compactedRev(): bigint {
    return this.compactRevision;
  }
  get keyCount(): number {
    return this.histories.size;
  }

  /** Checks a requested read revision as etcd does; 0 or less means "current". */
  resolveReadRevision(requested: bigint): bigint {
    if (requested <= 0n) return this.currentRevision;
    if (requested > this.currentRevision) throw new MvccFutureRevError();
    if (requested < this.compactRevision) throw new MvccCompactedError();
    return requested;
  }

  /**
   * Reads [start, end) at `rev`. Inside a write request, reading at the pending revision
   * sees that request's earlier changes (etcd's storeTxnWrite.Range does the same).
   */
  range(r: KeyRange, rev: bigint, opts: RangeOptions = {}): RangeResult {
    assert(rev >= 0n, 'range revision is non-negative');
    const limit = opts.limit ?? 0;
    assert(limit >= 0, 'range limit is non-negative');
    const kvs: KeyValue[] = [];
    let count = 0;
    const visit = (key: KeyString, history: Version[]): void => {
      const v = versionAt(history, rev);
      if (!v || v.tombstone) return;
      count++;
      if (opts.countOnly) return;
      if (limit === 0 || kvs.length < limit) kvs.push(toKeyValue(key, v));
    };
    if (r.end === undefined) {
      const h = this.histories.get(r.start);
      if (h) visit(r.start, h);
    } else {
      const keys = this.keyIndex.keys();
      const from = lowerBound(keys, r.start);
      const to = r.end === '' ? keys.length : lowerBound(keys, r.end);
      for (let i = from; i < to; i++) {
        const key = keys[i];
        visit(key, this.histories.get(key)!);
      }
    }
    return { kvs, count };
  }

  /** The live version of one key at the newest revision (pending writes included). */
  get(key: KeyString): KeyValue | undefined {
    const h = this.histories.get(key);
    if (!h) return undefined;
    const v = h[h.length - 1];
    return v.tombstone ? undefined : toKeyValue(key, v);
  }

  /** Starts applying one write request: its changes share revision current+1. */
  beginWrite(): bigint {
    assert(this.pendingWrite === undefined, 'one write request at a time');
    this.pendingWrite = { rev: this.currentRevision + 1n, sub: 0, events: [] };
    return this.pendingWrite.rev;
  }

  /** The revision a read inside the pending write sees: current+1 once something changed. */
  get writeReadRev(): bigint {
    const w = this.pendingWrite;
    assert(w !== undefined, 'inside a write request');
    return w.events.length > 0 ? w.rev : this.currentRevision;
  }

  put(key: KeyString, value: Buffer, lease: bigint): { prev: KeyValue | undefined; kv: KeyValue } {
    const w = this.pendingWrite;
    assert(w !== undefined, 'put inside a write request');
    let history = this.histories.get(key);
    const last = history?.[history.length - 1];
    const live = last && !last.tombstone ? last : undefined;
    const v: Version = {
      createRev: live ? live.createRev : w.rev,
      modRev: w.rev,
      sub: w.sub++,
      version: live ? live.version + 1n : 1n,
      value,
      lease,
      tombstone: false,
    };
    if (!history) {
      history = [];
      this.histories.set(key, history);
      this.keyIndex.insert(key);
    }
    assert(!last || last.modRev <= v.modRev, 'history is ordered by revision');
    history.push(v);
    const prev = live ? toKeyValue(key, live) : undefined;
    const kv = toKeyValue(key, v);
    w.events.push({ type: EventType.Put, kv, prevKv: prev });
    return { prev, kv };
  }

  /** Deletes every live key in the range; returns what was deleted (the prev kvs). */
  deleteRange(r: KeyRange): KeyValue[] {
    const w = this.pendingWrite;
    assert(w !== undefined, 'delete inside a write request');
    const live = this.range(r, w.rev).kvs;
    for (const prev of live) {
      const key = prev.key.toString('latin1');
      const history = this.histories.get(key)!;
      history.push({ createRev: 0n, modRev: w.rev, sub: w.sub++, version: 0n, value: EMPTY, lease: 0n, tombstone: true });
      const kv: KeyValue = { key: prev.key, createRevision: 0n, modRevision: w.rev, version: 0n, value: EMPTY, lease: 0n };
      w.events.push({ type: EventType.Delete, kv, prevKv: prev });
    }
    return live;
  }

  /** Ends the write request; the revision advances only if something changed. */
  endWrite(): { rev: bigint; events: MvccEvent[] } {
    const w = this.pendingWrite;
    assert(w !== undefined, 'endWrite after beginWrite');
    this.pendingWrite = undefined;
    if (w.events.length > 0) this.currentRevision = w.rev;
    return { rev: this.currentRevision, events: w.events };
  }

  /**
   * Compacts history at `rev` (etcd: keyIndex.compact). Caller has checked the bounds
   * (compacted < rev <= current) and returns etcd's errors otherwise.
   */
  compact(rev: bigint): void {
    assert(rev > this.compactRevision, 'compaction moves forward');
    assert(rev <= this.currentRevision, 'compaction not beyond the current revision');
    const emptied: KeyString[] = [];
    for (const [key, history] of this.histories) {
      // Index of the newest version at or before rev: everything older is superseded.
      let keep = -1;
      for (let i = history.length - 1; i >= 0; i--) {
        if (history[i].modRev <= rev) {
          keep = i;
          break;
        }
      }
      if (keep < 0) continue;
      const dropThrough = history[keep].tombstone ? keep : keep - 1;
      if (dropThrough >= 0) history.splice(0, dropThrough + 1);
      if (history.length === 0) emptied.push(key);
    }
    if (emptied.length > 0) {
      for (const key of emptied) this.histories.delete(key);
      this.keyIndex.removeAll(new Set(emptied));
    }
    this.compactRevision = rev;
  }

  /**
   * etcd's HashKV, bit for bit (mvcc/kvstore.go HashByRev): a CRC-32C over the bucket name
   * "key", then, in revision order, each stored revision key (8-byte main, '_', 8-byte sub,
   * 't' for a tombstone) and its marshaled mvccpb.KeyValue, for revisions <= rev. Versions
   * at or before the compacted revision count only if compaction at `rev` would keep them.
   * Caller checks the bounds.
   */
  hashKV(rev: bigint): number {
    const rows: { key: KeyString; v: Version; droppable: boolean }[] = [];
    let keepCount = 0;
    for (const key of this.keyIndex.keys()) {
      const history = this.histories.get(key)!;
      let latest: Version | undefined;
      for (const v of history) if (v.modRev <= rev) latest = v;
      const kept = latest && !latest.tombstone ? latest : undefined;
      if (kept) keepCount++;
      for (const v of history) {
        if (v.modRev > rev) break;
        rows.push({ key, v, droppable: v.modRev <= this.compactRevision && v !== kept });
      }
    }
    rows.sort((a, b) => (a.v.modRev < b.v.modRev ? -1 : a.v.modRev > b.v.modRev ? 1 : a.v.sub - b.v.sub));
    let crc = crc32c(Buffer.from('key'));
    for (const { key, v, droppable } of rows) {
      // etcd skips revisions compaction at `rev` would drop, unless its keep set is empty.
      if (droppable && keepCount > 0) continue;
      const revKey = Buffer.alloc(v.tombstone ? 18 : 17);
      revKey.writeBigInt64BE(v.modRev, 0);
      revKey[8] = 0x5f; // '_'
      revKey.writeBigInt64BE(BigInt(v.sub), 9);
      if (v.tombstone) revKey[17] = 0x74; // 't'
      crc = crc32c(revKey, crc);
      crc = crc32c(marshalKeyValue(fromKeyString(key), v), crc);
    }
    return crc >>> 0;
  }

  /** Serializes the whole store (snapshot). Format: see restore(). */
  serialize(): Buffer {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(8 + 8 + 8 + 4);
    head.write('COORDMV1', 0, 'latin1');
    head.writeBigInt64BE(this.currentRevision, 8);
    head.writeBigInt64BE(this.compactRevision, 16);
    head.writeUInt32BE(this.keyIndex.size, 24);
    parts.push(head);
    for (const key of this.keyIndex.keys()) {
      const history = this.histories.get(key)!;
      const keyBuf = fromKeyString(key);
      const kh = Buffer.alloc(8);
      kh.writeUInt32BE(keyBuf.length, 0);
      kh.writeUInt32BE(history.length, 4);
      parts.push(kh, keyBuf);
      for (const v of history) {
        const vh = Buffer.alloc(1 + 8 * 4 + 4 + 4);
        vh.writeUInt8(v.tombstone ? 1 : 0, 0);
        vh.writeBigInt64BE(v.createRev, 1);
        vh.writeBigInt64BE(v.modRev, 9);
        vh.writeBigInt64BE(v.version, 17);
        vh.writeBigInt64BE(v.lease, 25);
        vh.writeUInt32BE(v.sub, 33);
        vh.writeUInt32BE(v.value.length, 37);
        parts.push(vh, v.value);
      }
    }
    return Buffer.concat(parts);
  }

  /** Rebuilds a store from serialize()'s bytes. Takes ownership of `data`: values are views into it. */
  static restore(data: Buffer): MvccStore {
    const s = new MvccStore();
    assert(data.toString('latin1', 0, 8) === 'COORDMV1', 'mvcc snapshot magic');
    s.currentRevision = data.readBigInt64BE(8);
    s.compactRevision = data.readBigInt64BE(16);
    const keys = data.readUInt32BE(24);
    let off = 28;
    for (let k = 0; k < keys; k++) {
      const keyLen = data.readUInt32BE(off);
      const n = data.readUInt32BE(off + 4);
      off += 8;
      const key = data.toString('latin1', off, off + keyLen);
      off += keyLen;
      const history: Version[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const valueLen = data.readUInt32BE(off + 37);
        // A view into the snapshot buffer: every value lives in it already, no copy needed.
        const value = data.subarray(off + 41, off + 41 + valueLen);
        history[i] = {
          tombstone: data.readUInt8(off) === 1,
          createRev: data.readBigInt64BE(off + 1),
          modRev: data.readBigInt64BE(off + 9),
          version: data.readBigInt64BE(off + 17),
          lease: data.readBigInt64BE(off + 25),
          sub: data.readUInt32BE(off + 33),
          value,
        };
        off += 41 + valueLen;
      }
      s.histories.set(key, history);
      s.keyIndex.pushInOrder(key);
    }
    assert(off === data.length, 'mvcc snapshot fully consumed');
    return s;
  }

  /**
   * The events of revisions [fromRev, toRev] on keys in the range, in revision order (and
   * sub-revision order inside a revision): the history a watcher catches up from. Caller
   * checks fromRev >= the compacted revision. A prev kv older than the retained history
   * (compacted) is left out, as etcd does.
   */
  eventsBetween(r: KeyRange, fromRev: bigint, toRev: bigint): MvccEvent[] {
    assert(fromRev >= this.compactRevision, 'history retained from fromRev');
    const found: { ev: MvccEvent; sub: number }[] = [];
    const collect = (key: KeyString, history: Version[]): void => {
      for (let i = history.length - 1; i >= 0; i--) {
        const v = history[i];
        if (v.modRev > toRev) continue;
        if (v.modRev < fromRev) break;
        const before = i > 0 ? history[i - 1] : undefined;
        const prevKv = before && !before.tombstone ? toKeyValue(key, before) : undefined;
        const kv: KeyValue = v.tombstone
          ? { key: fromKeyString(key), createRevision: 0n, modRevision: v.modRev, version: 0n, value: EMPTY, lease: 0n }
          : toKeyValue(key, v);
        found.push({ ev: { type: v.tombstone ? EventType.Delete : EventType.Put, kv, prevKv }, sub: v.sub });
      }
    };
    if (r.end === undefined) {
      const h = this.histories.get(r.start);
      if (h) collect(r.start, h);
    } else {
      const keys = this.keyIndex.keys();
      const from = lowerBound(keys, r.start);
      const to = r.end === '' ? keys.length : lowerBound(keys, r.end);
      for (let i = from; i < to; i++) collect(keys[i], this.histories.get(keys[i])!);
    }
    found.sort((a, b) => (a.ev.kv.modRevision < b.ev.kv.modRevision ? -1 : a.ev.kv.modRevision > b.ev.kv.modRevision ? 1 : a.sub - b.sub));
    return found.map((f) => f.ev);
  }

  /** Live keys attached to a lease (used by lease revoke). */
  keysWithLease(lease: bigint): KeyString[] {
    const out: KeyString[] = [];
    for (const key of this.keyIndex.keys()) {
      const h = this.histories.get(key)!;
      const v = h[h.length - 1];
      if (!v.tombstone && v.lease === lease) out.push(key);
    }
    return out;
  }

  /** Approximate bytes held: keys and values of every retained version. */
  sizeBytes(): number {
    let n = 0;
    for (const [key, history] of this.histories) for (const v of history) n += key.length + v.value.length + 48;
    return n;
  }
}

/** gogoproto's marshaling of mvccpb.KeyValue: fields 1..6, zero values omitted. */
function marshalKeyValue(key: Buffer, v: Version): Buffer {
  const parts: number[] = [];
  const varint = (x: bigint): void => {
    let n = BigInt.asUintN(64, x);
    while (n >= 0x80n) {
      parts.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    parts.push(Number(n));
  };
  const bytes = (field: number, b: Buffer): void => {
    if (b.length === 0) return;
    parts.push((field << 3) | 2);
    varint(BigInt(b.length));
    for (const x of b) parts.push(x);
  };
  const int = (field: number, x: bigint): void => {
    if (x === 0n) return;
    parts.push(field << 3);
    varint(x);
  };
  bytes(1, key);
  if (!v.tombstone) {
    int(2, v.createRev);
    int(3, v.modRev);
    int(4, v.version);
    bytes(5, v.value);
    int(6, v.lease);
  }
  return Buffer.from(parts);
}

function versionAt(history: Version[], rev: bigint): Version | undefined {
  // Newest first: most reads are at (or near) the newest revision.
  for (let i = history.length - 1; i >= 0; i--) if (history[i].modRev <= rev) return history[i];
  return undefined;
}

function toKeyValue(key: KeyString, v: Version): KeyValue {
  return { key: fromKeyString(key), createRevision: v.createRev, modRevision: v.modRev, version: v.version, value: v.value, lease: v.lease };
}

function lowerBound(a: readonly string[], x: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

