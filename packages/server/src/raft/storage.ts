/**
 * The log as raft reads it. `LogStorage` is read-only to raft: the driver writes what a
 * `Ready` tells it to (entries, hard state, snapshot) and only then calls `advance`, so
 * everything raft reads back from storage is durable. Ranges are half-open, `[lo, hi)`.
 *
 * `MemoryStorage` is the in-memory implementation (etcd's MemoryStorage): the simulator
 * and the tests use it, and a real driver can keep it as a cache in front of its WAL.
 */
import { assert } from '../util/assert';
import { RaftError } from './errors';
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  entryBytes,
} from './types';

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

export interface LogStorage {
  /** The persisted hard state and the configuration as of the last snapshot (later changes are in the log). */
  initialState(): InitialState;
  /**
   * Entries in `[lo, hi)`, stopping before the total would pass `maxBytes` — but always at
   * least one entry when `lo < hi`. Throws `ERR_COMPACTED` if `lo < firstIndex()`,
   * `ERR_UNAVAILABLE` if `hi > lastIndex() + 1`.
   */
  entries(lo: bigint, hi: bigint, maxBytes: number): Entry[];
  /**
   * The term of entry `i`, for `i` in `[firstIndex() - 1, lastIndex()]` (the entry just
   * before the first is compacted, but its term is kept, for the §5.3 consistency check).
   * Throws `ERR_COMPACTED` below that, `ERR_UNAVAILABLE` above.
   */
  term(i: bigint): bigint;
  /** The index of the first entry that `entries` can return (the snapshot's index + 1). */
  firstIndex(): bigint;
  /** The index of the last entry; `firstIndex() - 1` when the log is empty. */
  lastIndex(): bigint;
  /**
   * The newest snapshot. The leader sends it to a follower whose next entry is compacted;
   * its configuration must name that follower, so a driver snapshots after applying a
   * conf change (raft skips a snapshot that does not name the follower and tries again later).
   */
  snapshot(): Snapshot;
}

/** etcd's MemoryStorage: `ents[0]` is a dummy holding the snapshot's index and term. */
export class MemoryStorage implements LogStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = { meta: { index: 0n, term: 0n, confState: EMPTY_CONF_STATE }, data: new Uint8Array(0) };
  private ents: Entry[] = [{ term: 0n, index: 0n, type: 'normal', data: new Uint8Array(0) }];

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.snap.meta.confState };
  }

  setHardState(hs: HardState): void {
    assert(hs.term >= this.hardState.term, 'hard state term never decreases');
    assert(hs.commit <= this.lastIndex() || hs.commit <= this.snap.meta.index, 'hard state commit is in the log');
    this.hardState = hs;
  }

  hardStateNow(): HardState {
    return this.hardState;
  }

  private offset(): bigint {
    return this.ents[0].index;
  }

  firstIndex(): bigint {
    return this.offset() + 1n;
  }

  lastIndex(): bigint {
    return this.offset() + BigInt(this.ents.length - 1);
  }

  term(i: bigint): bigint {
    const offset = this.offset();
    if (i < offset) throw new RaftError('ERR_COMPACTED', `index ${i} is compacted (first ${offset + 1n})`);
    if (i > this.lastIndex()) throw new RaftError('ERR_UNAVAILABLE', `index ${i} is past the last ${this.lastIndex()}`);
    const e = this.ents[Number(i - offset)];
    assert(e.index === i, 'entries are contiguous');
    return e.term;
  }

  entries(lo: bigint, hi: bigint, maxBytes: number): Entry[] {
    assert(lo <= hi, `entries: lo ${lo} <= hi ${hi}`);
    assert(maxBytes >= 0, 'entries: maxBytes is not negative');
    const offset = this.offset();
    if (lo <= offset) throw new RaftError('ERR_COMPACTED', `index ${lo} is compacted (first ${offset + 1n})`);
    if (hi > this.lastIndex() + 1n) throw new RaftError('ERR_UNAVAILABLE', `index ${hi - 1n} is past the last ${this.lastIndex()}`);
    return limitBytes(this.ents.slice(Number(lo - offset), Number(hi - offset)), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace everything with a snapshot (a follower installing the leader's). */
  applySnapshot(s: Snapshot): void {
    if (s.meta.index < this.snap.meta.index) {
      throw new RaftError('ERR_SNAP_OUT_OF_DATE', `snapshot ${s.meta.index} is older than ${this.snap.meta.index}`);
    }
    assert(s.meta.index === 0n || s.meta.term > 0n, 'a non-empty snapshot has a term');
    this.snap = s;
    this.ents = [{ term: s.meta.term, index: s.meta.index, type: 'normal', data: new Uint8Array(0) }];
    if (this.hardState.commit < s.meta.index) this.hardState = { ...this.hardState, commit: s.meta.index };
  }

  /**
   * Record a snapshot of the state machine at applied index `i` (≤ lastIndex). The log is
   * not compacted: call `compact` for that (keeping some entries lets slow followers catch
   * up from the log instead of a snapshot).
   */
  createSnapshot(i: bigint, cs: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.meta.index) throw new RaftError('ERR_SNAP_OUT_OF_DATE', `snapshot ${i} is not newer than ${this.snap.meta.index}`);
    assert(i <= this.lastIndex(), `snapshot index ${i} <= last index ${this.lastIndex()}`);
    this.snap = { meta: { index: i, term: this.term(i), confState: cs }, data };
    return this.snap;
  }

  /** Discard entries before `compactIndex` (which becomes the dummy entry). */
  compact(compactIndex: bigint): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new RaftError('ERR_COMPACTED', `index ${compactIndex} is already compacted`);
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} <= last index ${this.lastIndex()}`);
    const i = Number(compactIndex - offset);
    const dummy: Entry = { term: this.ents[i].term, index: this.ents[i].index, type: 'normal', data: new Uint8Array(0) };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
    assert(this.offset() === compactIndex, 'compaction moved the dummy entry');
  }

  /**
   * Append entries that a Ready asked to persist. An entry at index i replaces every entry
   * at index ≥ i (the §5.3 rule "if an existing entry conflicts with a new one, delete the
   * existing entry and all that follow it"); entries already compacted are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    for (let k = 1; k < entries.length; k++) assert(entries[k].index === entries[k - 1].index + 1n, 'appended entries are contiguous');
    const first = this.firstIndex();
    const last = entries[0].index + BigInt(entries.length) - 1n;
    if (last < first) return;
    const from = first > entries[0].index ? entries.slice(Number(first - entries[0].index)) : entries;
    const start = from[0].index;
    assert(start <= this.lastIndex() + 1n, `append at ${start} leaves no gap after ${this.lastIndex()}`);
    // In place: copying the whole log on every append made each one O(log length) (1.8 ms at
    // 100k entries, on every member for every batch). Only a conflicting suffix is cut off.
    const keep = Number(start - this.offset());
    if (keep < this.ents.length) this.ents.length = keep;
    for (const e of from) this.ents.push(e);
    assert(this.lastIndex() === last, 'append ends at the last appended entry');
  }
}

/** The longest prefix whose size stays within `maxBytes`, but at least one entry. */
export function limitBytes<T extends Entry>(ents: T[], maxBytes: number): T[] {
  if (ents.length === 0) return ents;
  let size = entryBytes(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entryBytes(ents[n]);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}
