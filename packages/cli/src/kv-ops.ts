/**
 * put / get / del as etcdctl builds them (`getPutOp`, `getGetOp`, `getDelOp` in
 * etcdctl/ctlv3/command/*_command.go): the same flags, the same argument checks in the same
 * order, the same error texts and exit codes. Shared by the commands and by `txn`, whose
 * request lines use exactly these parsers, as etcdctl's do.
 */
import type { DeleteOptions, PutOptions, RangeOptions, SortOrder, SortTarget } from '@coord/client';
import { CliError, ExitCode, badArgs, badFeature } from './errors';
import { goParseInt, goQuote } from './output/go';
import type { FlagSpec, FlagValue } from './flags/pflag';

export const PUT_SPECS: readonly FlagSpec[] = [
  { name: 'lease', kind: 'string', default: '0', description: 'lease ID (in hexadecimal) to attach to the key' },
  { name: 'prev-kv', kind: 'bool', description: 'return the previous key-value pair before modification' },
  { name: 'ignore-value', kind: 'bool', description: 'updates the key using its current value' },
  { name: 'ignore-lease', kind: 'bool', description: 'updates the key using its current lease' },
];

export const GET_SPECS: readonly FlagSpec[] = [
  { name: 'consistency', kind: 'string', default: 'l', description: 'Linearizable(l) or Serializable(s)' },
  { name: 'order', kind: 'string', description: 'Order of results; ASCEND or DESCEND (ASCEND by default)' },
  { name: 'sort-by', kind: 'string', description: 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION' },
  { name: 'limit', kind: 'int64', default: '0', description: 'Maximum number of results' },
  { name: 'prefix', kind: 'bool', description: 'Get keys with matching prefix' },
  { name: 'from-key', kind: 'bool', description: 'Get keys that are greater than or equal to the given key using byte compare' },
  { name: 'rev', kind: 'int64', default: '0', description: 'Specify the kv revision' },
  { name: 'keys-only', kind: 'bool', description: 'Get only the keys' },
  { name: 'count-only', kind: 'bool', description: 'Get only the count (with -w fields)' },
  { name: 'print-value-only', kind: 'bool', description: 'Only write values when using the "simple" output format' },
];

export const DEL_SPECS: readonly FlagSpec[] = [
  { name: 'prefix', kind: 'bool', description: 'delete keys with matching prefix' },
  { name: 'prev-kv', kind: 'bool', description: 'return deleted key-value pairs' },
  { name: 'from-key', kind: 'bool', description: 'delete keys that are greater than or equal to the given key using byte compare' },
];

/** Read a flag's resolved value. */
export type FlagReader = <T extends FlagValue>(name: string) => T;

export interface PutOp {
  readonly kind: 'put';
  readonly key: string;
  readonly value: Buffer;
  readonly options: PutOptions;
}

export interface GetOp {
  readonly kind: 'get';
  readonly key: string;
  readonly options: RangeOptions;
  readonly countOnly: boolean;
  readonly printValueOnly: boolean;
}

export interface DelOp {
  readonly kind: 'del';
  readonly key: string;
  readonly options: DeleteOptions;
}

export type KvOp = PutOp | GetOp | DelOp;

const PUT_USAGE = 'put command needs 1 argument and input from stdin or 2 arguments';

/** etcdctl getPutOp. `stdin` reads all of standard input (argOrStdin). */
export async function putOp(args: readonly string[], flag: FlagReader, stdin: () => Promise<Buffer>): Promise<PutOp> {
  if (args.length === 0) throw badArgs(PUT_USAGE, 'coord put KEY VALUE, or pipe the value: echo v | coord put KEY');
  const key = args[0];
  const ignoreValue = flag<boolean>('ignore-value');
  if (ignoreValue && args.length > 1) throw badArgs("put command needs only 1 argument when 'ignore-value' is set");
  let value: Buffer = Buffer.alloc(0);
  if (!ignoreValue) {
    if (args.length > 1) value = Buffer.from(args[1], 'utf8');
    else {
      value = await stdin();
      if (value.length === 0) throw badArgs(PUT_USAGE, 'coord put KEY VALUE, or pipe the value: echo v | coord put KEY');
    }
  }
  let lease: bigint;
  try {
    lease = goParseInt(flag<string>('lease'), 16);
  } catch (err) {
    throw badArgs(`bad lease ID (${(err as Error).message}), expecting ID in Hex`, 'pass the lease ID in hex as etcdctl prints it, e.g. --lease 694d6280d047720f');
  }
  const options: PutOptions = {};
  if (lease !== 0n) options.lease = lease;
  if (flag<boolean>('prev-kv')) options.prevKv = true;
  if (ignoreValue) options.ignoreValue = true;
  if (flag<boolean>('ignore-lease')) options.ignoreLease = true;
  return { kind: 'put', key, value, options };
}

const SORT_ORDERS: Record<string, SortOrder> = { ASCEND: 'ascend', DESCEND: 'descend', '': 'none' };
const SORT_TARGETS: Record<string, SortTarget> = {
  CREATE: 'create',
  KEY: 'key',
  MODIFY: 'mod',
  VALUE: 'value',
  VERSION: 'version',
  '': 'key',
};

const RANGE_USAGE = 'get command needs one argument as key and an optional argument as range_end';
const BOTH = '`--prefix` and `--from-key` cannot be set at the same time, choose one';
const TOO_MANY = 'too many arguments, only accept one argument when `--prefix` or `--from-key` is set';

/** etcdctl getGetOp (3.4, plus 3.5's `--count-only`). */
export function getOp(args: readonly string[], flag: FlagReader): GetOp {
  if (args.length === 0) throw badArgs(RANGE_USAGE, 'coord get KEY [RANGE_END], or coord get --prefix PREFIX');
  const prefix = flag<boolean>('prefix');
  const fromKey = flag<boolean>('from-key');
  if (prefix && fromKey) throw badArgs(BOTH);
  const keysOnly = flag<boolean>('keys-only');
  const countOnly = flag<boolean>('count-only');
  if (keysOnly && countOnly) throw badArgs('`--keys-only` and `--count-only` cannot be set at the same time, choose one');
  const options: RangeOptions = {};
  const consistency = flag<string>('consistency');
  if (consistency === 's') options.serializable = true;
  else if (consistency !== 'l') throw badFeature(`unknown consistency flag ${goQuote(consistency)}`, 'use --consistency l (linearizable) or s (serializable).');
  if (args.length > 1) {
    if (prefix || fromKey) throw badArgs(TOO_MANY);
    options.rangeEnd = args[1];
  }
  const limit = flag<bigint>('limit');
  if (limit !== 0n) options.limit = limit;
  const rev = flag<bigint>('rev');
  if (rev > 0n) options.revision = rev;
  const orderText = flag<string>('order');
  const order = SORT_ORDERS[orderText.toUpperCase()];
  if (order === undefined) throw badFeature(`bad sort order ${orderText}`, 'use --order ASCEND or DESCEND.');
  const targetText = flag<string>('sort-by');
  const target = SORT_TARGETS[targetText.toUpperCase()];
  if (target === undefined) throw badFeature(`bad sort target ${targetText}`, 'use --sort-by CREATE, KEY, MODIFY, VALUE or VERSION.');
  // clientv3.WithSort: the server already returns keys in ascending order.
  options.sortTarget = target;
  options.sortOrder = target === 'key' && order === 'ascend' ? 'none' : order;
  if (prefix) options.prefix = true;
  if (fromKey) options.fromKey = true;
  if (keysOnly) options.keysOnly = true;
  if (countOnly) options.countOnly = true;
  return { kind: 'get', key: args[0], options, countOnly, printValueOnly: flag<boolean>('print-value-only') };
}

/** etcdctl getDelOp. */
export function delOp(args: readonly string[], flag: FlagReader): DelOp {
  if (args.length === 0 || args.length > 2) {
    throw badArgs('del command needs one argument as key and an optional argument as range_end', 'coord del KEY [RANGE_END], or coord del --prefix PREFIX');
  }
  const prefix = flag<boolean>('prefix');
  const fromKey = flag<boolean>('from-key');
  if (prefix && fromKey) throw badArgs(BOTH);
  const options: DeleteOptions = {};
  if (args.length > 1) {
    if (prefix || fromKey) throw badArgs(TOO_MANY);
    options.rangeEnd = args[1];
  }
  if (prefix) options.prefix = true;
  if (flag<boolean>('prev-kv')) options.prevKv = true;
  if (fromKey) options.fromKey = true;
  return { kind: 'del', key: args[0], options };
}

/** Exit for a `get` whose result the chosen printer cannot show (checked after the request). */
export function checkGetOutput(op: GetOp, format: string): void {
  if (op.countOnly && format !== 'fields') {
    throw new CliError('--count-only is only for `--write-out=fields`', ExitCode.BadArgs, { hint: 'add -w fields.' });
  }
  if (op.printValueOnly && format !== 'simple') {
    throw new CliError('print-value-only is only for `--write-out=simple`', ExitCode.BadArgs, { hint: 'drop -w, or drop --print-value-only.' });
  }
}
