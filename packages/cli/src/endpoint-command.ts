/**
 * Shared by `endpoint status` and `endpoint hashkv`: etcdctl's `--cluster` flag and its
 * endpointsFromCluster (every member's client URLs from the member list), and one client per
 * endpoint so that each answer comes from that endpoint (not from whichever the pool prefers).
 */
import { BaseCommand } from './base-command';
import { CliError, ExitCode, toCliError } from './errors';
import type { FlagSpec } from './flags/pflag';

export const CLUSTER_SPEC: FlagSpec = { name: 'cluster', kind: 'bool', description: 'use all endpoints from the cluster member list' };

export abstract class EndpointCommand extends BaseCommand {
  /** The endpoints to query: `--endpoints`, or with `--cluster` every member's client URLs. */
  protected async endpointsFromCluster(): Promise<string[]> {
    if (!this.bool('cluster')) return [...this.endpointList()];
    let members;
    try {
      members = await this.client().memberList();
    } catch (err) {
      const e = toCliError(err, { endpoints: this.endpointList() });
      throw new CliError(`failed to fetch endpoints from etcd cluster member list: ${e.message}`, ExitCode.Error, { hint: e.hint, cause: err });
    }
    return members.members.flatMap((m) => m.clientURLs);
  }

  /** Ask each endpoint in turn; failures are reported on stderr as etcdctl does and returned. */
  protected async eachEndpoint<T>(
    call: (client: ReturnType<BaseCommand['client']>) => Promise<T>,
    what: string,
  ): Promise<{ answers: { endpoint: string; answer: T }[]; lastError: CliError | undefined }> {
    const answers: { endpoint: string; answer: T }[] = [];
    let lastError: CliError | undefined;
    for (const endpoint of await this.endpointsFromCluster()) {
      try {
        answers.push({ endpoint, answer: await call(this.client([endpoint])) });
      } catch (err) {
        lastError = toCliError(err, { endpoints: [endpoint] });
        this.logToStderr('%s', `Failed to get the ${what} of endpoint ${endpoint} (${lastError.message})`);
      }
    }
    return { answers, lastError };
  }
}
