/**
 * One member per data directory. etcd holds an flock on its WAL; Node has no flock, so the
 * member writes its pid to `<data-dir>/member/LOCK` and refuses to start while another live
 * process holds it. A lock left by a crashed process (its pid gone, or reused by a process
 * that is not a coord member) is taken over.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export class DataDirLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(`data dir ${dir} is in use by another coord member (pid ${pid}); stop it first`);
    this.name = 'DataDirLockedError';
  }
}

function isLiveMember(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('node');
  } catch {
    return true; // no /proc: assume alive
  }
}

export function lockDataDir(memberDir: string): () => void {
  const file = path.join(memberDir, 'LOCK');
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && isLiveMember(pid)) throw new DataDirLockedError(path.dirname(memberDir), pid);
  } catch (err) {
    if (err instanceof DataDirLockedError) throw err;
  }
  fs.writeFileSync(file, String(process.pid), { mode: 0o600 });
  return () => {
    try {
      if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
    } catch {
      // already gone
    }
  };
}
