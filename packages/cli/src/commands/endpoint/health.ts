/** `coord endpoint health [--cluster]`: etcdctl's endpoint health, every endpoint checked at once. */
import { oclifFlags } from '../../base-command';
import { CLUSTER_SPEC, EndpointCommand } from '../../endpoint-command';
import { CliError, ExitCode, toCliError } from '../../errors';
import { goDuration } from '../../membership';
import { newMembershipPrinter, type EndpointHealth, type MembershipPrinter } from '../../output/membership';

export default class EndpointHealthCommand extends EndpointCommand {
  static override summary = 'Checks the healthiness of endpoints specified in `--endpoints` flag';
  static override description = `Checks each endpoint (all at once) as etcdctl does: a linearizable read of the key
"health" must succeed within --command-timeout (a permission error counts as success: the read
went through consensus), then the endpoint must report no alarm (NOSPACE, CORRUPT). With
--cluster, checks every member's client URLs. Results print in the order they complete; with
-w simple every line goes to stderr, as etcdctl's. Any unhealthy endpoint: "unhealthy
cluster", exit 1.`;
  static override examples = ['<%= config.bin %> endpoint health', '<%= config.bin %> endpoint health --cluster -w table'];
  static override specs = [CLUSTER_SPEC];
  static override flags = oclifFlags([CLUSTER_SPEC]);

  async run(): Promise<EndpointHealth[]> {
    this.printer();
    const printer = newMembershipPrinter(this.global().writeOut, { out: this.out, err: (line) => this.logToStderr('%s', line) }) as MembershipPrinter;
    const endpoints = await this.endpointsFromCluster();
    const list: EndpointHealth[] = [];
    // Completion order, as etcdctl's channel delivers them.
    await Promise.all(endpoints.map((endpoint) => this.check(endpoint).then((h) => void list.push(h))));
    printer.endpointHealth(list);
    const unhealthy = list.filter((h) => h.error !== '');
    if (unhealthy.length > 0) {
      // The hint names them too: with --json it is the only place they appear.
      throw new CliError('unhealthy cluster', ExitCode.Error, {
        code: 'ERR_UNAVAILABLE',
        hint: `unhealthy: ${unhealthy.map((h) => `${h.endpoint} (${h.error})`).join(', ')}; \`coord endpoint status --cluster\` shows each member's leader and raft state.`,
      });
    }
    return list;
  }

  /** etcdctl's check of one endpoint: Get("health"), then the alarm list, under one command timeout. */
  private async check(endpoint: string): Promise<EndpointHealth> {
    const client = this.client([endpoint]);
    // Load the protos and build the channel before the clock starts: "took" is the check, as
    // etcdctl's (whose client exists before it starts timing), not our start-up.
    client.raw();
    const deadline = Date.now() + this.global().commandTimeoutMs;
    const started = process.hrtime.bigint();
    let error = '';
    try {
      await client.get('health', { timeoutMs: this.global().commandTimeoutMs });
    } catch (err) {
      if ((err as { name?: string }).name !== 'PermissionDeniedError') error = toCliError(err, { endpoints: [endpoint] }).message;
    }
    const took = goDuration(process.hrtime.bigint() - started);
    if (error !== '') return { endpoint, health: false, took, error };
    try {
      const alarms = await client.alarmList({ timeoutMs: Math.max(1, deadline - Date.now()) });
      if (alarms.alarms.length > 0) {
        const names = alarms.alarms.map((a) => (a.alarm === 'NOSPACE' || a.alarm === 'CORRUPT' ? a.alarm : 'UNKNOWN'));
        return { endpoint, health: false, took, error: `Active Alarm(s): ${names.map((n) => `${n} `).join('')}` };
      }
    } catch {
      return { endpoint, health: false, took, error: 'Unable to fetch the alarm list' };
    }
    return { endpoint, health: true, took, error: '' };
  }
}
