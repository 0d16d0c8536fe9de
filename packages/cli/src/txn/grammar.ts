/**
 * etcdctl's txn input grammar (etcdctl/ctlv3/command/txn_command.go):
 *
 *   <compare>*  blank line  <request>*  blank line  <request>*  (blank line or EOF)
 *
 *   compare := target "(" quoted-key ")" op quoted-value
 *     target := ver | version | c | create | m | mod | val | value | lease
 *     op     := "=" | "!=" | "<" | ">"
 *   request := put/get/del command line, with those commands' flags (`put k v --prev-kv`)
 *
 * Quoted strings are Go's (`"a\tb"`, `\x00`, or back-quoted). Error texts and exit codes are
 * etcdctl's. Deliberate differences, where etcdctl 3.4 crashes or mangles input:
 * - `lease("k") = "694d..."` compares the key's lease with the hex ID (etcdctl 3.4 panics;
 *   3.5 parses hex as we do);
 * - an unknown operator is an error (etcdctl panics "Unknown result op");
 * - a single-quoted word loses its quotes (etcdctl 3.4 slices it by the number of words).
 */
import { invalidInput } from '../errors';
import { goParseInt, goQuote, scanQuoted } from '../output/go';
import { parseArgv, resolveFlag, FlagParseError, type FlagSpec, type FlagValue } from '../flags/pflag';
import { DEL_SPECS, GET_SPECS, PUT_SPECS, delOp, getOp, putOp, type KvOp } from '../kv-ops';

export type CompareOperator = '=' | '!=' | '<' | '>';

export interface CompareSpec {
  readonly target: 'version' | 'create' | 'mod' | 'value' | 'lease';
  readonly key: Buffer;
  readonly operator: CompareOperator;
  /** bigint for version/create/mod/lease, bytes for value. */
  readonly value: bigint | Buffer;
}

const TARGETS: Record<string, CompareSpec['target']> = {
  ver: 'version',
  version: 'version',
  c: 'create',
  create: 'create',
  m: 'mod',
  mod: 'mod',
  val: 'value',
  value: 'value',
  lease: 'lease',
};

const OPERATORS = new Set(['=', '!=', '<', '>']);

/** parseCompare: `mod("key") > "5"`. */
export function parseCompare(line: string): CompareSpec {
  const lparen = line.indexOf('(');
  if (lparen < 0) throw invalidInput(`malformed comparison: ${line}`);
  const target = line.slice(0, lparen);
  const rest = line.slice(lparen + 1);

  // fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val)
  let n = 0;
  let key: Buffer = Buffer.alloc(0);
  let op = '';
  let val: Buffer = Buffer.alloc(0);
  const k = scanQuoted(rest, 0);
  if (k) {
    key = k.value;
    n = 1;
    let pos = k.end;
    // A space in a Sscanf format matches one or more spaces, or the end of the input.
    if (rest[pos] === ')' && (pos + 1 === rest.length || /[ \t]/.test(rest[pos + 1]))) {
      pos++;
      const m = /^[ \t]*([^ \t]+)/.exec(rest.slice(pos));
      if (m) {
        op = m[1];
        n = 2;
        pos += m[0].length;
        const v = scanQuoted(rest, pos);
        if (v) {
          val = v.value;
          n = 3;
        }
      }
    }
  }
  if (n !== 3) throw invalidInput(`malformed comparison: ${line}; got ${target}(${goQuote(key)}) ${op} ${goQuote(val)}`);

  const t = TARGETS[target];
  if (t === undefined) throw invalidInput(`malformed comparison: ${line} (unknown target ${target})`);
  if (!OPERATORS.has(op)) throw invalidInput(`malformed comparison: ${line} (unknown operator ${op}; use =, !=, < or >)`);
  const operator = op as CompareOperator;
  if (t === 'value') return { target: t, key, operator, value: val };
  try {
    return { target: t, key, operator, value: goParseInt(val.toString('utf8'), t === 'lease' ? 16 : 10) };
  } catch {
    throw invalidInput(`invalid txn compare request: ${line}`);
  }
}

// Go's regexp `\s` is ASCII whitespace only.
const WORD = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\t\n\f\r ][^\t\n\f\r ]*[^'"\t\n\f\r ]?/g;

/** etcdctl's argify: split a request line into words, honouring Go-quoted and single-quoted words. */
export function argify(line: string): string[] {
  const words = line.match(WORD) ?? [];
  return words.map((w) => {
    if (w.startsWith("'")) return w.slice(1, -1);
    if (w.startsWith('"')) {
      const q = scanQuoted(w, 0);
      if (!q) throw invalidInput('unexpected EOF');
      return q.value.toString('utf8');
    }
    return w;
  });
}

const REQUEST_SPECS: Record<string, readonly FlagSpec[]> = { put: PUT_SPECS, get: GET_SPECS, del: DEL_SPECS };

/**
 * parseRequestUnion: `put k v`, `get k --prefix`, `del k`. A put without a value reads stdin
 * in etcdctl, which the txn has already consumed, so it fails as etcdctl's does.
 */
export async function parseRequest(line: string): Promise<KvOp> {
  const args = argify(line);
  if (args.length < 2) throw invalidInput(`invalid txn compare request: ${line}`);
  const specs = REQUEST_SPECS[args[0]];
  if (!specs) throw invalidInput(`invalid txn request: ${line}`);
  let parsed;
  try {
    parsed = parseArgv(args.slice(1), specs);
  } catch (err) {
    if (err instanceof FlagParseError) throw invalidInput(`invalid txn request: ${line}`);
    throw err;
  }
  const bySpec = new Map(specs.map((s) => [s.name, s]));
  const flag = <T extends FlagValue>(name: string): T => resolveFlag(bySpec.get(name) as FlagSpec, parsed.given) as T;
  switch (args[0]) {
    case 'put':
      return putOp(parsed.args, flag, async () => Buffer.alloc(0));
    case 'get':
      return getOp(parsed.args, flag);
    default:
      return delOp(parsed.args, flag);
  }
}
