/**
 * Waiting, shared by every recipe that waits its turn: the scope that turns a caller's
 * `signal`/`timeoutMs` and the session's end into one AbortSignal (and back into the right
 * error), and the queue wait of etcd's `waitDeletes`.
 *
 * The queue wait (etcd `clientv3/concurrency/key.go`, `waitDeletes`): a participant whose key
 * was created at revision `myRev` waits until no key of the prefix has a lower create
 * revision. It never watches the whole prefix: it reads its nearest predecessor and watches
 * only that key for its delete, then reads again. Each delete therefore wakes exactly one
 * waiter (the one that was watching it), not all of them: no thundering herd. Keys created
 * later get higher revisions, so the set of predecessors only shrinks and the loop ends.
 * (The Semaphore, where `limit` keys may precede a holder, has its own wait: semaphore.ts.)
 */
import { AbortError, WatchCompactedError, type Client, type KeyValue, type ResponseHeader } from '@coord/client';
import { WaitTimeoutError } from './errors';

export interface WaitOptions {
  /** Aborting stops the wait; it rejects with the client's `AbortError` (`cause`: the reason). */
  signal?: AbortSignal;
  /** Give up after this many milliseconds with `WaitTimeoutError`. Default: wait for ever. */
  timeoutMs?: number;
}

/**
 * One AbortSignal for a wait, aborted by the caller's signal, the timeout, or any of the
 * `stops` (a session's signal, a hold's signal), with a reason that is the error to throw.
 */
export class WaitScope {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly cleanups: (() => void)[] = [];

  constructor(operation: string, options: WaitOptions = {}, stops: readonly AbortSignal[] = []) {
    const { signal, timeoutMs } = options;
    if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new TypeError(`timeoutMs must be a non-negative number of milliseconds, got ${timeoutMs}`);
    }
    const link = (s: AbortSignal, reason: () => unknown) => {
      if (s.aborted) return this.controller.abort(reason());
      const on = () => this.controller.abort(reason());
      s.addEventListener('abort', on, { once: true });
      this.cleanups.push(() => s.removeEventListener('abort', on));
    };
    for (const s of stops) link(s, () => s.reason);
    if (signal) link(signal, () => new AbortError(signal.reason));
    if (timeoutMs !== undefined && !this.controller.signal.aborted) {
      this.timer = setTimeout(() => this.controller.abort(new WaitTimeoutError(operation, timeoutMs)), timeoutMs);
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Throw the abort reason if the scope has ended. */
  check(): void {
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  /**
   * The error a failed step should surface: once the scope is aborted, whatever the client
   * threw (its `AbortError`) stands for the scope's reason (timeout, session end, caller).
   */
  error(err: unknown): unknown {
    return this.controller.signal.aborted ? this.controller.signal.reason : err;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const c of this.cleanups.splice(0)) c();
  }
}

/**
 * Resolve once `key` is deleted at or after `startRevision` (true), or when the history
 * needed to know is compacted away (false: the caller must read again). Watches only that key,
 * deletes only.
 */
export async function waitForDelete(client: Client, key: Buffer | string, startRevision: bigint, signal: AbortSignal): Promise<boolean> {
  const watcher = client.watch({ key, startRevision, noPut: true, signal });
  try {
    for await (const res of watcher) {
      if (res.events.some((e) => e.type === 'delete')) return true;
    }
  } catch (err) {
    if (err instanceof WatchCompactedError) return false;
    throw err;
  } finally {
    watcher.cancel();
  }
  // The iteration ended without an error: only a cancel does that, and we did not cancel.
  signal.throwIfAborted();
  return false;
}

/**
 * etcd's `waitDeletes`: wait until no key under `prefix` has a create revision below
 * `myRevision`. Returns the header of the read that saw it. See the file comment for why only
 * one key is watched at a time.
 */
export async function waitForPredecessors(client: Client, prefix: string, myRevision: bigint, signal: AbortSignal): Promise<ResponseHeader> {
  // Each pass follows the delete of a predecessor (or a compaction): predecessors only go.
  for (;;) {
    signal.throwIfAborted();
    const res = await client.getRange({
      key: prefix,
      prefix: true,
      maxCreateRevision: myRevision - 1n,
      sortTarget: 'create',
      sortOrder: 'descend',
      limit: 1,
      keysOnly: true,
      signal,
    });
    const predecessor: KeyValue | undefined = res.kvs[0];
    if (!predecessor) return res.header;
    // Start right after the read: the key existed at header.revision, so its delete is later.
    await waitForDelete(client, predecessor.key, res.header.revision + 1n, signal);
  }
}
