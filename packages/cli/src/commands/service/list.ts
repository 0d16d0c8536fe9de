/**
 * `coord service list NAME`: the registered instances of service NAME, at one revision
 * (@coord/recipes' ServiceRegistry.discover), sorted by key.
 *
 *   -w simple (default)   one line per instance: `<id> <address>:<port>[ k=v,...]`
 *   -w json               {"service", "revision", "instances": [{id, address, port, metadata,
 *                         key, lease, createRevision, modRevision}]} (int64 as decimal strings)
 *   -w table              ID, ADDRESS, METADATA, LEASE (hex)
 *   --json                the same object as -w json
 *
 * No instance: nothing on stdout (simple), exit 0.
 */
import type { ServiceList } from '@coord/recipes';
import { Args, BaseCommand } from '../../base-command';
import { badArgs, badFeature } from '../../errors';
import { toJsonSafe } from '../../output/json-result';
import { renderTable } from '../../output/table';
import { instanceJson, instanceLine, instanceRow } from '../../supervise/services';

export default class ServiceListCommand extends BaseCommand {
  static override summary = 'Lists the registered instances of a service';
  static override description = `Lists the instances of service NAME registered with \`coord service register\` or the
ServiceRegistry of @coord/recipes, one per line: ID ADDRESS:PORT [METADATA].
-w json and --json print a JSON object; -w table a table.`;
  static override examples = ['<%= config.bin %> service list api', '<%= config.bin %> service list api -w json'];
  static override args = { name: Args.string({ description: 'the service name' }) };

  async run(): Promise<Record<string, unknown>> {
    if (this.positional.length !== 1) throw badArgs('service list takes one service name argument');
    const name = this.positional[0];
    const format = this.global().writeOut;
    if (format === 'fields') throw badFeature('unsupported output format for service list', 'use -w simple, json or table.');
    const client = this.client();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ServiceRegistry } = require('@coord/recipes') as typeof import('@coord/recipes');
    let list: ServiceList;
    try {
      list = await new ServiceRegistry(client).discover(name);
    } catch (err) {
      if (err instanceof TypeError) throw badArgs(err.message);
      throw err;
    }
    const result = { service: name, revision: list.revision, instances: list.instances.map(instanceJson) };
    if (format === 'json') this.out(JSON.stringify(toJsonSafe(result)));
    else if (format === 'table') for (const line of renderTable(['id', 'address', 'metadata', 'lease'], list.instances.map(instanceRow))) this.out(line);
    else for (const e of list.instances) this.out(instanceLine(e));
    return result;
  }
}
