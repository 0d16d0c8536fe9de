/**
 * List-then-watch: the state of a key or prefix as a snapshot at one revision, then every
 * change after it, with no gap and no duplicate, across compactions. Election.observe,
 * ServiceRegistry.watch and ConfigWatcher are built on it.
 *
 * Why it has no gap and no duplicate: the read returns the state at revision R (its header
 * revision), and the watch starts at exactly R + 1, so every event after the snapshot is
 * delivered once (the client's watcher resumes from the last delivered revision + 1 across
 * reconnects and drops anything older). If R + 1 has been compacted away, or the watcher falls
 * so far behind that its resume point is compacted, the events in between are gone: we read a
 * fresh snapshot and continue from there. The consumer sees a new `snapshot` and must diff it
 * against what it had (the helpers here do).
 *
 * Atomicity: etcd puts all events of one revision (one txn) in the same watch response, and we
 * hand each response over whole, so a consumer never sees half a transaction.
 */
import { WatchCompactedError, type Client, type KeyValue, type WatchEvent } from '@coord/client';

export type RangeUpdate =
  /** The whole state at `revision` (first, and again after a compaction). */
  | { readonly kind: 'snapshot'; readonly kvs: readonly KeyValue[]; readonly revision: bigint }
  /** Events of one watch response, in revision order; `revision` is the last one's. */
  | { readonly kind: 'events'; readonly events: readonly WatchEvent[]; readonly revision: bigint };

export interface ListThenWatchOptions {
  key: string;
  /** Watch every key under `key` (default: the single key). */
  prefix?: boolean;
  /** Ends the iteration; the client's `AbortError` is thrown from it. */
  signal?: AbortSignal;
  /** Called after every compaction-forced re-list, for tests and metrics. */
  onRelist?: (err: WatchCompactedError) => void;
}

/** See the file comment. Stops with the first error other than a compaction. */
export async function* listThenWatch(client: Client, options: ListThenWatchOptions): AsyncGenerator<RangeUpdate, void, undefined> {
  const { key, signal } = options;
  const prefix = options.prefix === true;
  // Each pass ends in an error (thrown) or a compaction (re-list): bounded by the compactions.
  for (;;) {
    const res = await client.getRange({ key, prefix, signal });
    yield { kind: 'snapshot', kvs: res.kvs, revision: res.header.revision };
    const watcher = client.watch({ key, prefix, startRevision: res.header.revision + 1n, signal });
    try {
      for await (const r of watcher) {
        if (r.events.length === 0) continue; // progress notifications
        yield { kind: 'events', events: r.events, revision: r.events[r.events.length - 1].kv.modRevision };
      }
      return; // the watcher was cancelled
    } catch (err) {
      if (!(err instanceof WatchCompactedError)) throw err;
      options.onRelist?.(err);
    } finally {
      watcher.cancel();
    }
  }
}

/** A key-value map kept current by RangeUpdates: the state at `revision`. */
export class RangeState {
  readonly kvs = new Map<string, KeyValue>();
  revision = 0n;

  /**
   * Apply an update; returns the keys that changed (added, modified or removed), with their
   * value before (undefined when added) and after (undefined when removed).
   */
  apply(update: RangeUpdate): { key: string; before: KeyValue | undefined; after: KeyValue | undefined }[] {
    const changes: { key: string; before: KeyValue | undefined; after: KeyValue | undefined }[] = [];
    if (update.kind === 'snapshot') {
      const next = new Map<string, KeyValue>(update.kvs.map((kv) => [kv.keyString('latin1'), kv]));
      for (const [k, before] of this.kvs) {
        const after = next.get(k);
        if (!after) changes.push({ key: k, before, after: undefined });
        else if (after.modRevision !== before.modRevision || after.createRevision !== before.createRevision) changes.push({ key: k, before, after });
      }
      for (const [k, after] of next) if (!this.kvs.has(k)) changes.push({ key: k, before: undefined, after });
      this.kvs.clear();
      for (const [k, v] of next) this.kvs.set(k, v);
    } else {
      for (const e of update.events) {
        const k = e.kv.keyString('latin1');
        const before = this.kvs.get(k);
        if (e.type === 'delete') {
          if (!before) continue;
          this.kvs.delete(k);
          changes.push({ key: k, before, after: undefined });
        } else {
          this.kvs.set(k, e.kv);
          changes.push({ key: k, before, after: e.kv });
        }
      }
    }
    this.revision = update.revision;
    return changes;
  }

  /** The key with the lowest create revision (the leader of an election), if any. */
  first(): KeyValue | undefined {
    let best: KeyValue | undefined;
    for (const kv of this.kvs.values()) if (!best || kv.createRevision < best.createRevision) best = kv;
    return best;
  }
}
