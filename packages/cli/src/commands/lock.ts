/**
 * `coord lock NAME [-- CMD ARGS...]`: etcdctl's `lock`, with the gaps closed.
 *
 * - Keys as etcd's concurrency.Mutex lays them out (`NAME/<lease hex>`, via @coord/recipes'
 *   Mutex), so `coord lock` and `etcdctl lock` exclude each other; waiters queue in
 *   create-revision order.
 * - Without CMD: prints the lock key as etcdctl does (`display.Get` of the key: key, then
 *   its empty value) and holds the lock until SIGINT, SIGTERM or SIGHUP; then releases, exit 0.
 * - With CMD: runs it in a process group of its own with COORD_LOCK_KEY, COORD_LOCK_REV (the
 *   fencing token: the key's create revision), and ETCD_LOCK_KEY / ETCD_LOCK_REV as etcdctl
 *   sets them (its REV is the header revision of the acquiring response). When CMD exits, the
 *   rest of its group is ended, the lock released, and coord exits with CMD's status.
 * - If the lock is lost (the session's keep-alives stopped being acknowledged, its lease was
 *   revoked, or the key deleted), CMD's whole group gets SIGTERM, then SIGKILL after the
 *   grace period, early enough to be gone before the server could expire the lease; exit 123.
 *   etcdctl lets CMD run on.
 * - `--try` exits 122 at once when held, `--timeout` gives up with 124; connection failures
 *   exit 121. See docs/EXIT-CODES.md.
 */
import type { LockInfo, Mutex } from '@coord/recipes';
import { Args, oclifFlags } from '../base-command';
import { badArgs } from '../errors';
import type { FlagSpec } from '../flags/pflag';
import { GRACE_SPEC, SupervisedCommand, TTL_SPEC, whenAborted } from '../supervise/command';
import { SupervisedError, SupervisedExit } from '../supervise/exit-codes';
import { parseSeconds } from '../supervise/timing';

const LOCK_SPECS: readonly FlagSpec[] = [
  TTL_SPEC,
  { name: 'timeout', kind: 'string', description: 'give up (exit 124) if the lock is not acquired within this time (seconds or a duration)' },
  { name: 'try', kind: 'bool', description: 'do not wait: exit 122 if the lock is held' },
  GRACE_SPEC,
];

export default class Lock extends SupervisedCommand {
  static override summary = 'Acquires a named lock';
  static override description = `Acquires the lock NAME (etcd's key layout: it excludes \`etcdctl lock NAME\` too).

Without CMD, prints the lock key and holds the lock until interrupted (SIGINT, SIGTERM, SIGHUP).
With CMD (after --), runs it in its own process group with COORD_LOCK_KEY, COORD_LOCK_REV (the
fencing token), ETCD_LOCK_KEY and ETCD_LOCK_REV set, and exits with its status. Signals go to
CMD's group. If the lock is lost, the group gets SIGTERM, then SIGKILL after --grace, before
the lock can pass to anyone else; coord exits 123.

Exit codes: CMD's status; 121 cannot connect, 122 held (--try), 123 lock lost, 124 timeout,
126/127 CMD cannot run / not found, 5 interrupted while waiting (docs/EXIT-CODES.md).`;
  static override examples = [
    '<%= config.bin %> lock nightly-backup -- ./backup.sh',
    '<%= config.bin %> lock --try deploy -- make deploy || echo "someone else is deploying"',
    '<%= config.bin %> lock --timeout 30 --ttl 20 db-migrate -- sh -c \'migrate --fence "$COORD_LOCK_REV"\'',
    '<%= config.bin %> lock mylock        # hold until Ctrl-C, as etcdctl lock',
  ];
  static override usage = ['lock [--ttl S] [--timeout S | --try] [--grace D] NAME [-- CMD ARGS...]'];
  static override args = { name: Args.string({ description: 'the lock name' }) };
  static override specs = LOCK_SPECS;
  static override flags = oclifFlags(LOCK_SPECS);

  async run(): Promise<void> {
    // etcdctl: `lock NAME [CMD ARGS...]`, the command with or without `--`.
    const [name, ...command] = this.positional;
    if (name === undefined || name === '') throw badArgs('lock takes a lock name argument and an optional command to execute');
    const timing = this.timing();
    const timeoutMs = parseSeconds('timeout', this.str('timeout'));
    const tryOnly = this.bool('try');
    if (tryOnly && timeoutMs !== undefined) throw badArgs('--try and --timeout are mutually exclusive');

    const client = this.supervisedClient();
    if (command.length > 0) this.prepareWatchdog(timing.graceMs);
    const session = await this.openSession(client, timing);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Mutex } = require('@coord/recipes') as typeof import('@coord/recipes');
    const mutex: Mutex = new Mutex(session, name);

    let info: LockInfo;
    try {
      if (tryOnly) {
        if (!(await mutex.tryLock({ signal: this.trap.signal }))) {
          throw new SupervisedError(`mutex: Locked by another session (lock ${name})`, SupervisedExit.Held, 'ERR_LOCK_HELD', {
            hint: `see who holds it: \`coord get --prefix ${name}/\`; or wait for it without --try.`,
          });
        }
        info = { key: mutex.key, fencingToken: mutex.fencingToken as bigint, header: mutex.lastHeader!, signal: mutex.signal as AbortSignal };
      } else {
        info = await mutex.lock({ signal: this.trap.signal, timeoutMs });
      }
    } catch (err) {
      throw this.failure(err, `acquire lock ${name}`);
    }

    const lostError = (reason: unknown): SupervisedError =>
      new SupervisedError(`lock ${name} lost: ${(reason as Error)?.message ?? String(reason)}`, SupervisedExit.Lost, 'ERR_LOCK_LOST', {
        hint: 'the session lease expired or was revoked (keep-alives not acknowledged in time, or removed from outside); raise --ttl on slow networks.',
        cause: reason,
      });

    if (command.length === 0) {
      await this.printKey(client, info.key, () => ({ event: 'acquired', key: info.key, fencingToken: info.fencingToken, revision: info.header.revision, lease: session.leaseId }));
      const ended = await Promise.race([
        whenAborted(this.trap.signal).then(() => 'interrupted' as const),
        whenAborted(info.signal).then(() => 'lost' as const),
      ]);
      if (ended === 'lost' && mutex.lostReason) throw lostError(mutex.lostReason);
      await mutex.unlock().catch(() => undefined);
      await this.closeSession(session);
      return;
    }

    const env = {
      COORD_LOCK_KEY: info.key,
      COORD_LOCK_REV: info.fencingToken.toString(),
      ETCD_LOCK_KEY: info.key,
      ETCD_LOCK_REV: info.header.revision.toString(),
    };
    const outcome = await this.runGuarded(command, env, info.signal, timing.graceMs);
    if (outcome.kind === 'lost') throw lostError(outcome.reason);
    await mutex.unlock().catch(() => undefined);
    await this.closeSession(session);
    process.exitCode = outcome.exit.status;
  }
}
