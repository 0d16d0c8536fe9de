/**
 * `coord server [etcd flags]`: run a member. Every word after `server` goes to the server's own
 * flag parser untouched (bin/run.js inserts `--` so that oclif reads none of them, not even
 * `--help`, which prints the server's flag list).
 */
import { Command } from '@oclif/core/command';

export default class Server extends Command {
  static override summary = 'Runs a coord member (takes etcd\'s flags: --name, --data-dir, --listen-client-urls, ...)';
  static override description = `Runs a coord member. It takes etcd's flags, unchanged:
  coord server --name n1 --data-dir n1.coord --listen-client-urls http://127.0.0.1:2379 ...
Run \`coord server --help\` for the full list.`;
  static override examples = ['<%= config.bin %> server --name default --data-dir ./default.coord'];
  static override strict = false;

  async run(): Promise<void> {
    this.parsed = true; // the server parses its own flags
    const argv = this.argv[0] === '--' ? this.argv.slice(1) : this.argv;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runServer } = require('@coord/server') as typeof import('@coord/server');
    await runServer(argv);
  }
}
