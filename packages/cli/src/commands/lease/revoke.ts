/** `coord lease revoke ID`: etcdctl's lease revoke; every key attached to the lease is deleted. */
import type { LeaseRevokeResult } from '@coord/client';
import { Args } from '../../base-command';
import { CliError, ExitCode, badArgs, toCliError } from '../../errors';
import { WatchLeaseCommand, leaseFromArgs } from '../../lease/command';

export default class LeaseRevoke extends WatchLeaseCommand {
  static override summary = 'Revokes leases';
  static override description = 'Revokes a lease (ID in hex): the keys attached to it are deleted, in one revision.';
  static override examples = ['<%= config.bin %> lease revoke 694d5765fc71500b'];
  static override args = { leaseID: Args.string({ description: 'the lease ID, in hex' }) };

  async run(): Promise<LeaseRevokeResult & { id: bigint }> {
    if (this.positional.length !== 1) throw badArgs('lease revoke command needs 1 argument', 'coord lease revoke LEASE_ID');
    const id = leaseFromArgs(this.positional[0]);
    const client = this.client();
    let res: LeaseRevokeResult;
    try {
      res = await client.leaseRevoke(id);
    } catch (err) {
      const e = toCliError(err, { endpoints: this.endpointList() });
      throw new CliError(`failed to revoke lease (${e.message})`, ExitCode.Error, { code: e.code, hint: e.hint, cause: err });
    }
    this.watchLeasePrinter().revoke(id, res);
    return { id, ...res };
  }
}
