/**
 * Exit codes of the commands that run a CMD under a lock, a leadership or a registration
 * (`coord lock`, `coord elect`, `coord service register`, `coord config watch`), and the
 * errors that carry them. `docs/EXIT-CODES.md` documents every row of `SUPERVISED_EXIT_CODES`;
 * `test/lock-exit-codes.test.ts` keeps the two in step.
 *
 * Why these numbers: these commands exit with CMD's own status, so their own failures must
 * stay clear of what commands usually return. 0-2 are every program's; 126, 127 and 128+N are
 * the shell's ("cannot execute", "not found", "killed by signal N") and mean the same here;
 * 124 is GNU timeout's "timed out". coord's own outcomes take the block just below, 121-124,
 * which common programs leave alone. etcdctl's codes (1, 5, 128) keep their meaning for
 * failures that happen before CMD runs (bad arguments, server errors).
 *
 * No dependencies beyond errors.ts: nothing here loads gRPC.
 */
import { CliError, ExitCode } from '../errors';

export const SupervisedExit = Object.freeze({
  /** No endpoint answered: the session (lease) could not be granted, or contact was lost while waiting. */
  CannotConnect: 121,
  /** `--try`: somebody else holds the lock (or waits for it before us). */
  Held: 122,
  /** The lock or the leadership was lost while held; CMD's process group was terminated. */
  Lost: 123,
  /** `--timeout` passed before the lock (or leadership) was acquired. */
  Timeout: 124,
  /** CMD exists but could not be executed (permission denied, not an executable). */
  CannotExecute: 126,
  /** CMD was not found. */
  NotFound: 127,
});

/** One documented row: the code, its `--json` error code (if coord prints an error), and when. */
export interface ExitCodeRow {
  readonly code: number;
  readonly errorCode: string;
  readonly meaning: string;
}

/**
 * Every exit code these commands can end with, in the order docs/EXIT-CODES.md lists them.
 * `errorCode` is what `--json` prints as `error.code` (`-` when nothing is printed).
 */
export const SUPERVISED_EXIT_CODES: readonly ExitCodeRow[] = Object.freeze([
  { code: 0, errorCode: '-', meaning: 'CMD exited 0; without CMD: released after SIGINT, SIGTERM or SIGHUP' },
  { code: ExitCode.Error, errorCode: 'ERR_SERVER', meaning: 'the server refused a request (etcd\'s text on stderr)' },
  { code: ExitCode.Interrupted, errorCode: 'ERR_INTERRUPTED', meaning: 'interrupted (SIGINT, SIGTERM, SIGHUP) while waiting for the lock or leadership' },
  { code: SupervisedExit.CannotConnect, errorCode: 'ERR_UNAVAILABLE', meaning: 'cannot connect: no endpoint answered, or contact was lost while waiting' },
  { code: SupervisedExit.Held, errorCode: 'ERR_LOCK_HELD', meaning: '`lock --try`: the lock is held (or queued for) by another session' },
  { code: SupervisedExit.Lost, errorCode: 'ERR_LOCK_LOST, ERR_LEADERSHIP_LOST', meaning: 'the lock or leadership was lost while held; CMD\'s process group was terminated' },
  { code: SupervisedExit.Timeout, errorCode: 'ERR_TIMEOUT', meaning: '`--timeout` passed before the lock or leadership was acquired' },
  { code: SupervisedExit.CannotExecute, errorCode: 'ERR_CANNOT_EXECUTE', meaning: 'CMD was found but could not be executed' },
  { code: SupervisedExit.NotFound, errorCode: 'ERR_NOT_FOUND', meaning: 'CMD was not found' },
  { code: ExitCode.BadArgs, errorCode: 'ERR_BAD_ARGS', meaning: 'wrong arguments or conflicting flags (etcdctl\'s ExitBadArgs)' },
]);

/** Error codes of `--json` output that only these commands print (the rest are in errors.ts). */
export type SupervisedErrorCode =
  | 'ERR_UNAVAILABLE'
  | 'ERR_INTERRUPTED'
  | 'ERR_LOCK_HELD'
  | 'ERR_LOCK_LOST'
  | 'ERR_LEADERSHIP_LOST'
  | 'ERR_TIMEOUT'
  | 'ERR_CANNOT_EXECUTE'
  | 'ERR_NOT_FOUND';

/**
 * A failure with one of the codes above. It is a CliError, so BaseCommand's `catch` prints it
 * (`Error: <message>`, or `{"error": {...}}` with `--json`) and exits with its code.
 */
export class SupervisedError extends CliError {
  constructor(message: string, exitCode: number, code: SupervisedErrorCode, options: { hint?: string; cause?: unknown } = {}) {
    // errors.ts types exit codes as etcdctl's; ours extend that set (see the file comment).
    super(message, exitCode as ExitCode, { hint: options.hint, cause: options.cause });
    (this as { code: string }).code = code;
  }
}

/** The shell's status for a process that exited with `code` or was killed by `signal`. */
export function statusOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { signals } = (require('node:os') as typeof import('node:os')).constants;
  const n = signal ? (signals as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 0);
}
