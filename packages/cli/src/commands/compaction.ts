/** `coord compaction REV [--physical]`: etcdctl's compaction. */
import { Args, BaseCommand, oclifFlags } from '../base-command';
import { CliError, ExitCode, badArgs } from '../errors';
import type { FlagSpec } from '../flags/pflag';
import { goParseInt } from '../output/go';

const SPECS: readonly FlagSpec[] = [
  { name: 'physical', kind: 'bool', description: 'verify compacted revision has been physically applied (wait until the compaction is done)' },
];

export default class Compaction extends BaseCommand {
  static override summary = 'Compacts the event history in etcd';
  static override description = 'Compacts the key-value history up to REV: older revisions can no longer be read or watched.';
  static override examples = ['<%= config.bin %> compaction 1234', '<%= config.bin %> compaction 1234 --physical'];
  static override args = { revision: Args.string({ description: 'the revision to compact up to' }) };
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<{ revision: bigint; physical: boolean }> {
    if (this.positional.length !== 1) throw badArgs('compaction command needs 1 argument', 'coord compaction REVISION');
    let revision: bigint;
    try {
      revision = goParseInt(this.positional[0], 10);
    } catch (err) {
      throw new CliError((err as Error).message, ExitCode.Error, { hint: 'the revision is a decimal number.' });
    }
    const physical = this.bool('physical');
    await this.client().compact(revision, { physical });
    this.out(`compacted revision ${revision}`);
    return { revision, physical };
  }
}
