/**
 * Goal: snapshot files are written atomically with a CRC, the newest `retain` are kept,
 * and loading takes the newest valid one, reporting (never deleting) corrupt newer ones.
 * Method: real files in a temp dir; damage them by flipping a byte, truncating, or
 * renaming, and check what loadNewest returns and what is left on disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SnapshotCorruptError, SnapshotStore, decodeSnapshotFile, encodeSnapshotFile } from '../../src/storage/snapshot-store';
import { tempDir } from './helpers';

describe('SnapshotStore', () => {
  let dir: string;
  let cleanup: () => void;
  let snapDir: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    snapDir = path.join(dir, 'member', 'snap');
  });
  afterEach(() => cleanup());

  const data = (i: number) => Buffer.from(`state at ${i} `.repeat(50));
  const names = () => fs.readdirSync(snapDir).sort();

  test('no directory or no files: null', async () => {
    expect(await new SnapshotStore(snapDir).loadNewest()).toBeNull();
    fs.mkdirSync(snapDir, { recursive: true });
    expect(await new SnapshotStore(snapDir).loadNewest()).toBeNull();
  });

  test('save then load round-trips meta and data; the file is named term-index in hex', async () => {
    const store = new SnapshotStore(snapDir);
    await store.save({ index: 0x1234n, term: 0xan }, data(1));
    expect(names()).toEqual(['000000000000000a-0000000000001234.snap']);
    const got = await store.loadNewest();
    expect(got).not.toBeNull();
    expect(got!.meta).toEqual({ index: 0x1234n, term: 0xan });
    expect(got!.data.equals(data(1))).toBe(true);
    expect(got!.skipped).toEqual([]);
  });

  test('the newest is the one with the highest index', async () => {
    const store = new SnapshotStore(snapDir);
    await store.save({ index: 100n, term: 2n }, data(100));
    await store.save({ index: 300n, term: 3n }, data(300));
    await store.save({ index: 200n, term: 3n }, data(200));
    const got = await store.loadNewest();
    expect(got!.meta.index).toBe(300n);
    expect(got!.data.equals(data(300))).toBe(true);
  });

  test('a corrupt newest snapshot is skipped and reported, left on disk, and the next older is used', async () => {
    const store = new SnapshotStore(snapDir);
    await store.save({ index: 10n, term: 1n }, data(10));
    await store.save({ index: 20n, term: 1n }, data(20));
    await store.save({ index: 30n, term: 2n }, data(30));
    const newest = path.join(snapDir, '0000000000000002-000000000000001e.snap');
    const buf = fs.readFileSync(newest);
    buf[buf.length - 7] ^= 0x10;
    fs.writeFileSync(newest, buf);
    const second = path.join(snapDir, '0000000000000001-0000000000000014.snap');
    fs.truncateSync(second, 20);
    const got = await store.loadNewest();
    expect(got!.meta).toEqual({ index: 10n, term: 1n });
    expect(got!.data.equals(data(10))).toBe(true);
    expect(got!.skipped).toEqual([`${newest}: crc mismatch`, `${second}: file of 20 bytes is shorter than the header`]);
    expect(fs.existsSync(newest)).toBe(true);
    expect(fs.existsSync(second)).toBe(true);
  });

  test('a file whose name disagrees with its header is skipped', async () => {
    const store = new SnapshotStore(snapDir);
    await store.save({ index: 10n, term: 1n }, data(10));
    await store.save({ index: 20n, term: 1n }, data(20));
    const from = path.join(snapDir, '0000000000000001-0000000000000014.snap');
    const to = path.join(snapDir, '0000000000000001-0000000000000063.snap');
    fs.renameSync(from, to);
    const got = await store.loadNewest();
    expect(got!.meta.index).toBe(10n);
    expect(got!.skipped).toEqual([`${to}: header says term 1 index 20, name disagrees`]);
  });

  test('every file corrupt: SnapshotCorruptError listing them (a corrupt data dir is reported)', async () => {
    const store = new SnapshotStore(snapDir);
    await store.save({ index: 10n, term: 1n }, data(10));
    const file = path.join(snapDir, names()[0]);
    fs.writeFileSync(file, Buffer.from('not a snapshot at all, but long enough for a header'));
    await expect(store.loadNewest()).rejects.toThrow(SnapshotCorruptError);
    await expect(store.loadNewest()).rejects.toThrow(/bad magic/);
  });

  test('retain keeps the newest N files (default 5) and deletes older ones', async () => {
    const store = new SnapshotStore(snapDir);
    for (let i = 1; i <= 8; i++) await store.save({ index: BigInt(i * 100), term: 1n }, data(i));
    expect(names()).toEqual([400, 500, 600, 700, 800].map((i) => `0000000000000001-${i.toString(16).padStart(16, '0')}.snap`));
    const small = new SnapshotStore(snapDir, { retain: 2 });
    await small.save({ index: 900n, term: 1n }, data(9));
    expect(names()).toHaveLength(2);
    expect((await small.loadNewest())!.meta.index).toBe(900n);
    expect(() => new SnapshotStore(snapDir, { retain: 0 })).toThrow(RangeError);
  });

  test('a leftover .tmp from a crashed save is ignored by load and removed by the next save', async () => {
    const store = new SnapshotStore(snapDir);
    await store.save({ index: 10n, term: 1n }, data(10));
    const tmp = path.join(snapDir, '0000000000000001-0000000000000014.snap.tmp');
    fs.writeFileSync(tmp, 'half a snapshot');
    expect((await store.loadNewest())!.meta.index).toBe(10n);
    await store.save({ index: 30n, term: 1n }, data(30));
    expect(fs.existsSync(tmp)).toBe(false);
  });

  test('codec: every single-bit flip of a file is detected', () => {
    const file = encodeSnapshotFile({ index: 7n, term: 3n }, Buffer.from('abc'));
    const ok = decodeSnapshotFile(file);
    expect(typeof ok).not.toBe('string');
    for (let i = 0; i < file.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const b = Buffer.from(file);
        b[i] ^= 1 << bit;
        expect(typeof decodeSnapshotFile(b)).toBe('string');
      }
    }
  });
});
