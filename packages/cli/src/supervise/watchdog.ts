/**
 * The watchdog: a small process that terminates the CLI's CMD process groups if the CLI
 * itself dies without doing so (`kill -9`, a crash, the OOM killer). Without it, the CMD of a
 * `coord lock` whose coord was killed would run on after the lock's lease expired, next to the
 * next holder's: the failure `etcdctl lock` and Consul's `lock` leave open.
 *
 *   node watchdog.js GRACE_MS        (started by group.ts; not a user command)
 *
 * Protocol, lines on stdin from the CLI: `+PGID` (guard this group), `-PGID` (it is gone, or
 * no longer ours). The watchdog answers `ready` on stdout once it listens. When stdin ends or
 * fails (the CLI is gone: the kernel closed its end of the pipe), every guarded group gets
 * SIGTERM, GRACE_MS to go, then SIGKILL; then the watchdog exits. With nothing guarded it
 * exits at once, so a CLI that ends normally leaves nothing behind.
 *
 * Why the timing is safe: the CLI keeps its session's lease alive every TTL/3, so when it dies
 * the lease has at least about 2/3 of the TTL left, and GRACE_MS is at most TTL/4 (see
 * timing.ts): the group is gone before the server can expire the lease.
 *
 * The watchdog stays in the CLI's process group (not in CMD's, so signals meant for CMD never
 * reach it) and ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT: a Ctrl-C or a `kill` of the CLI's
 * group is the CLI's to handle (it forwards them to CMD); the watchdog only acts on the pipe.
 */
import { killGroup, terminateGroup } from './proc';

const graceMs = Number(process.argv[2] ?? '1000');
if (!Number.isFinite(graceMs) || graceMs < 0) {
  process.stderr.write(`watchdog: bad grace period ${JSON.stringify(process.argv[2])}\n`);
  process.exit(2);
}

const guarded = new Set<number>();
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(s, () => undefined);

let buffered = '';
let orphaned = false;

async function onOrphaned(): Promise<void> {
  if (orphaned) return;
  orphaned = true;
  const groups = [...guarded];
  // All groups at once: each gets the same grace period.
  await Promise.all(groups.map((g) => terminateGroup(g, graceMs).catch(() => killGroup(g, 'SIGKILL'))));
  process.exit(0);
}

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  buffered += chunk;
  let nl: number;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    const pgid = Number(line.slice(1));
    if (!Number.isSafeInteger(pgid) || pgid <= 1) continue;
    if (line[0] === '+') guarded.add(pgid);
    else if (line[0] === '-') guarded.delete(pgid);
  }
  if (buffered.length > 4096) buffered = ''; // never from the CLI; bound it anyway
});
process.stdin.on('end', () => void onOrphaned());
process.stdin.on('error', () => void onOrphaned());
process.stdout.on('error', () => undefined);
process.stdout.write('ready\n');
