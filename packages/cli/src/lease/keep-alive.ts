/**
 * `lease keep-alive ID` as etcdctl 3.4 runs it: clientv3's `KeepAlive(ctx, id)` on a lease
 * this process did not grant, printing each answer until the channel closes. clientv3's rules
 * (clientv3/lease.go), reproduced on @coord/client's one-shot keep-alive:
 *
 * - the first keep-alive goes out at once; after an answer with TTL T the next one is due
 *   T/3 later, and the lease is given up if no answer arrives within T of that answer
 *   (before the first answer: within dial timeout + 1 s, clientv3's firstKeepAliveTimeout);
 * - an answer with TTL <= 0 (expired, revoked or never granted) closes the channel at once;
 * - transport failures are retried every 500 ms (clientv3's retry period) until that deadline.
 *
 * @coord/client's kept-alive `Lease` grants its own lease, so it cannot be used here.
 */
import type { Client, LeaseKeepAliveResult } from '@coord/client';

/** clientv3 checks due keep-alives and deadlines every 500 ms. */
export const KEEPALIVE_RETRY_MS = 500;

export type KeepAliveEnd =
  /** Answered with TTL 0: the lease does not exist (any more). */
  | 'expired'
  /** No answer before the deadline. */
  | 'deadline';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * Keep lease `id` alive until it is gone; `onResponse` sees every answer with TTL > 0 (and may
 * throw to stop, e.g. a printer that refuses the format).
 */
export async function keepAliveUntilGone(
  client: Client,
  id: bigint,
  firstTimeoutMs: number,
  onResponse: (r: LeaseKeepAliveResult) => void,
): Promise<KeepAliveEnd> {
  let deadline = Date.now() + firstTimeoutMs;
  let due = Date.now();
  for (;;) {
    await sleep(due - Date.now());
    if (Date.now() > deadline) return 'deadline';
    let res: LeaseKeepAliveResult;
    try {
      res = await client.leaseKeepAliveOnce(id, { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      if ((err as { name?: string })?.name === 'LeaseNotFoundError') return 'expired';
      if (Date.now() >= deadline) return 'deadline';
      due = Date.now() + KEEPALIVE_RETRY_MS;
      continue;
    }
    onResponse(res);
    const ttlMs = Number(res.ttl) * 1000;
    deadline = Date.now() + ttlMs;
    due = Date.now() + ttlMs / 3;
  }
}
