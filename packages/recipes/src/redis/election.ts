/**
 * RedisElection: leader election over Redis, shaped like the etcd-backed `Election`
 * (campaign / proclaim / resign / leader / observe, events `elected` and `lost`).
 *
 * Candidates queue like RedisMutex waiters (queue.ts): the leader is the holder record, a
 * resignation or a dead leader hands leadership to the first live candidate atomically, and each
 * leadership gets a new `createRevision` from an INCR counter (its fencing token).
 *
 * Observing: every change of the leader or of its value bumps a version counter and publishes
 * the new state (with its version) on the election's channel, in the same script. `observe()`
 * subscribes first, then reads the state, and reports each later message whose version is
 * newer, so nothing after the read is missed and nothing is reported twice. A leader that
 * crashed is not announced by anybody: observers re-read (with a sweep that ends a leadership
 * whose session key is gone, and publishes "no leader" or the next leader) when the leader's
 * session key could have expired. So observers report "no leader" (`leader: undefined`) when the
 * last candidate goes, like the etcd backend and unlike etcd's own Observe.
 *
 * Differences from the etcd Election:
 * - `LeaderInfo` has `sessionId` (the session token) instead of `leaseId`; revisions are the
 *   election's own counters (`createRevision`: the fencing token, `modRevision`: the version of
 *   the last change), not etcd store revisions; values are UTF-8 text;
 * - after a reconnect of the subscriber (or a consumer too slow for 10,000 queued messages)
 *   observers re-read the state: changes in between are reported as one, as the etcd backend
 *   does after a compaction (`onRelist` is called);
 * - `txnIfLeader` is `evalIfLeader` (a Lua script); `isLeaderCompare` has no equivalent.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { AbortError } from '@coord/client';
import { LeadershipLostError, LockBusyError, NotLeaderError, type LostReason } from '../errors';
import { WaitScope, type WaitOptions } from '../wait';
import { RedisHold } from './hold';
import { DEFAULT_REDIS_NAMESPACE, RedisKeys, type QueueKeys } from './keys';
import { Notifier } from './notifier';
import { parseState, readQueueState, recheckDelayMs, TicketQueue, type QueueState } from './queue';
import { RedisScripts } from './scripts';
import { raceSignal, type RedisSession } from './session';

/** The leader as observers see it. */
export interface RedisLeaderInfo {
  /** The election's holder key. */
  readonly key: string;
  readonly value: string;
  readonly rawValue: Buffer;
  /** The leadership's fencing token: greater than every earlier leader's. */
  readonly createRevision: bigint;
  /** The election's version at the last change of this leadership (election or proclaim). */
  readonly modRevision: bigint;
  /** The leader's session token. */
  readonly sessionId: string;
}

/** One observation: the leader (undefined: no leader) as of the election's `revision` (version). */
export interface RedisLeaderChange {
  readonly leader: RedisLeaderInfo | undefined;
  readonly revision: bigint;
}

/** What a successful `campaign()` returns. */
export interface RedisLeadership {
  readonly key: string;
  readonly createRevision: bigint;
  /** The election's version when we were elected. */
  readonly revision: bigint;
  /** Aborted (reason: `LeadershipLostError`) when leadership is lost; also when resigned. */
  readonly signal: AbortSignal;
}

export type RedisElectionState = 'idle' | 'campaigning' | 'leader' | 'resigning';

export interface RedisObserveOptions {
  /** Key namespace (default `coord:`). */
  namespace?: string;
  signal?: AbortSignal;
  /** Called whenever the observer had to re-read the state (messages may have been missed). */
  onRelist?: () => void;
}

const CLEANUP_TIMEOUT_MS = 5000;
/** Without a leader, observers still re-read this often, in case a message was lost unnoticed. */
const IDLE_RECHECK_MS = 60_000;

function toLeader(key: string, s: QueueState): RedisLeaderInfo | undefined {
  const h = s.holder;
  if (!h) return undefined;
  return Object.freeze({ key, value: h.value, rawValue: Buffer.from(h.value, 'utf8'), createRevision: h.fence, modRevision: h.mod, sessionId: h.token });
}

const sameLeader = (a: RedisLeaderInfo | undefined, b: RedisLeaderInfo | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.sessionId === b.sessionId && a.createRevision === b.createRevision && a.modRevision === b.modRevision);

export class RedisElection extends EventEmitter {
  /** The holder key of the election. */
  readonly key: string;
  readonly keys: QueueKeys;
  private readonly queue: TicketQueue;
  private current: RedisElectionState = 'idle';
  private hold: RedisHold | undefined;
  private releaseClaim: (() => void) | undefined;

  constructor(
    readonly session: RedisSession,
    readonly name: string,
  ) {
    super();
    this.keys = session.keys.queue('election', name);
    this.key = this.keys.holder;
    this.queue = new TicketQueue(session, this.keys, true);
  }

  get state(): RedisElectionState {
    return this.current;
  }

  get isLeader(): boolean {
    return this.current === 'leader';
  }

  get signal(): AbortSignal | undefined {
    return this.current === 'leader' ? this.hold?.signal : undefined;
  }

  /** Our leadership's fencing token while leader. */
  get leaderRevision(): bigint | undefined {
    return this.current === 'leader' ? this.hold?.fence : undefined;
  }

  override on(event: 'elected', listener: (l: RedisLeadership) => void): this;
  override on(event: 'lost', listener: (err: LeadershipLostError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'elected', listener: (l: RedisLeadership) => void): this;
  override once(event: 'lost', listener: (err: LeadershipLostError) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /**
   * Become a candidate with `value` and wait until elected. Rejects with `WaitTimeoutError`,
   * the client's `AbortError`, or the session's error if it ends meanwhile; the candidacy is
   * then withdrawn.
   */
  async campaign(value: string, options: WaitOptions = {}): Promise<RedisLeadership> {
    if (typeof value !== 'string') throw new TypeError('campaign value must be a string');
    if (this.current !== 'idle') throw new LockBusyError(`${this.key} is ${this.current}`);
    this.session.throwIfEnded();
    this.releaseClaim = this.session.claim(this.key);
    this.current = 'campaigning';
    const scope = new WaitScope(`campaign ${this.name}`, options, [this.session.signal]);
    const removeTenant = this.session.addTenant({ addRelease: (p) => this.queue.addRelease(p, undefined) });
    try {
      const got = (await this.queue.acquire('wait', value, scope.signal))!;
      scope.check();
      return this.startLeading(got.fence, got.version);
    } catch (err) {
      const e = scope.error(err);
      // A lost session's key may outlive the loss by the safety margin: withdraw anyway, but
      // do not wait for it (the loss may be a partition, and the key expires by itself).
      const leaving = this.queue.release(undefined, CLEANUP_TIMEOUT_MS).catch(() => undefined);
      if (this.session.alive) await leaving;
      this.finish();
      throw e;
    } finally {
      removeTenant();
      scope.dispose();
    }
  }

  /**
   * Announce a new value without a new election. Rejects with `NotLeaderError` when not leader;
   * when Redis finds our leadership gone, it is declared lost too. Returns the new version.
   */
  async proclaim(value: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<bigint> {
    const hold = this.hold;
    if (this.current !== 'leader' || !hold) throw new NotLeaderError(this.key);
    const signal = options.timeoutMs !== undefined ? AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])]) : options.signal;
    const version = await this.queue.proclaim(hold.fence, value, signal);
    if (version === undefined) {
      hold.lose('key-deleted', undefined);
      throw new NotLeaderError(`${this.key}: leadership is gone`);
    }
    return version;
  }

  /** Give up leadership (the next candidate is elected at once). No-op when not leader. */
  async resign(options: { timeoutMs?: number } = {}): Promise<void> {
    const hold = this.hold;
    if (this.current !== 'leader' || !hold) {
      if (this.current === 'campaigning' || this.current === 'resigning') throw new LockBusyError(`resign during ${this.current}`);
      return;
    }
    this.current = 'resigning';
    hold.beginRelease();
    try {
      await this.queue.release(hold.fence, options.timeoutMs);
    } catch (err) {
      hold.cancelRelease();
      if (this.current === 'resigning') this.current = hold.active ? 'leader' : 'idle';
      throw err;
    }
    hold.release(new NotLeaderError('resigned'));
    this.finish();
  }

  /** The current leader, or undefined. */
  async leader(options: { signal?: AbortSignal } = {}): Promise<RedisLeaderInfo | undefined> {
    return RedisElection.leader(this.session.redis, this.name, { namespace: this.session.namespace, ...options });
  }

  /** See the static `RedisElection.observe`. */
  observe(options: Omit<RedisObserveOptions, 'namespace'> = {}): AsyncGenerator<RedisLeaderChange, void, undefined> {
    return RedisElection.observe(this.session.redis, this.name, { namespace: this.session.namespace, ...options });
  }

  /**
   * Run the Lua `body` (own KEYS and ARGV from 1) only while we are the leader, checked
   * atomically by Redis. A failed check means leadership is gone: it is declared lost.
   */
  async evalIfLeader(body: string, keys: readonly string[] = [], args: readonly (string | number | Buffer)[] = []): Promise<{ succeeded: boolean; result: unknown }> {
    const hold = this.hold;
    if (this.current !== 'leader' || !hold) throw new NotLeaderError(this.key);
    const { ok, result } = await RedisScripts.of(this.session.redis).guarded(this.keys.holder, this.session.key, this.session.id, hold.fence, body, keys, args);
    if (!ok) hold.lose('key-deleted', undefined);
    return { succeeded: ok, result };
  }

  /** The leader of election `name` (a read that also ends a leadership whose session is gone). */
  static async leader(redis: Redis, name: string, options: { namespace?: string; signal?: AbortSignal } = {}): Promise<RedisLeaderInfo | undefined> {
    const keys = new RedisKeys(redis, options.namespace ?? DEFAULT_REDIS_NAMESPACE);
    const q = keys.queue('election', name);
    return toLeader(q.holder, await raceSignal(readQueueState(redis, q, keys.sessionPrefix, true, true), options.signal));
  }

  /**
   * Every leader change of election `name` as an async iterable: first the current leader (or
   * `leader: undefined`), then each change of leader or of its value, including
   * `leader: undefined` whenever nobody leads. Ends without error when `signal` aborts or the
   * consumer breaks out of its loop.
   */
  static async *observe(redis: Redis, name: string, options: RedisObserveOptions = {}): AsyncGenerator<RedisLeaderChange, void, undefined> {
    const keys = new RedisKeys(redis, options.namespace ?? DEFAULT_REDIS_NAMESPACE);
    const q = keys.queue('election', name);
    const signal = options.signal;
    if (signal?.aborted) return;
    const subscribing = Notifier.of(redis).subscribe([q.events]);
    let inbox;
    try {
      inbox = await raceSignal(subscribing, signal);
    } catch (err) {
      subscribing.then((i) => i.close(), () => undefined);
      if (signal?.aborted) return;
      throw err;
    }
    let last: RedisLeaderInfo | undefined;
    let version = -1n;
    let emitted = false;
    try {
      let state = await raceSignal(readQueueState(redis, q, keys.sessionPrefix, true, true), signal);
      // Each pass handles one message, resync or timer; the loop ends with the signal or the consumer.
      for (;;) {
        if (state.version > version) {
          version = state.version;
          const leader = toLeader(q.holder, state);
          if (!emitted || !sameLeader(last, leader)) {
            emitted = true;
            last = leader;
            yield { leader, revision: state.version };
          }
        }
        const item = await inbox.next(signal, state.holder ? recheckDelayMs(state.holderTtlMs, IDLE_RECHECK_MS) : IDLE_RECHECK_MS);
        if (item.kind === 'message') {
          state = parseState(item.message);
          if (state.version > version + 1n) options.onRelist?.();
        } else {
          if (item.kind === 'resync') options.onRelist?.();
          // The leader's session key may have expired: sweep (publishes the change) and read.
          state = await raceSignal(readQueueState(redis, q, keys.sessionPrefix, true, true), signal);
        }
      }
    } catch (err) {
      if (signal?.aborted && (err === signal.reason || err instanceof AbortError)) return;
      throw err;
    } finally {
      inbox.close();
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  private startLeading(fence: bigint, version: bigint): RedisLeadership {
    const queue = this.queue;
    const hold = new RedisHold(
      this.session,
      this.key,
      fence,
      { check: (p) => queue.addCheck(p, fence), release: (p) => queue.addRelease(p, fence) },
      {
        error: (reason: LostReason, cause: unknown) => new LeadershipLostError(this.key, reason, { cause }),
        lost: (err) => {
          if (this.hold !== hold) return;
          this.finish();
          this.emit('lost', err);
        },
      },
    );
    this.hold = hold;
    this.current = 'leader';
    const leadership: RedisLeadership = { key: this.key, createRevision: fence, revision: version, signal: hold.signal };
    this.emit('elected', leadership);
    return leadership;
  }

  private finish(): void {
    this.current = 'idle';
    this.hold = undefined;
    this.releaseClaim?.();
    this.releaseClaim = undefined;
  }
}
