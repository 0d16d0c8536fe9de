/**
 * A long-lived etcdctl in the background: `watch`, `watch -i`, `lease keep-alive`.
 *
 * Goal: drive commands that never exit on their own as an operator would (start them, type
 * lines into an interactive one, read what they print as it comes), and turn what they
 * printed into an ordinary EtcdctlResult that normalize.ts and scenario.ts understand.
 *
 * Method: spawn etcdctl with the same global flags and clean environment as etcdctl.ts;
 * collect stdout/stderr as they arrive; `waitFor(condition)` polls the condition on every
 * chunk of output and on exit, with a deadline; `stop()` sends SIGTERM (etcdctl has no
 * handler: it dies at once), then SIGKILL. A process stopped by the harness reports code
 * -1, like a process killed by etcdctl()'s timeout; one that exited on its own reports its
 * exit code. Every process still running when the test process exits is SIGKILLed.
 *
 * Watch output is asynchronous, so conditions count what has arrived: `eventsAtLeast(n)`
 * counts events in simple (`PUT`/`DELETE` lines) or json (`"kv":` objects) output; then
 * `settle()` waits until the output has been quiet for a moment (the rest of the last
 * event, or anything unexpected, arrives meanwhile).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { ETCDCTL_BIN, EtcdctlOptions, EtcdctlResult, etcdctlArgv, etcdctlEnv } from './etcdctl';

const STOP_GRACE_MS = 2000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export interface BackgroundOptions extends Pick<EtcdctlOptions, 'dialTimeout' | 'commandTimeout' | 'env'> {
  /** Text written to stdin at once; stdin stays open for write() (interactive mode). */
  stdin?: string;
}

/** What a condition sees: the output so far (since the last await, in scenarios). */
export interface OutputView {
  readonly stdout: string;
  readonly stderr: string;
  readonly running: boolean;
}

export type Condition = (p: OutputView) => boolean;

export class BackgroundEtcdctl {
  readonly argv: string[];
  private readonly child: ChildProcess;
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  private exitCode: number | undefined;
  private stoppedByHarness = false;
  private readonly exitPromise: Promise<void>;
  private readonly listeners = new Set<() => void>();

  constructor(endpoints: string | string[], args: string[], opts: BackgroundOptions = {}) {
    this.argv = [ETCDCTL_BIN, ...etcdctlArgv(endpoints, args, opts)];
    const child = spawn(ETCDCTL_BIN, this.argv.slice(1), { env: etcdctlEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    installExitHook();
    live.add(child);
    child.stdout!.on('data', (d: Buffer) => {
      this.out.push(d);
      this.changed();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.err.push(d);
      this.changed();
    });
    child.stdin!.on('error', () => {
      // etcdctl exited before reading its stdin: not our failure.
    });
    if (opts.stdin !== undefined) child.stdin!.write(opts.stdin);
    this.exitPromise = new Promise((resolve) => {
      const done = (code: number | null): void => {
        live.delete(child);
        if (this.exitCode === undefined) this.exitCode = code === null ? -1 : code;
        this.changed();
        resolve();
      };
      child.once('error', (e) => {
        this.err.push(Buffer.from(`[harness: cannot run ${ETCDCTL_BIN}: ${e.message}]`));
        done(-1);
      });
      // 'close': the exit and all of stdout/stderr have arrived.
      child.once('close', (code) => done(code));
    });
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }
  get stdoutBytes(): Buffer {
    return Buffer.concat(this.out);
  }
  get stdout(): string {
    return this.stdoutBytes.toString('utf8');
  }
  get stderr(): string {
    return Buffer.concat(this.err).toString('utf8');
  }

  /** Types into an interactive etcdctl. */
  write(text: string): void {
    if (this.running) this.child.stdin!.write(text);
  }

  /** Closes its stdin (an interactive etcdctl reads EOF). */
  endInput(): void {
    if (this.running) this.child.stdin!.end();
  }

  /**
   * Resolves true as soon as `cond` holds, false if the deadline passes first or the
   * process exits without it holding.
   */
  waitFor(cond: Condition, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (cond(this)) finish(true);
        else if (!this.running) finish(false);
      };
      const timer = setTimeout(() => finish(cond(this)), timeoutMs);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(ok);
      };
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Resolves once nothing new has been printed for `quietMs` (or the process exited, or
   * `maxMs` passed). etcdctl prints one event in several writes, so a condition can hold
   * while the rest of the event is still on its way; waiting for quiet also shows output
   * that should not be there at all (an extra event).
   */
  async settle(quietMs = 150, maxMs = 2000): Promise<void> {
    const deadline = Date.now() + maxMs;
    for (;;) {
      const before = this.out.length + this.err.length;
      await new Promise((r) => setTimeout(r, quietMs));
      if (!this.running || this.out.length + this.err.length === before || Date.now() > deadline) return;
    }
  }

  /** Resolves true once the process has exited, false after `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<boolean> {
    return this.waitFor((p) => !p.running, timeoutMs);
  }

  /** Stops the process if it still runs (code -1 then) and returns everything it printed. */
  async stop(): Promise<EtcdctlResult> {
    if (this.running) {
      this.stoppedByHarness = true;
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exitPromise;
      clearTimeout(timer);
    }
    return this.result();
  }

  /** What it printed so far; code is -1 while running or when the harness stopped it. */
  result(): EtcdctlResult {
    const stdoutBytes = this.stdoutBytes;
    const stderrBytes = Buffer.concat(this.err);
    return {
      code: this.running || this.stoppedByHarness ? -1 : this.exitCode!,
      stdout: stdoutBytes.toString('utf8'),
      stderr: stderrBytes.toString('utf8'),
      stdoutBytes,
      stderrBytes,
      argv: this.argv,
    };
  }
}

/** Starts `etcdctl ARGS` in the background. */
export function startEtcdctl(endpoints: string | string[], args: string[], opts: BackgroundOptions = {}): BackgroundEtcdctl {
  return new BackgroundEtcdctl(endpoints, args, opts);
}

/** Number of watch events printed so far, in simple or json output (etcdctl 3.4's printers). */
export function countWatchEvents(stdout: string, format: 'simple' | 'json' = 'simple'): number {
  if (format === 'json') return (stdout.match(/\{("type":\d+,)?"kv":/g) ?? []).length;
  // The simple printer prints the event type alone on a line before each event.
  return (stdout.match(/^(PUT|DELETE)$/gm) ?? []).length;
}

/** Condition: at least `n` watch events printed. */
export function eventsAtLeast(n: number, format: 'simple' | 'json' = 'simple'): Condition {
  return (p) => countWatchEvents(p.stdout, format) >= n;
}

/** Condition: stdout (or stderr) matches `re` at least `n` times. */
export function printed(re: RegExp, n = 1, stream: 'stdout' | 'stderr' = 'stdout'): Condition {
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
  return (p) => ((stream === 'stdout' ? p.stdout : p.stderr).match(g) ?? []).length >= n;
}
