/**
 * The CLI's error catalogue and exit codes: the one place that decides what a failure prints
 * and how the process exits. Codes are etcdctl's (`ctlv3/command/error.go`), so scripts written
 * for etcdctl see the same numbers:
 *
 *   ExitError=1, ExitBadConnection=2, ExitInvalidInput=3 (txn/watch input),
 *   ExitBadFeature=4 (a valid flag with an unsupported value), ExitInterrupted=5, ExitIO=6,
 *   ExitBadArgs=128.
 *
 * What is printed is etcdctl's text (`Error: <message>` on stderr). A "Try this:" hint follows
 * only when stderr is a terminal (or COORD_HINTS=1), so piped output stays byte-identical to
 * etcdctl's. This module has no dependencies: it duck-types @coord/client's errors so that
 * loading it never loads gRPC.
 */

export const ExitCode = Object.freeze({
  Success: 0,
  Error: 1,
  BadConnection: 2,
  InvalidInput: 3,
  BadFeature: 4,
  Interrupted: 5,
  IO: 6,
  BadArgs: 128,
});
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Stable identifiers for `--json` error output; README.md documents each one and a test keeps
 * the two in step.
 */
export const ERROR_CODES = Object.freeze([
  'ERR_USAGE', // a flag could not be parsed (cobra's "unknown flag", "flag needs an argument", ...)
  'ERR_BAD_ARGS', // wrong positional arguments or conflicting flags
  'ERR_BAD_FEATURE', // unsupported output format, sort order, consistency, ...
  'ERR_INVALID_INPUT', // malformed txn input on stdin
  'ERR_SERVER', // the server answered with an error (etcd's own text)
  'ERR_UNAVAILABLE', // no endpoint answered before --command-timeout
  'ERR_INTERNAL', // anything else: a bug or an unexpected failure
] as const);
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface CliErrorOptions {
  code?: ErrorCode;
  /** What the user can do about it; printed as "Try this: ..." on a terminal. */
  hint?: string;
  /** Print as cobra prints a flag error: the message twice, with a blank line between. */
  usage?: boolean;
  cause?: unknown;
}

const DEFAULT_CODE: Record<number, ErrorCode> = {
  [ExitCode.Error]: 'ERR_SERVER',
  [ExitCode.BadConnection]: 'ERR_UNAVAILABLE',
  [ExitCode.InvalidInput]: 'ERR_INVALID_INPUT',
  [ExitCode.BadFeature]: 'ERR_BAD_FEATURE',
  [ExitCode.BadArgs]: 'ERR_BAD_ARGS',
};

/** An error that knows its etcdctl text, exit code and hint. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly usage: boolean;

  constructor(message: string, exitCode: ExitCode = ExitCode.Error, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = options.code ?? (options.usage ? 'ERR_USAGE' : (DEFAULT_CODE[exitCode] ?? 'ERR_INTERNAL'));
    this.hint = options.hint;
    this.usage = options.usage ?? false;
  }

  /** The exact bytes etcdctl writes to stderr for this error. */
  stderrText(): string {
    return this.usage ? `Error: ${this.message}\n\nError: ${this.message}\n` : `Error: ${this.message}\n`;
  }
}

/** Convenience constructors, one per exit code that commands raise themselves. */
export const badArgs = (message: string, hint?: string): CliError => new CliError(message, ExitCode.BadArgs, { hint });
export const badFeature = (message: string, hint?: string): CliError => new CliError(message, ExitCode.BadFeature, { hint });
export const invalidInput = (message: string, hint?: string): CliError =>
  new CliError(message, ExitCode.InvalidInput, { hint });
export const usageError = (message: string, hint?: string): CliError =>
  new CliError(message, ExitCode.Error, { usage: true, hint });

/** gRPC status numbers to the names Go's status.Error prints ("rpc error: code = X desc = Y"). */
const GRPC_CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** The shape of @coord/client's EtcdError (gRPC code, etcd's status text, class name). */
interface ClientErrorLike {
  name: string;
  code: number;
  details: string;
  message: string;
}

function isClientError(err: unknown): err is ClientErrorLike {
  const e = err as Partial<ClientErrorLike> | null;
  return !!e && typeof e === 'object' && typeof e.code === 'number' && typeof e.details === 'string';
}

const SERVER_HINTS: Record<string, string> = {
  CompactedError: 'read at a revision at or after the compacted one, or drop --rev to read the latest.',
  FutureRevisionError: 'use a revision no newer than the current one (see "header.revision" in `-w json` output).',
  EmptyKeyError: 'pass a non-empty key; use --prefix with "" to address every key.',
  KeyNotFoundError: 'the key must exist when --ignore-value or --ignore-lease is used; put it with a value first.',
  LeaseNotFoundError: 'grant a lease first, or pass its ID in hex as etcdctl prints it.',
  NoSpaceError: 'compact and defragment, then disarm the NOSPACE alarm.',
  TooManyOpsError: 'split the transaction; the server limits operations per txn (--max-txn-ops).',
  DuplicateKeyError: 'a txn may not write the same key twice in one branch.',
};

/**
 * Map any failure to a CliError with etcdctl's text. Client errors print as clientv3 would:
 * etcd's own message for known server errors, "context deadline exceeded" when no endpoint
 * answered in time, and "rpc error: code = ... desc = ..." for other gRPC failures.
 */
export function toCliError(err: unknown, context: { endpoints?: readonly string[] } = {}): CliError {
  if (err instanceof CliError) return err;
  if (isClientError(err)) {
    const where = context.endpoints?.length ? ` (--endpoints ${context.endpoints.join(',')})` : '';
    if (err.details.startsWith('etcdserver: ') || err.details.startsWith('mvcc: ')) {
      return new CliError(err.details, ExitCode.Error, { code: 'ERR_SERVER', hint: SERVER_HINTS[err.name], cause: err });
    }
    if (
      err.name === 'DeadlineExceededError' ||
      (err.name === 'UnavailableError' && err.details.startsWith('no endpoint is available'))
    ) {
      return new CliError('context deadline exceeded', ExitCode.Error, {
        code: 'ERR_UNAVAILABLE',
        hint: `check that a member is listening on the endpoints${where}, or raise --command-timeout. Cause: ${err.details}`,
        cause: err,
      });
    }
    if (err.name === 'AbortError') return new CliError('context canceled', ExitCode.Interrupted, { cause: err });
    const name = GRPC_CODE_NAMES[err.code] ?? `Code(${err.code})`;
    return new CliError(`rpc error: code = ${name} desc = ${err.details}`, ExitCode.Error, {
      code: err.code === 14 ? 'ERR_UNAVAILABLE' : 'ERR_SERVER',
      hint: err.code === 14 ? `check that the endpoints are reachable${where}.` : undefined,
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CliError(message, ExitCode.Error, { code: 'ERR_INTERNAL', cause: err });
}
