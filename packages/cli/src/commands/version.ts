/** `coord version`: like `etcdctl version`. bin/run.js answers a bare `coord version` itself, without loading oclif. */
import { API_VERSION } from '../api-version';
import { BaseCommand } from '../base-command';

export default class Version extends BaseCommand {
  static override summary = 'Prints the version of coord';
  static override examples = ['<%= config.bin %> version'];

  async run(): Promise<{ version: string; apiVersion: string }> {
    const version = this.config.version;
    this.out(`coord version: ${version}`);
    this.out(`API version: ${API_VERSION}`);
    return { version, apiVersion: API_VERSION };
  }
}
