/** Small durable-filesystem helpers shared by the WAL and the snapshot store. */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';

/**
 * fsyncs a directory so that a create, rename or unlink inside it survives a crash
 * (POSIX: the file's own fsync does not cover its directory entry).
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `buf` at `position`, looping over short writes (pwrite may return fewer bytes). */
export async function writeAll(fh: fsp.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  // Bound: every iteration writes at least one byte or throws.
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write: 0 bytes written at offset ${position + done}`);
    done += bytesWritten;
  }
}

/** writeAll on the calling thread (the WAL's small O_DSYNC writes, see wal.ts). */
export function writeAllSync(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  // Bound: every iteration writes at least one byte or throws.
  while (done < buf.length) {
    const bytesWritten = fs.writeSync(fd, buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write: 0 bytes written at offset ${position + done}`);
    done += bytesWritten;
  }
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
