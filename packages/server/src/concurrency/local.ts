/**
 * The member talking to itself: the few client operations etcd's lock and election services
 * are built from (etcd runs its clientv3/concurrency package against the local server; coord
 * calls the member directly). Every write goes through the log like any client write.
 */
import { EtcdError } from '../errors';
import type { Member } from '../member/member';
import { keyRange, prefixEnd } from '../mvcc/key-range';
import type { WatchResponseBody, Watcher } from '../watch/hub';
import type { PbKeyValue, PbRangeResponse, PbTxnRequest, PbTxnResponse } from '../api/pb';
import { int64 } from '../api/pb';
import { toPbKeyValue } from '../apply/kv-applier';

type LocalEvent = { type: number; kv: PbKeyValue };
const localEvents = (body: WatchResponseBody): LocalEvent[] => (body.events ?? []).map((ev) => ({ type: ev.type, kv: toPbKeyValue(ev.kv) }));

/** Local watchers get ids far from those a gRPC stream hands out (its own counter from 0). */
let localWatchIds = 1n << 62n;

export class LocalClient {
  constructor(readonly member: Member) {}

  txn(r: PbTxnRequest): Promise<PbTxnResponse> {
    return this.member.txn(r);
  }

  range(key: Buffer, opts: { prefix?: boolean; limit?: number; sortCreateDesc?: boolean; sortCreateAsc?: boolean; maxCreateRev?: bigint } = {}): PbRangeResponse {
    return this.member.range({
      key,
      range_end: opts.prefix ? prefixEnd(key) : undefined,
      limit: opts.limit ? String(opts.limit) : undefined,
      sort_target: opts.sortCreateDesc || opts.sortCreateAsc ? 2 : undefined,
      sort_order: opts.sortCreateDesc ? 2 : opts.sortCreateAsc ? 1 : undefined,
      max_create_revision: opts.maxCreateRev !== undefined ? String(opts.maxCreateRev) : undefined,
    });
  }

  async deleteKey(key: Buffer): Promise<void> {
    if (key.length === 0) throw new EtcdError('emptyKey');
    await this.member.deleteRange({ key });
  }

  /**
   * An async iterator over watch responses' events for a key (or prefix) from `fromRev`,
   * ended by the signal. Bounded: responses queue only while the consumer is awaiting the
   * member (at most one per applied revision, and the consumer drains on every turn).
   */
  async *watch(key: Buffer, fromRev: bigint, signal: AbortSignal, prefix = false): AsyncGenerator<LocalEvent[]> {
    const queue: (LocalEvent[] | Error)[] = [];
    let wake: (() => void) | undefined;
    const push = (item: LocalEvent[] | Error): void => {
      queue.push(item);
      wake?.();
    };
    const watcher = this.member.watchHub.add(localWatchIds++, {
      blocked: false,
      send: (body: WatchResponseBody) => {
        if (body.canceled) push(new EtcdError('compacted'));
        else if (body.events && body.events.length > 0) push(localEvents(body));
        return true;
      },
    }, { range: keyRange(key, prefix ? prefixEnd(key) : undefined), startRev: fromRev, noPut: false, noDelete: false, prevKv: false, progressNotify: false, fragment: false });
    const onAbort = (): void => push(new EtcdError('stopped', 'request canceled'));
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (signal.aborted) return;
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        const item = queue.shift()!;
        if (item instanceof Error) {
          if (signal.aborted) return;
          throw item;
        }
        yield item;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.member.watchHub.remove(watcher);
    }
  }

  /**
   * Resolves at the first event on `key` (or the range) at or after `fromRev` matching
   * `until`; rejects when the signal aborts. Watching is done by the member's watch hub.
   */
  waitFor(key: Buffer, fromRev: bigint, until: (events: LocalEvent[]) => boolean, signal: AbortSignal, prefix = false): Promise<void> {
    return new Promise((resolve, reject) => {
      let watcher: Watcher | undefined;
      const finish = (err?: Error): void => {
        if (watcher) this.member.watchHub.remove(watcher);
        watcher = undefined;
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => finish(new EtcdError('stopped', 'request canceled'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort);
      watcher = this.member.watchHub.add(localWatchIds++, {
        blocked: false,
        send: (body: WatchResponseBody) => {
          if (!watcher) return true;
          if (body.canceled) finish(new EtcdError('compacted'));
          else if (body.events && until(localEvents(body))) finish();
          return true;
        },
      }, { range: keyRange(key, prefix ? prefixEnd(key) : undefined), startRev: fromRev, noPut: false, noDelete: false, prevKv: false, progressNotify: false, fragment: false });
    });
  }

  /**
   * etcd's waitDeletes: waits until no key under `prefix` has a create revision <= maxCreateRev,
   * watching only the newest such key each round (no thundering herd).
   */
  async waitDeletes(prefix: Buffer, maxCreateRev: bigint, signal: AbortSignal): Promise<void> {
    for (;;) {
      const resp = this.range(prefix, { prefix: true, limit: 1, sortCreateDesc: true, maxCreateRev });
      if (resp.kvs.length === 0) return;
      const last = resp.kvs[0];
      const rev = int64(resp.header.revision);
      await this.waitFor(last.key, rev + 1n, (evs) => evs.some((e) => e.type === 1), signal);
    }
  }
}

/** An AbortSignal that fires when the gRPC call is cancelled by the client. */
export function callSignal(call: { on(ev: 'cancelled', f: () => void): unknown; cancelled?: boolean }): AbortSignal {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  if (call.cancelled) ac.abort();
  return ac.signal;
}
