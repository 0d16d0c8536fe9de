/** Shared fixtures for the storage tests: temp dirs and entry factories. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EntryType, LogEntry } from '../../src/storage/wal';

export const META = Object.freeze({ memberId: 0x694d6280d047720fn, clusterId: 0xcdf818194e3a8c32n });

/** A fresh temp dir; removed by the returned cleanup. */
export function tempDir(prefix = 'coord-storage-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic payload for entry (index, term): lets a test tell versions apart. */
export function payload(index: bigint, term: bigint, bytes = 40): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Number((index * 31n + term * 7n + BigInt(i)) % 251n);
  return b;
}

export function entry(index: bigint, term: bigint, bytes = 40): LogEntry {
  return { index, term, type: index % 5n === 0n ? EntryType.ConfChange : EntryType.Normal, data: payload(index, term, bytes) };
}

export function entries(from: bigint, to: bigint, term: bigint, bytes = 40): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, bytes));
  return out;
}

/** A comparable view of entries (bigints as strings, data as hex). */
export function view(es: readonly LogEntry[]): string[] {
  return es.map((e) => `${e.index}@${e.term}:${e.type}:${e.data.toString('hex')}`);
}

export function walFiles(walDir: string): string[] {
  return fs
    .readdirSync(walDir)
    .filter((n) => n.endsWith('.wal'))
    .sort();
}

export function copyDir(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true });
}
