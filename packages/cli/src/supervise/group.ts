/**
 * Running CMD in a process group of its own, and ending that group.
 *
 * CMD is spawned detached (setsid: a new session and process group whose id is CMD's pid),
 * with coord's stdin, stdout and stderr and the caller's extra environment. Everything CMD
 * starts (the `sleep` of `sh -c 'sleep 100 & wait'`) stays in that group unless it leaves on
 * purpose (setsid, daemons), so one `kill(-pgid)` reaches all of it; this is what Consul's
 * `lock` misses when it signals only its child.
 *
 * Being in another session, CMD does not get the terminal's Ctrl-C itself: coord receives
 * SIGINT and forwards it to the group (see command.ts), so every member gets it exactly once.
 *
 * Before the first CMD starts, a watchdog process (watchdog.ts) is started and told about each
 * group; if coord dies without ending a group, the watchdog ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { SupervisedError, SupervisedExit, statusOf } from './exit-codes';
import { groupAlive, killGroup, terminateGroup } from './proc';

/** How the group's leader (CMD itself) ended. */
export interface CommandExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** As the shell reports it: the code, or 128 + the signal's number. */
  readonly status: number;
}

/** The watchdog of this coord process (see watchdog.ts). */
export class Watchdog {
  private constructor(private readonly child: ChildProcess) {}

  /** Start the watchdog and wait until it listens. Rejects if it cannot start. */
  static async start(graceMs: number, readyTimeoutMs = 10000): Promise<Watchdog> {
    const child = spawn(process.execPath, [path.join(__dirname, 'watchdog.js'), String(Math.round(graceMs))], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('the watchdog did not start in time')), readyTimeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`cannot start the watchdog: ${err.message}`));
      };
      child.once('error', fail);
      child.once('exit', (code, signal) => fail(new Error(`it exited (${signal ?? code})`)));
      (child.stdout as Readable).once('data', () => {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        resolve();
      });
    });
    // It must not keep coord alive: when coord exits, the kernel closes the pipe and the
    // watchdog, guarding nothing by then, exits too.
    child.on('error', () => undefined);
    (child.stdin as Writable).on('error', () => undefined);
    child.unref();
    (child.stdin as unknown as { unref(): void }).unref();
    (child.stdout as unknown as { unref(): void }).unref();
    return new Watchdog(child);
  }

  guard(pgid: number): void {
    (this.child.stdin as Writable).write(`+${pgid}\n`);
  }

  release(pgid: number): void {
    (this.child.stdin as Writable).write(`-${pgid}\n`);
  }
}

/** CMD, running as the leader of its own process group. */
export class ProcessGroup {
  /** The process group's id: CMD's pid. */
  readonly pgid: number;
  /** Resolves when CMD itself has exited (other members may still run). */
  readonly exited: Promise<CommandExit>;
  private exitInfo: CommandExit | undefined;
  private ended = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly watchdog: Watchdog | undefined,
  ) {
    this.pgid = child.pid as number;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal, status: statusOf(code, signal) };
        resolve(this.exitInfo);
      });
    });
  }

  /**
   * Start `argv` (looked up in PATH) in a new process group with `extraEnv` added to ours.
   * Rejects with exit code 127 (not found) or 126 (cannot execute) as the shell does.
   */
  static async start(argv: readonly string[], extraEnv: Record<string, string>, watchdog?: Watchdog): Promise<ProcessGroup> {
    if (argv.length === 0) throw new TypeError('no command');
    const child = spawn(argv[0], argv.slice(1), {
      detached: true,
      stdio: 'inherit',
      env: { ...process.env, ...extraEnv },
    });
    // Guard the group at once: spawn() returns after CMD has exec'd, so CMD may already be
    // running; telling the watchdog only after the 'spawn' event (a turn of the event loop
    // later) left a window in which a coord killed with SIGKILL orphaned an unguarded group
    // (seen under load: lock.test.ts hung on a `sleep 1000` that nobody ended).
    if (child.pid !== undefined) watchdog?.guard(child.pid);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => {
        child.removeAllListeners('error');
        resolve();
      });
      child.once('error', (err: NodeJS.ErrnoException) => {
        const notFound = err.code === 'ENOENT';
        reject(
          new SupervisedError(
            `${argv[0]}: ${notFound ? 'command not found' : `cannot execute: ${err.code === 'EACCES' ? 'permission denied' : err.message}`}`,
            notFound ? SupervisedExit.NotFound : SupervisedExit.CannotExecute,
            notFound ? 'ERR_NOT_FOUND' : 'ERR_CANNOT_EXECUTE',
            { hint: notFound ? 'check the command name and PATH; put the command after `--`.' : 'check the file\'s permissions.', cause: err },
          ),
        );
      });
    });
    child.on('error', () => undefined);
    return new ProcessGroup(child, watchdog);
  }

  /** CMD's pid (the group's leader). */
  get pid(): number {
    return this.pgid;
  }

  /** How CMD exited, once it has. */
  get exit(): CommandExit | undefined {
    return this.exitInfo;
  }

  /** Send `signal` to every process of the group (no-op once it is gone). */
  signal(signal: NodeJS.Signals): void {
    if (!this.ended) killGroup(this.pgid, signal);
  }

  /** Send `signal` to CMD's own process only (e.g. a reload signal), if it still runs. */
  signalLeader(signal: NodeJS.Signals): void {
    if (!this.exitInfo) this.child.kill(signal);
  }

  /**
   * End the whole group: SIGTERM, `graceMs`, SIGKILL (proc.ts), and wait until CMD itself is
   * reaped. Also used after CMD exited by itself, for what it left running in its group.
   */
  async stop(graceMs: number): Promise<'gone' | 'terminated' | 'killed' | 'stuck'> {
    if (this.ended) return 'gone';
    const how = await terminateGroup(this.pgid, graceMs);
    if (how !== 'stuck') await this.exited;
    this.finish();
    return how;
  }

  /** True while any process of the group can still run. */
  get alive(): boolean {
    return !this.ended && groupAlive(this.pgid);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.watchdog?.release(this.pgid);
  }
}
