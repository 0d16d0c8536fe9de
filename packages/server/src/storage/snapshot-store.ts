/**
 * Snapshot files: `<dir>/%016x-%016x.snap` (term-index, etcd's naming), each written
 * atomically (tmp file, fsync, rename, fsync dir) with a CRC header, the newest `retain`
 * kept. Loading takes the newest file whose CRC checks; a corrupt one is reported and
 * left in place (a corrupt data dir is reported, never silently repaired).
 *
 * File layout (little-endian):
 *   "CSNP" | u32 crc32(bytes 8..end) | u64 term | u64 index | u64 dataLength | data
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { assert } from '../util/assert';
import { fsyncDir, isNotFound, writeAll } from './fsutil';

export interface SnapshotMeta {
  index: bigint;
  term: bigint;
}

export interface SnapshotStoreOptions {
  /** How many snapshot files to keep (newest first). Default 5, as etcd. */
  retain?: number;
}

/** Every snapshot file present is corrupt: the data dir needs an operator. */
export class SnapshotCorruptError extends Error {
  constructor(readonly files: readonly string[]) {
    super(`snap: no valid snapshot: every snapshot file is corrupt (${files.join(', ')})`);
    this.name = 'SnapshotCorruptError';
  }
}

const MAGIC = Buffer.from('CSNP', 'latin1');
const HEADER_BYTES = 4 + 4 + 8 + 8 + 8;
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const RETAIN_DEFAULT = 5;
const U64_MAX = (1n << 64n) - 1n;

function snapName(meta: SnapshotMeta): string {
  return `${meta.term.toString(16).padStart(16, '0')}-${meta.index.toString(16).padStart(16, '0')}.snap`;
}

interface SnapFile {
  readonly name: string;
  readonly term: bigint;
  readonly index: bigint;
}

/** Newest first: by index, then term. */
function byNewest(a: SnapFile, b: SnapFile): number {
  if (a.index !== b.index) return a.index > b.index ? -1 : 1;
  if (a.term !== b.term) return a.term > b.term ? -1 : 1;
  return 0;
}

export function encodeSnapshotFile(meta: SnapshotMeta, data: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_BYTES + data.length);
  MAGIC.copy(buf, 0);
  buf.writeBigUInt64LE(meta.term, 8);
  buf.writeBigUInt64LE(meta.index, 16);
  buf.writeBigUInt64LE(BigInt(data.length), 24);
  data.copy(buf, HEADER_BYTES);
  buf.writeUInt32LE(zlib.crc32(buf.subarray(8)), 4);
  return buf;
}

/** The snapshot in `buf`, or the reason it is not one. */
export function decodeSnapshotFile(buf: Buffer): { meta: SnapshotMeta; data: Buffer } | string {
  if (buf.length < HEADER_BYTES) return `file of ${buf.length} bytes is shorter than the header`;
  if (!buf.subarray(0, 4).equals(MAGIC)) return 'bad magic';
  if (zlib.crc32(buf.subarray(8)) !== buf.readUInt32LE(4)) return 'crc mismatch';
  const dataLength = buf.readBigUInt64LE(24);
  if (dataLength !== BigInt(buf.length - HEADER_BYTES)) return `data length ${dataLength} does not match the file size`;
  return { meta: { term: buf.readBigUInt64LE(8), index: buf.readBigUInt64LE(16) }, data: buf.subarray(HEADER_BYTES) };
}

export class SnapshotStore {
  private readonly retain: number;

  constructor(
    private readonly dir: string /* <data-dir>/member/snap */,
    opts?: SnapshotStoreOptions,
  ) {
    const retain = opts?.retain ?? RETAIN_DEFAULT;
    if (!Number.isSafeInteger(retain) || retain < 1) throw new RangeError(`snap: retain must be an integer >= 1, got ${retain}`);
    this.retain = retain;
  }

  private async list(): Promise<{ snaps: SnapFile[]; tmps: string[] }> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if (isNotFound(err)) return { snaps: [], tmps: [] };
      throw err;
    }
    const snaps: SnapFile[] = [];
    const tmps: string[] = [];
    for (const name of names) {
      const m = SNAP_NAME.exec(name);
      if (m !== null) snaps.push({ name, term: BigInt(`0x${m[1]}`), index: BigInt(`0x${m[2]}`) });
      else if (name.endsWith('.snap.tmp')) tmps.push(name);
    }
    snaps.sort(byNewest);
    return { snaps, tmps };
  }

  /**
   * Writes `<dir>/%016x-%016x.snap` (term-index) atomically: tmp file + CRC header +
   * fsync + rename + fsync dir. Keeps the newest `retain` files, deleting older ones.
   */
  async save(meta: SnapshotMeta, data: Buffer): Promise<void> {
    assert(meta.index >= 0n && meta.index <= U64_MAX, 'snapshot index fits in u64');
    assert(meta.term >= 0n && meta.term <= U64_MAX, 'snapshot term fits in u64');
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const name = snapName(meta);
    const file = path.join(this.dir, name);
    const tmp = `${file}.tmp`;
    const bytes = encodeSnapshotFile(meta, data);
    const fh = await fsp.open(tmp, 'w', 0o600);
    try {
      await writeAll(fh, bytes, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    await fsyncDir(this.dir);

    const { snaps, tmps } = await this.list();
    assert(
      snaps.some((s) => s.name === name),
      'the snapshot just saved is listed',
    );
    for (const s of snaps.slice(this.retain)) await fsp.rm(path.join(this.dir, s.name), { force: true });
    // Leftovers of a save that crashed before its rename.
    for (const t of tmps) await fsp.rm(path.join(this.dir, t), { force: true });
  }

  /**
   * Newest snapshot whose CRC checks; corrupt newer ones are listed in `skipped` (never
   * deleted) and the next older is used. null when there is no snapshot file at all;
   * SnapshotCorruptError when there are some and none is valid.
   */
  async loadNewest(): Promise<{ meta: SnapshotMeta; data: Buffer; skipped: string[] } | null> {
    const { snaps } = await this.list();
    const skipped: string[] = [];
    for (const s of snaps) {
      const file = path.join(this.dir, s.name);
      let buf: Buffer;
      try {
        buf = await fsp.readFile(file);
      } catch (err) {
        if (isNotFound(err)) continue; // deleted by a concurrent save's retention
        throw err;
      }
      const decoded = decodeSnapshotFile(buf);
      if (typeof decoded === 'string') {
        skipped.push(`${file}: ${decoded}`);
        continue;
      }
      if (decoded.meta.index !== s.index || decoded.meta.term !== s.term) {
        skipped.push(`${file}: header says term ${decoded.meta.term} index ${decoded.meta.index}, name disagrees`);
        continue;
      }
      return { meta: decoded.meta, data: decoded.data, skipped };
    }
    if (skipped.length > 0) throw new SnapshotCorruptError(skipped);
    return null;
  }
}
