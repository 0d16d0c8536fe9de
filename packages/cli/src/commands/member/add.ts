/** `coord member add NAME --peer-urls=URL[,URL...] [--learner]`: etcdctl's member add. */
import type { MemberAddResult } from '@coord/client';
import { Args, oclifFlags } from '../../base-command';
import { badArgs } from '../../errors';
import type { FlagSpec } from '../../flags/pflag';
import { LEARNER_SPEC, MembershipCommand, PEER_URLS_SPEC, peerURLsFromFlag } from '../../membership';
import { goQuote } from '../../output/go';

const SPECS: readonly FlagSpec[] = [PEER_URLS_SPEC('new'), LEARNER_SPEC];

export default class MemberAdd extends MembershipCommand {
  static override summary = 'Adds a member into the cluster';
  static override description = `Adds a member into the cluster. It does not start it: with -w simple, the lines after the
first are the environment (ETCD_NAME, ETCD_INITIAL_CLUSTER, ...) to start the new member with.
--learner adds it as a non-voting learner, to be promoted with \`member promote\` once it has
caught up with the leader.`;
  static override examples = [
    '<%= config.bin %> member add infra4 --peer-urls=http://10.0.0.4:2380',
    '<%= config.bin %> member add infra4 --peer-urls=http://10.0.0.4:2380 --learner',
  ];
  static override args = { memberName: Args.string({ description: 'the name of the new member' }) };
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<MemberAddResult> {
    const args = this.positional;
    if (args.length < 1) throw badArgs('member name not provided', 'coord member add NAME --peer-urls=http://HOST:PORT');
    if (args.length > 1) {
      // etcdctl's hint for a URL given as an argument.
      let ev = 'too many arguments';
      for (const s of args) if (s.toLowerCase().startsWith('http')) ev += `, did you mean --peer-urls=${s}`;
      throw badArgs(ev, 'coord member add NAME --peer-urls=http://HOST:PORT');
    }
    const name = args[0];
    const peerURLsFlag = this.str('peer-urls');
    const urls = peerURLsFromFlag(peerURLsFlag);
    const printer = this.membershipPrinter();
    const client = this.client();
    const res = await this.call(() => client.memberAdd(urls, { isLearner: this.bool('learner') }));
    printer.memberAdd(res);
    if (printer.format === 'simple') {
      // etcdctl: the initial cluster from the response's member list, the new member named.
      const conf: string[] = [];
      for (const m of res.members) for (const u of m.peerURLs) conf.push(`${m.id === res.member.id ? name : m.name}=${u}`);
      this.out('');
      this.out(`ETCD_NAME=${goQuote(name)}`);
      this.out(`ETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}`);
      this.out(`ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerURLsFlag)}`);
      this.out('ETCD_INITIAL_CLUSTER_STATE="existing"');
    }
    return res;
  }
}
