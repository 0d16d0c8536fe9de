/**
 * Releasing a lock after a critical section, for withLock of both backends (etcd and Redis).
 *
 * A release that fails (a leader failover, a timeout whose outcome is unknown, a Redis
 * fail-over) leaves our key on the server, and every waiter queued behind it until the
 * session ends: with a session kept alive, for ever (mutex-failover.test.ts hung exactly so
 * when a failover ate the unlock). So the release is retried, with backoff, while the lock is
 * still believed held and the session lives, for at most `RELEASE_RETRY_MS`; after that the
 * last error is thrown and the mutex stays held (`unlock()` may be called again; the
 * session's end releases it in any case).
 */
export const RELEASE_RETRY_MS = 30_000;

export async function releaseRetrying(unlock: () => Promise<void>, stillHeld: () => boolean, sessionAlive: () => boolean): Promise<void> {
  const deadline = Date.now() + RELEASE_RETRY_MS;
  let delayMs = 50;
  for (;;) {
    try {
      await unlock();
      return;
    } catch (err) {
      if (!stillHeld() || !sessionAlive() || Date.now() + delayMs > deadline) throw err;
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 1000);
    }
  }
}
