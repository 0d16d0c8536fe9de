/**
 * RWMutex: many readers or one writer (etcd's `contrib/recipes.RWMutex`, Curator's
 * InterProcessReadWriteLock), queued fairly by create revision: a writer waits for every
 * earlier reader and writer, a reader waits only for earlier writers, and a reader that comes
 * after a waiting writer waits behind it (writers are not starved).
 *
 * Layout (etcd's, with keys named by lease like the Mutex's instead of by nanosecond clock):
 * `<name>/read/<lease id in %x>` and `<name>/write/<lease id in %x>`, with the session's lease
 * and an empty value.
 *
 * Waiting: a writer watches only the nearest earlier key of either kind; a reader watches only
 * the nearest earlier *writer*. When it goes, they read again (wait.ts). Readers queued behind
 * one writer all watch that writer, and all wake when it leaves: that is not a herd, since all
 * of them may then read.
 */
import { LockBusyError, LockLostError, NotLockedError, SessionExpiredError, type LostReason } from './errors';
import { Hold } from './hold';
import { leaseKeySuffix, recipePrefix } from './keys';
import type { Session } from './session';
import { dropTicket, takeTicket } from './ticket';
import { WaitScope, waitForPredecessors, type WaitOptions } from './wait';

export type RWMode = 'read' | 'write';

export interface RWHold {
  readonly mode: RWMode;
  readonly key: string;
  readonly createRevision: bigint;
  /** Aborted (reason: `LockLostError`) if the lock is lost; also when released. */
  readonly signal: AbortSignal;
}

const CLEANUP_TIMEOUT_MS = 5000;

export class RWMutex {
  readonly prefix: string;
  private current: { mode: RWMode; key: string; hold: Hold | undefined; release: () => void } | undefined;

  constructor(
    readonly session: Session,
    readonly name: string,
  ) {
    this.prefix = recipePrefix(name);
  }

  /** The mode held now, if any. */
  get mode(): RWMode | undefined {
    return this.current?.hold?.active ? this.current.mode : undefined;
  }

  /** Take a shared (read) lock: waits for earlier writers only. */
  rLock(options: WaitOptions = {}): Promise<RWHold> {
    return this.take('read', options);
  }

  /** Take the exclusive (write) lock: waits for every earlier reader and writer. */
  lock(options: WaitOptions = {}): Promise<RWHold> {
    return this.take('write', options);
  }

  /** Release whichever lock is held. No-op when none is. */
  async unlock(options: { timeoutMs?: number } = {}): Promise<void> {
    const c = this.current;
    if (!c || !c.hold) return;
    c.hold.beginRelease();
    try {
      await dropTicket(this.session.client, c.key, c.hold.createRevision, this.session.leaseId, options.timeoutMs);
    } catch (err) {
      c.hold.cancelRelease();
      throw err;
    }
    c.hold.release(new NotLockedError('released'));
    this.current = undefined;
    c.release();
  }

  private async take(mode: RWMode, options: WaitOptions): Promise<RWHold> {
    if (this.current) throw new LockBusyError(`${this.name} is already ${this.current.hold ? 'held' : 'being acquired'} (${this.current.mode})`);
    this.session.throwIfEnded();
    const key = `${this.prefix}${mode}/${leaseKeySuffix(this.session.leaseId)}`;
    const release = this.session.claim(key);
    const entry: { mode: RWMode; key: string; hold: Hold | undefined; release: () => void } = { mode, key, hold: undefined, release };
    this.current = entry;
    const scope = new WaitScope(`${mode}-lock ${this.name}`, options, [this.session.signal]);
    let createRevision: bigint | undefined;
    try {
      // Writers wait behind every earlier key; readers behind earlier writers only.
      const waitPrefix = mode === 'write' ? this.prefix : `${this.prefix}write/`;
      const ticket = await takeTicket(this.session, waitPrefix, key, '', 1, scope.signal);
      createRevision = ticket.createRevision;
      await waitForPredecessors(this.session.client, waitPrefix, createRevision, scope.signal);
      const mine = await this.session.client.getRange({ key, signal: scope.signal });
      const kv = mine.kvs[0];
      if (!kv || kv.createRevision !== createRevision) {
        scope.check();
        throw this.session.alive ? new LockLostError(key, 'key-deleted') : new SessionExpiredError(key);
      }
      scope.check();
      const rev = createRevision;
      const hold = new Hold(this.session, key, rev, mine.header.revision + 1n, {
        error: (reason: LostReason, cause: unknown) => new LockLostError(key, reason, { cause }),
        lost: () => {
          if (this.current === entry) this.current = undefined;
          release();
        },
      });
      entry.hold = hold;
      return { mode, key, createRevision: rev, signal: hold.signal };
    } catch (err) {
      const e = scope.error(err);
      if (this.session.alive) {
        await dropTicket(this.session.client, key, createRevision, this.session.leaseId, CLEANUP_TIMEOUT_MS).catch(() => undefined);
      }
      if (this.current === entry) this.current = undefined;
      release();
      throw e;
    } finally {
      scope.dispose();
    }
  }
}
