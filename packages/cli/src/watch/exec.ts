/**
 * `watch ... -- CMD ARGS`: run CMD once per event, as etcdctl 3.4's printWatchCh does with Go's
 * os/exec (Go 1.19): one at a time, waiting for each; stdin /dev/null, stdout and stderr
 * shared with coord; the environment is ours plus
 *
 *   ETCD_WATCH_REVISION=<response header revision>        (%d: the store revision when the
 *                                                          response was sent, not the event's)
 *   ETCD_WATCH_EVENT_TYPE="PUT" | "DELETE"                (%q, quotes included)
 *   ETCD_WATCH_KEY=<%q of the key>  ETCD_WATCH_VALUE=<%q of the value>   (Go-quoted bytes)
 *
 * A failure is reported as etcdctl reports it, `command ["CMD" "ARGS"] error (<Go's error>)`,
 * with Go's texts: `exit status N`, `signal: killed`, `exec: "x": executable file not found
 * in $PATH`, `fork/exec ./x: no such file or directory`, `fork/exec /x: exec format error`.
 * Like Go's exec.Command, a name without a slash is looked up in PATH first (regular files
 * with an execute bit).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WatchEvent } from '@coord/client';
import { goQuote } from '../output/go';

/** syscall.Signal.String() on linux. */
const GO_SIGNAL_NAMES: Record<string, string> = {
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGQUIT: 'quit',
  SIGILL: 'illegal instruction',
  SIGTRAP: 'trace/breakpoint trap',
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGFPE: 'floating point exception',
  SIGKILL: 'killed',
  SIGUSR1: 'user defined signal 1',
  SIGSEGV: 'segmentation fault',
  SIGUSR2: 'user defined signal 2',
  SIGPIPE: 'broken pipe',
  SIGALRM: 'alarm clock',
  SIGTERM: 'terminated',
  SIGSTKFLT: 'stack fault',
  SIGCHLD: 'child exited',
  SIGCONT: 'continued',
  SIGSTOP: 'stopped (signal)',
  SIGTSTP: 'stopped',
  SIGTTIN: 'stopped (tty input)',
  SIGTTOU: 'stopped (tty output)',
  SIGURG: 'urgent I/O condition',
  SIGXCPU: 'CPU time limit exceeded',
  SIGXFSZ: 'file size limit exceeded',
  SIGVTALRM: 'virtual timer expired',
  SIGPROF: 'profiling timer expired',
  SIGWINCH: 'window changed',
  SIGIO: 'I/O possible',
  SIGPWR: 'power failure',
  SIGSYS: 'bad system call',
};

/** The four variables etcdctl adds for one event of a response with this header revision. */
export function watchEventEnv(revision: bigint, e: WatchEvent): Record<string, string> {
  return {
    ETCD_WATCH_REVISION: revision.toString(),
    ETCD_WATCH_EVENT_TYPE: goQuote(e.type === 'delete' ? 'DELETE' : 'PUT'),
    ETCD_WATCH_KEY: goQuote(e.kv.key),
    ETCD_WATCH_VALUE: goQuote(e.kv.value),
  };
}

/** fmt's `%q` of a []string: `["a" "b c"]`. */
export function goQuoteSlice(xs: readonly string[]): string {
  return `[${xs.map((x) => goQuote(x)).join(' ')}]`;
}

/** Go's error texts for fs errors (syscall.Errno.Error()). */
function errnoText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
      return 'permission denied';
    case 'ENOTDIR':
      return 'not a directory';
    case 'ENOEXEC':
      return 'exec format error';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'ENAMETOOLONG':
      return 'file name too long';
    default:
      return err.message;
  }
}

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return !st.isDirectory() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** os/exec.LookPath for a bare name (Go 1.19, ErrDot included). Returns the path or Go's error text. */
export function lookPath(name: string, envPath = process.env.PATH ?? ''): { file?: string; error?: string } {
  for (let dir of envPath.split(path.delimiter)) {
    if (dir === '') dir = '.';
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) {
      if (!path.isAbsolute(candidate)) {
        return { error: `exec: ${goQuote(name)}: cannot run executable found relative to current directory` };
      }
      return { file: candidate };
    }
  }
  return { error: `exec: ${goQuote(name)}: executable file not found in $PATH` };
}

/**
 * What execve would say about a file that exists and has an execute bit: Linux runs ELF
 * binaries and `#!` scripts; anything else fails with ENOEXEC. (libuv's execvp would hand such
 * a file to /bin/sh instead; Go's os/exec does not.)
 */
function execFormatError(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(4);
    const n = fs.readSync(fd, head, 0, 4, 0);
    if (n >= 2 && head[0] === 0x23 && head[1] === 0x21) return false; // #!
    if (n === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return false; // ELF
    return true;
  } catch {
    return false; // unreadable: let the exec report it
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Run the command once; resolves with undefined on exit status 0, else with Go's error text
 * (`exit status 1`, `signal: killed`, ...).
 */
export function runWatchCommand(execArgs: readonly string[], extraEnv: Record<string, string>): Promise<string | undefined> {
  const [name, ...args] = execArgs;
  let file = name;
  if (!name.includes('/')) {
    const found = lookPath(name);
    if (found.error !== undefined) return Promise.resolve(found.error);
    file = found.file as string;
  }
  if (isExecutable(file) && execFormatError(file)) return Promise.resolve(`fork/exec ${file}: exec format error`);
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: string | undefined): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const child = spawn(file, args, {
      argv0: name,
      env: { ...process.env, ...extraEnv },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', (err: NodeJS.ErrnoException) => done(`fork/exec ${file}: ${errnoText(err)}`));
    child.on('exit', (code, signal) => {
      if (signal) done(`signal: ${GO_SIGNAL_NAMES[signal] ?? signal}`);
      else if (code !== 0) done(`exit status ${code}`);
      else done(undefined);
    });
  });
}
