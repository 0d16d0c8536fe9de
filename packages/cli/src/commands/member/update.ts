/** `coord member update ID --peer-urls=URL[,URL...]`: etcdctl's member update. */
import type { MemberUpdateResult } from '@coord/client';
import { Args, oclifFlags } from '../../base-command';
import { badArgs } from '../../errors';
import type { FlagSpec } from '../../flags/pflag';
import { MembershipCommand, PEER_URLS_SPEC, memberIdFromArg, peerURLsFromFlag } from '../../membership';

const SPECS: readonly FlagSpec[] = [PEER_URLS_SPEC('updated')];

export default class MemberUpdate extends MembershipCommand {
  static override summary = 'Updates a member in the cluster';
  static override description = `Replaces the peer URLs of a member (ID in hex). The member must then listen on them.
Note: etcd 3.4 also turns a learner into a voter in its member list when its URLs are
updated (fixed in etcd 3.5).`;
  static override examples = ['<%= config.bin %> member update 8211f1d0f64f3269 --peer-urls=http://10.0.0.1:2380'];
  static override args = { memberID: Args.string({ description: 'the member ID, in hex' }) };
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<MemberUpdateResult & { id: bigint }> {
    if (this.positional.length !== 1) throw badArgs('member ID is not provided', 'coord member update MEMBER_ID --peer-urls=http://HOST:PORT');
    const id = memberIdFromArg(this.positional[0]);
    const urls = peerURLsFromFlag(this.str('peer-urls'));
    const printer = this.membershipPrinter();
    const client = this.client();
    const res = await this.call(() => client.memberUpdate(id, urls));
    printer.memberUpdate(id, res);
    return { id, ...res };
  }
}
