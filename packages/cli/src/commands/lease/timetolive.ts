/**
 * `coord lease timetolive ID [--keys]`: etcdctl's lease timetolive
 * (`lease … granted with TTL(60s), remaining(59s)`, `lease … already expired`).
 */
import type { LeaseTimeToLiveResult } from '@coord/client';
import { Args, oclifFlags } from '../../base-command';
import { CliError, ExitCode, badArgs, toCliError } from '../../errors';
import type { FlagSpec } from '../../flags/pflag';
import { WatchLeaseCommand, leaseFromArgs } from '../../lease/command';

const SPECS: readonly FlagSpec[] = [{ name: 'keys', kind: 'bool', description: 'Get keys attached to this lease' }];

export default class LeaseTimeToLive extends WatchLeaseCommand {
  static override summary = 'Get lease information';
  static override description = `Prints a lease's granted and remaining TTL (and with --keys the keys attached to it).
A lease that does not exist (expired, revoked, never granted) prints "already expired".`;
  static override examples = ['<%= config.bin %> lease timetolive 694d5765fc71500b', '<%= config.bin %> lease timetolive 694d5765fc71500b --keys -w json'];
  static override args = { leaseID: Args.string({ description: 'the lease ID, in hex' }) };
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<LeaseTimeToLiveResult> {
    if (this.positional.length !== 1) throw badArgs('lease timetolive command needs lease ID as argument', 'coord lease timetolive LEASE_ID [--keys]');
    const keys = this.bool('keys');
    // etcdctl evaluates mustClientFromCmd(cmd) (which checks -w) before leaseFromArgs here.
    const client = this.client();
    const id = leaseFromArgs(this.positional[0]);
    let res: LeaseTimeToLiveResult;
    try {
      res = await client.leaseTimeToLive(id, { keys });
    } catch (err) {
      const e = toCliError(err, { endpoints: this.endpointList() });
      throw new CliError(e.message, ExitCode.BadConnection, { code: e.code, hint: e.hint, cause: err });
    }
    this.watchLeasePrinter().timeToLive(res, keys);
    return res;
  }
}
