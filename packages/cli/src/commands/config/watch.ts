/**
 * `coord config watch PREFIX [--signal SIG] [-- CMD ARGS...]`: follow the configuration under
 * PREFIX (@coord/recipes' ConfigWatcher: atomic snapshots at one revision; a change only when
 * the stored bytes differ), and print it or (re)run CMD with it.
 *
 * - Without CMD: one line per snapshot, the first at start: the config object as compact JSON
 *   (`--json`/`-w json`: {"revision", "config"}).
 * - With CMD: CMD runs in its own process group with COORD_CONFIG (the object as JSON),
 *   COORD_CONFIG_REVISION, COORD_CONFIG_PREFIX and COORD_CONFIG_FILE (a file holding the
 *   latest object, replaced atomically before CMD is told of a change). On each change:
 *   - default: CMD is re-run with the new config: if it still runs, its group gets SIGTERM
 *     (SIGKILL after --grace) first; a short CMD that already finished simply runs again;
 *   - `--signal SIG`: if CMD still runs, SIG goes to CMD's own process (as `systemctl
 *     reload` signals the main process), which re-reads COORD_CONFIG_FILE; if it has exited,
 *     it is started again.
 *   Changes that arrive while CMD is being restarted are coalesced: CMD always ends up
 *   running with the latest config.
 * - SIGINT/SIGTERM/SIGHUP: forwarded to CMD's group; once it is gone coord exits with CMD's
 *   status (0 without CMD, or when CMD was not running).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ConfigSnapshot, ConfigWatcher } from '@coord/recipes';
import { Args, oclifFlags } from '../../base-command';
import { badArgs, badFeature } from '../../errors';
import type { FlagSpec } from '../../flags/pflag';
import { GRACE_SPEC, SupervisedCommand, whenAborted } from '../../supervise/command';
import { decodeValue, parseSignal } from '../../supervise/config';
import type { ProcessGroup } from '../../supervise/group';
import { parseSeconds } from '../../supervise/timing';

const CONFIG_WATCH_SPECS: readonly FlagSpec[] = [
  { name: 'signal', kind: 'string', description: 'on change, send this signal to a running CMD (HUP, USR1, ...) instead of restarting it' },
  GRACE_SPEC,
];

/** Default SIGTERM-to-SIGKILL time when restarting CMD. */
const RESTART_GRACE_MS = 2000;

type Config = Record<string, unknown>;

export default class ConfigWatch extends SupervisedCommand {
  static override summary = 'Follows the configuration under a prefix; re-runs or signals a command on change';
  static override description = `Prints the configuration under PREFIX as JSON, then again on every change.

With CMD (after --), runs CMD with COORD_CONFIG (JSON), COORD_CONFIG_REVISION, COORD_CONFIG_PREFIX
and COORD_CONFIG_FILE set, and re-runs it on every change (a running CMD is stopped first:
SIGTERM, then SIGKILL after --grace). With --signal SIG, a running CMD gets SIG instead and
re-reads COORD_CONFIG_FILE.`;
  static override examples = [
    '<%= config.bin %> config watch app/',
    '<%= config.bin %> config watch app/ -- ./render-config.sh',
    '<%= config.bin %> config watch app/ --signal HUP -- ./server --config-from-env',
  ];
  static override usage = ['config watch PREFIX [--signal SIG] [--grace D] [-- CMD ARGS...]'];
  static override args = { prefix: Args.string({ description: 'the key prefix (end it with /)' }) };
  static override specs = CONFIG_WATCH_SPECS;
  static override flags = oclifFlags(CONFIG_WATCH_SPECS);

  async run(): Promise<void> {
    const { args, command } = this.splitArgs();
    if (args.length !== 1 || args[0] === '') throw badArgs('config watch takes one non-empty PREFIX argument (and a command after --)');
    if (command !== undefined && command.length === 0) throw badArgs('no command after --');
    const prefix = args[0];
    const signalName = this.str('signal') === '' ? undefined : parseSignal(this.str('signal'));
    if (signalName && !command) throw badArgs('--signal needs a command after --');
    const graceMs = parseSeconds('grace', this.str('grace')) || RESTART_GRACE_MS;
    const format = this.global().writeOut;
    const json = this.jsonEnabled() || format === 'json';
    if (!json && format !== 'simple') throw badFeature('unsupported output format for config watch', 'use -w simple, -w json or --json.');

    const client = this.supervisedClient();
    if (command) this.prepareWatchdog(graceMs);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ConfigWatcher } = require('@coord/recipes') as typeof import('@coord/recipes');
    const watcher: ConfigWatcher<Config> = new ConfigWatcher<Config>(client, {
      key: prefix,
      prefix: true,
      parse: (v) => v as Config,
      decode: (value) => decodeValue(value),
    });
    let first: ConfigSnapshot<Config>;
    try {
      first = await Promise.race([watcher.start(), whenAborted(this.trap.signal).then((s) => Promise.reject(new Error(String(s))))]);
    } catch (err) {
      watcher.close();
      throw this.failure(err, `read ${prefix}`);
    }

    // The latest snapshot and a wake-up for whoever waits for the next one.
    let latest = first;
    let failure: unknown;
    let wake: () => void = () => undefined;
    const changed = (): Promise<void> => new Promise((resolve) => (wake = resolve));
    watcher.on('change', (next: ConfigSnapshot<Config>) => {
      latest = next;
      wake();
    });
    watcher.on('error', (err: unknown) => {
      failure = err;
      wake();
    });

    try {
      if (!command) await this.printLoop(prefix, json, () => latest, changed, () => failure);
      else await this.commandLoop(prefix, command, signalName, graceMs, () => latest, changed, () => failure);
    } finally {
      watcher.close();
    }
  }

  private async printLoop(
    prefix: string,
    json: boolean,
    latest: () => ConfigSnapshot<Config>,
    changed: () => Promise<void>,
    failure: () => unknown,
  ): Promise<void> {
    let printed = -1n;
    const interrupted = whenAborted(this.trap.signal);
    for (;;) {
      // Arm the wake-up before looking, so a change in between is not missed.
      const next = changed();
      if (failure() !== undefined) throw this.failure(failure(), `watch ${prefix}`);
      if (this.trap.received) return;
      const snap = latest();
      if (snap.revision !== printed) {
        printed = snap.revision;
        if (json) this.emitJson({ prefix, revision: snap.revision, config: snap.value });
        else this.out(JSON.stringify(snap.value));
      }
      await Promise.race([next, interrupted]);
    }
  }

  private async commandLoop(
    prefix: string,
    command: readonly string[],
    signalName: NodeJS.Signals | undefined,
    graceMs: number,
    latest: () => ConfigSnapshot<Config>,
    changed: () => Promise<void>,
    failure: () => unknown,
  ): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-config-'));
    const file = path.join(dir, 'config.json');
    const writeFile = (snap: ConfigSnapshot<Config>): void => {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(snap.value) + '\n');
      fs.renameSync(tmp, file);
    };
    const start = async (snap: ConfigSnapshot<Config>): Promise<ProcessGroup> => {
      writeFile(snap);
      const group = await this.startGroup(
        command,
        {
          COORD_CONFIG: JSON.stringify(snap.value),
          COORD_CONFIG_REVISION: snap.revision.toString(),
          COORD_CONFIG_PREFIX: prefix,
          COORD_CONFIG_FILE: file,
        },
        graceMs,
      );
      this.trap.forwardTo((s) => group.signal(s));
      // A signal that came while CMD was starting was not forwarded: pass it on now.
      if (this.trap.received) group.signal(this.trap.received);
      return group;
    };

    let applied = latest();
    let group: ProcessGroup | undefined = await start(applied);
    let lastStatus = 0;
    const interrupted = whenAborted(this.trap.signal);
    try {
      for (;;) {
        const next = changed();
        if (failure() !== undefined) throw this.failure(failure(), `watch ${prefix}`);
        if (this.trap.received) break;
        if (latest().revision !== applied.revision) {
          applied = latest();
          if (group && !group.exit && signalName) {
            writeFile(applied);
            group.signalLeader(signalName);
            continue;
          }
          if (group) {
            this.trap.forwardTo(undefined);
            await group.stop(graceMs);
            if (group.exit) lastStatus = group.exit.status;
          }
          group = undefined;
          if (this.trap.received) break;
          group = await start(applied);
          continue;
        }
        const running: ProcessGroup | undefined = group;
        await Promise.race([next, interrupted, running && !running.exit ? running.exited : new Promise<void>(() => undefined)]);
        if (running && running.exit && !this.trap.received) {
          // CMD finished by itself: end what it left behind; it runs again on the next change.
          this.trap.forwardTo(undefined);
          await running.stop(graceMs);
          lastStatus = running.exit.status;
          if (group === running) group = undefined;
        }
      }
      // Interrupted: the signal went to CMD's group; wait for CMD, then end what is left.
      if (group) {
        if (!group.exit) await group.exited;
        await group.stop(graceMs);
        lastStatus = group.exit?.status ?? lastStatus;
        process.exitCode = lastStatus;
      }
    } finally {
      this.trap.forwardTo(undefined);
      if (group && group.alive) await group.stop(graceMs);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}
