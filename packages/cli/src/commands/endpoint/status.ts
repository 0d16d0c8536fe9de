/** `coord endpoint status`: etcdctl's endpoint status, one row per endpoint. */
import { oclifFlags } from '../../base-command';
import { CLUSTER_SPEC, EndpointCommand } from '../../endpoint-command';
import { ExitCode } from '../../errors';
import type { EndpointStatus } from '../../output/printers';

export default class EndpointStatusCommand extends EndpointCommand {
  static override summary = 'Prints out the status of endpoints specified in `--endpoints` flag';
  static override description = `Prints out the status of each endpoint: member ID, version, DB size, leadership,
raft term and indexes. With --cluster, asks every member of the cluster. An endpoint that does not
answer is reported on stderr and the exit code is 1.`;
  static override examples = ['<%= config.bin %> endpoint status -w table', '<%= config.bin %> endpoint status --cluster'];
  static override specs = [CLUSTER_SPEC];
  static override flags = oclifFlags([CLUSTER_SPEC]);

  async run(): Promise<EndpointStatus[]> {
    const printer = this.printer();
    const { answers, lastError } = await this.eachEndpoint((c) => c.status(), 'status');
    const list = answers.map((a) => ({ endpoint: a.endpoint, status: a.answer }));
    printer.endpointStatus(list);
    // etcdctl: os.Exit(ExitError) without a further message.
    if (lastError) process.exitCode = ExitCode.Error;
    return list;
  }
}
