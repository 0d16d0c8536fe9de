/**
 * `coord txn`: etcdctl's txn. Reads compares, success requests and failure requests from
 * stdin, each section ended by a blank line (grammar in src/txn/grammar.ts). With `-i`, or
 * when stdin is a terminal, it prompts for each section as etcdctl's interactive mode does.
 *
 * One deliberate difference: etcdctl 3.4 fails with "Error: EOF" when input ends without a
 * blank line after the requests; coord runs the transaction (a missing trailing blank line
 * is the common mistake in scripts). Input that ends inside the compares fails as in etcdctl.
 */
import type { Compare, Op, TxnResult } from '@coord/client';
import { BaseCommand, oclifFlags } from '../base-command';
import { badArgs, invalidInput } from '../errors';
import type { FlagSpec } from '../flags/pflag';
import type { KvOp } from '../kv-ops';
import { parseCompare, parseRequest, type CompareSpec } from '../txn/grammar';
import { LineReader } from '../txn/line-reader';

const SPECS: readonly FlagSpec[] = [
  { name: 'interactive', char: 'i', kind: 'bool', description: 'Input transaction in interactive mode' },
];

export default class Txn extends BaseCommand {
  static override summary = 'Txn processes all the requests in one transaction';
  static override description = `Reads a transaction from standard input, in etcdctl's format:

  compares, one per line          mod("key") > "5"   value("k") = "v"   version("k") = "0"
                                  create("k") > "0"  lease("k") = "694d6280d047720f"
  (blank line)
  success requests, one per line  put k v   get k --prefix   del k
  (blank line)
  failure requests, one per line
  (blank line)

Prints SUCCESS or FAILURE and each request's answer.`;
  static override examples = [`printf 'value("k") = "v"\\n\\nput k v2\\n\\nget k\\n\\n' | <%= config.bin %> txn`, '<%= config.bin %> txn -i'];
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<TxnResult> {
    if (this.positional.length !== 0) throw badArgs('txn command does not accept argument', 'pipe the transaction into stdin, or use -i.');
    const client = this.client();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { compare, op } = require('@coord/client') as typeof import('@coord/client');
    const stdin = this.useStdin();
    const interactive = this.bool('interactive') || stdin.isTTY === true;
    const reader = new LineReader(stdin);
    const prompt = (text: string): void => {
      if (interactive) this.out(text);
    };

    prompt('compares:');
    const compares = (await this.readCompares(reader)).map((c) => toCompare(compare, c));
    prompt('success requests (get, put, del):');
    const success = (await this.readOps(reader)).map((o) => toOp(op, o));
    prompt('failure requests (get, put, del):');
    const failure = (await this.readOps(reader)).map((o) => toOp(op, o));

    const res = await client.txn({ compare: compares, success, failure });
    this.printer().txn(res);
    return res;
  }

  private async readCompares(reader: LineReader): Promise<CompareSpec[]> {
    const out: CompareSpec[] = [];
    for (;;) {
      const { line, eof } = await reader.readLine();
      if (eof) throw invalidInput('EOF', 'end the compares with a blank line (an empty section is just a blank line).');
      const text = line.toString('utf8').trim();
      if (text.length === 0) return out;
      out.push(parseCompare(text));
    }
  }

  private async readOps(reader: LineReader): Promise<KvOp[]> {
    const out: KvOp[] = [];
    for (;;) {
      const { line, eof } = await reader.readLine();
      const text = line.toString('utf8').trim();
      if (text.length === 0) return out;
      out.push(await parseRequest(text));
      if (eof) return out;
    }
  }
}

type CompareApi = typeof import('@coord/client').compare;
type OpApi = typeof import('@coord/client').op;

function toCompare(compare: CompareApi, c: CompareSpec): Compare {
  if (c.target === 'value') return compare.value(c.key, c.operator, c.value as Buffer);
  return compare[c.target](c.key, c.operator, c.value as bigint);
}

function toOp(op: OpApi, o: KvOp): Op {
  switch (o.kind) {
    case 'put':
      return op.put(o.key, o.value, o.options);
    case 'get':
      return op.get(o.key, o.options);
    case 'del':
      return op.delete(o.key, o.options);
  }
}
