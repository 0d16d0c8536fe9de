/**
 * The queue behind RedisMutex and RedisElection: a FIFO of session tokens (a ZSET scored by
 * arrival) and a holder record (a HASH: token, fencing token, version, value), changed only by
 * the scripts in scripts.ts.
 *
 * Hand-over, not a race: releasing (unlock, resign, a cancelled wait, a holder whose session
 * expired) runs one script that makes the first *live* waiter the holder, with a new fencing
 * token from an INCR counter, and publishes on that waiter's own channel. Waiters therefore
 * acquire in arrival order (first come, first served), and a release wakes exactly one of them:
 * no herd, no retry storm.
 *
 * Waiting never polls in a loop. A waiter subscribes to its wake channel first, then (re)runs
 * the acquire script (so a hand-over published in between is not missed), then sleeps until
 * either its channel says it was handed the hold, or the current holder's session key could
 * have expired (the script returns that key's PTTL). Only the second case needs a timer: a
 * holder that crashed never releases, and Redis tells nobody when a key expires (keyspace
 * notifications are off by default). So each waiter re-checks about once per TTL while the
 * holder is alive, and a dead holder is replaced at most a few milliseconds after its key
 * expires. A waiter whose session is gone is skipped at hand-over time.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { SessionExpiredError } from '../errors';
import type { QueueKeys } from './keys';
import { Notifier } from './notifier';
import { RedisScripts, type QueueCaller } from './scripts';
import { raceSignal, type RedisSession } from './session';

/** Added to a holder's remaining TTL before re-checking, so the key has surely expired. */
const EXPIRY_SLACK_MS = 15;

/** The holder record as the scripts report it (`state()` in scripts.ts). */
export interface QueueState {
  readonly version: bigint;
  readonly holder:
    | {
        readonly token: string;
        readonly fence: bigint;
        readonly mod: bigint;
        readonly value: string;
      }
    | undefined;
  /** PTTL of the holder's session key when the state was read (-2: gone, -1: no TTL). */
  readonly holderTtlMs: number;
}

export function parseState(text: string): QueueState {
  const parts: string[] = [];
  let rest = text;
  for (let i = 0; i < 5; i++) {
    const nl = rest.indexOf('\n');
    if (nl < 0) throw new Error(`redis: malformed queue state ${JSON.stringify(text)}`);
    parts.push(rest.slice(0, nl));
    rest = rest.slice(nl + 1);
  }
  const [version, token, fence, mod, ttl] = parts;
  return {
    version: BigInt(version),
    holder: token ? { token, fence: BigInt(fence), mod: BigInt(mod), value: rest } : undefined,
    holderTtlMs: Number(ttl),
  };
}

/** How long to sleep before re-checking a holder whose session key has `ttlMs` left. */
export function recheckDelayMs(ttlMs: number, fallbackMs: number): number {
  if (ttlMs === -1) return fallbackMs; // a session key without TTL: only an operator made it
  if (ttlMs < 0) return EXPIRY_SLACK_MS;
  return ttlMs + EXPIRY_SLACK_MS;
}

export interface Acquired {
  readonly fence: bigint;
  readonly version: bigint;
}

/** One session's place in one named queue. */
export class TicketQueue {
  readonly caller: QueueCaller;
  private readonly scripts: RedisScripts;

  constructor(
    readonly session: RedisSession,
    readonly keys: QueueKeys,
    publish: boolean,
  ) {
    this.scripts = RedisScripts.of(session.redis);
    this.caller = { keys, sessionKey: session.key, token: session.id, sessionPrefix: session.keys.sessionPrefix, publish };
  }

  private get redis(): Redis {
    return this.session.redis;
  }

  /**
   * Take the hold, waiting in the queue (`wait`) or not (`try`: undefined when busy). `signal`
   * ends the wait with its reason. The caller cleans up (`release`) when this throws.
   */
  async acquire(mode: 'wait' | 'try', value: string, signal: AbortSignal): Promise<Acquired | undefined> {
    // Uncontended: one script, no subscription.
    let reply = await raceSignal(this.scripts.qAcquire(this.caller, mode, value), signal);
    let verdict = this.verdict(reply);
    if (verdict.kind !== 'queued') return verdict.kind === 'held' ? verdict.acquired : undefined;
    const subscribing = Notifier.of(this.redis).subscribe([this.keys.wake + this.session.id]);
    const inbox = await raceSignal(subscribing, signal).catch((err) => {
      subscribing.then((i) => i.close(), () => undefined); // do not leak it when it completes later
      throw err;
    });
    try {
      // Each pass follows a wake-up, a resync, or the holder's possible expiry; the wait ends
      // with the hold, or with `signal` (timeout, abort, session end).
      for (;;) {
        inbox.clear();
        reply = await raceSignal(this.scripts.qAcquire(this.caller, 'wait', value), signal);
        verdict = this.verdict(reply);
        if (verdict.kind === 'held') return verdict.acquired;
        if (verdict.kind !== 'queued') throw new Error('redis: queue script answered busy to a waiting acquire');
        await inbox.next(signal, recheckDelayMs(verdict.holderTtlMs, this.session.ttlMs));
      }
    } finally {
      inbox.close();
    }
  }

  private verdict(reply: unknown[]): { kind: 'held'; acquired: Acquired } | { kind: 'queued'; holderTtlMs: number } | { kind: 'busy' } {
    const code = Number(reply[0]);
    if (code === 1) return { kind: 'held', acquired: { fence: BigInt(String(reply[1])), version: BigInt(String(reply[2])) } };
    if (code === 0) return { kind: 'queued', holderTtlMs: Number(reply[1]) };
    if (code === 2) return { kind: 'busy' };
    this.session.throwIfEnded();
    throw new SessionExpiredError(`redis session ${this.session.id}: session key ${this.session.key} is gone`);
  }

  /** Release the hold (if `fence` is ours) and leave the queue. True if we held it. */
  async release(fence: bigint | undefined, timeoutMs?: number): Promise<boolean> {
    const p = this.scripts.qRelease(this.caller, fence);
    const reply = timeoutMs === undefined ? await p : await raceSignal(p, AbortSignal.timeout(timeoutMs));
    return Number(reply) === 1;
  }

  addRelease(p: ChainableCommander, fence: bigint | undefined): void {
    void this.scripts.qRelease(this.caller, fence, p);
  }

  addCheck(p: ChainableCommander, fence: bigint): void {
    void this.scripts.qCheck(p, this.keys.holder, this.session.id, fence);
  }

  /** Is `fence` still ours on the server (holder record and session key)? */
  async isHolder(fence: bigint): Promise<boolean> {
    const p = this.redis.pipeline();
    void this.scripts.qCheck(p, this.keys.holder, this.session.id, fence);
    p.exists(this.session.key);
    const res = (await p.exec()) ?? [];
    for (const [err] of res) if (err) throw err;
    return Number(res[0]?.[1]) === 1 && Number(res[1]?.[1]) === 1;
  }

  async proclaim(fence: bigint, value: string, signal?: AbortSignal): Promise<bigint | undefined> {
    const reply = await raceSignal(this.scripts.qProclaim(this.caller, fence, value), signal);
    return Number(reply[0]) === 1 ? BigInt(String(reply[1])) : undefined;
  }
}

/** Read (and with `sweep`, repair) the state of a queue without being in it. */
export async function readQueueState(redis: Redis, keys: QueueKeys, sessionPrefix: string, sweep: boolean, publish: boolean): Promise<QueueState> {
  const caller: QueueCaller = { keys, sessionKey: '', token: '', sessionPrefix, publish };
  return parseState(String(await RedisScripts.of(redis).qState(caller, sweep)));
}
