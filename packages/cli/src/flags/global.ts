/**
 * The global flags every network command accepts (etcdctl's persistent flags), and the argv
 * rewrite that lets them come before the command as with etcdctl (`coord --endpoints x get k`):
 * oclif wants the command id first, so bin/run.js moves leading global flags after it.
 * No dependencies: this runs before oclif is loaded.
 */
import type { FlagSpec } from './pflag';

export const GLOBAL_FLAGS: readonly FlagSpec[] = Object.freeze([
  {
    name: 'endpoints',
    kind: 'string',
    default: '127.0.0.1:2379',
    env: true,
    slice: true,
    description: 'gRPC endpoints, comma-separated (env COORD_ENDPOINTS or ETCDCTL_ENDPOINTS)',
  },
  { name: 'dial-timeout', kind: 'duration', default: '2s', env: true, description: 'dial timeout for client connections' },
  {
    name: 'command-timeout',
    kind: 'duration',
    default: '5s',
    env: true,
    description: 'timeout for short running command (excluding dial timeout)',
  },
  {
    name: 'write-out',
    char: 'w',
    kind: 'string',
    default: 'simple',
    env: true,
    description: 'set the output format (fields, json, simple, table)',
  },
  { name: 'hex', kind: 'bool', env: true, description: 'print byte strings as hex encoded strings' },
  { name: 'cacert', kind: 'string', env: true, description: 'verify certificates of TLS-enabled secure servers using this CA bundle' },
  { name: 'cert', kind: 'string', env: true, description: 'identify secure client using this TLS certificate file' },
  { name: 'key', kind: 'string', env: true, description: 'identify secure client using this TLS key file' },
  // oclif's own flag (enableJsonFlag): print the command's result as JSON.
  { name: 'json', kind: 'bool', description: 'Format output as json.' },
] satisfies FlagSpec[]);

/**
 * Move global flags that precede the command to after it, and make
 * `coord server ...` pass every following word to the server untouched (a `--` after `server`
 * keeps oclif from reading `--help` or `--json` meant for the server).
 */
export function normalizeArgv(argv: readonly string[]): string[] {
  const moved: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (a.length < 2 || a[0] !== '-' || a === '--') break;
    const long = a.startsWith('--');
    const name = long ? a.slice(2).split('=')[0] : a.slice(1, 2);
    const spec = GLOBAL_FLAGS.find((f) => (long ? f.name === name : f.char === name));
    if (!spec) {
      // oclif's own (--help, -h, --version) stay first; any other unknown flag moves alone, so
      // that the command reports it ("unknown flag: --bogus") instead of oclif finding no command.
      if (['help', 'version', 'h'].includes(name)) break;
      moved.push(a);
      i++;
      continue;
    }
    moved.push(a);
    i++;
    const inlineValue = long ? a.includes('=') : a.length > 2;
    if (spec.kind !== 'bool' && !inlineValue && i < argv.length) moved.push(argv[i++]);
  }
  const rest = argv.slice(i);
  if (rest[0] === 'server') {
    const serverArgs = rest[1] === '--' ? rest.slice(2) : rest.slice(1);
    return ['server', '--', ...serverArgs];
  }
  if (moved.length === 0) return [...rest];
  // Right after the leading words (the command id and maybe arguments), before any flag or
  // `--`: appended at the end, they would become the value of a trailing `--limit`.
  let at = rest.findIndex((a) => a.length > 1 && a[0] === '-');
  if (at < 0) at = rest.length;
  return [...rest.slice(0, at), ...moved, ...rest.slice(at)];
}
