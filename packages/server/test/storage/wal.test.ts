/**
 * Goal: the WAL keeps the Raft log and hard state across close/open exactly as
 * appended: round trip, segment rollover, release of old segments after a snapshot,
 * suffix overwrite (Raft §5.3), group commit, and the invariants it asserts.
 * Method: real files in temp dirs under os.tmpdir(); every case writes through the
 * public API, closes (or not), reopens with Wal.open and compares the recovered log
 * with what was appended. Group commit counts fdatasyncs both with the WAL's own
 * counter and with a spy on FileHandle.prototype.datasync.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { EntryType, Wal, WalCorruptError } from '../../src/storage/wal';
import { META, entries, entry, tempDir, view, walFiles } from './helpers';

describe('Wal', () => {
  let dir: string;
  let cleanup: () => void;
  let walDir: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    walDir = path.join(dir, 'member', 'wal');
  });
  afterEach(() => cleanup());

  test('create writes the metadata record; exists() sees it; create refuses a non-empty dir', async () => {
    expect(Wal.exists(walDir)).toBe(false);
    const wal = await Wal.create(walDir, META);
    expect(Wal.exists(walDir)).toBe(true);
    expect(walFiles(walDir)).toEqual(['0000000000000000-0000000000000001.wal']);
    expect(fs.existsSync(`${walDir}.tmp`)).toBe(false);
    await wal.close();
    await expect(Wal.create(walDir, META)).rejects.toThrow(/not empty/);
    const { wal: w2, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.metadata).toEqual(META);
    expect(recovered.hardState).toEqual({ term: 0n, vote: 0n, commit: 0n });
    expect(recovered.entries).toEqual([]);
    expect(recovered.tornTailTruncatedBytes).toBe(0);
    expect(w2.lastIndex()).toBe(0n);
    await w2.close();
  });

  test('create works in an existing empty dir', async () => {
    fs.mkdirSync(walDir, { recursive: true });
    const wal = await Wal.create(walDir, META);
    await wal.close();
    expect(Wal.exists(walDir)).toBe(true);
  });

  test('round trip: entries (both types, empty and large data) and hard state survive close/open', async () => {
    const wal = await Wal.create(walDir, META);
    const es = [...entries(1n, 3n, 1n), { index: 4n, term: 2n, type: EntryType.Normal, data: Buffer.alloc(0) }, entry(5n, 2n, 100_000)];
    wal.append(es.slice(0, 2), { term: 1n, vote: 7n, commit: 1n });
    await wal.sync();
    wal.append(es.slice(2), { term: 2n, vote: 0n, commit: 4n });
    wal.append([], { term: 2n, vote: 9n, commit: 5n });
    await wal.sync();
    expect(wal.lastIndex()).toBe(5n);
    await wal.close();

    const { wal: w2, recovered } = await Wal.open(walDir, 0n);
    expect(view(recovered.entries)).toEqual(view(es));
    expect(recovered.entries[4].type).toBe(EntryType.ConfChange);
    expect(recovered.hardState).toEqual({ term: 2n, vote: 9n, commit: 5n });
    expect(w2.lastIndex()).toBe(5n);
    // Appendable after reopen, and fromIndex filters.
    w2.append([entry(6n, 2n)]);
    await w2.close();
    const { wal: w3, recovered: r3 } = await Wal.open(walDir, 3n);
    expect(r3.entries.map((e) => e.index)).toEqual([4n, 5n, 6n]);
    await w3.close();
  });

  test('sync resolves only after the bytes are in the file (reopen without close)', async () => {
    const wal = await Wal.create(walDir, META);
    wal.append(entries(1n, 10n, 1n), { term: 1n, vote: 1n, commit: 10n });
    await wal.sync();
    const { wal: reader, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.entries).toHaveLength(10);
    expect(recovered.hardState.commit).toBe(10n);
    await reader.close();
    await wal.close();
  });

  test('segment rollover: small segments, recovery across all of them, headers carry the hard state', async () => {
    const opts = { segmentBytesMax: 1024 };
    const wal = await Wal.create(walDir, META, opts);
    const all = entries(1n, 300n, 1n);
    for (let i = 0; i < 300; i += 10) {
      wal.append(all.slice(i, i + 10), { term: 1n, vote: 1n, commit: BigInt(i + 10) });
      await wal.sync();
    }
    await wal.close();
    const files = walFiles(walDir);
    expect(files.length).toBeGreaterThan(5);
    // Sequence numbers are contiguous; each name's index is one past the last entry before it.
    files.forEach((f, i) => expect(f.slice(0, 16)).toBe(i.toString(16).padStart(16, '0')));
    for (let i = 1; i < files.length; i++) expect(BigInt(`0x${files[i].slice(17, 33)}`) % 10n).toBe(1n);
    // Finished segments carry no preallocated zeros; the last may.
    for (const f of files.slice(0, -1)) expect(fs.statSync(path.join(walDir, f)).size).toBeLessThan(1024 + 600);

    const { wal: w2, recovered } = await Wal.open(walDir, 0n, opts);
    expect(view(recovered.entries)).toEqual(view(all));
    expect(recovered.hardState.commit).toBe(300n);
    await w2.close();
  });

  test('releaseTo deletes segments covered by a durable snapshot marker; recovery from the snapshot index', async () => {
    const opts = { segmentBytesMax: 1024 };
    const wal = await Wal.create(walDir, META, opts);
    const all = entries(1n, 200n, 3n);
    for (let i = 0; i < 200; i += 10) {
      wal.append(all.slice(i, i + 10), { term: 3n, vote: 1n, commit: BigInt(i + 10) });
      await wal.sync();
    }
    // Not covered by a durable snapshot marker: a bug, not an operating error.
    await expect(wal.releaseTo(150n)).rejects.toThrow(/assertion failed/);
    await wal.saveSnapshotMarker(150n, 3n);
    const before = walFiles(walDir);
    await wal.releaseTo(150n);
    const after = walFiles(walDir);
    expect(after.length).toBeLessThan(before.length);
    expect(after[after.length - 1]).toBe(before[before.length - 1]);
    // Every remaining segment may hold entries > 150, except none before the first remaining one.
    expect(BigInt(`0x${after[0].slice(17, 33)}`) - 1n).toBeLessThanOrEqual(150n);
    if (after.length > 1) expect(BigInt(`0x${after[1].slice(17, 33)}`) - 1n).toBeGreaterThan(150n);
    expect(wal.stats().segmentsReleased).toBe(before.length - after.length);
    wal.append(entries(201n, 210n, 3n), { term: 3n, vote: 1n, commit: 210n });
    await wal.close();

    const { wal: w2, recovered } = await Wal.open(walDir, 150n, opts);
    expect(view(recovered.entries)).toEqual(view([...all.slice(150), ...entries(201n, 210n, 3n)]));
    expect(recovered.hardState).toEqual({ term: 3n, vote: 1n, commit: 210n });
    expect(recovered.lastSnapshotMarker).toEqual({ index: 150n, term: 3n });
    await w2.close();
    // From an older snapshot the released entries are missing: reported, not skipped.
    await expect(Wal.open(walDir, 10n, opts)).rejects.toThrow(WalCorruptError);
    await expect(Wal.open(walDir, 10n, opts)).rejects.toThrow(/entries 11\.\.\d+ are missing/);
  });

  test('releaseTo never deletes the segment being written', async () => {
    const wal = await Wal.create(walDir, META, { segmentBytesMax: 512 });
    wal.append(entries(1n, 50n, 1n), { term: 1n, vote: 1n, commit: 50n });
    await wal.sync();
    await wal.saveSnapshotMarker(50n, 1n);
    await wal.releaseTo(50n);
    expect(walFiles(walDir)).toHaveLength(1);
    await wal.close();
    const { wal: w2, recovered } = await Wal.open(walDir, 50n);
    expect(recovered.entries).toEqual([]);
    expect(w2.lastIndex()).toBe(50n);
    w2.append([entry(51n, 1n)]);
    await w2.close();
  });

  test('a snapshot marker beyond the log (follower installing a snapshot, Raft §7) moves the log on', async () => {
    const wal = await Wal.create(walDir, META);
    wal.append(entries(1n, 5n, 1n), { term: 1n, vote: 0n, commit: 3n });
    await wal.saveSnapshotMarker(100n, 4n);
    expect(wal.lastIndex()).toBe(100n);
    wal.append(entries(101n, 103n, 4n), { term: 4n, vote: 0n, commit: 102n });
    await wal.close();
    const { wal: w2, recovered } = await Wal.open(walDir, 100n);
    expect(recovered.entries.map((e) => e.index)).toEqual([101n, 102n, 103n]);
    await w2.close();
    // Recovering from the older state is impossible: entries 6..100 exist only in the snapshot.
    await expect(Wal.open(walDir, 0n)).rejects.toThrow(/entries 1\.\.100 are missing/);
  });

  test('a snapshot marker over a conflicting uncommitted suffix discards the log (Raft §7), on replay too', async () => {
    const wal = await Wal.create(walDir, META);
    // Entries 1..3 committed; 4..8 of term 2 from a deposed leader, never committed.
    wal.append([...entries(1n, 3n, 1n), ...entries(4n, 8n, 2n)], { term: 2n, vote: 0n, commit: 3n });
    // The new leader's snapshot at index 6 has term 3: entry 6 here (term 2) conflicts.
    await wal.saveSnapshotMarker(6n, 3n);
    expect(wal.lastIndex()).toBe(6n);
    wal.append(entries(7n, 9n, 3n), { term: 3n, vote: 0n, commit: 8n });
    await wal.close();
    const { wal: w2, recovered } = await Wal.open(walDir, 6n);
    expect(recovered.entries.map((e) => [e.index, e.term])).toEqual([[7n, 3n], [8n, 3n], [9n, 3n]]);
    await w2.close();
  });

  test('opening from a snapshot newer than the log (its marker never became durable) keeps the log replayable', async () => {
    const wal = await Wal.create(walDir, META);
    wal.append(entries(1n, 5n, 1n), { term: 1n, vote: 0n, commit: 5n });
    await wal.close();
    const { wal: w2, recovered } = await Wal.open(walDir, 10n);
    expect(recovered.entries).toEqual([]);
    expect(w2.lastIndex()).toBe(10n);
    w2.append(entries(11n, 12n, 2n), { term: 2n, vote: 0n, commit: 12n });
    await w2.close();
    const { wal: w3, recovered: r3 } = await Wal.open(walDir, 10n);
    expect(r3.entries.map((e) => e.index)).toEqual([11n, 12n]);
    await w3.close();
    await expect(Wal.open(walDir, 0n)).rejects.toThrow(/entries 1\.\.10 are missing/);
  });

  test('suffix overwrite (Raft §5.3): append 5..10, then 7 with a new term; the overwrite wins on recovery', async () => {
    const wal = await Wal.create(walDir, META);
    wal.append(entries(1n, 4n, 1n), { term: 1n, vote: 1n, commit: 4n });
    wal.append(entries(5n, 10n, 2n), { term: 2n, vote: 1n, commit: 4n });
    await wal.sync();
    wal.append(entries(7n, 8n, 3n), { term: 3n, vote: 2n, commit: 4n });
    expect(wal.lastIndex()).toBe(8n);
    await wal.close();
    const { wal: w2, recovered } = await Wal.open(walDir, 0n);
    expect(view(recovered.entries)).toEqual(view([...entries(1n, 4n, 1n), ...entries(5n, 6n, 2n), ...entries(7n, 8n, 3n)]));
    expect(w2.lastIndex()).toBe(8n);
    // Contiguous with the overwritten log, not the old one.
    expect(() => w2.append([entry(10n, 3n)])).toThrow(/assertion failed/);
    w2.append([entry(9n, 3n)]);
    await w2.close();
    const { wal: w3, recovered: r3 } = await Wal.open(walDir, 6n);
    expect(r3.entries.map((e) => `${e.index}@${e.term}`)).toEqual(['7@3', '8@3', '9@3']);
    await w3.close();
  });

  test('suffix overwrite across segments, then recovery from a snapshot inside the overwritten range', async () => {
    const opts = { segmentBytesMax: 600 };
    const wal = await Wal.create(walDir, META, opts);
    for (let i = 1n; i <= 40n; i += 5n) {
      wal.append(entries(i, i + 4n, 1n), { term: 1n, vote: 1n, commit: i + 4n < 20n ? i + 4n : 20n });
      await wal.sync();
    }
    const segmentsBefore = walFiles(walDir).length;
    wal.append(entries(25n, 30n, 2n), { term: 2n, vote: 1n, commit: 20n });
    await wal.sync();
    for (let i = 31n; i <= 60n; i += 5n) {
      wal.append(entries(i, i + 4n, 2n), { term: 2n, vote: 1n, commit: 20n });
      await wal.sync();
    }
    expect(walFiles(walDir).length).toBeGreaterThan(segmentsBefore);
    await wal.close();
    const expected = [...entries(1n, 24n, 1n), ...entries(25n, 60n, 2n)];
    const { wal: w2, recovered } = await Wal.open(walDir, 0n, opts);
    expect(view(recovered.entries)).toEqual(view(expected));
    await w2.close();
    const { wal: w3, recovered: r3 } = await Wal.open(walDir, 26n, opts);
    expect(view(r3.entries)).toEqual(view(expected.slice(26)));
    await w3.close();
  });

  test('group commit: 1000 concurrent append+sync calls share far fewer fdatasyncs, all resolve, all durable', async () => {
    // The write+fdatasync mode (dsync: false), where each group commit is one fdatasync call.
    const wal = await Wal.create(walDir, META, { preallocate: false, dsync: false });
    // Cross-check the WAL's own counter with a spy on the real FileHandle method.
    const probe = await fsp.open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const spy = jest.spyOn(proto, 'datasync');
    try {
      let next = 1n;
      let resolved = 0;
      const calls = Array.from({ length: 1000 }, async (_, i) => {
        // Arrive over several turns of the event loop, not all in one.
        for (let k = 0; k < i % 7; k++) await new Promise<void>((r) => setImmediate(r));
        wal.append([entry(next++, 1n)]);
        await wal.sync();
        resolved++;
      });
      await Promise.all(calls);
      expect(resolved).toBe(1000);
      const syncs = wal.stats().fdatasyncs;
      expect(syncs).toBeGreaterThanOrEqual(1);
      expect(syncs).toBeLessThanOrEqual(20);
      expect(spy.mock.calls.length).toBe(syncs);
      expect(wal.stats().writes).toBe(syncs);
    } finally {
      spy.mockRestore();
    }
    // Durable before close: a second reader sees every entry.
    const { wal: reader, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.entries.map((e) => e.index)).toEqual(Array.from({ length: 1000 }, (_, i) => BigInt(i + 1)));
    await reader.close();
    await wal.close();
  });

  test('sync with nothing new resolves without I/O; callers during a flush share the next one', async () => {
    const wal = await Wal.create(walDir, META, { preallocate: false });
    await wal.sync();
    expect(wal.stats().fdatasyncs).toBe(0);
    wal.append([entry(1n, 1n)]);
    const first = wal.sync();
    const same = wal.sync(); // same appends: served by the same flush
    await new Promise<void>((r) => setImmediate(r)); // the first flush is in flight now
    wal.append([entry(2n, 1n)]);
    const a = wal.sync();
    wal.append([entry(3n, 1n)]);
    const b = wal.sync();
    await Promise.all([first, same, a, b]);
    expect(wal.stats().fdatasyncs).toBe(2);
    await wal.close();
  });

  test('invariants are asserted: gaps, non-contiguous batches, committed overwrite, term and vote rules', async () => {
    const wal = await Wal.create(walDir, META);
    wal.append(entries(1n, 3n, 2n), { term: 2n, vote: 1n, commit: 2n });
    expect(() => wal.append([entry(5n, 2n)])).toThrow(/assertion failed: .*gap/);
    expect(() => wal.append([entry(4n, 2n), entry(6n, 2n)])).toThrow(/assertion failed: .*contiguous/);
    const w2 = await Wal.create(path.join(dir, 'w2'), META);
    w2.append(entries(1n, 3n, 2n), { term: 2n, vote: 1n, commit: 2n });
    expect(() => w2.append([entry(2n, 3n)])).toThrow(/assertion failed: .*not committed/);
    expect(() => w2.append([entry(4n, 1n)])).toThrow(/assertion failed: .*terms never decrease/);
    expect(() => w2.append([], { term: 2n, vote: 5n, commit: 2n })).toThrow(/assertion failed: vote changes within term/);
    expect(() => w2.append([], { term: 1n, vote: 1n, commit: 2n })).toThrow(/assertion failed: hard state term/);
    expect(() => w2.append([], { term: 2n, vote: 1n, commit: 1n })).toThrow(/assertion failed: commit index never decreases/);
    expect(() => w2.append([], { term: 2n, vote: 1n, commit: 9n })).toThrow(/assertion failed: commit index 9 is within the log/);
    await expect(w2.saveSnapshotMarker(2n, 1n)).rejects.toThrow(/assertion failed: a committed entry \(2\) conflicts/);
    await wal.close().catch(() => undefined);
    await w2.close().catch(() => undefined);
    expect(() => w2.append([entry(4n, 2n)])).toThrow(/assertion failed: the WAL is open/);
  });

  test.each([
    ['fdatasync', false, false, 'datasync'],
    ['O_DSYNC write in the thread pool', true, false, 'write'],
    ['O_DSYNC write on the event loop', true, true, 'writeSync'],
  ] as const)('a failed %s fails every waiter and the WAL for good (no retry after an fsync error)', async (_what, dsync, inlineWrites, method) => {
    const wal = await Wal.create(walDir, META, { preallocate: false, dsync, inlineWrites });
    const probe = await fsp.open(path.join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void>; write: () => Promise<unknown> };
    await probe.close();
    const eio = Object.assign(new Error(`EIO: i/o error, ${method}`), { code: 'EIO' });
    const spy =
      method === 'writeSync'
        ? // The module object itself: the test's `import * as fs` is a read-only view of it.
          jest.spyOn(jest.requireActual<typeof fs>('node:fs'), 'writeSync').mockImplementationOnce(() => {
            throw eio;
          })
        : jest.spyOn(proto, method).mockRejectedValueOnce(eio);
    try {
      wal.append([entry(1n, 1n)]);
      const a = wal.sync();
      const b = wal.sync();
      await expect(a).rejects.toThrow(/EIO/);
      await expect(b).rejects.toThrow(/EIO/);
      expect(() => wal.append([entry(2n, 1n)])).toThrow(/EIO/);
      await expect(wal.sync()).rejects.toThrow(/EIO/);
      await expect(wal.close()).rejects.toThrow(/EIO/);
    } finally {
      spy.mockRestore();
    }
  });

  test('leftover .wal.tmp from a crash during rollover is ignored and removed', async () => {
    const wal = await Wal.create(walDir, META);
    wal.append(entries(1n, 3n, 1n));
    await wal.close();
    const tmp = path.join(walDir, '0000000000000001-0000000000000004.wal.tmp');
    fs.writeFileSync(tmp, Buffer.alloc(4096));
    const { wal: w2, recovered } = await Wal.open(walDir, 0n);
    expect(recovered.entries).toHaveLength(3);
    expect(fs.existsSync(tmp)).toBe(false);
    await w2.close();
  });

  test('a missing segment in the sequence is corruption', async () => {
    const opts = { segmentBytesMax: 512 };
    const wal = await Wal.create(walDir, META, opts);
    for (let i = 1n; i <= 60n; i += 5n) {
      wal.append(entries(i, i + 4n, 1n));
      await wal.sync();
    }
    await wal.close();
    const files = walFiles(walDir);
    expect(files.length).toBeGreaterThan(2);
    fs.rmSync(path.join(walDir, files[1]));
    await expect(Wal.open(walDir, 0n, opts)).rejects.toThrow(/segment sequence 1 is missing/);
  });
});
