/**
 * Process groups, as the supervising commands need them: signal a whole group, and tell when
 * it is gone. Shared by the CLI process (group.ts) and the watchdog (watchdog.ts), so it has
 * no dependencies.
 *
 * "Gone" means no process of the group can run any more. `kill(-pgid, 0)` alone is not
 * enough: it also succeeds while a member is a zombie, and an orphaned grandchild becomes a
 * zombie of PID 1, which need not reap it quickly (in containers it may never). On Linux we
 * therefore read `/proc/<pid>/stat` and ignore members in state Z (or X); elsewhere we fall
 * back to `kill(-pgid, 0)`.
 */
import * as fs from 'node:fs';

/** Poll period while waiting for a group to go. */
export const GROUP_POLL_MS = 20;

/** Send `signal` to every process of group `pgid`. False when the group does not exist. */
export function killGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new RangeError(`not a process group id: ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') return true; // exists, but some member is not ours to signal
    throw err;
  }
}

/** Live (not zombie) members of group `pgid` from /proc; undefined where /proc cannot tell. */
export function liveMembers(pgid: number): number[] | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  const out: number[] = [];
  let seen = 0;
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    seen++;
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const close = stat.lastIndexOf(')');
    if (close < 0) continue;
    const fields = stat.slice(close + 2).split(' ');
    const state = fields[0];
    if (Number(fields[2]) !== pgid) continue;
    if (state === 'Z' || state === 'X' || state === 'x') continue;
    out.push(Number(name));
  }
  return seen > 0 ? out : undefined;
}

/** True while some process of group `pgid` can still run. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const members = liveMembers(pgid);
  return members === undefined ? true : members.length > 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait until group `pgid` is gone (true) or `timeoutMs` passed (false). */
export async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + Math.max(0, timeoutMs);
  for (;;) {
    if (!groupAlive(pgid)) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(GROUP_POLL_MS, left));
  }
}

/**
 * Terminate group `pgid`: SIGTERM (and SIGCONT, so stopped members act on it), up to
 * `graceMs` for it to go, then SIGKILL and up to `killWaitMs` more. Resolves with how it ended:
 * 'gone' (before SIGTERM), 'terminated', 'killed', or 'stuck' (still there after SIGKILL,
 * e.g. in uninterruptible sleep: it can run no user code once it leaves that state).
 */
export async function terminateGroup(
  pgid: number,
  graceMs: number,
  killWaitMs = 2000,
): Promise<'gone' | 'terminated' | 'killed' | 'stuck'> {
  if (!groupAlive(pgid)) return 'gone';
  killGroup(pgid, 'SIGTERM');
  killGroup(pgid, 'SIGCONT');
  if (await waitGroupGone(pgid, graceMs)) return 'terminated';
  killGroup(pgid, 'SIGKILL');
  return (await waitGroupGone(pgid, killWaitMs)) ? 'killed' : 'stuck';
}
