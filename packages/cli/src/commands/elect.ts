/**
 * `coord elect NAME [PROPOSAL] [-- CMD ARGS...]` and `coord elect -l NAME`: etcdctl's `elect`,
 * plus running a command only while leader.
 *
 * - Keys as etcd's concurrency.Election lays them out (`NAME/<lease hex>` holding the
 *   proposal; the lowest create revision leads), so `etcdctl elect` and coord campaign in the
 *   same election.
 * - Campaign: once elected, prints the leader key and the proposal as etcdctl does
 *   (`display.Get` of our key). Without CMD, leads until SIGINT/SIGTERM/SIGHUP, then resigns
 *   (exit 0). With CMD, runs it in its own process group with COORD_ELECT_NAME,
 *   COORD_ELECT_KEY, COORD_ELECT_REV (our key's create revision: a fencing token that grows
 *   with every new leader) and COORD_ELECT_PROPOSAL; when CMD exits we resign and exit with its
 *   status. PROPOSAL defaults to the host name when CMD is given.
 * - Leadership lost (session lost or key deleted): CMD's group gets SIGTERM, then SIGKILL after
 *   the grace period, before the session could expire, so the next leader's CMD cannot start
 *   while ours runs; exit 123. If coord itself is killed, its watchdog ends the group within
 *   the grace period, long before the lease expires.
 * - `-l/--listen`: prints every leader change: etcdctl's lines (key, proposal) for a leader,
 *   and the line `(no leader)` when there is none (etcdctl's observer never reports that; an
 *   election key always contains NAME/, so the marker cannot be mistaken for a key). With
 *   `--json` or `-w json`: one JSON object per change, `"leader": null` for no leader.
 */
import * as os from 'node:os';
import type { Election, LeaderChange, Leadership } from '@coord/recipes';
import { Args, oclifFlags } from '../base-command';
import { badArgs, badFeature, toCliError } from '../errors';
import type { FlagSpec } from '../flags/pflag';
import { GRACE_SPEC, SupervisedCommand, TTL_SPEC, whenAborted } from '../supervise/command';
import { SupervisedError, SupervisedExit } from '../supervise/exit-codes';

const ELECT_SPECS: readonly FlagSpec[] = [
  { name: 'listen', char: 'l', kind: 'bool', description: 'observation mode: print every leader change, including "no leader"' },
  TTL_SPEC,
  GRACE_SPEC,
];

/** What `-l` prints when nobody leads. */
export const NO_LEADER_LINE = '(no leader)';

export default class Elect extends SupervisedCommand {
  static override summary = 'Observes and participates in leader election';
  static override description = `Campaigns in election NAME with PROPOSAL (etcd's key layout: etcdctl elect takes part too).
Once elected, prints the leader key and proposal, and leads until interrupted.

With CMD (after --), runs it only while leader, in its own process group, with COORD_ELECT_NAME,
COORD_ELECT_KEY, COORD_ELECT_REV (fencing token) and COORD_ELECT_PROPOSAL set, and exits with its
status. If leadership is lost, the group gets SIGTERM, then SIGKILL after --grace, before anyone
else can be elected; coord exits 123.

With -l, prints every leader change (key and proposal), and "(no leader)" when there is none.`;
  static override examples = [
    '<%= config.bin %> elect scheduler host-a',
    '<%= config.bin %> elect scheduler -- ./run-scheduler.sh',
    '<%= config.bin %> elect -l scheduler',
  ];
  static override usage = ['elect [--ttl S] [--grace D] NAME [PROPOSAL] [-- CMD ARGS...]', 'elect -l NAME'];
  static override args = {
    name: Args.string({ description: 'the election name' }),
    proposal: Args.string({ description: 'this candidate\'s value (default with CMD: the host name)' }),
  };
  static override specs = ELECT_SPECS;
  static override flags = oclifFlags(ELECT_SPECS);

  async run(): Promise<void> {
    const { args, command } = this.splitArgs();
    if (args.length !== 1 && args.length !== 2) {
      throw badArgs('elect takes one election name argument and an optional proposal argument');
    }
    if (command !== undefined && command.length === 0) throw badArgs('no command after --');
    if (this.bool('listen')) {
      if (command !== undefined) throw badArgs('-l does not run a command');
      return this.listen(args[0]);
    }
    if (args.length !== 2 && command === undefined) throw badArgs('no proposal argument but -l not set');
    const [name, proposal = os.hostname()] = args;
    const timing = this.timing();

    const client = this.supervisedClient();
    if (command) this.prepareWatchdog(timing.graceMs);
    const session = await this.openSession(client, timing);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Election } = require('@coord/recipes') as typeof import('@coord/recipes');
    const election: Election = new Election(session, name);
    let leadership: Leadership;
    try {
      leadership = await election.campaign(proposal, { signal: this.trap.signal });
    } catch (err) {
      throw this.failure(err, `be elected in ${name}`);
    }
    await this.printKey(client, leadership.key, () => ({
      event: 'elected',
      key: leadership.key,
      proposal,
      createRevision: leadership.createRevision,
      lease: session.leaseId,
    }));

    const lostError = (reason: unknown): SupervisedError =>
      new SupervisedError(`elect: leadership of ${name} lost: ${(reason as Error)?.message ?? String(reason)}`, SupervisedExit.Lost, 'ERR_LEADERSHIP_LOST', {
        hint: 'the session lease expired or was revoked, or the key was deleted; raise --ttl on slow networks.',
        cause: reason,
      });

    if (!command) {
      const ended = await Promise.race([
        whenAborted(this.trap.signal).then(() => 'interrupted' as const),
        whenAborted(leadership.signal).then(() => 'lost' as const),
      ]);
      if (ended === 'lost') throw lostError(leadership.signal.reason);
      await election.resign().catch(() => undefined);
      await this.closeSession(session);
      return;
    }

    const env = {
      COORD_ELECT_NAME: name,
      COORD_ELECT_KEY: leadership.key,
      COORD_ELECT_REV: leadership.createRevision.toString(),
      COORD_ELECT_PROPOSAL: proposal,
    };
    const outcome = await this.runGuarded(command, env, leadership.signal, timing.graceMs);
    if (outcome.kind === 'lost') throw lostError(outcome.reason);
    await election.resign().catch(() => undefined);
    await this.closeSession(session);
    process.exitCode = outcome.exit.status;
  }

  /** `elect -l NAME`: print every leader change until interrupted. */
  private async listen(name: string): Promise<void> {
    const writeOut = this.global().writeOut;
    const json = this.jsonEnabled() || writeOut === 'json';
    if (!json && writeOut !== 'simple') throw badFeature('unsupported output format for elect -l', 'use -w simple, -w json or --json.');
    const client = this.supervisedClient();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Election } = require('@coord/recipes') as typeof import('@coord/recipes');
    const print = (c: LeaderChange): void => {
      if (json) {
        const l = c.leader;
        this.emitJson({
          revision: c.revision,
          leader: l ? { key: l.key, proposal: l.rawValue, createRevision: l.createRevision, modRevision: l.modRevision, lease: l.leaseId } : null,
        });
      } else if (c.leader) {
        this.out(Buffer.from(c.leader.key));
        this.out(c.leader.rawValue);
      } else {
        this.out(NO_LEADER_LINE);
      }
    };
    try {
      for await (const change of Election.observe(client, name, { signal: this.trap.signal })) print(change);
    } catch (err) {
      if (this.trap.received) return;
      const e = toCliError(err, { endpoints: this.endpointList() });
      if (e.code === 'ERR_UNAVAILABLE') throw new SupervisedError(`elect: observer lost: ${e.message}`, SupervisedExit.CannotConnect, 'ERR_UNAVAILABLE', { hint: e.hint, cause: err });
      throw e;
    }
  }
}
