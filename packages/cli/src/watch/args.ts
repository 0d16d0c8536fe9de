/**
 * `watch` argument handling, ported from etcd 3.4's `etcdctl/ctlv3/command/watch_command.go`
 * (parseWatchArgs, getWatchChan) and `util.go` (argify), quirks included, because scripts see
 * them: which words are the key and range end, which are the command to run per event, what
 * ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END change, and the exact error texts.
 *
 * - `watch KEY [RANGE_END] [-- CMD ARGS...]`: the `--` is found in the raw argv (etcdctl scans
 *   os.Args after the word "watch"); the command words are then cut off the parsed arguments.
 * - With more than two arguments before `--`, only the first is used (etcdctl's getWatchChan
 *   takes a range end only when there are exactly two).
 * - Interactive lines (`watch ...` on stdin) are split by etcdctl's argify, whose single-quote
 *   branch slices `word[1 : len(args)-1]` (the number of words, not the word's length): so
 *   `watch 'abc' --prev-kv` watches "a". We reproduce it, and Go's panic when that slice is out
 *   of range. Each line is parsed with the watch command's own flags only (no global flags).
 *
 * No dependencies beyond the flag parser: nothing here loads gRPC.
 */
import { CliError, badArgs, invalidInput } from '../errors';
import { FlagParseError, parseArgv, resolveFlag, type FlagSpec, type FlagValue } from '../flags/pflag';
import { goQuote, scanQuoted } from '../output/go';

/** The watch command's own flags (NewWatchCommand). */
export const WATCH_SPECS: readonly FlagSpec[] = [
  { name: 'interactive', char: 'i', kind: 'bool', description: 'Interactive mode' },
  { name: 'prefix', kind: 'bool', description: 'Watch on a prefix if prefix is set' },
  { name: 'rev', kind: 'int64', default: '0', description: 'Revision to start watching' },
  { name: 'prev-kv', kind: 'bool', description: 'get the previous key-value pair before the event happens' },
];

export const ERR_BAD_ARGS_NUM = 'bad number of arguments';
export const ERR_BAD_ARGS_NUM_CONFLICT_ENV = 'bad number of arguments (found conflicting environment key)';
export const ERR_BAD_ARGS_NUM_SEPARATOR = 'bad number of arguments (found separator --, but no commands)';
export const ERR_BAD_ARGS_INTERACTIVE_WATCH = "args[0] must be 'watch' for interactive calls";
export const ERR_RANGE_AND_PREFIX = '`range_end` and `--prefix` are mutually exclusive';

/** The flags of one watch: the command line's, or those of an interactive line. */
export interface WatchFlags {
  readonly prefix: boolean;
  readonly rev: bigint;
  readonly prevKv: boolean;
}

/** What to watch and what to run per event. */
export interface WatchRequest {
  readonly key: string;
  readonly rangeEnd?: string;
  readonly prefix: boolean;
  /** 0n: from now on. */
  readonly rev: bigint;
  readonly prevKv: boolean;
  /** Command to run for each event (empty: none). */
  readonly execArgs: readonly string[];
}

/** ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END (COORD_WATCH_* take precedence). */
export interface WatchEnv {
  readonly key: string;
  readonly range: string;
  /** The variable names actually read, for error messages. */
  readonly keyVar: string;
  readonly rangeVar: string;
}

export function watchEnv(env: NodeJS.ProcessEnv = process.env): WatchEnv {
  const pick = (suffix: string): [string, string] => {
    for (const name of [`COORD_${suffix}`, `ETCDCTL_${suffix}`]) {
      const v = env[name];
      if (v !== undefined && v !== '') return [v, name];
    }
    return ['', `ETCDCTL_${suffix}`];
  };
  const [key, keyVar] = pick('WATCH_KEY');
  const [range, rangeVar] = pick('WATCH_RANGE_END');
  return { key, range, keyVar, rangeVar };
}

/** etcdctl's first check: a range end without a key. */
export function checkWatchEnv(env: WatchEnv): void {
  if (env.key === '' && env.range !== '') {
    throw badArgs(`${env.keyVar} is empty but got ${env.rangeVar}=${goQuote(env.range)}`, `set ${env.keyVar} too, or unset ${env.rangeVar}.`);
  }
}

/** A Go runtime panic, reproduced: etcdctl prints `panic: <message>` (and a trace) and exits with status 2. */
export class GoPanic extends Error {}

/**
 * etcdctl's argify, with its single-quote slicing quirk (see the file comment). Go's `\s` is
 * ASCII whitespace only.
 */
export function argify(line: string): string[] {
  const words = line.match(/"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\t\n\f\r ][^\t\n\f\r ]*[^'"\t\n\f\r ]?/g) ?? [];
  const count = words.length;
  return words.map((w) => {
    if (w.length === 0) return w;
    if (w[0] === "'") {
      // args[i][1 : len(args)-1], bytes of a Go string
      const bytes = Buffer.from(w, 'utf8');
      const high = count - 1;
      if (high > bytes.length) throw new GoPanic(`runtime error: slice bounds out of range [:${high}] with length ${bytes.length}`);
      if (high < 1) throw new GoPanic(`runtime error: slice bounds out of range [1:${high}]`);
      return bytes.subarray(1, high).toString('utf8');
    }
    if (w[0] === '"') {
      const q = scanQuoted(w, 0);
      if (!q) throw invalidInput('unexpected EOF');
      return q.value.toString('utf8');
    }
    return w;
  });
}

/** Parse words with the watch command's flags, pflag's rules and texts. */
function parseWatchFlags(words: readonly string[]): { args: string[]; flags: WatchFlags } {
  const parsed = parseArgv(words, WATCH_SPECS);
  const get = <T extends FlagValue>(name: string): T => resolveFlag(WATCH_SPECS.find((s) => s.name === name) as FlagSpec, parsed.given, {}) as T;
  return { args: parsed.args, flags: { prefix: get<boolean>('prefix'), rev: get<bigint>('rev'), prevKv: get<boolean>('prev-kv') } };
}

/** `for i = range xs { if xs[i] == "--" { found = true; break } }`: Go leaves i at the last index. */
function findSeparator(xs: readonly string[]): { idx: number; found: boolean } {
  for (let i = 0; i < xs.length; i++) if (xs[i] === '--') return { idx: i, found: true };
  return { idx: Math.max(0, xs.length - 1), found: false };
}

export interface ParsedWatchArgs {
  readonly watchArgs: string[];
  readonly execArgs: string[];
  /** Interactive lines only: the flags given on the line. */
  readonly flags?: WatchFlags;
}

/**
 * etcdctl's parseWatchArgs. `rawArgs`: the command line after "watch" (unparsed; the `--` is
 * still there); `commandArgs`: the positional arguments after flag parsing (without `--`), or
 * for an interactive line, argify's words (starting with "watch"). Throws the error etcdctl
 * exits with (ExitBadArgs), or a FlagParseError for an interactive line's flags.
 */
export function parseWatchArgs(rawArgs: readonly string[], commandArgs: readonly string[], env: WatchEnv, interactive: boolean): ParsedWatchArgs {
  let watchArgs = [...commandArgs];
  const envKey = env.key;
  if (interactive) {
    if (watchArgs[0] !== 'watch') throw new Error(ERR_BAD_ARGS_INTERACTIVE_WATCH);
    watchArgs = watchArgs.slice(1);
  }
  if (!interactive) {
    const { idx: execIdx, found: execExist } = findSeparator(rawArgs);
    if (execExist && execIdx === rawArgs.length - 1) throw new Error(ERR_BAD_ARGS_NUM_SEPARATOR);
    if (!execExist && rawArgs.length < 1 && envKey === '') throw new Error(ERR_BAD_ARGS_NUM);
    if (execExist && envKey !== '') {
      // "ETCDCTL_WATCH_KEY=foo watch foo -- echo 1" is a conflict: watchArgs has a word the
      // raw args have only before the separator.
      let ridx = rawArgs.length - 1;
      for (let widx = watchArgs.length - 1; widx >= 0; widx--) {
        if (ridx >= 0 && watchArgs[widx] === rawArgs[ridx]) {
          ridx--;
          continue;
        }
        if (ridx === execIdx) throw new Error(ERR_BAD_ARGS_NUM_CONFLICT_ENV);
      }
    }
    if (!execExist && watchArgs.length > 0 && envKey !== '') throw new Error(ERR_BAD_ARGS_NUM_CONFLICT_ENV);
  } else {
    const { idx: execIdx, found: execExist } = findSeparator(watchArgs);
    if (execExist && execIdx === watchArgs.length - 1) throw new Error(ERR_BAD_ARGS_NUM_SEPARATOR);
    const pArgs = parseWatchFlags(watchArgs).args;
    if (!execExist && envKey === '' && pArgs.length < 1) throw new Error(ERR_BAD_ARGS_NUM);
    if (!execExist && pArgs.length > 0 && envKey !== '') throw new Error(ERR_BAD_ARGS_NUM_CONFLICT_ENV);
  }

  const argsWithSep = interactive ? watchArgs : [...rawArgs];
  const { idx, found: foundSep } = findSeparator(argsWithSep);
  const execArgs = foundSep ? argsWithSep.slice(idx + 1) : [];

  let flags: WatchFlags | undefined;
  if (interactive) {
    const parsed = parseWatchFlags(argsWithSep);
    watchArgs = parsed.args;
    flags = parsed.flags;
  }
  if (envKey !== '') watchArgs = [envKey, ...(env.range !== '' ? [env.range] : []), ...watchArgs];
  if (!foundSep) return { watchArgs, execArgs, flags };

  // "watch foo bar --rev 1 -- echo hello": watchArgs is "foo bar echo hello"; cut at the
  // last occurrence of the command's first word.
  let endIdx = watchArgs.length - 1;
  for (; endIdx >= 0; endIdx--) if (watchArgs[endIdx] === argsWithSep[idx + 1]) break;
  if (endIdx < 0) throw new GoPanic(`runtime error: slice bounds out of range [:${endIdx}]`);
  return { watchArgs: watchArgs.slice(0, endIdx), execArgs, flags };
}

/** etcdctl's getWatchChan checks: the key, an optional range end, and --prefix. */
export function watchRequest(watchArgs: readonly string[], flags: WatchFlags, execArgs: readonly string[]): WatchRequest {
  if (watchArgs.length < 1) throw new Error(ERR_BAD_ARGS_NUM);
  let rangeEnd: string | undefined;
  if (watchArgs.length === 2) {
    if (flags.prefix) throw new Error(ERR_RANGE_AND_PREFIX);
    rangeEnd = watchArgs[1];
  }
  return { key: watchArgs[0], rangeEnd, prefix: flags.prefix, rev: flags.rev, prevKv: flags.prevKv, execArgs: [...execArgs] };
}

/** An error of the functions above as etcdctl exits with it (ExitBadArgs), FlagParseError included. */
export function badWatchArgs(err: unknown): CliError {
  if (err instanceof CliError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof FlagParseError ? 'an interactive line takes the watch flags only: --prefix, --rev, --prev-kv, -i.' : 'coord watch KEY [RANGE_END] [--prefix] [--rev REV] [--prev-kv] [-- COMMAND ARGS...]';
  return badArgs(message, hint);
}
