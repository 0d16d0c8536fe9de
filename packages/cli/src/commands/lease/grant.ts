/** `coord lease grant TTL`: etcdctl's lease grant (`lease 694d5765fc71500b granted with TTL(60s)`). */
import type { LeaseGrantResult } from '@coord/client';
import { Args } from '../../base-command';
import { CliError, ExitCode, badArgs, toCliError } from '../../errors';
import { WatchLeaseCommand } from '../../lease/command';
import { goParseInt } from '../../output/go';

export default class LeaseGrant extends WatchLeaseCommand {
  static override summary = 'Creates leases';
  static override description = `Creates a lease with a TTL in seconds and prints its ID in hex.
The server raises a TTL below its minimum (1.5 election timeouts, 2s with the defaults).
Attach keys with \`coord put KEY VALUE --lease ID\`; they are deleted when the lease expires or is revoked.`;
  static override examples = ['<%= config.bin %> lease grant 60', '<%= config.bin %> lease grant 60 -w json'];
  static override args = { ttl: Args.string({ description: 'time to live, in seconds' }) };

  async run(): Promise<LeaseGrantResult> {
    if (this.positional.length !== 1) throw badArgs('lease grant command needs TTL argument', 'coord lease grant TTL_SECONDS');
    let ttl: bigint;
    try {
      ttl = goParseInt(this.positional[0], 10);
    } catch (err) {
      throw badArgs(`bad TTL (${(err as Error).message})`, 'the TTL is a whole number of seconds.');
    }
    const client = this.client();
    let res: LeaseGrantResult;
    try {
      res = await client.leaseGrant(ttl);
    } catch (err) {
      const e = toCliError(err, { endpoints: this.endpointList() });
      throw new CliError(`failed to grant lease (${e.message})`, ExitCode.Error, { code: e.code, hint: e.hint, cause: err });
    }
    this.watchLeasePrinter().grant(res);
    return res;
  }
}
