/**
 * `coord config get PREFIX`: the configuration under PREFIX as one JSON object, read at one
 * revision (see src/supervise/config.ts for the layout).
 *
 *   -w simple (default)   the object, indented JSON (`{}` when nothing is under PREFIX)
 *   -w json               {"prefix", "revision", "config"} on one line
 *   --json                the same object, as oclif prints results
 */
import { Args, BaseCommand } from '../../base-command';
import { badArgs, badFeature } from '../../errors';
import { toJsonSafe } from '../../output/json-result';
import { configObject } from '../../supervise/config';

export default class ConfigGet extends BaseCommand {
  static override summary = 'Prints the configuration under a prefix as JSON';
  static override description = `Reads every key under PREFIX at one revision and prints them as one JSON object whose names are
the keys relative to PREFIX; values that are JSON are decoded, others are strings.`;
  static override examples = ['<%= config.bin %> config get app/', '<%= config.bin %> config get app/ -w json'];
  static override args = { prefix: Args.string({ description: 'the key prefix (end it with /)' }) };

  async run(): Promise<Record<string, unknown>> {
    if (this.positional.length !== 1 || this.positional[0] === '') throw badArgs('config get takes one non-empty PREFIX argument');
    const prefix = this.positional[0];
    const format = this.global().writeOut;
    if (format !== 'simple' && format !== 'json') throw badFeature('unsupported output format for config get', 'use -w simple or -w json.');
    const res = await this.client().getRange({ key: prefix, prefix: true });
    const config = configObject(prefix, res.kvs);
    const result = { prefix, revision: res.header.revision, config };
    if (format === 'json') this.out(JSON.stringify(toJsonSafe(result)));
    else for (const line of JSON.stringify(config, null, 2).split('\n')) this.out(line);
    return result;
  }
}
