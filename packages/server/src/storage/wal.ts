/**
 * The write-ahead log: the Raft log and hard state on disk, in segment files of
 * length+CRC records (see wal-record.ts for the record layout).
 *
 * Measured on the development machine (2 vCPU, ext4 on virtio; a bare 250-byte
 * pwrite+fdatasync takes ≈ 0.3 ms when the machine is quiet, 1–1.5 ms while the other
 * engineers' test runs load it), entries of 200 bytes, `node
 * packages/server/test/storage/wal-bench.js 2 5` (median and best of 5 runs of 2 s):
 *   - sequential append(1 entry)+sync: ≈ 2,500–3,300 pairs/s when quiet (300–400 µs per
 *     pair, the same as the bare pwrite+fdatasync: the WAL adds no measurable latency);
 *     900–1,400 pairs/s under load (bare fdatasync ≈ 1–1.5 ms then).
 *   - 1000 concurrent appenders each looping append(1)+await sync(): 120,000–250,000
 *     entries/s with ≈ 1000 entries per fdatasync (every appender rides each group
 *     commit); the limit is CPU (encoding ≈ 0.55 µs/entry, promise churn), not the disk.
 *   - batches of 1000 entries, append+sync in sequence: 170,000–190,000 entries/s under
 *     load (≈ 5.3 ms per batch of 226 KB).
 *   - preallocation: sequential pairs median 914/s with it vs 660/s without (same load);
 *     batch and concurrent cases equal within noise (zero-filling costs bandwidth that
 *     the cheaper fdatasync wins back). Raw pwrite+fdatasync, quiet machine: 4 KiB
 *     396 → 247 µs, 60 KB 826 → 421 µs, 240 KB 1668 → 741 µs with the blocks zeroed ahead.
 *     Hence on by default.
 *
 * Design points (etcd's wal package is the model):
 * - `append` only encodes into memory; `sync` writes everything buffered with ONE
 *   positional write and ONE fdatasync (group commit): at most one write+fdatasync is in
 *   flight, and every caller that arrives meanwhile shares the next one. The next flush
 *   starts on `setImmediate`, so everything appended during one turn of the event loop
 *   (e.g. the continuations of 1000 clients whose previous writes just became durable)
 *   goes out together.
 * - The current segment is zero-filled ahead of the write offset in the background
 *   (etcd preallocates 64 MiB with fallocate, which Node lacks). Overwriting blocks that
 *   already exist means fdatasync need not commit file-size/extent metadata (figures
 *   above; `fallocate` would not do: writes into its unwritten extents still commit
 *   metadata, measured no faster than extending). A zero length therefore marks the end
 *   of the written log.
 * - Segment files are `%016x-%016x.wal` (sequence, index of the first entry that may be
 *   in it = last index written before it + 1). A new segment begins with a metadata
 *   record, the latest hard state and the latest snapshot marker, so that older segments
 *   can be deleted once a snapshot covers them. New segments (and a new WAL directory)
 *   are created under a `.tmp` name, synced, renamed, and the directory fsynced, so a
 *   segment file that exists is never without its header.
 * - Recovery follows etcd: a torn record at the tail of the LAST segment is cut off
 *   (the WAL stays appendable); a bad record with a valid record anywhere after it, or in
 *   any older segment, or missing entries, is corruption: WalCorruptError, nothing on
 *   disk is changed ("a corrupt data dir is reported, never silently repaired").
 *
 * Known limits:
 * - "Valid record after the bad one" is searched byte by byte. A device that persists
 *   the sectors of ONE unacknowledged write out of order (a hole, then valid records of
 *   the same write) is therefore reported as corruption rather than cut off: safe, but
 *   it needs an operator. Telling the two apart needs write-batch framing (a record
 *   that closes each sync's write), not done yet.
 * - No lock against a second process opening the same WAL (Node has no flock).
 * - Rolling over to a new segment zero-fills its first 4 MiB in the flush path: one
 *   ~15 ms pause per segment (64 MiB of log).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { assert } from '../util/assert';
import { fsyncDir, isNotFound, writeAll, writeAllSync } from './fsutil';
import {
  RecordEncoder,
  RecordType,
  WalRecord,
  decodeRecordAt,
  findValidRecord,
  lastNonZeroByte,
} from './wal-record';

export const enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface LogEntry {
  readonly term: bigint;
  readonly index: bigint;
  readonly type: EntryType;
  readonly data: Buffer;
}

export interface HardState {
  readonly term: bigint;
  readonly vote: bigint;
  readonly commit: bigint;
}

export interface WalMetadata {
  readonly memberId: bigint;
  readonly clusterId: bigint;
}

export interface WalOptions {
  /** A segment is closed and a new one started once it holds at least this many bytes. Default 64 MiB. */
  segmentBytesMax?: number;
  /** Zero-fill the current segment ahead of the write offset in the background. Default true. */
  preallocate?: boolean;
  /**
   * Open segments with O_DSYNC, so each write is durable when it returns, instead of a write
   * followed by fdatasync. Default true: one trip to the thread pool per group commit instead
   * of two (measured: the hop between write and fdatasync cost 0.6–1.2 ms per commit on a
   * loaded 2-CPU machine; a bare O_DSYNC write 216–278 µs vs 335–340 µs for write+fdatasync).
   */
  dsync?: boolean;
  /** With dsync, small writes may be made on the event loop while writes are fast (INLINE_WRITE_BYTES_MAX). Default true. */
  inlineWrites?: boolean;
}

export interface WalSnapshotMarker {
  readonly index: bigint;
  readonly term: bigint;
}

export interface RecoveredWal {
  metadata: WalMetadata;
  hardState: HardState;
  /** Entries with index > fromIndex: ascending, contiguous, later overwrites applied. */
  entries: LogEntry[];
  /** Bytes of torn (non-zero) data cut off after the last good record of the last segment; 0 after a clean stop. */
  tornTailTruncatedBytes: number;
  /** The newest snapshot marker record found, if any (etcd checks the loaded snapshot against these). */
  lastSnapshotMarker: WalSnapshotMarker | null;
}

/** Counters for metrics and tests (etcd exports wal_fsync_duration_seconds). */
export interface WalStats {
  /** write syscalls carrying records (preallocation writes excluded). */
  writes: number;
  /** fdatasyncs of the data path (preallocation and rollover syncs excluded). */
  fdatasyncs: number;
  bytesWritten: number;
  segmentsCreated: number;
  segmentsReleased: number;
}

export class WalCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`wal: corrupt record in ${file} at offset ${offset}: ${reason}`);
    this.name = 'WalCorruptError';
  }
}

const SEGMENT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Zeros are written this far ahead of the write offset, in one background write. */
const PREALLOC_CHUNK_BYTES = 4 * 1024 * 1024;
/**
 * With O_DSYNC a small write may be made on the event loop (writeDurable): a durable write
 * of a few KB takes 0.2–0.4 ms here, less than the thread-pool round trip and promise turns
 * around it. Measured (2 cores, 256-byte puts, single member, three alternating pairs of fresh
 * servers): 1 client 875–1,039 → 1,087–1,201 puts/s; 100 clients/10 conns unchanged within
 * the noise (12,746–14,646 puts/s either way). It blocks the loop for
 * the write, so only while writes are fast: the running average of the recent durable writes
 * must stay under INLINE_WRITE_AVG_MS_MAX, else (a slow or busy disk) they go to the pool and
 * the loop keeps serving reads, heartbeats and elections while the disk works.
 */
const INLINE_WRITE_BYTES_MAX = 64 * 1024;
const INLINE_WRITE_AVG_MS_MAX = 1;
const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const ZERO_HARD_STATE: HardState = Object.freeze({ term: 0n, vote: 0n, commit: 0n });

let zeroChunk: Buffer | null = null;
function zeros(bytes: number): Buffer {
  if (zeroChunk === null) zeroChunk = Buffer.alloc(PREALLOC_CHUNK_BYTES);
  assert(bytes <= zeroChunk.length, 'zero-fill is at most one chunk');
  return zeroChunk.subarray(0, bytes);
}

function hex16(v: bigint | number): string {
  return BigInt(v).toString(16).padStart(16, '0');
}

export function segmentName(seq: number, firstIndex: bigint): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

interface Segment {
  readonly seq: number;
  /** Every live entry in the segments before this one has a smaller index. */
  readonly firstIndex: bigint;
  readonly file: string;
}

function listSegments(dir: string, names: readonly string[]): Segment[] {
  const segments: Segment[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m === null) continue;
    const seq = Number.parseInt(m[1], 16);
    assert(Number.isSafeInteger(seq), `segment sequence of ${name} is a safe integer`);
    segments.push({ seq, firstIndex: BigInt(`0x${m[2]}`), file: path.join(dir, name) });
  }
  segments.sort((a, b) => a.seq - b.seq);
  return segments;
}

interface Waiter {
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Term runs: term of every index from `index` up to the next run's index (exclusive). */
interface TermRun {
  readonly index: bigint;
  readonly term: bigint;
}

interface WalState {
  readonly dir: string;
  readonly metadata: WalMetadata;
  readonly segmentBytesMax: number;
  readonly preallocate: boolean;
  readonly dsync: boolean;
  readonly inlineWrites: boolean;
  readonly segments: Segment[];
  readonly fh: fsp.FileHandle;
  readonly writeOffset: number;
  readonly zeroedEnd: number;
  readonly lastIndex: bigint;
  readonly termRuns: TermRun[];
  readonly hardState: HardState;
  readonly marker: WalSnapshotMarker | null;
}

/**
 * Replays the records of all segments, in order, into the log they describe.
 * Invariant kept between records: the log is (…unknown…, base] ++ entries-in-memory
 * up to `last`; entries ≤ base are not in the WAL (released, or before a snapshot).
 */
class Replay {
  readonly entries: LogEntry[] = [];
  /** Log indexes ≤ base are not available from the WAL. */
  base: bigint;
  /** Last index of the log so far. */
  last: bigint;
  lastTerm: bigint | undefined = undefined;
  metadata: WalMetadata | null = null;
  hardState: HardState = ZERO_HARD_STATE;
  marker: WalSnapshotMarker | null = null;

  constructor(
    readonly fromIndex: bigint,
    firstSegmentIndex: bigint,
  ) {
    assert(fromIndex >= 0n, 'fromIndex is not negative');
    assert(firstSegmentIndex >= 1n, 'segment first index is at least 1');
    this.base = firstSegmentIndex - 1n;
    this.last = this.base;
  }

  apply(rec: WalRecord, file: string, offset: number, firstInSegment: boolean): void {
    const corrupt = (reason: string) => new WalCorruptError(file, offset, reason);
    if (firstInSegment && rec.type !== RecordType.Metadata) throw corrupt('segment does not begin with a metadata record');
    switch (rec.type) {
      case RecordType.Metadata:
        if (!firstInSegment) throw corrupt('metadata record in the middle of a segment');
        if (this.metadata === null) this.metadata = { memberId: rec.memberId, clusterId: rec.clusterId };
        else if (this.metadata.memberId !== rec.memberId || this.metadata.clusterId !== rec.clusterId) {
          throw corrupt(`metadata (member ${rec.memberId.toString(16)}, cluster ${rec.clusterId.toString(16)}) differs from the first segment's`);
        }
        return;
      case RecordType.Entry: {
        const e = rec.entry;
        if (e.index < 1n) throw corrupt('entry index 0');
        if (e.index > this.last + 1n) throw corrupt(`entry index ${e.index} leaves a gap after index ${this.last}`);
        if (e.index <= this.last) {
          // Raft §5.3: a conflicting suffix was overwritten; the later record wins.
          if (e.index <= this.base) this.base = e.index - 1n;
          const keep = this.entries.length === 0 ? 0 : Number(e.index - this.entries[0].index);
          if (keep >= 0 && keep < this.entries.length) {
            const old = this.entries[keep];
            if (e.term < old.term) throw corrupt(`entry ${e.index} overwritten with an older term (${e.term} < ${old.term})`);
            this.entries.length = keep;
          } else if (keep < 0) {
            this.entries.length = 0;
          }
          this.last = e.index - 1n;
          this.lastTerm = this.entries.length > 0 ? this.entries[this.entries.length - 1].term : undefined;
        }
        if (this.lastTerm !== undefined && e.term < this.lastTerm) {
          throw corrupt(`entry ${e.index} has term ${e.term}, older than the previous entry's ${this.lastTerm}`);
        }
        this.last = e.index;
        this.lastTerm = e.term;
        if (e.index > this.fromIndex) {
          const prev = this.entries.length > 0 ? this.entries[this.entries.length - 1] : undefined;
          assert(prev === undefined || prev.index + 1n === e.index, 'replayed entries are contiguous');
          // Copy: the decoded data is a view into the whole segment file buffer.
          this.entries.push({ term: e.term, index: e.index, type: e.type as EntryType, data: Buffer.from(e.data) });
        }
        return;
      }
      case RecordType.HardState:
        this.hardState = rec.hardState;
        return;
      case RecordType.SnapshotMarker:
        this.marker = { index: rec.index, term: rec.term };
        if (rec.index > this.last || this.termOf(rec.index) !== rec.term) {
          // The log was replaced by a snapshot (a follower catching up, Raft §7): the
          // entries before it are in the snapshot, not in the WAL.
          this.base = rec.index;
          this.last = rec.index;
          this.lastTerm = rec.term;
          this.entries.length = 0;
        }
        return;
    }
  }

  /** The term of a replayed entry still held in memory; the marker's own term otherwise (nothing to compare). */
  private termOf(index: bigint): bigint | undefined {
    if (this.entries.length === 0) return this.marker?.term;
    const k = Number(index - this.entries[0].index);
    if (k < 0 || k >= this.entries.length) return this.marker?.term;
    return this.entries[k].term;
  }

  /** Entries with index > fromIndex must all be here. */
  check(firstFile: string): void {
    if (this.base > this.fromIndex) {
      throw new WalCorruptError(
        firstFile,
        0,
        `entries ${this.fromIndex + 1n}..${this.base} are missing (the WAL starts after index ${this.fromIndex}; is the snapshot at index ${this.fromIndex} too old?)`,
      );
    }
    const lastIndex = this.last > this.fromIndex ? this.last : this.fromIndex;
    if (this.hardState.commit > lastIndex) {
      throw new WalCorruptError(firstFile, 0, `hard state commit ${this.hardState.commit} is beyond the last index ${lastIndex}`);
    }
    const first = this.entries[0];
    assert(first === undefined || first.index === this.fromIndex + 1n, 'recovered entries start right after fromIndex');
  }
}

interface ScanResult {
  /** Offset just past the last good record. */
  goodEnd: number;
  /** Bytes from goodEnd to the last non-zero byte (0: only zeros or nothing follow). */
  tornBytes: number;
}

function scanSegment(
  buf: Buffer,
  file: string,
  isLast: boolean,
  onRecord: (rec: WalRecord, offset: number, firstInSegment: boolean) => void,
): ScanResult {
  let off = 0;
  let first = true;
  // Bound: every iteration consumes a record (at least 9 bytes) or returns/throws.
  for (;;) {
    const r = decodeRecordAt(buf, off);
    if (r.kind === 'record') {
      assert(r.next > off, 'decoding advances');
      onRecord(r.record, off, first);
      first = false;
      off = r.next;
      continue;
    }
    if (r.kind === 'eof') {
      if (first) throw new WalCorruptError(file, off, 'segment has no records');
      return { goodEnd: off, tornBytes: 0 };
    }
    const lastNonZero = lastNonZeroByte(buf, off);
    if (r.kind === 'zero' && lastNonZero < 0) {
      // Preallocated zeros: the end of the written log.
      if (first) throw new WalCorruptError(file, off, 'segment has no records');
      return { goodEnd: off, tornBytes: 0 };
    }
    const reason = r.kind === 'zero' ? 'zero record length followed by data' : r.reason;
    if (!isLast) throw new WalCorruptError(file, off, `${reason} (not the last segment)`);
    const valid = findValidRecord(buf, off + 1, lastNonZero);
    if (valid >= 0) throw new WalCorruptError(file, off, `${reason}; a valid record follows at offset ${valid}`);
    if (first) throw new WalCorruptError(file, off, `${reason}; segment has no valid records`);
    return { goodEnd: off, tornBytes: lastNonZero + 1 - off };
  }
}

/** fs.open flags for a segment: 'w+' or 'r+', with O_DSYNC when every write must be durable on return. */
function openFlags(mode: 'w+' | 'r+', dsync: boolean): string | number {
  if (!dsync) return mode;
  const c = fs.constants;
  return mode === 'w+' ? c.O_RDWR | c.O_CREAT | c.O_TRUNC | c.O_DSYNC : c.O_RDWR | c.O_DSYNC;
}

export class Wal {
  private readonly dir: string;
  private readonly metadata: WalMetadata;
  private readonly segmentBytesMax: number;
  private readonly preallocate: boolean;
  private readonly dsync: boolean;
  private readonly inlineWrites: boolean;
  private readonly segments: Segment[];

  private fh: fsp.FileHandle;
  private writeOffset: number;
  /** Bytes [writeOffset, zeroedEnd) of the current segment are known zeros. */
  private zeroedEnd: number;
  private zeroing: Promise<void> | null = null;
  private zeroingStart = 0;

  // The log as appended (in memory, may be ahead of the disk).
  private lastIdx: bigint;
  private termRuns: TermRun[];
  private hardState: HardState;
  private marker: WalSnapshotMarker | null;
  private snapshotIndexDurable: bigint;

  // The log as written to the current segment (copied into a new segment's header).
  private writtenLastIndex: bigint;
  private writtenHardState: HardState;
  private writtenMarker: WalSnapshotMarker | null;

  // Group commit: appends bump appendedSeq; a flush makes everything up to a seq durable.
  private encoder = new RecordEncoder();
  private spareEncoder = new RecordEncoder();
  private appendedSeq = 0;
  private durableSeq = 0;
  private readonly waiters: Waiter[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> | null = null;

  private failure: Error | null = null;
  private closed = false;
  private readonly counters: WalStats = { writes: 0, fdatasyncs: 0, bytesWritten: 0, segmentsCreated: 0, segmentsReleased: 0 };

  private constructor(s: WalState) {
    assert(s.segments.length >= 1, 'a WAL has at least one segment');
    assert(s.writeOffset <= s.zeroedEnd, 'zeroed region starts at or after the write offset');
    this.dir = s.dir;
    this.metadata = s.metadata;
    this.segmentBytesMax = s.segmentBytesMax;
    this.preallocate = s.preallocate;
    this.dsync = s.dsync;
    this.inlineWrites = s.inlineWrites;
    this.segments = s.segments;
    this.fh = s.fh;
    this.writeOffset = s.writeOffset;
    this.zeroedEnd = s.zeroedEnd;
    this.lastIdx = s.lastIndex;
    this.termRuns = s.termRuns;
    this.hardState = s.hardState;
    this.marker = s.marker;
    this.snapshotIndexDurable = s.marker?.index ?? 0n;
    this.writtenLastIndex = s.lastIndex;
    this.writtenHardState = s.hardState;
    this.writtenMarker = s.marker;
  }

  private static options(opts: WalOptions | undefined): { segmentBytesMax: number; preallocate: boolean; dsync: boolean; inlineWrites: boolean } {
    const segmentBytesMax = opts?.segmentBytesMax ?? SEGMENT_BYTES_MAX_DEFAULT;
    if (!Number.isSafeInteger(segmentBytesMax) || segmentBytesMax < 64) {
      throw new RangeError(`wal: segmentBytesMax must be an integer >= 64, got ${segmentBytesMax}`);
    }
    return { segmentBytesMax, preallocate: opts?.preallocate ?? true, dsync: opts?.dsync ?? true, inlineWrites: opts?.inlineWrites ?? true };
  }

  static exists(dir: string): boolean {
    try {
      return fs.readdirSync(dir).some((n) => SEGMENT_NAME.test(n));
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Creates a new WAL in an empty/nonexistent dir with the metadata record first. */
  static async create(dir: string, metadata: WalMetadata, opts?: WalOptions): Promise<Wal> {
    const o = Wal.options(opts);
    let existing: string[] = [];
    try {
      existing = await fsp.readdir(dir);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (existing.length > 0) throw new Error(`wal: cannot create a WAL in ${dir}: directory is not empty`);
    // etcd's way: build the WAL in "<dir>.tmp", then rename it into place, so a crash
    // never leaves a directory that looks like a WAL but lacks its first record.
    const tmpDir = `${dir}.tmp`;
    await fsp.rm(tmpDir, { recursive: true, force: true });
    await fsp.mkdir(tmpDir, { recursive: true, mode: 0o700 });
    const enc = new RecordEncoder();
    enc.metadata(metadata.memberId, metadata.clusterId);
    const header = Buffer.from(enc.bytes());
    const name = segmentName(0, 1n);
    const fh = await fsp.open(path.join(tmpDir, name), openFlags('w+', o.dsync), 0o600);
    try {
      const prealloc = o.preallocate ? Math.min(PREALLOC_CHUNK_BYTES, Math.max(o.segmentBytesMax - header.length, 0)) : 0;
      await writeAll(fh, prealloc > 0 ? Buffer.concat([header, zeros(prealloc)]) : header, 0);
      await fh.sync();
      await fsyncDir(tmpDir);
      await fsp.rmdir(dir).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      await fsp.rename(tmpDir, dir);
      await fsyncDir(path.dirname(dir));
      const wal = new Wal({
        dir,
        metadata: { memberId: metadata.memberId, clusterId: metadata.clusterId },
        ...o,
        segments: [{ seq: 0, firstIndex: 1n, file: path.join(dir, name) }],
        fh,
        writeOffset: header.length,
        zeroedEnd: header.length + prealloc,
        lastIndex: 0n,
        termRuns: [],
        hardState: ZERO_HARD_STATE,
        marker: null,
      });
      wal.counters.segmentsCreated++;
      return wal;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Opens an existing WAL, reads every segment, returns entries with index > fromIndex (the snapshot's index). */
  static async open(dir: string, fromIndex: bigint, opts?: WalOptions): Promise<{ wal: Wal; recovered: RecoveredWal }> {
    const o = Wal.options(opts);
    if (fromIndex < 0n) throw new RangeError(`wal: fromIndex must not be negative, got ${fromIndex}`);
    const names = await fsp.readdir(dir);
    const segments = listSegments(dir, names);
    if (segments.length === 0) throw new Error(`wal: no WAL segments in ${dir}`);
    for (let i = 1; i < segments.length; i++) {
      if (segments[i].seq !== segments[i - 1].seq + 1) {
        throw new WalCorruptError(segments[i].file, 0, `segment sequence ${segments[i - 1].seq + 1} is missing`);
      }
    }
    const replay = new Replay(fromIndex, segments[0].firstIndex < 1n ? 1n : segments[0].firstIndex);
    let last: ScanResult = { goodEnd: 0, tornBytes: 0 };
    let lastSize = 0;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const buf = await fsp.readFile(seg.file);
      last = scanSegment(buf, seg.file, i === segments.length - 1, (rec, off, first) => replay.apply(rec, seg.file, off, first));
      lastSize = buf.length;
    }
    replay.check(segments[0].file);
    assert(replay.metadata !== null, 'every segment starts with metadata');

    // Everything checked: only now touch the disk.
    const tail = segments[segments.length - 1];
    const fh = await fsp.open(tail.file, openFlags('r+', o.dsync));
    let zeroedEnd = lastSize;
    try {
      if (last.tornBytes > 0) {
        await fh.truncate(last.goodEnd);
        await fh.sync();
        zeroedEnd = last.goodEnd;
      }
      for (const n of names) if (n.endsWith('.wal.tmp')) await fsp.rm(path.join(dir, n), { force: true });
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }

    const lastIndex = replay.last > fromIndex ? replay.last : fromIndex;
    const termRuns: TermRun[] = [];
    for (const e of replay.entries) if (termRuns.length === 0 || termRuns[termRuns.length - 1].term !== e.term) termRuns.push({ index: e.index, term: e.term });
    if (termRuns.length === 0 && replay.marker !== null && replay.marker.index === lastIndex) termRuns.push({ index: lastIndex, term: replay.marker.term });
    const wal = new Wal({
      dir,
      metadata: replay.metadata,
      ...o,
      segments,
      fh,
      writeOffset: last.goodEnd,
      zeroedEnd,
      lastIndex,
      termRuns,
      hardState: replay.hardState,
      marker: replay.marker,
    });
    if (fromIndex > replay.last) {
      // The snapshot is newer than the log (a follower saved the leader's snapshot file
      // and crashed before its marker record was durable). Record the jump before the
      // next entries, or the next recovery would see a gap. Term 0: not known here.
      wal.encoder.snapshotMarker(fromIndex, 0n);
      wal.appendedSeq++;
    }
    return {
      wal,
      recovered: {
        metadata: replay.metadata,
        hardState: replay.hardState,
        entries: replay.entries,
        tornTailTruncatedBytes: last.tornBytes,
        lastSnapshotMarker: replay.marker,
      },
    };
  }

  lastIndex(): bigint {
    return this.lastIdx;
  }

  stats(): Readonly<WalStats> {
    return { ...this.counters };
  }

  /**
   * Buffers entries (and optionally a new hard state) in memory; synchronous, cheap.
   * An entry whose index is ≤ the last appended one truncates the log suffix from that
   * index (Raft §5.3); the overwrite is a record like any other and wins on replay.
   */
  append(entries: readonly LogEntry[], hardState?: HardState): void {
    this.checkWritable();
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k];
      if (k > 0 && !(e.index === entries[k - 1].index + 1n)) assert(false, `entries of one append are contiguous (${entries[k - 1].index} then ${e.index})`);
      this.appendEntry(e);
    }
    if (hardState !== undefined) {
      const prev = this.hardState;
      if (!(hardState.term >= prev.term)) assert(false, `hard state term never decreases (${prev.term} -> ${hardState.term})`);
      // Raft §5.2: a member votes for at most one candidate in a given term.
      if (!(hardState.term > prev.term || prev.vote === 0n || hardState.vote === prev.vote)) assert(false, `vote changes within term ${hardState.term} (${prev.vote} -> ${hardState.vote})`);
      if (!(hardState.commit >= prev.commit)) assert(false, `commit index never decreases (${prev.commit} -> ${hardState.commit})`);
      if (!(hardState.commit <= this.lastIdx)) assert(false, `commit index ${hardState.commit} is within the log (last index ${this.lastIdx})`);
      this.encoder.hardState(hardState);
      this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
    }
    if (entries.length > 0 || hardState !== undefined) this.appendedSeq++;
  }

  private appendEntry(e: LogEntry): void {
    if (!(e.index >= 1n)) assert(false, `entry index ${e.index} is at least 1`);
    if (!(e.term >= 1n)) assert(false, `entry ${e.index} has a term (${e.term}) of at least 1`);
    if (!(e.type === EntryType.Normal || e.type === EntryType.ConfChange)) assert(false, `entry ${e.index} has a known type (${e.type})`);
    if (!(e.index <= this.lastIdx + 1n)) assert(false, `entry index ${e.index} leaves no gap after the last index ${this.lastIdx}`);
    if (e.index <= this.lastIdx) {
      // Raft §5.3: "If an existing entry conflicts with a new one (same index but
      // different terms), delete the existing entry and all that follow it." Committed
      // entries never conflict (Leader Completeness, §5.4).
      if (!(e.index > this.hardState.commit)) assert(false, `entry ${e.index} overwritten is not committed (commit ${this.hardState.commit})`);
      if (!(e.index > (this.marker?.index ?? 0n))) assert(false, `entry ${e.index} overwritten is not covered by the snapshot at ${this.marker?.index}`);
      const old = this.termAt(e.index);
      if (!(old === undefined || e.term >= old)) assert(false, `entry ${e.index} is overwritten by a term (${e.term}) not older than before (${old})`);
      while (this.termRuns.length > 0 && this.termRuns[this.termRuns.length - 1].index >= e.index) this.termRuns.pop();
    }
    const prevTerm = this.termAt(e.index - 1n);
    if (!(prevTerm === undefined || e.term >= prevTerm)) assert(false, `log terms never decrease (entry ${e.index}: ${prevTerm} -> ${e.term})`);
    const lastRun = this.termRuns[this.termRuns.length - 1];
    if (lastRun === undefined || lastRun.term !== e.term) this.termRuns.push({ index: e.index, term: e.term });
    this.lastIdx = e.index;
    this.encoder.entry(e);
  }

  /** Term of the entry at `index`, when this WAL knows it. */
  private termAt(index: bigint): bigint | undefined {
    if (index > this.lastIdx || index < 1n) return undefined;
    for (let i = this.termRuns.length - 1; i >= 0; i--) if (this.termRuns[i].index <= index) return this.termRuns[i].term;
    return undefined;
  }

  /**
   * Writes everything buffered so far and fdatasyncs; resolves when durable. Calls that
   * arrive while a write is in flight share the next one (group commit).
   */
  sync(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('wal: closed'));
    const target = this.appendedSeq;
    if (target <= this.durableSeq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing !== null) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: gather everything appended in this turn of the loop.
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.failure !== null || this.flushing !== null) return;
      this.flushing = this.flushOnce()
        .catch((err: unknown) => this.fail(err))
        .finally(() => {
          this.flushing = null;
          if (this.failure === null && this.waiters.length > 0) this.scheduleFlush();
        });
    });
  }

  /** Running average of the durable writes' wall time (ms), for choosing where to write. */
  private writeAvgMs = 0;

  /** Writes `data` at the write offset, on the event loop when that is cheaper (see INLINE_WRITE_BYTES_MAX). */
  private async writeDurable(data: Buffer): Promise<void> {
    const t0 = performance.now();
    if (this.dsync && this.inlineWrites && data.length <= INLINE_WRITE_BYTES_MAX && this.writeAvgMs < INLINE_WRITE_AVG_MS_MAX) {
      writeAllSync(this.fh.fd, data, this.writeOffset);
    } else {
      await writeAll(this.fh, data, this.writeOffset);
    }
    this.writeAvgMs += (performance.now() - t0 - this.writeAvgMs) / 8;
  }

  private async flushOnce(): Promise<void> {
    const target = this.appendedSeq;
    const lastIndex = this.lastIdx;
    const hardState = this.hardState;
    const marker = this.marker;
    const data = this.encoder.bytes();
    // Swap encoders: appends from now on go to the other buffer while this one is written.
    const writing = this.encoder;
    this.encoder = this.spareEncoder;
    this.encoder.reset();
    this.spareEncoder = writing;
    if (data.length > 0) {
      if (this.zeroing !== null && this.zeroingStart < this.writeOffset + data.length) await this.zeroing;
      if (this.failure !== null) throw this.failure;
      await this.writeDurable(data);
      this.counters.writes++;
      this.counters.bytesWritten += data.length;
      this.writeOffset += data.length;
      if (this.zeroedEnd < this.writeOffset) this.zeroedEnd = this.writeOffset;
      // With O_DSYNC the write itself was durable; the counter counts durability points either way.
      if (!this.dsync) await this.fh.datasync();
      this.counters.fdatasyncs++;
    }
    this.writtenLastIndex = lastIndex;
    this.writtenHardState = hardState;
    this.writtenMarker = marker;
    assert(target >= this.durableSeq, 'durable sequence never goes back');
    this.durableSeq = target;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n].target <= target) n++;
    const done = this.waiters.splice(0, n);
    for (const w of done) w.resolve();
    if (this.writeOffset >= this.segmentBytesMax) await this.cut();
    else this.maybeZeroAhead();
  }

  /** Starts zero-filling the next chunk of the current segment if the zeroed region runs short. */
  private maybeZeroAhead(): void {
    if (!this.preallocate || this.zeroing !== null || this.closed) return;
    if (this.zeroedEnd - this.writeOffset >= PREALLOC_CHUNK_BYTES / 2) return;
    const limit = this.segmentBytesMax;
    if (this.zeroedEnd >= limit) return;
    const start = this.zeroedEnd;
    const bytes = Math.min(PREALLOC_CHUNK_BYTES, limit - start);
    const fh = this.fh;
    this.zeroingStart = start;
    this.zeroing = (async () => {
      await writeAll(fh, zeros(bytes), start);
      await fh.datasync();
    })().then(
      () => {
        if (this.fh === fh && this.zeroedEnd < start + bytes) this.zeroedEnd = start + bytes;
        this.zeroing = null;
      },
      (err: unknown) => {
        this.zeroing = null;
        this.fail(err);
      },
    );
  }

  /** Closes the current segment and starts the next one (runs inside a flush). */
  private async cut(): Promise<void> {
    if (this.zeroing !== null) await this.zeroing;
    if (this.failure !== null) throw this.failure;
    const prev = this.segments[this.segments.length - 1];
    const old = this.fh;
    // Drop the preallocated zeros of the finished segment.
    await old.truncate(this.writeOffset);
    await old.sync();
    const seq = prev.seq + 1;
    const firstIndex = this.writtenLastIndex + 1n;
    const file = path.join(this.dir, segmentName(seq, firstIndex));
    const enc = new RecordEncoder();
    enc.metadata(this.metadata.memberId, this.metadata.clusterId);
    enc.hardState(this.writtenHardState);
    if (this.writtenMarker !== null) enc.snapshotMarker(this.writtenMarker.index, this.writtenMarker.term);
    const header = enc.bytes();
    const prealloc = this.preallocate ? Math.min(PREALLOC_CHUNK_BYTES, Math.max(this.segmentBytesMax - header.length, 0)) : 0;
    const tmp = `${file}.tmp`;
    const fh = await fsp.open(tmp, openFlags('w+', this.dsync), 0o600);
    try {
      await writeAll(fh, prealloc > 0 ? Buffer.concat([header, zeros(prealloc)]) : Buffer.from(header), 0);
      await fh.sync();
      await fsp.rename(tmp, file);
      await fsyncDir(this.dir);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    this.segments.push({ seq, firstIndex, file });
    this.fh = fh;
    this.writeOffset = header.length;
    this.zeroedEnd = header.length + prealloc;
    this.counters.segmentsCreated++;
    await old.close();
  }

  private fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    // After a failed write or fdatasync the file's state is unknown (fsyncgate): never
    // retry, fail everything from now on; the member must stop (etcd panics).
    if (this.failure === null) this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  private checkWritable(): void {
    if (this.failure !== null) throw this.failure;
    assert(!this.closed, 'the WAL is open');
  }

  /**
   * Records that a snapshot at (index, term) exists and waits until the record is
   * durable. Does not delete anything: call releaseTo() afterwards (releasing to an
   * older snapshot's index keeps the WAL able to replay from it if the newest snapshot
   * file turns out corrupt).
   */
  async saveSnapshotMarker(index: bigint, term: bigint): Promise<void> {
    this.checkWritable();
    const prev = this.marker;
    assert(prev === null || index >= prev.index, `snapshot index never decreases (${prev?.index} -> ${index})`);
    assert(prev === null || term >= prev.term, `snapshot term never decreases (${prev?.term} -> ${term})`);
    const logTerm = this.termAt(index);
    this.encoder.snapshotMarker(index, term);
    this.marker = { index, term };
    if (index > this.lastIdx || (logTerm !== undefined && logTerm !== term)) {
      // The snapshot replaces the log (a follower installing the leader's snapshot). Raft §7:
      // "If existing log entry has same index and term as snapshot's last included entry,
      // retain log entries following it ... Discard the entire log" otherwise. A conflicting
      // entry is never committed (Leader Completeness), so discarding it loses nothing.
      assert(logTerm === undefined || index > this.hardState.commit || logTerm === term, `a committed entry (${index}) conflicts with the snapshot's term ${term}`);
      this.lastIdx = index;
      this.termRuns = [{ index, term }];
    }
    this.appendedSeq++;
    await this.sync();
    if (index > this.snapshotIndexDurable) this.snapshotIndexDurable = index;
  }

  /**
   * Deletes the segments whose live entries are all ≤ index (never the segment being
   * written). `index` must be covered by a durable snapshot marker.
   */
  async releaseTo(index: bigint): Promise<void> {
    this.checkWritable();
    assert(index <= this.snapshotIndexDurable, `releaseTo(${index}) is covered by a durable snapshot marker (${this.snapshotIndexDurable})`);
    let n = 0;
    // Segment i holds only entries < segments[i + 1].firstIndex.
    while (n + 1 < this.segments.length && this.segments[n + 1].firstIndex - 1n <= index) n++;
    const victims = this.segments.splice(0, n);
    for (const v of victims) {
      // Oldest first, each unlink made durable before the next, so a crash leaves a
      // contiguous run of segments behind.
      await fsp.rm(v.file, { force: true });
      await fsyncDir(this.dir);
      this.counters.segmentsReleased++;
    }
    // Forget term runs wholly below the released range (keep the one covering index).
    let drop = 0;
    while (drop + 1 < this.termRuns.length && this.termRuns[drop + 1].index <= index) drop++;
    if (drop > 0) this.termRuns.splice(0, drop);
  }

  /** Makes everything appended durable, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    let err: unknown = null;
    try {
      await this.sync();
      if (this.flushing !== null) await this.flushing;
      if (this.zeroing !== null) await this.zeroing;
      if (this.failure !== null) throw this.failure;
    } catch (e) {
      err = e;
    }
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    if (err !== null) throw err;
  }
}
