/**
 * `coord service register NAME --addr HOST:PORT [--id ID] [--meta k=v]... [--ttl S] [-- CMD]`:
 * register an instance of service NAME under a session lease (@coord/recipes'
 * ServiceRegistry), so that it vanishes within the TTL once this process stops sending
 * keep-alives (killed, crashed, cut off).
 *
 * - Prints the instance's key and value (etcdctl's `get` output of the key; `--json`: one
 *   JSON line), then stays registered until SIGINT/SIGTERM/SIGHUP (exit 0), or, with CMD,
 *   while CMD runs: CMD runs in its own process group (signals are forwarded to it) with
 *   COORD_SERVICE_KEY and COORD_SERVICE_ID set; when it exits the instance is deregistered and
 *   coord exits with CMD's status. If coord dies, its watchdog ends CMD's group.
 * - If the registration is lost while the process is healthy (keep-alives not acknowledged in
 *   time, the lease revoked or the key deleted from outside), it registers again with a new
 *   session, retrying with backoff, and says so on stderr. Unlike `lock`, losing a
 *   registration does not stop CMD: the service is still fine, only its entry lapsed.
 */
import type { Registration, ServiceInstanceInput, ServiceRegistry } from '@coord/recipes';
import { Args, oclifFlags } from '../../base-command';
import { badArgs } from '../../errors';
import type { FlagSpec } from '../../flags/pflag';
import { GRACE_SPEC, SupervisedCommand, whenAborted } from '../../supervise/command';
import { formatHostPort, parseHostPort, parseMeta } from '../../supervise/services';
import { defaultGraceMs, parseSeconds } from '../../supervise/timing';

const REGISTER_SPECS: readonly FlagSpec[] = [
  { name: 'addr', kind: 'string', description: 'the instance\'s address, HOST:PORT (required)' },
  { name: 'id', kind: 'string', description: 'the instance ID, unique within the service (default: HOST:PORT)' },
  { name: 'meta', kind: 'string', slice: true, description: 'metadata KEY=VALUE (repeatable)' },
  { name: 'ttl', kind: 'int64', default: '10', description: 'seconds after the last heartbeat before the instance vanishes' },
  GRACE_SPEC,
];

const RETRY_MS_MIN = 200;
const RETRY_MS_MAX = 5000;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export default class ServiceRegister extends SupervisedCommand {
  static override summary = 'Registers a service instance while a command runs or until interrupted';
  static override description = `Registers an instance of service NAME at --addr under a lease kept alive by this process:
it vanishes within --ttl seconds once the process dies. Prints the instance's key and value.

Without CMD, stays registered until interrupted. With CMD (after --), stays registered while CMD
runs (in its own process group, with COORD_SERVICE_KEY and COORD_SERVICE_ID set), then
deregisters and exits with CMD's status. A lapsed registration is renewed automatically.`;
  static override examples = [
    '<%= config.bin %> service register api --addr 10.0.0.7:8080 --meta zone=eu-1 -- ./api-server',
    '<%= config.bin %> service register api --addr 10.0.0.7:8080 --id api-1 --ttl 5',
  ];
  static override usage = ['service register NAME --addr HOST:PORT [--id ID] [--meta K=V]... [--ttl S] [-- CMD ARGS...]'];
  static override args = { name: Args.string({ description: 'the service name' }) };
  static override specs = REGISTER_SPECS;
  static override flags = oclifFlags(REGISTER_SPECS);

  async run(): Promise<void> {
    const { args, command } = this.splitArgs();
    if (args.length !== 1) throw badArgs('service register takes one service name argument (and a command after --)');
    if (command !== undefined && command.length === 0) throw badArgs('no command after --');
    const name = args[0];
    if (this.str('addr') === '') throw badArgs('--addr HOST:PORT is required');
    const { host, port } = parseHostPort(this.str('addr'));
    const id = this.str('id') || formatHostPort(host, port);
    const metadata = parseMeta(this.str('meta'));
    const ttl = this.int('ttl');
    if (ttl <= 0n || ttl > 1_000_000n) throw badArgs(`--ttl must be a positive number of seconds, got ${ttl}`);
    const graceMs = parseSeconds('grace', this.str('grace')) || defaultGraceMs(Number(ttl));
    const input: ServiceInstanceInput = { service: name, id, address: host, port, metadata };

    const client = this.supervisedClient();
    if (command) this.prepareWatchdog(graceMs);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ServiceRegistry } = require('@coord/recipes') as typeof import('@coord/recipes');
    const registry: ServiceRegistry = new ServiceRegistry(client, { ttl: Number(ttl) });
    const stopping = new AbortController();
    try {
      let reg: Registration;
      try {
        reg = await registry.register(input, { signal: this.trap.signal });
      } catch (err) {
        if (err instanceof TypeError) throw badArgs(err.message);
        throw this.failure(err, `register ${name}/${id}`);
      }
      await this.printKey(client, reg.key, () => ({ event: 'registered', key: reg.key, instance: reg.instance, lease: reg.session.leaseId }));
      this.keepRegistered(registry, reg, input, stopping.signal);

      if (!command) {
        await whenAborted(this.trap.signal);
        return;
      }
      const outcome = await this.runGuarded(command, { COORD_SERVICE_KEY: reg.key, COORD_SERVICE_ID: id }, undefined, graceMs);
      if (outcome.kind === 'exit') process.exitCode = outcome.exit.status;
    } finally {
      stopping.abort();
      await registry.close().catch(() => undefined);
    }
  }

  /** Register again whenever the registration lapses, until `stop` aborts. */
  private keepRegistered(registry: ServiceRegistry, reg: Registration, input: ServiceInstanceInput, stop: AbortSignal): void {
    reg.once('lost', (err: Error) => {
      if (stop.aborted) return;
      this.logToStderr('%s', `registration of ${reg.key} lost (${err.message}); registering again`);
      void (async () => {
        for (let delay = RETRY_MS_MIN; !stop.aborted; delay = Math.min(RETRY_MS_MAX, delay * 2)) {
          try {
            const next = await registry.register(input, { signal: stop });
            if (stop.aborted) return;
            this.logToStderr('%s', `registered ${next.key} again`);
            this.keepRegistered(registry, next, input, stop);
            return;
          } catch {
            await sleep(delay, stop);
          }
        }
      })();
    });
  }
}
