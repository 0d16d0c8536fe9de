/** `coord endpoint hashkv`: etcdctl's endpoint hashkv, one hash per endpoint. */
import { oclifFlags } from '../../base-command';
import { CLUSTER_SPEC, EndpointCommand } from '../../endpoint-command';
import type { FlagSpec } from '../../flags/pflag';
import type { EndpointHashKV } from '../../output/printers';

const SPECS: readonly FlagSpec[] = [
  CLUSTER_SPEC,
  { name: 'rev', kind: 'int64', default: '0', description: 'maximum revision to hash (default: all revisions)' },
];

export default class EndpointHashKVCommand extends EndpointCommand {
  static override summary = 'Prints the KV history hash for each endpoint in --endpoints';
  static override description = `Prints the hash of the key-value history of each endpoint, up to --rev. Members of a
healthy cluster agree on it.`;
  static override examples = ['<%= config.bin %> endpoint hashkv --cluster -w table'];
  static override specs = SPECS;
  static override flags = oclifFlags(SPECS);

  async run(): Promise<EndpointHashKV[]> {
    const printer = this.printer();
    const rev = this.int('rev');
    const { answers, lastError } = await this.eachEndpoint((c) => c.hashKV(rev), 'hash');
    const list = answers.map((a) => ({ endpoint: a.endpoint, hashKV: a.answer }));
    printer.endpointHashKV(list);
    if (lastError) throw lastError;
    return list;
  }
}
