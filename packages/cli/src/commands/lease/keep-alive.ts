/**
 * `coord lease keep-alive ID [--once]`: etcdctl's lease keep-alive. Prints
 * `lease … keepalived with TTL(60)` for each renewal (about every TTL/3) until the lease is
 * gone, then `lease … expired or revoked.` (simple format only) and exits 0. `--once` renews
 * once; a lease that does not exist then fails with exit status 2 (ExitBadConnection), as etcdctl.
 */
import type { LeaseKeepAliveResult } from '@coord/client';
import { Args, oclifFlags } from '../../base-command';
import { CliError, ExitCode, badArgs, toCliError } from '../../errors';
import type { FlagSpec } from '../../flags/pflag';
import { WatchLeaseCommand, leaseFromArgs } from '../../lease/command';
import { keepAliveUntilGone } from '../../lease/keep-alive';
import { leaseHex } from '../../output/watch-lease';

const SPECS: readonly FlagSpec[] = [
  { name: 'once', kind: 'bool', description: 'Resets the keep-alive time to its original value and exits immediately' },
];

/** clientv3's firstKeepAliveTimeout: dial timeout + 1 s. */
const FIRST_KEEPALIVE_EXTRA_MS = 1000;

export default class LeaseKeepAlive extends WatchLeaseCommand {
  static override summary = 'Keeps leases alive (renew)';
  static override description = `Renews a lease (ID in hex) about every TTL/3 until it expires or is revoked.
With --once, renews it once and exits. With --json, each renewal is one line of JSON.`;
  static override examples = ['<%= config.bin %> lease keep-alive 694d5765fc71500b', '<%= config.bin %> lease keep-alive --once 694d5765fc71500b'];
  static override args = { leaseID: Args.string({ description: 'the lease ID, in hex' }) };
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<LeaseKeepAliveResult | undefined> {
    if (this.positional.length !== 1) throw badArgs('lease keep-alive command needs lease ID as argument', 'coord lease keep-alive LEASE_ID [--once]');
    const id = leaseFromArgs(this.positional[0]);
    const client = this.client();
    if (this.bool('once')) {
      let res: LeaseKeepAliveResult;
      try {
        res = await client.leaseKeepAliveOnce(id);
      } catch (err) {
        const e = toCliError(err, { endpoints: this.endpointList() });
        throw new CliError(e.message, ExitCode.BadConnection, { code: e.code, hint: e.hint, cause: err });
      }
      this.watchLeasePrinter().keepAlive(res);
      return res;
    }
    const printer = this.watchLeasePrinter({ jsonLines: true });
    await keepAliveUntilGone(client, id, this.flag<number>('dial-timeout') + FIRST_KEEPALIVE_EXTRA_MS, (r) => printer.keepAlive(r));
    if (this.global().writeOut === 'simple') this.out(`lease ${leaseHex(id)} expired or revoked.`);
    return undefined;
  }
}
