/**
 * `coord config set PREFIX [NAME=VALUE...]`: write configuration names under PREFIX in one
 * transaction (watchers see one change). Without NAME=VALUE words, reads a JSON object from
 * stdin: each value is stored as its JSON text and `null` deletes the name. A VALUE given on
 * the command line is stored as given (it reads back as JSON if it parses as JSON).
 *
 * Prints `OK` (simple), or {"revision", "set", "deleted"} with -w json / --json. The server's
 * limit on operations per transaction (--max-txn-ops, 128 by default) applies.
 */
import type { Op } from '@coord/client';
import { Args, BaseCommand } from '../../base-command';
import { badArgs, badFeature } from '../../errors';
import { toJsonSafe } from '../../output/json-result';
import { writesFromJson, writesFromPairs } from '../../supervise/config';

export default class ConfigSet extends BaseCommand {
  static override summary = 'Writes configuration names under a prefix in one transaction';
  static override description = `Writes PREFIX+NAME = VALUE for each NAME=VALUE, all in one transaction. Without NAME=VALUE,
reads a JSON object from stdin: each value is stored as JSON and null deletes the name.`;
  static override examples = [
    '<%= config.bin %> config set app/ db/host=db1 db/port=5432',
    'echo \'{"db/host": "db2", "debug": null}\' | <%= config.bin %> config set app/',
  ];
  static override usage = ['config set PREFIX [NAME=VALUE...]    (or a JSON object on stdin)'];
  static override args = { prefix: Args.string({ description: 'the key prefix (end it with /)' }) };

  async run(): Promise<Record<string, unknown>> {
    const [prefix, ...pairs] = this.positional;
    if (prefix === undefined || prefix === '') throw badArgs('config set takes a PREFIX argument, then NAME=VALUE words (or a JSON object on stdin)');
    const format = this.global().writeOut;
    if (format !== 'simple' && format !== 'json') throw badFeature('unsupported output format for config set', 'use -w simple or -w json.');
    const writes = pairs.length > 0 ? writesFromPairs(pairs) : writesFromJson((await this.readStdin()).toString('utf8'));
    if (writes.size === 0) throw badArgs('nothing to set');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { op } = require('@coord/client') as typeof import('@coord/client');
    const client = this.client();
    const ops: Op[] = [];
    const set: string[] = [];
    const deleted: string[] = [];
    for (const [name, value] of writes) {
      if (value === null) {
        ops.push(op.delete(prefix + name));
        deleted.push(name);
      } else {
        ops.push(op.put(prefix + name, value));
        set.push(name);
      }
    }
    const res = await client.txn({ success: ops });
    const result = { prefix, revision: res.header.revision, set, deleted };
    if (format === 'json') this.out(JSON.stringify(toJsonSafe(result)));
    else this.out('OK');
    return result;
  }
}
