/**
 * `coord service watch NAME`: follow the instances of service NAME (@coord/recipes'
 * ServiceRegistry.watch: a snapshot, then every change from the snapshot's revision on, no
 * gap and no duplicate, re-listed after a compaction).
 *
 *   simple:         `ADDED|UPDATED|REMOVED <id> <address>:<port>[ k=v,...]` per change; the
 *                   instances present at the start print as ADDED
 *   --json/-w json: one JSON object per change: {"type", "revision", "instance",
 *                   "instances"}, the first with type "snapshot" and no "instance"
 *
 * Runs until SIGINT/SIGTERM/SIGHUP (exit 0), or until the watch fails (exit 1; 121 when
 * no endpoint answers).
 */
import { Args, oclifFlags } from '../../base-command';
import { badArgs, badFeature, toCliError } from '../../errors';
import { SupervisedCommand } from '../../supervise/command';
import { SupervisedError, SupervisedExit } from '../../supervise/exit-codes';
import { instanceJson, instanceLine } from '../../supervise/services';

export default class ServiceWatch extends SupervisedCommand {
  static override summary = 'Follows the instances of a service';
  static override description = `Prints the instances of service NAME, then every change: ADDED, UPDATED or REMOVED, followed by
ID ADDRESS:PORT [METADATA]. With --json (or -w json), one JSON object per change.`;
  static override examples = ['<%= config.bin %> service watch api', '<%= config.bin %> service watch api --json'];
  static override args = { name: Args.string({ description: 'the service name' }) };
  static override specs = [];
  static override flags = oclifFlags([]);

  async run(): Promise<void> {
    if (this.positional.length !== 1) throw badArgs('service watch takes one service name argument');
    const name = this.positional[0];
    const format = this.global().writeOut;
    const json = this.jsonEnabled() || format === 'json';
    if (!json && format !== 'simple') throw badFeature('unsupported output format for service watch', 'use -w simple, -w json or --json.');
    const client = this.supervisedClient();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ServiceRegistry } = require('@coord/recipes') as typeof import('@coord/recipes');
    try {
      for await (const c of new ServiceRegistry(client).watch(name, { signal: this.trap.signal })) {
        if (json) {
          this.emitJson(
            c.type === 'snapshot'
              ? { type: c.type, revision: c.revision, instances: c.instances.map(instanceJson) }
              : { type: c.type, revision: c.revision, instance: instanceJson(c.instance), instances: c.instances.map(instanceJson) },
          );
        } else if (c.type === 'snapshot') {
          for (const e of c.instances) this.out(`ADDED ${instanceLine(e)}`);
        } else {
          this.out(`${c.type.toUpperCase()} ${instanceLine(c.instance)}`);
        }
      }
    } catch (err) {
      if (this.trap.received) return;
      if (err instanceof TypeError) throw badArgs(err.message);
      const e = toCliError(err, { endpoints: this.endpointList() });
      if (e.code === 'ERR_UNAVAILABLE') throw new SupervisedError(e.message, SupervisedExit.CannotConnect, 'ERR_UNAVAILABLE', { hint: e.hint, cause: err });
      throw e;
    }
  }
}
