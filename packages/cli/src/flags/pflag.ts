/**
 * Command-line parsing with spf13/pflag's rules and error texts, because etcdctl's users and
 * scripts rely on them: flags anywhere between arguments, `--flag value` and `--flag=value`,
 * `-w json`, `-wjson`, grouped booleans (`-ih`), `--bool=false`, `--` ends the flags, a lone
 * `-` is an argument, and a value flag takes the next word even if it starts with `-`.
 * Errors read exactly as cobra prints them ("unknown flag: --bogus", "flag needs an argument:
 * --limit", `invalid argument "x" for "--limit" flag: strconv.ParseInt: ...`).
 *
 * oclif still gets the same specs (as oclif flags) for `--help`; it does not parse them.
 * No dependencies: bin/run.js uses this file before oclif is loaded.
 */
import { goParseBool, goParseDurationMs, goParseInt, goQuote } from '../output/go';

export type FlagKind = 'bool' | 'string' | 'int64' | 'duration';

export interface FlagSpec {
  readonly name: string;
  readonly char?: string;
  readonly kind: FlagKind;
  readonly description: string;
  /** Default as etcdctl shows it (`2s`, `simple`, `0`); parsed like a command-line value. */
  readonly default?: string;
  /** Also read from COORD_<NAME> and ETCDCTL_<NAME> (etcdctl reads ETCDCTL_<NAME>). */
  readonly env?: boolean;
  readonly hidden?: boolean;
  /** A pflag StringSlice: repeated flags append (`--endpoints a --endpoints b,c` = a,b,c). */
  readonly slice?: boolean;
}

export type FlagValue = boolean | string | bigint | number;

export class FlagParseError extends Error {}

export interface ParsedArgv {
  /** Positional arguments, in order. */
  readonly args: string[];
  /** Flags given on the command line, by name, converted (bool, string, bigint, ms). */
  readonly given: ReadonlyMap<string, FlagValue>;
}

/** Convert a textual value for a flag; throws Go's error text (without the pflag prefix). */
export function convertFlagValue(spec: FlagSpec, raw: string): FlagValue {
  switch (spec.kind) {
    case 'bool':
      return goParseBool(raw);
    case 'int64':
      return goParseInt(raw, 10);
    case 'duration':
      return goParseDurationMs(raw);
    case 'string':
      return raw;
  }
}

/** pflag's FlagSet.Set: the error names the flag as `-w, --write-out` whenever it has a shorthand. */
function setValue(spec: FlagSpec, raw: string, given: Map<string, FlagValue>): void {
  const previous = given.get(spec.name);
  if (spec.slice && typeof previous === 'string') raw = `${previous},${raw}`;
  try {
    given.set(spec.name, convertFlagValue(spec, raw));
  } catch (err) {
    const shown = spec.char ? `-${spec.char}, --${spec.name}` : `--${spec.name}`;
    throw new FlagParseError(`invalid argument ${goQuote(raw)} for ${goQuote(shown)} flag: ${(err as Error).message}`);
  }
}

/** Parse argv against the specs, pflag style. Throws FlagParseError with cobra's message. */
export function parseArgv(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgv {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byChar = new Map(specs.filter((s) => s.char).map((s) => [s.char as string, s]));
  const args: string[] = [];
  const given = new Map<string, FlagValue>();
  const rest = [...argv];
  while (rest.length > 0) {
    const a = rest.shift() as string;
    if (a === '--') {
      args.push(...rest);
      break;
    }
    if (a.length < 2 || a[0] !== '-') {
      args.push(a);
      continue;
    }
    if (a[1] === '-') {
      // --name, --name=value
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (name.length === 0 || name[0] === '-' || name[0] === '=') throw new FlagParseError(`bad flag syntax: ${a}`);
      const spec = byName.get(name);
      if (!spec) throw new FlagParseError(`unknown flag: --${name}`);
      if (eq >= 0) setValue(spec, a.slice(eq + 1), given);
      else if (spec.kind === 'bool') given.set(name, true);
      else if (rest.length > 0) setValue(spec, rest.shift() as string, given);
      else throw new FlagParseError(`flag needs an argument: --${name}`);
      continue;
    }
    // -abc: shorthands, the last may take a value (the rest of the word, or the next word)
    let shorts = a.slice(1);
    while (shorts.length > 0) {
      const c = shorts[0];
      const spec = byChar.get(c);
      if (!spec) throw new FlagParseError(`unknown shorthand flag: '${c}' in -${shorts}`);
      if (shorts.length > 2 && shorts[1] === '=') {
        setValue(spec, shorts.slice(2), given);
        shorts = '';
      } else if (spec.kind === 'bool') {
        given.set(spec.name, true);
        shorts = shorts.slice(1);
      } else if (shorts.length > 1) {
        setValue(spec, shorts.slice(1), given);
        shorts = '';
      } else if (rest.length > 0) {
        setValue(spec, rest.shift() as string, given);
        shorts = '';
      } else {
        throw new FlagParseError(`flag needs an argument: '${c}' in -${c}`);
      }
    }
  }
  return { args, given };
}

/** The flag's value: given, else from the environment (if `env`), else its default. */
export function resolveFlag(
  spec: FlagSpec,
  given: ReadonlyMap<string, FlagValue>,
  env: NodeJS.ProcessEnv = process.env,
): FlagValue {
  const v = given.get(spec.name);
  if (v !== undefined) return v;
  if (spec.env) {
    const suffix = spec.name.toUpperCase().replace(/-/g, '_');
    for (const key of [`COORD_${suffix}`, `ETCDCTL_${suffix}`]) {
      const raw = env[key];
      if (raw === undefined || raw === '') continue;
      try {
        return convertFlagValue(spec, raw);
      } catch (err) {
        throw new FlagParseError(`invalid value ${JSON.stringify(raw)} for ${key}: ${(err as Error).message}`);
      }
    }
  }
  if (spec.default !== undefined) return convertFlagValue(spec, spec.default);
  switch (spec.kind) {
    case 'bool':
      return false;
    case 'int64':
      return 0n;
    case 'duration':
      return 0;
    case 'string':
      return '';
  }
}
