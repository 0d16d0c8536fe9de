/**
 * The raft log as the node sees it: the durable part in `LogStorage` followed by the
 * `unstable` part that a Ready has handed to the driver but that is not yet known durable
 * (etcd's raftLog/unstable). Invariant: firstIndex ≤ applied+1 ≤ committed+1 ≤ lastIndex+1.
 */
import { assert } from '../util/assert';
import { isRaftError } from './errors';
import type { LogStorage } from './storage';
import { limitBytes } from './storage';
import { type Entry, type Snapshot, entryBytes, maxBig, minBig } from './types';

/** Entries (and maybe a snapshot) not yet written to storage. `entries[i].index === offset + i`. */
export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];

  constructor(public offset: bigint) {}

  maybeFirstIndex(): bigint | null {
    return this.snapshot === null ? null : this.snapshot.meta.index + 1n;
  }

  maybeLastIndex(): bigint | null {
    if (this.entries.length > 0) return this.offset + BigInt(this.entries.length) - 1n;
    if (this.snapshot !== null) return this.snapshot.meta.index;
    return null;
  }

  maybeTerm(i: bigint): bigint | null {
    if (i < this.offset) {
      if (this.snapshot !== null && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return null;
    }
    const last = this.maybeLastIndex();
    if (last === null || i > last) return null;
    if (this.entries.length === 0) return null;
    return this.entries[Number(i - this.offset)].term;
  }

  /** Entries up to (i, t) are durable. A term mismatch means they were replaced meanwhile: keep them. */
  stableTo(i: bigint, t: bigint): void {
    const gt = this.maybeTerm(i);
    if (gt === null || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(Number(i + 1n - this.offset));
    this.offset = i + 1n;
    assert(this.entries.length === 0 || this.entries[0].index === this.offset, 'unstable entries start at offset');
  }

  stableSnapTo(i: bigint): void {
    if (this.snapshot !== null && this.snapshot.meta.index === i) this.snapshot = null;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1n;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    assert(ents.length > 0, 'truncateAndAppend: entries given');
    const after = ents[0].index;
    const end = this.offset + BigInt(this.entries.length);
    if (after === end) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replace the unstable entries wholesale; the driver discards durable entries ≥ after.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      assert(after < end, `truncateAndAppend: no gap (after ${after}, end ${end})`);
      this.entries = this.entries.slice(0, Number(after - this.offset)).concat(ents);
    }
    assert(this.entries[0].index === this.offset, 'unstable entries start at offset');
  }

  slice(lo: bigint, hi: bigint): Entry[] {
    assert(lo >= this.offset && lo <= hi, `unstable slice [${lo}, ${hi}) starts at or after offset ${this.offset}`);
    assert(hi <= this.offset + BigInt(this.entries.length), `unstable slice [${lo}, ${hi}) is within the unstable entries`);
    return this.entries.slice(Number(lo - this.offset), Number(hi - this.offset));
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known committed (§5.3). */
  committed: bigint;
  /** Highest index the driver has applied (set on advance). */
  applied: bigint;

  constructor(
    readonly storage: LogStorage,
    /** Limit of committedEntries per Ready. */
    readonly maxApplyBytes: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    assert(first >= 1n, 'storage first index >= 1');
    assert(last + 1n >= first, 'storage last index >= first index - 1');
    this.unstable = new Unstable(last + 1n);
    this.committed = first - 1n;
    this.applied = first - 1n;
  }

  firstIndex(): bigint {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): bigint {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** The term of entry i, or null if it is compacted (below firstIndex-1) or beyond the log. */
  term(i: bigint): bigint | null {
    const t = this.unstable.maybeTerm(i);
    if (t !== null) return t;
    if (i + 1n < this.firstIndex() || i > this.lastIndex()) return null;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isRaftError(e, 'ERR_COMPACTED') || isRaftError(e, 'ERR_UNAVAILABLE')) return null;
      throw e;
    }
  }

  lastTerm(): bigint {
    const t = this.term(this.lastIndex());
    assert(t !== null, 'the last entry has a term');
    return t;
  }

  matchTerm(i: bigint, t: bigint): boolean {
    return this.term(i) === t;
  }

  /**
   * §5.4.1 election restriction: "If the logs have last entries with different terms, then
   * the log with the later term is more up-to-date. If the logs end with the same term,
   * then whichever log is longer is more up-to-date."
   */
  isUpToDate(lastIndex: bigint, lastTerm: bigint): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The AppendEntries receiver rules (Figure 2, §5.3): reply false if the log has no entry
   * at prevIndex with prevTerm; delete conflicting entries and all that follow; append the
   * new ones; commit = min(leaderCommit, index of last new entry). Returns the last new
   * index, or null when the consistency check fails.
   */
  maybeAppend(prevIndex: bigint, prevTerm: bigint, leaderCommit: bigint, ents: readonly Entry[]): bigint | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + BigInt(ents.length);
    const ci = this.findConflict(ents);
    if (ci !== 0n) {
      assert(ci > this.committed, `entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(Number(ci - prevIndex - 1n)));
    }
    // "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of last new
    // entry)": entries past lastNew may belong to a stale leader and must not be committed.
    this.commitTo(minBig(leaderCommit, lastNew));
    return lastNew;
  }

  /** The first index whose term differs from ours (or that we lack); 0 if all are present. */
  findConflict(ents: readonly Entry[]): bigint {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0n;
  }

  /**
   * Fast backtracking (§5.3, "the follower can include the term of the conflicting entry
   * and the first index it stores for that term"): the largest index ≤ `index` whose term
   * is ≤ `term`, with its term. A leader probing with (index, term) can skip every entry
   * in between, since none of them can match.
   */
  findConflictByTerm(index: bigint, term: bigint): { index: bigint; term: bigint } {
    for (let i = index; i > 0n; i--) {
      const t = this.term(i);
      if (t === null) return { index: i, term: 0n };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0n, term: 0n };
  }

  append(ents: readonly Entry[]): bigint {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1n;
    assert(after >= this.committed, `append after ${after} does not overwrite committed ${this.committed}`);
    assert(after <= this.lastIndex(), `append after ${after} leaves no gap after ${this.lastIndex()}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Entries from i on, at most maxBytes (at least one). Null if i is compacted. */
  entriesFrom(i: bigint, maxBytes: number): Entry[] | null {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1n, maxBytes);
  }

  /** Entries in [lo, hi) within maxBytes (at least one); null if lo is compacted. */
  slice(lo: bigint, hi: bigint, maxBytes: number): Entry[] | null {
    assert(lo <= hi, `slice: lo ${lo} <= hi ${hi}`);
    assert(hi <= this.lastIndex() + 1n, `slice: hi ${hi} <= last ${this.lastIndex()} + 1`);
    if (lo < this.firstIndex()) return null;
    if (lo === hi) return [];
    let out: Entry[] = [];
    const off = this.unstable.offset;
    if (lo < off) {
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, minBig(hi, off), maxBytes);
      } catch (e) {
        if (isRaftError(e, 'ERR_COMPACTED')) return null;
        throw e;
      }
      // Storage stopped early for the size limit: the unstable part would not fit either.
      if (BigInt(stored.length) < minBig(hi, off) - lo) return stored;
      out = stored;
    }
    if (hi > off) {
      const u = this.unstable.slice(maxBig(lo, off), hi);
      out = out.length === 0 ? u : out.concat(u);
    }
    return limitBytes(out, maxBytes);
  }

  commitTo(toCommit: bigint): void {
    if (this.committed >= toCommit) return; // never decrease commit
    assert(toCommit <= this.lastIndex(), `commit ${toCommit} is within the log (last ${this.lastIndex()})`);
    this.committed = toCommit;
  }

  /** §5.4.2: commit `maxIndex` only if its entry is from the current term. */
  maybeCommit(maxIndex: bigint, term: bigint): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: bigint): void {
    if (i === 0n) return;
    assert(i <= this.committed, `applied ${i} <= committed ${this.committed}`);
    assert(i >= this.applied, `applied ${i} >= previous applied ${this.applied}`);
    this.applied = i;
  }

  stableTo(i: bigint, t: bigint): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: bigint): void {
    this.unstable.stableSnapTo(i);
  }

  unstableEntries(): readonly Entry[] {
    return this.unstable.entries;
  }

  hasNextCommittedEntries(): boolean {
    const off = maxBig(this.applied + 1n, this.firstIndex());
    return this.committed + 1n > off;
  }

  /** Committed entries not yet applied (they may still be unstable: the driver persists a Ready's entries before applying). */
  nextCommittedEntries(): Entry[] {
    const off = maxBig(this.applied + 1n, this.firstIndex());
    if (this.committed + 1n <= off) return [];
    const ents = this.slice(off, this.committed + 1n, this.maxApplyBytes);
    assert(ents !== null, 'committed, unapplied entries are not compacted');
    return ents;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(s: Snapshot): void {
    assert(s.meta.index > this.committed, `restored snapshot ${s.meta.index} is newer than committed ${this.committed}`);
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /** Sum of entry sizes in [lo, hi) (for flow control bookkeeping). */
  static bytes(ents: readonly Entry[]): number {
    let n = 0;
    for (const e of ents) n += entryBytes(e);
    return n;
  }
}
