/** `coord lease list`: etcdctl's lease list (`found N leases`, then each ID in hex). */
import type { LeaseLeasesResult } from '@coord/client';
import { CliError, ExitCode, toCliError } from '../../errors';
import { WatchLeaseCommand } from '../../lease/command';

export default class LeaseList extends WatchLeaseCommand {
  static override summary = 'List all active leases';
  static override description = 'Lists the IDs (in hex) of every lease the cluster holds.';
  static override examples = ['<%= config.bin %> lease list', '<%= config.bin %> lease list -w json'];

  async run(): Promise<LeaseLeasesResult> {
    // etcdctl ignores arguments here.
    const client = this.client();
    let res: LeaseLeasesResult;
    try {
      res = await client.leaseLeases();
    } catch (err) {
      const e = toCliError(err, { endpoints: this.endpointList() });
      throw new CliError(e.message, ExitCode.BadConnection, { code: e.code, hint: e.hint, cause: err });
    }
    this.watchLeasePrinter().leases(res);
    return res;
  }
}
