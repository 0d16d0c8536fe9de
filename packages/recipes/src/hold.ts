/**
 * Hold: what a recipe keeps while it holds a key (a lock, a leadership, a semaphore slot, a
 * registration), and the one place that decides the key is lost.
 *
 * The key is lost when either
 * - the session ends (its signal aborts): lost, or possibly expired, or closed. The session's
 *   `lost` fires before the server could expire the lease (see session.ts), so the holder stops
 *   believing before anybody else can be granted the key; or
 * - the key is deleted (an operator's `etcdctl del`, a revoke from elsewhere): a watch on the
 *   key alone, deletes only, from the revision right after the acquisition. That is one watch
 *   per holder, never one per waiter.
 *
 * Neither check is needed for safety *on the server* (use the recipe's guarded txn, whose
 * compare on the key's create revision fails once the key is gone), but both make the holder
 * stop as early as it can know.
 */
import { WatchCompactedError, type Client } from '@coord/client';
import { SessionClosedError, type LostReason } from './errors';
import type { Session } from './session';

export class Hold {
  private readonly controller = new AbortController();
  private readonly onSessionEnd: () => void;
  private ended = false;

  constructor(
    private readonly session: Session,
    /** The held key. */
    readonly key: string,
    /** Its create revision: the fencing token. */
    readonly createRevision: bigint,
    /** The first revision after the acquisition (its header revision + 1). */
    fromRevision: bigint,
    /** `error` builds the recipe's lost error (the signal's reason); `lost` is told after the signal aborted. */
    private readonly handlers: { error(reason: LostReason, cause: unknown): Error; lost(err: Error): void },
  ) {
    this.onSessionEnd = () => {
      const reason = session.signal.reason;
      this.lose(reason instanceof SessionClosedError ? 'session-closed' : 'session-lost', reason);
    };
    if (session.signal.aborted) {
      queueMicrotask(this.onSessionEnd);
    } else {
      session.signal.addEventListener('abort', this.onSessionEnd, { once: true });
      void this.watchKey(session.client, fromRevision);
    }
  }

  /** Aborted when the hold ends: lost (reason: the recipe's lost error) or released. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Declare the key lost (e.g. a guarded txn found it changed). No-op once ended. */
  lose(reason: LostReason, cause: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.session.signal.removeEventListener('abort', this.onSessionEnd);
    const err = this.handlers.error(reason, cause);
    if (!this.controller.signal.aborted) this.controller.abort(err);
    this.handlers.lost(err);
  }

  /**
   * The owner is about to delete its own key (unlock, resign, deregister): the delete its
   * watch will see is a release, not a loss. `cancelRelease` if the delete failed.
   */
  beginRelease(): void {
    this.releasing = true;
  }

  cancelRelease(): void {
    this.releasing = false;
  }

  private releasing = false;

  /** End the hold without loss (unlock, resign): stops the watch. */
  release(reason: unknown): void {
    if (this.ended) return;
    this.finish(reason);
  }

  private finish(reason: unknown): void {
    this.ended = true;
    this.session.signal.removeEventListener('abort', this.onSessionEnd);
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  private async watchKey(client: Client, fromRevision: bigint): Promise<void> {
    let start = fromRevision;
    // Each pass ends in a return, or re-reads after a compaction: bounded by the compactions.
    for (;;) {
      if (this.ended) return;
      try {
        const watcher = client.watch({ key: this.key, startRevision: start, noPut: true, signal: this.controller.signal });
        for await (const res of watcher) {
          if (res.events.some((e) => e.type === 'delete')) {
            // Our own unlock/resign: the owner calls release() once its delete returns.
            if (this.releasing) return;
            this.lose('key-deleted', undefined);
            return;
          }
        }
        return; // cancelled
      } catch (err) {
        if (this.ended) return;
        if (!(err instanceof WatchCompactedError)) return; // client closed or a halting error: the session still guards
        try {
          const res = await client.getRange({ key: this.key, signal: this.controller.signal });
          const kv = res.kvs[0];
          if (!kv || kv.createRevision !== this.createRevision) {
            this.lose('key-deleted', err);
            return;
          }
          start = res.header.revision + 1n;
        } catch {
          return;
        }
      }
    }
  }
}
