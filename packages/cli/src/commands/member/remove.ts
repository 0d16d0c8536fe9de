/** `coord member remove ID`: etcdctl's member remove (ID in hex). */
import type { MemberRemoveResult } from '@coord/client';
import { Args } from '../../base-command';
import { badArgs } from '../../errors';
import { MembershipCommand, memberIdFromArg } from '../../membership';

export default class MemberRemove extends MembershipCommand {
  static override summary = 'Removes a member from the cluster';
  static override description = `Removes a member (ID in hex, as \`member list\` prints it) from the cluster. A learner can
always be removed; removing a voter is refused while it would leave too few started members.`;
  static override examples = ['<%= config.bin %> member remove 8211f1d0f64f3269'];
  static override args = { memberID: Args.string({ description: 'the member ID, in hex' }) };

  async run(): Promise<MemberRemoveResult & { id: bigint }> {
    if (this.positional.length !== 1) throw badArgs('member ID is not provided', 'coord member remove MEMBER_ID');
    const id = memberIdFromArg(this.positional[0]);
    const printer = this.membershipPrinter();
    const client = this.client();
    const res = await this.call(() => client.memberRemove(id));
    printer.memberRemove(id, res);
    return { id, ...res };
  }
}
