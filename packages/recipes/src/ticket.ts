/**
 * A ticket: a session's place in a create-revision-ordered queue under a prefix, the step
 * that Mutex, Election and Semaphore share (etcd's `Mutex.tryAcquire` and the first half of
 * `Election.Campaign`).
 *
 * One transaction creates the key if it is absent (compare create_revision = 0, put with the
 * session's lease) and, in the same round trip, reads the first `slots` keys of the prefix
 * by create revision, so an uncontended acquisition costs one RPC. If the key already exists
 * (the same session asked before, e.g. after a crash that kept the lease), its create revision
 * is reused, as etcd does: the session keeps its place in the queue.
 */
import { compare, op, type Client, type KeyValue, type ResponseHeader } from '@coord/client';
import type { Session } from './session';

export interface Ticket {
  readonly key: string;
  /** The key's create revision: its place in the queue, and the fencing token once first. */
  readonly createRevision: bigint;
  readonly header: ResponseHeader;
  /** The key existed before this call (reused, not created). */
  readonly reused: boolean;
  /** Its current value when reused. */
  readonly value: Buffer | undefined;
  /** True when fewer than `slots` keys precede it: it holds at once. */
  readonly acquired: boolean;
}

export async function takeTicket(
  session: Session,
  prefix: string,
  key: string,
  value: string | Buffer,
  slots: number,
  signal: AbortSignal,
): Promise<Ticket> {
  const client = session.client;
  const firsts = op.get(prefix, { prefix: true, sortTarget: 'create', sortOrder: 'ascend', limit: slots });
  const res = await client.txn({
    compare: [compare.create(key, '=', 0)],
    success: [op.put(key, value, { lease: session.leaseId }), firsts],
    failure: [op.get(key), firsts],
    signal,
  });
  let createRevision = res.header.revision;
  let existing: KeyValue | undefined;
  if (!res.succeeded) {
    const got = res.responses[0];
    existing = got.op === 'range' ? got.kvs[0] : undefined;
    // The key can only vanish between compare and read if the txn was not atomic.
    if (!existing) throw new Error(`internal: txn on ${key} failed its create compare but read no key`);
    createRevision = existing.createRevision;
  }
  const head = res.responses[1];
  const kvs = head.op === 'range' ? head.kvs : [];
  return {
    key,
    createRevision,
    header: res.header,
    reused: !res.succeeded,
    value: existing?.value,
    acquired: kvs.some((kv) => kv.createRevision === createRevision),
  };
}

/**
 * Delete our key if it is still the one we created (create revision unchanged), or, when we
 * do not know its revision (the creating txn may or may not have been applied), if it carries
 * our lease. Never deletes somebody else's key.
 */
export async function dropTicket(
  client: Client,
  key: string,
  createRevision: bigint | undefined,
  leaseId: bigint,
  timeoutMs?: number,
): Promise<boolean> {
  const guard = createRevision === undefined ? compare.lease(key, '=', leaseId) : compare.create(key, '=', createRevision);
  const res = await client.txn({ compare: [guard], success: [op.delete(key)], timeoutMs });
  return res.succeeded;
}
