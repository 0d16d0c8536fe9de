/**
 * What `lock`, `elect`, `service register` and `config watch` share on top of BaseCommand:
 *
 * - the words after `--` (the CMD to run), found with pflag's rules so that a flag's value is
 *   never mistaken for the separator;
 * - signals: SIGINT, SIGTERM and SIGHUP end a wait (exit 5), end a hold without CMD (release,
 *   exit 0), or, while CMD runs, are forwarded to CMD's whole process group (CMD decides; coord
 *   then releases and exits with CMD's status);
 * - the session: a lease whose `lost` fires early enough for CMD's group to be terminated
 *   before the server could expire it (timing.ts);
 * - running CMD in its own process group, guarded by the watchdog (group.ts), and ending the
 *   group when the lock is lost or CMD exits (nothing CMD started outlives the lock);
 * - mapping recipe and connection failures to the documented exit codes (exit-codes.ts);
 * - JSON lines for `--json` on streaming output.
 *
 * @coord/recipes (and with it gRPC) is loaded on first use, never for `--help`.
 */
import type { Client } from '@coord/client';
import type { Session } from '@coord/recipes';
import { BaseCommand } from '../base-command';
import { CliError, ExitCode, badArgs, toCliError } from '../errors';
import { GLOBAL_FLAGS } from '../flags/global';
import type { FlagSpec } from '../flags/pflag';
import { toJsonSafe } from '../output/json-result';
import { SupervisedError, SupervisedExit } from './exit-codes';
import { ProcessGroup, Watchdog, type CommandExit } from './group';
import { lossTiming, parseSeconds, type LossTiming } from './timing';

/** The signals that end a wait or a hold, or are forwarded to CMD. */
export const TRAPPED_SIGNALS = Object.freeze(['SIGINT', 'SIGTERM', 'SIGHUP'] as const);

export const TTL_SPEC: FlagSpec = { name: 'ttl', kind: 'int64', default: '10', description: 'session TTL in seconds (the lease behind the lock)' };
export const GRACE_SPEC: FlagSpec = {
  name: 'grace',
  kind: 'string',
  description: 'time between SIGTERM and SIGKILL when CMD must stop (seconds or a duration; default TTL/10, 100ms..2s)',
};

/** Signals received by this process, as an AbortSignal (the first one) and a forwarding hook. */
export class SignalTrap {
  private readonly controller = new AbortController();
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private forward: ((signal: NodeJS.Signals) => void) | undefined;
  private installed = false;

  install(): void {
    if (this.installed) return;
    this.installed = true;
    for (const s of TRAPPED_SIGNALS) {
      const h = (): void => {
        if (this.forward) this.forward(s);
        if (!this.controller.signal.aborted) this.controller.abort(s);
      };
      this.handlers.set(s, h);
      process.on(s, h);
    }
  }

  /** Aborted (reason: the signal's name) by the first trapped signal. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get received(): NodeJS.Signals | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as NodeJS.Signals) : undefined;
  }

  /** While set, every trapped signal is passed to `fn` (CMD's group). */
  forwardTo(fn: ((signal: NodeJS.Signals) => void) | undefined): void {
    this.forward = fn;
  }

  dispose(): void {
    for (const [s, h] of this.handlers) process.removeListener(s, h);
    this.handlers.clear();
    this.forward = undefined;
  }
}

/** Resolves with the abort reason when `signal` aborts. */
export function whenAborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));
}

/** How a supervised CMD ended. */
export type Outcome =
  | { readonly kind: 'exit'; readonly exit: CommandExit }
  /** The guard (lock, leadership) was lost: CMD's group has been terminated. */
  | { readonly kind: 'lost'; readonly reason: unknown; readonly stopped: string };

/** Find `--` in raw argv as pflag would (a value flag's next word is never the separator). */
export function separatorIndex(argv: readonly string[], specs: readonly FlagSpec[]): number {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byChar = new Map(specs.filter((s) => s.char).map((s) => [s.char as string, s]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return i;
    if (a.length < 2 || a[0] !== '-') continue;
    if (a[1] === '-') {
      if (a.includes('=')) continue;
      const spec = byName.get(a.slice(2));
      if (spec && spec.kind !== 'bool') i++;
      continue;
    }
    const shorts = a.slice(1);
    for (let j = 0; j < shorts.length; j++) {
      const spec = byChar.get(shorts[j]);
      if (!spec) break;
      if (spec.kind !== 'bool') {
        if (j === shorts.length - 1) i++;
        break;
      }
    }
  }
  return -1;
}

/** The recipes' error codes we tell apart (duck-typed: recipes load lazily). */
function recipeCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_') ? code : undefined;
}

/** True when a session ended because no keep-alive came back in time (contact lost). */
function lostContact(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if ((e as { reason?: unknown }).reason === 'deadline') return true;
  }
  return false;
}

export abstract class SupervisedCommand extends BaseCommand {
  protected readonly trap = new SignalTrap();
  private watchdogPromise: Promise<Watchdog> | undefined;
  private sessions: Session[] = [];

  /** Positional words before `--` and the words after it (undefined without `--`). */
  protected splitArgs(): { args: string[]; command: string[] | undefined } {
    const ctor = this.constructor as typeof BaseCommand;
    const sep = separatorIndex(this.argv, [...GLOBAL_FLAGS, ...ctor.specs]);
    if (sep < 0) return { args: [...this.positional], command: undefined };
    const after = this.argv.length - sep - 1;
    const args = this.positional.slice(0, this.positional.length - after);
    const command = this.positional.slice(this.positional.length - after);
    return { args, command };
  }

  /** `--ttl` and `--grace`, validated together. */
  protected timing(): LossTiming {
    const ttl = this.int('ttl');
    if (ttl <= 0n || ttl > 1_000_000n) throw badArgs(`--ttl must be a positive number of seconds, got ${ttl}`);
    return lossTiming(Number(ttl), parseSeconds('grace', this.str('grace')));
  }

  /** The client, with signals trapped from now on. */
  protected supervisedClient(): Client {
    const client = this.client();
    this.trap.install();
    return client;
  }

  /** Start the watchdog now (in parallel with connecting); `runGuarded` waits for it. */
  protected prepareWatchdog(graceMs: number): void {
    if (!this.watchdogPromise) {
      this.watchdogPromise = Watchdog.start(graceMs);
      this.watchdogPromise.catch(() => undefined);
    }
  }

  /** A session with the lost-signal timing of `timing`; connection failures exit 121. */
  protected async openSession(client: Client, timing: LossTiming): Promise<Session> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Session } = require('@coord/recipes') as typeof import('@coord/recipes');
    try {
      const s = await Session.create(client, { ttl: timing.ttlSeconds, safetyMarginMs: timing.safetyMarginMs, signal: this.trap.signal });
      this.sessions.push(s);
      return s;
    } catch (err) {
      throw this.failure(err, 'grant a session lease');
    }
  }

  /** Close (revoke) a session; best effort. */
  protected async closeSession(session: Session): Promise<void> {
    this.sessions = this.sessions.filter((s) => s !== session);
    await session.close().catch(() => undefined);
  }

  /**
   * The documented error for a failure while connecting or waiting: interrupted (5),
   * timeout (124), cannot connect or contact lost (121), otherwise the usual mapping.
   */
  protected failure(err: unknown, what: string): CliError {
    if (err instanceof CliError) return err;
    if (this.trap.received) {
      return new SupervisedError(`interrupted by ${this.trap.received} while waiting to ${what}`, ExitCode.Interrupted, 'ERR_INTERRUPTED', { cause: err });
    }
    const code = recipeCode(err);
    if (code === 'ERR_WAIT_TIMEOUT') {
      return new SupervisedError(`timed out waiting to ${what}`, SupervisedExit.Timeout, 'ERR_TIMEOUT', {
        hint: 'raise --timeout, or see who holds it with `coord get --prefix NAME/`.',
        cause: err,
      });
    }
    if (code === 'ERR_SESSION_EXPIRED' && lostContact(err)) {
      return new SupervisedError(`lost contact with the cluster while waiting to ${what}: ${(err as Error).message}`, SupervisedExit.CannotConnect, 'ERR_UNAVAILABLE', {
        cause: err,
      });
    }
    const e = toCliError(err, { endpoints: this.endpointList() });
    if (e.code === 'ERR_UNAVAILABLE') {
      return new SupervisedError(e.message, SupervisedExit.CannotConnect, 'ERR_UNAVAILABLE', { hint: e.hint, cause: err });
    }
    return e;
  }

  /**
   * Run CMD in its own process group while `guard` holds (e.g. the lock's signal). Trapped
   * signals go to the group. When `guard` aborts first, the group gets SIGTERM, `graceMs`,
   * SIGKILL, and the outcome is 'lost'; when CMD exits first, whatever it left in its group is
   * ended the same way. Either way the group is gone when this resolves.
   */
  protected async runGuarded(
    command: readonly string[],
    env: Record<string, string>,
    guard: AbortSignal | undefined,
    graceMs: number,
  ): Promise<Outcome> {
    if (guard?.aborted) return { kind: 'lost', reason: guard.reason, stopped: 'not started' };
    const group = await this.startGroup(command, env, graceMs);
    if (guard?.aborted) {
      // Lost while CMD was being started: it must not run on.
      return { kind: 'lost', reason: guard.reason, stopped: await group.stop(graceMs) };
    }
    this.trap.forwardTo((s) => group.signal(s));
    // A signal that came while CMD was starting was not forwarded: pass it on now.
    if (this.trap.received) group.signal(this.trap.received);
    try {
      const lost = guard ? whenAborted(guard).then((reason) => ({ lost: true as const, reason })) : new Promise<never>(() => undefined);
      const first = await Promise.race([group.exited.then((exit) => ({ lost: false as const, exit })), lost]);
      this.trap.forwardTo(undefined);
      if (first.lost) {
        const stopped = await group.stop(graceMs);
        return { kind: 'lost', reason: first.reason, stopped };
      }
      await group.stop(graceMs);
      return { kind: 'exit', exit: first.exit };
    } finally {
      this.trap.forwardTo(undefined);
    }
  }

  /** Start CMD in its own process group, guarded by the watchdog (started on first use). */
  protected async startGroup(command: readonly string[], env: Record<string, string>, graceMs: number): Promise<ProcessGroup> {
    this.prepareWatchdog(graceMs);
    let watchdog: Watchdog;
    try {
      watchdog = await (this.watchdogPromise as Promise<Watchdog>);
    } catch (err) {
      throw new CliError((err as Error).message, ExitCode.Error, { code: 'ERR_INTERNAL', cause: err });
    }
    return ProcessGroup.start(command, env, watchdog);
  }

  /** One JSON line on stdout (streaming `--json` output). */
  protected emitJson(value: unknown): void {
    process.stdout.write(JSON.stringify(toJsonSafe(value)) + '\n');
  }

  /** Print a key as etcdctl's display.Get does (simple: key, value), or a JSON line with `--json`. */
  protected async printKey(client: Client, key: string, json: () => unknown): Promise<void> {
    const res = await client.getRange({ key });
    if (res.kvs.length === 0) throw new CliError(`${key} vanished right after it was acquired`, ExitCode.Error);
    if (this.jsonEnabled()) this.emitJson(json());
    else this.printer().get(res);
  }

  override async finally(err: Error | undefined): Promise<unknown> {
    // A failure after a session was opened: release it (its keys) before the client closes.
    for (const s of this.sessions.splice(0)) await s.close().catch(() => undefined);
    this.trap.dispose();
    return super.finally(err);
  }
}
