/**
 * RedisHold: what a Redis recipe keeps while it holds something (a lock, a leadership, a
 * registration), and the one place that decides it is lost, like ../hold.ts for etcd.
 *
 * It is lost when
 * - the session ends (its signal aborts): lost, possibly expired, or closed. The session's `lost`
 *   fires before Redis could expire the session key, so before anybody else can be handed what
 *   we held; or
 * - a heartbeat's check finds it no longer recorded on the server (an operator deleted it,
 *   another session took a registration over): reason `key-deleted`, noticed within one
 *   heartbeat interval (TTL / 3), where the etcd backend's watch notices at once.
 *
 * Neither is needed for safety on the server: guarded writes (`evalIfOwner`) check the holder
 * record atomically. Both make the holder stop as early as it can know.
 */
import type { ChainableCommander } from 'ioredis';
import { SessionClosedError, type LostReason } from '../errors';
import type { RedisSession } from './session';

export interface RedisHoldCommands {
  /** Add the check command (reply 1: still held). */
  check(p: ChainableCommander): void;
  /** Add the command that releases the hold on the server (used by `session.close()`). */
  release(p: ChainableCommander): void;
}

export class RedisHold {
  private readonly controller = new AbortController();
  private readonly onSessionEnd: () => void;
  private readonly removeTenant: () => void;
  private ended = false;
  private releasing = false;

  constructor(
    private readonly session: RedisSession,
    /** What is held, for messages (e.g. the holder key). */
    readonly key: string,
    /** The fencing token of the hold. */
    readonly fence: bigint,
    private readonly commands: RedisHoldCommands,
    /** `error` builds the recipe's lost error (the signal's reason); `lost` is told after the signal aborted. */
    private readonly handlers: { error(reason: LostReason, cause: unknown): Error; lost(err: Error): void },
  ) {
    this.onSessionEnd = () => {
      const reason = session.signal.reason;
      this.lose(reason instanceof SessionClosedError ? 'session-closed' : 'session-lost', reason);
    };
    this.removeTenant = session.addTenant({
      addCheck: (p) => {
        commands.check(p);
        return (reply) => {
          if (Number(reply) !== 1 && !this.releasing) this.lose('key-deleted', undefined);
        };
      },
      addRelease: (p) => commands.release(p),
    });
    if (session.signal.aborted) queueMicrotask(this.onSessionEnd);
    else session.signal.addEventListener('abort', this.onSessionEnd, { once: true });
  }

  /** Aborted when the hold ends: lost (reason: the recipe's lost error) or released. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Declare the hold lost. No-op once ended. */
  lose(reason: LostReason, cause: unknown): void {
    if (this.ended) return;
    // Lost with the session: stay the session's tenant, so that a `close()` after the loss still
    // releases what Redis may still record as ours (the key can outlive the loss by the margin).
    this.finish(reason === 'key-deleted');
    const err = this.handlers.error(reason, cause);
    this.controller.abort(err);
    this.handlers.lost(err);
  }

  /** The owner is releasing: a failed check meanwhile is the release, not a loss. */
  beginRelease(): void {
    this.releasing = true;
  }

  cancelRelease(): void {
    this.releasing = false;
  }

  /** End the hold without loss (unlock, resign, deregister). */
  release(reason: unknown): void {
    if (this.ended) return;
    this.finish();
    this.controller.abort(reason);
  }

  private finish(leaveSession = true): void {
    this.ended = true;
    if (leaveSession) this.removeTenant();
    this.session.signal.removeEventListener('abort', this.onSessionEnd);
  }
}
