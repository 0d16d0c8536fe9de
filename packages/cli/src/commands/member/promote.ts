/** `coord member promote ID`: etcdctl's member promote (a learner becomes a voter). */
import type { MemberPromoteResult } from '@coord/client';
import { Args } from '../../base-command';
import { badArgs } from '../../errors';
import { MembershipCommand, memberIdFromArg } from '../../membership';

export default class MemberPromote extends MembershipCommand {
  static override summary = 'Promotes a non-voting member in the cluster';
  static override description = `Promotes a learner (ID in hex) to a voting member. etcd refuses until the learner has
started and caught up with the leader ("can only promote a learner member which is in sync
with leader"), and for a member that already votes ("can only promote a learner member").`;
  static override examples = ['<%= config.bin %> member promote 8211f1d0f64f3269'];
  static override args = { memberID: Args.string({ description: 'the member ID, in hex' }) };

  async run(): Promise<MemberPromoteResult & { id: bigint }> {
    if (this.positional.length !== 1) throw badArgs('member ID is not provided', 'coord member promote MEMBER_ID');
    const id = memberIdFromArg(this.positional[0]);
    const printer = this.membershipPrinter();
    const client = this.client();
    const res = await this.call(() => client.memberPromote(id));
    printer.memberPromote(id, res);
    return { id, ...res };
  }
}
