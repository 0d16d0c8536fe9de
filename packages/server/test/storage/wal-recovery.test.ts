/**
 * Goal: recovery tells a torn tail (a crash in the middle of the last write: cut off,
 * WAL appendable again) from corruption (a bad record with valid records after it, or
 * in an older segment, or missing entries: WalCorruptError naming file and offset, and
 * not one byte on disk changed). These are etcd's rules (wal/repair.go, decoder.go).
 * Method: write a known log, then damage the files the way crashes and bit rot do —
 * truncate the last record at EVERY byte offset, overwrite its tail with zeros (the
 * preallocated case), append garbage, flip single bytes in the middle — and reopen.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Wal, WalCorruptError } from '../../src/storage/wal';
import { META, copyDir, entries, entry, tempDir, view, walFiles } from './helpers';

describe('Wal recovery', () => {
  let dir: string;
  let cleanup: () => void;
  let walDir: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    walDir = path.join(dir, 'wal');
  });
  afterEach(() => cleanup());

  /** Writes entries 1..n (one sync each, so one record per entry + hard state) and returns the record boundaries. */
  async function writeLog(n: number, opts: { preallocate?: boolean; segmentBytesMax?: number } = { preallocate: false }) {
    const wal = await Wal.create(walDir, META, opts);
    const ends: number[] = [];
    for (let i = 1n; i <= BigInt(n); i++) {
      wal.append([entry(i, 1n, 20)]);
      await wal.sync();
      const files = walFiles(walDir);
      ends.push(fs.statSync(path.join(walDir, files[files.length - 1])).size);
    }
    await wal.close();
    return ends;
  }

  function lastSegment(d = walDir): string {
    const files = walFiles(d);
    return path.join(d, files[files.length - 1]);
  }

  function snapshotFiles(d: string): Map<string, Buffer> {
    return new Map(fs.readdirSync(d).map((n) => [n, fs.readFileSync(path.join(d, n))]));
  }

  test('torn tail: truncating the last record at every byte offset recovers all earlier entries, and the WAL is appendable again', async () => {
    const ends = await writeLog(5);
    const goodEnd = ends[3]; // end of entry 4
    const fullEnd = ends[4]; // end of entry 5
    expect(fullEnd - goodEnd).toBeGreaterThan(30);
    for (let cut = goodEnd + 1; cut < fullEnd; cut++) {
      const d = path.join(dir, `cut-${cut}`);
      copyDir(walDir, d);
      fs.truncateSync(lastSegment(d), cut);
      const { wal, recovered } = await Wal.open(d, 0n);
      expect(view(recovered.entries)).toEqual(view(entries(1n, 4n, 1n, 20)));
      expect(recovered.tornTailTruncatedBytes).toBeGreaterThan(0);
      expect(recovered.tornTailTruncatedBytes).toBeLessThanOrEqual(cut - goodEnd);
      expect(fs.statSync(lastSegment(d)).size).toBe(goodEnd);
      expect(wal.lastIndex()).toBe(4n);
      wal.append([entry(5n, 2n, 20)], { term: 2n, vote: 1n, commit: 5n });
      await wal.close();
      const { wal: again, recovered: r2 } = await Wal.open(d, 0n);
      expect(view(r2.entries)).toEqual(view([...entries(1n, 4n, 1n, 20), entry(5n, 2n, 20)]));
      expect(r2.tornTailTruncatedBytes).toBe(0);
      await again.close();
      fs.rmSync(d, { recursive: true });
    }
  });

  test('a clean end exactly at a record boundary is not torn', async () => {
    const ends = await writeLog(3);
    fs.truncateSync(lastSegment(), ends[1]);
    const { wal, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.entries).toHaveLength(2);
    expect(recovered.tornTailTruncatedBytes).toBe(0);
    await wal.close();
  });

  test('preallocated segment: zeros after the log are its end; a record half-written over the zeros is torn', async () => {
    const wal = await Wal.create(walDir, META); // preallocation on (default)
    wal.append(entries(1n, 10n, 1n, 20), { term: 1n, vote: 1n, commit: 10n });
    await wal.sync();
    const file = lastSegment();
    const size = fs.statSync(file).size;
    expect(size).toBeGreaterThan(4096); // zeros ahead of the log
    wal.append([entry(11n, 1n, 20)]);
    await wal.close();
    const { wal: w2, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.entries).toHaveLength(11);
    expect(recovered.tornTailTruncatedBytes).toBe(0);
    await w2.close();

    // Tear entry 11: keep its first bytes, the rest reads as zeros (never written).
    const buf = fs.readFileSync(file);
    const end11 = buf.length - [...buf].reverse().findIndex((b) => b !== 0);
    const rec11 = 8 + 1 + 17 + 20;
    const start11 = end11 - rec11;
    for (const keep of [1, 4, 8, 9, 20, rec11 - 1]) {
      const d = path.join(dir, `z-${keep}`);
      copyDir(walDir, d);
      const damaged = Buffer.from(buf);
      damaged.fill(0, start11 + keep, end11);
      fs.writeFileSync(lastSegment(d), damaged);
      const { wal: w, recovered: r } = await Wal.open(d, 0n);
      expect(r.entries.map((e) => e.index)).toEqual(entries(1n, 10n, 1n).map((e) => e.index));
      expect(r.tornTailTruncatedBytes).toBeGreaterThan(0);
      expect(fs.statSync(lastSegment(d)).size).toBe(start11);
      w.append([entry(11n, 1n, 20)]);
      await w.close();
      const { wal: w3, recovered: r3 } = await Wal.open(d, 0n);
      expect(r3.entries).toHaveLength(11);
      await w3.close();
    }
  });

  test('garbage after the last record (no valid record in it) is a torn tail', async () => {
    await writeLog(4);
    const file = lastSegment();
    const before = fs.statSync(file).size;
    const garbage = Buffer.from('ffeeddccbbaa99887766554433221100deadbeef', 'hex');
    fs.appendFileSync(file, garbage);
    const { wal, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.entries).toHaveLength(4);
    expect(recovered.tornTailTruncatedBytes).toBe(garbage.length);
    expect(fs.statSync(file).size).toBe(before);
    await wal.close();
  });

  test('bad CRC in the middle of the last segment: WalCorruptError naming file and offset, bytes unchanged', async () => {
    const ends = await writeLog(10);
    const file = lastSegment();
    const buf = fs.readFileSync(file);
    const off = ends[4]; // record of entry 6
    buf[off + 8 + 1 + 17 + 3] ^= 0x01; // one bit of its data
    fs.writeFileSync(file, buf);
    const before = snapshotFiles(walDir);
    const err = await Wal.open(walDir, 0n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptError);
    expect((err as WalCorruptError).message).toBe(
      `wal: corrupt record in ${file} at offset ${off}: crc mismatch; a valid record follows at offset ${ends[5]}`,
    );
    expect((err as WalCorruptError).file).toBe(file);
    expect((err as WalCorruptError).offset).toBe(off);
    expect(snapshotFiles(walDir)).toEqual(before);
  });

  test('a damaged length in the middle (runs past EOF, or zero) is corruption, not a torn tail', async () => {
    const ends = await writeLog(10);
    const file = lastSegment();
    const original = fs.readFileSync(file);
    for (const length of [0xfffffff0, 0x00100000, 0]) {
      const buf = Buffer.from(original);
      buf.writeUInt32LE(length, ends[2]);
      fs.writeFileSync(file, buf);
      const before = snapshotFiles(walDir);
      await expect(Wal.open(walDir, 0n)).rejects.toThrow(WalCorruptError);
      expect(snapshotFiles(walDir)).toEqual(before);
    }
  });

  test('bad CRC of the final record of a NON-last segment is corruption', async () => {
    const opts = { preallocate: false, segmentBytesMax: 300 };
    await writeLog(30, opts);
    const files = walFiles(walDir);
    expect(files.length).toBeGreaterThan(2);
    const file = path.join(walDir, files[0]);
    const buf = fs.readFileSync(file);
    buf[buf.length - 2] ^= 0x80;
    fs.writeFileSync(file, buf);
    const before = snapshotFiles(walDir);
    await expect(Wal.open(walDir, 0n, opts)).rejects.toThrow(new RegExp(`corrupt record in ${file} at offset \\d+: crc mismatch \\(not the last segment\\)`));
    expect(snapshotFiles(walDir)).toEqual(before);
  });

  test('a truncated non-last segment is corruption', async () => {
    const opts = { preallocate: false, segmentBytesMax: 300 };
    await writeLog(30, opts);
    const files = walFiles(walDir);
    const file = path.join(walDir, files[1]);
    fs.truncateSync(file, fs.statSync(file).size - 5);
    await expect(Wal.open(walDir, 0n, opts)).rejects.toThrow(/runs past end of file \(not the last segment\)/);
  });

  test('torn tail in the last of several segments: recovery across segments, then appendable', async () => {
    const opts = { preallocate: false, segmentBytesMax: 300 };
    await writeLog(30, opts);
    const { wal: w0 } = await Wal.open(walDir, 0n, opts);
    w0.append([entry(31n, 1n)]);
    await w0.close();
    expect(walFiles(walDir).length).toBeGreaterThan(3);
    const file = lastSegment();
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 3);
    const { wal, recovered } = await Wal.open(walDir, 0n, opts);
    expect(recovered.entries.map((e) => e.index)).toEqual(entries(1n, 30n, 1n).map((e) => e.index));
    expect(recovered.tornTailTruncatedBytes).toBeGreaterThan(0);
    wal.append([entry(31n, 2n)]);
    await wal.close();
    const { wal: w2, recovered: r2 } = await Wal.open(walDir, 0n, opts);
    expect(r2.entries).toHaveLength(31);
    expect(r2.entries[30].term).toBe(2n);
    await w2.close();
  });

  test('a segment that lacks its metadata record is corruption', async () => {
    await writeLog(3);
    const file = lastSegment();
    fs.writeFileSync(file, Buffer.alloc(0));
    await expect(Wal.open(walDir, 0n)).rejects.toThrow(/segment has no records/);
  });

  test('a different member id in a later segment is corruption', async () => {
    const opts = { preallocate: false, segmentBytesMax: 300 };
    await writeLog(30, opts);
    const files = walFiles(walDir);
    const file = path.join(walDir, files[1]);
    const buf = fs.readFileSync(file);
    // Rewrite the metadata record with another member id and a matching CRC.
    const zlib = await import('node:zlib');
    buf.writeBigUInt64LE(42n, 9);
    buf.writeUInt32LE(zlib.crc32(buf.subarray(8, 8 + buf.readUInt32LE(0))), 4);
    fs.writeFileSync(file, buf);
    await expect(Wal.open(walDir, 0n, opts)).rejects.toThrow(/differs from the first segment's/);
  });

  test('an entry index gap inside the log is corruption', async () => {
    const ends = await writeLog(6);
    const file = lastSegment();
    const buf = fs.readFileSync(file);
    // Cut out entry 3's record entirely (as if a write were lost in the middle).
    const spliced = Buffer.concat([buf.subarray(0, ends[1]), buf.subarray(ends[2])]);
    fs.writeFileSync(file, spliced);
    await expect(Wal.open(walDir, 0n)).rejects.toThrow(/entry index 4 leaves a gap after index 2/);
  });
});
