/**
 * The watch hub: who is watching which keys, and getting every event to them in order,
 * with bounded memory. Modeled on etcd's watchableStore:
 *
 * - A *synced* watcher is up to date: events reach it as they are applied.
 * - An *unsynced* watcher is behind: it started at a past revision, or its stream could
 *   not take more data (gRPC write buffer full). It is caught up from the mvcc history by a
 *   background loop, in bounded chunks, and becomes synced when it reaches the current
 *   revision. The history is the buffer: a slow consumer costs no memory here.
 * - A watcher whose next revision has been compacted away is cancelled with
 *   `compact_revision` set, as etcd does; the client must re-list.
 *
 * Guarantees (etcd's): events are ordered by revision, never duplicated, never skipped,
 * and all events of one revision for a watcher travel in one response.
 */
import { assert } from '../util/assert';
import { EventType, MvccEvent, MvccStore } from '../mvcc/store';
import { KeyRange, KeyString, rangeContains } from '../mvcc/key-range';
import { encodedEvent, varintLength } from './wire';

export interface WatchResponseBody {
  watchId: bigint;
  canceled?: boolean;
  compactRevision?: bigint;
  fragment?: boolean;
  /** Events of one revision in order, already filtered for the watcher. */
  events?: readonly MvccEvent[];
  /** Whether the watcher asked for prev_kv (the sink encodes events with or without it). */
  prevKv?: boolean;
  /** Revision for the response header. */
  revision: bigint;
}

/** One gRPC watch stream, as the hub sees it. */
export interface WatchSink {
  /** Queues a response; false when the stream's buffer is above its high-water mark. */
  send(body: WatchResponseBody): boolean;
  /** True while the stream cannot take more data (waiting for 'drain'). */
  readonly blocked: boolean;
  /** Called when one of its watchers has caught up (joined the synced group). */
  onSynced?(): void;
  /**
   * Optional fast path for fan-out: one response per watcher, all with the same events and
   * revision (the sink encodes the shared part once). Same effect as `send` for each.
   */
  sendEach?(watchers: readonly Watcher[], events: readonly MvccEvent[], prevKv: boolean, revision: bigint): void;
}

export interface WatcherSpec {
  readonly range: KeyRange;
  /** First revision the watcher wants; 0 = from the next revision. */
  readonly startRev: bigint;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
}

export class Watcher {
  /** The next revision this watcher must receive. */
  nextRev: bigint;
  synced = false;
  /** Revision of the last response sent (for progress notifications). */
  lastSentRev = 0n;
  constructor(
    readonly id: bigint,
    readonly sink: WatchSink,
    readonly spec: WatcherSpec,
    nextRev: bigint,
  ) {
    this.nextRev = nextRev;
  }
}

export interface WatchHubLimits {
  /** Revisions replayed per watcher per catch-up round (etcd: watchBatchMaxRevs = 1000). */
  readonly catchUpRevsMax: number;
  /** Interval of the catch-up loop (etcd: 100 ms). */
  readonly syncIntervalMs: number;
  /** Interval of progress notifications for watchers that asked for them (etcd: 10 min). */
  readonly progressIntervalMs: number;
  /**
   * A response of this many encoded bytes or more is split into fragments when the watcher
   * allows it (etcd: --max-request-bytes + 512 KiB of gRPC overhead, v3rpc NewWatchServer).
   */
  readonly fragmentBytesMax: number;
}

export const DEFAULT_WATCH_LIMITS: WatchHubLimits = {
  catchUpRevsMax: 1000,
  syncIntervalMs: 100,
  progressIntervalMs: 10 * 60 * 1000,
  // etcd's default --max-request-bytes (1.5 MiB) + grpcOverheadBytes (512 KiB).
  fragmentBytesMax: 1536 * 1024 + 512 * 1024,
};

/**
 * The header's size is not known here (member and cluster IDs): its largest encoding is
 * used, so a response is fragmented at most a few bytes earlier than etcd would.
 */
const HEADER_FIELD_BYTES_MAX = 2 + 4 * (1 + 10);

export class WatchHub {
  /** Synced watchers on a single key, by key. */
  private readonly syncedByKey = new Map<KeyString, Set<Watcher>>();
  /** Synced watchers on a range. */
  private readonly syncedRanges = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private syncTimer: NodeJS.Timeout | undefined;
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly progressWatchers = new Set<Watcher>();

  constructor(
    private readonly store: () => MvccStore,
    private readonly limits: WatchHubLimits = DEFAULT_WATCH_LIMITS,
  ) {}

  get watcherCount(): number {
    let n = this.syncedRanges.size + this.unsynced.size;
    for (const s of this.syncedByKey.values()) n += s.size;
    return n;
  }

  start(): void {
    this.syncTimer = setInterval(() => this.syncRound(), this.limits.syncIntervalMs);
    this.syncTimer.unref();
    this.progressTimer = setInterval(() => this.progressRound(), this.limits.progressIntervalMs);
    this.progressTimer.unref();
  }

  stop(): void {
    clearInterval(this.syncTimer);
    clearInterval(this.progressTimer);
  }

  /** Registers a watcher; the caller has already sent the "created" response. */
  add(id: bigint, sink: WatchSink, spec: WatcherSpec): Watcher {
    const current = this.store().rev;
    // Only 0 means "from the next revision" (etcd v3rpc watch.go: `if rev == 0 { rev = wsrev + 1 }`);
    // a negative start revision is kept and handled by catchUp() as etcd's syncWatchers does.
    const w = new Watcher(id, sink, spec, spec.startRev !== 0n ? spec.startRev : current + 1n);
    if (spec.progressNotify) this.progressWatchers.add(w);
    if (w.nextRev > current) this.markSynced(w);
    else {
      this.unsynced.add(w);
      // Catch up right away rather than waiting for the next round.
      setImmediate(() => this.catchUp(w));
    }
    return w;
  }

  remove(w: Watcher): void {
    this.unsynced.delete(w);
    this.progressWatchers.delete(w);
    if (w.synced) this.unmarkSynced(w);
  }

  /** Whether every watcher in the list is synced (etcd answers progress requests only then). */
  allSynced(ws: Iterable<Watcher>): boolean {
    for (const w of ws) if (!w.synced) return false;
    return true;
  }

  /** Called after each applied write request with its events (one revision). */
  notify(events: readonly MvccEvent[], rev: bigint): void {
    if (events.length === 0) return;
    if (events.length === 1) {
      // The common case (a put, a delete of one key): every matching watcher gets the same list.
      const key = events[0].kv.key.toString('latin1');
      const targets: Watcher[] = [];
      const exact = this.syncedByKey.get(key);
      if (exact) for (const w of exact) targets.push(w);
      for (const w of this.syncedRanges) if (rangeContains(w.spec.range, key)) targets.push(w);
      this.fanOut(targets, events, rev);
      return;
    }
    const matches = new Map<Watcher, MvccEvent[]>();
    const add = (w: Watcher, ev: MvccEvent): void => {
      let list = matches.get(w);
      if (!list) matches.set(w, (list = []));
      list.push(ev);
    };
    for (const ev of events) {
      const key = ev.kv.key.toString('latin1');
      const exact = this.syncedByKey.get(key);
      if (exact) for (const w of exact) add(w, ev);
      for (const w of this.syncedRanges) if (rangeContains(w.spec.range, key)) add(w, ev);
    }
    for (const [w, evs] of matches) this.deliverSynced(w, evs, rev);
  }

  /**
   * One event to many watchers: those that take it (started, not filtered out) are grouped by
   * stream and prev_kv choice, and each group goes to its sink in one call, so the per-watcher
   * work is a copy behind its watch_id (10,000 watchers of one key is the case to serve).
   */
  private fanOut(targets: readonly Watcher[], events: readonly MvccEvent[], rev: bigint): void {
    const isPut = events[0].type === EventType.Put;
    const groups = new Map<WatchSink, { plain: Watcher[]; withPrev: Watcher[] }>();
    for (const w of targets) {
      if (w.nextRev > rev) continue; // started in the future
      assert(w.synced, 'only synced watchers are notified');
      if (isPut ? w.spec.noPut : w.spec.noDelete) continue;
      if (!w.sink.sendEach) {
        this.deliverSynced(w, events, rev);
        continue;
      }
      let g = groups.get(w.sink);
      if (!g) groups.set(w.sink, (g = { plain: [], withPrev: [] }));
      (w.spec.prevKv ? g.withPrev : g.plain).push(w);
    }
    for (const [sink, g] of groups) {
      for (const [ws, prevKv] of [[g.plain, false], [g.withPrev, true]] as const) {
        if (ws.length === 0) continue;
        sink.sendEach!(ws, events, prevKv, rev);
        for (const w of ws) {
          w.lastSentRev = rev;
          if (sink.blocked) this.toUnsynced(w, rev);
        }
      }
    }
  }

  /** The stream is full: stop pushing; the catch-up loop takes over from history after `rev`. */
  private toUnsynced(w: Watcher, rev: bigint): void {
    w.nextRev = rev + 1n;
    this.unmarkSynced(w);
    this.unsynced.add(w);
  }

  /**
   * A synced watcher has had every revision before `rev` (its nextRev is only kept up to
   * date when it leaves the synced set), unless it asked to start later.
   */
  private deliverSynced(w: Watcher, events: readonly MvccEvent[], rev: bigint): void {
    if (w.nextRev > rev) return; // started in the future
    assert(w.synced, 'only synced watchers are notified');
    this.deliver(w, events, rev);
    if (w.sink.blocked) this.toUnsynced(w, rev);
  }

  private syncRound(): void {
    for (const w of [...this.unsynced]) this.catchUp(w);
  }

  /** Replays history to an unsynced watcher, one bounded chunk at a time. */
  private catchUp(w: Watcher): void {
    if (!this.unsynced.has(w) || w.sink.blocked) return;
    const store = this.store();
    const current = store.rev;
    if (w.nextRev < store.compactedRev) {
      this.unsynced.delete(w);
      this.progressWatchers.delete(w);
      // etcd (watchable_store.go chooseAll) sends WatchResponse{WatchID, CompactRevision} with
      // no Revision, so the header revision of this response is 0 (`etcdctl watch -w json`
      // prints a header without "revision", `-w fields` prints "Revision" : 0).
      w.sink.send({ watchId: w.id, compactRevision: store.compactedRev, canceled: true, revision: 0n });
      return;
    }
    if (w.nextRev <= 0n) {
      // A negative start revision not below the compacted revision (only -1, before any
      // compaction: etcd's compactMainRev starts at -1): etcd's syncWatchers encodes minRev as
      // an unsigned revision key, so the history range [minRev, current] is empty; the watcher
      // replays nothing and joins the synced group at current + 1.
      w.nextRev = current + 1n;
    }
    while (w.nextRev <= current && !w.sink.blocked) {
      const to = minBig(current, w.nextRev + BigInt(this.limits.catchUpRevsMax) - 1n);
      const events = store.eventsBetween(w.spec.range, w.nextRev, to);
      if (events.length > 0) this.deliver(w, events, current);
      w.nextRev = to + 1n;
    }
    if (w.nextRev > current) {
      this.unsynced.delete(w);
      this.markSynced(w);
    }
  }

  private deliver(w: Watcher, events: readonly MvccEvent[], rev: bigint): void {
    const { noPut, noDelete, prevKv } = w.spec;
    const kept = noPut || noDelete ? events.filter((ev) => !(ev.type === EventType.Put ? noPut : noDelete)) : events;
    if (kept.length === 0) return;
    w.lastSentRev = rev;
    if (!w.spec.fragment || kept.length < 2) {
      w.sink.send({ watchId: w.id, events: kept, prevKv, revision: rev });
      return;
    }
    // etcd's sendFragments (v3rpc/watch.go): a response under the limit, or with a single
    // event, goes whole; otherwise fragments of as many events as keep each below the limit
    // (at least one), all flagged fragment=true but the last.
    const max = this.limits.fragmentBytesMax;
    const sizes = kept.map((ev) => encodedEvent(ev, prevKv).length);
    const fixed = HEADER_FIELD_BYTES_MAX + (w.id === 0n ? 0 : 1 + varintLength(w.id));
    if (fixed + sizes.reduce((a, b) => a + b, 0) < max) {
      w.sink.send({ watchId: w.id, events: kept, prevKv, revision: rev });
      return;
    }
    let idx = 0;
    for (;;) {
      const from = idx;
      let size = fixed + 2; // + fragment=true
      while (idx < kept.length) {
        size += sizes[idx];
        if (idx > from && size >= max) break;
        idx++;
      }
      const last = idx === kept.length;
      w.sink.send({ watchId: w.id, events: kept.slice(from, idx), prevKv, ...(last ? {} : { fragment: true }), revision: rev });
      if (last) return;
    }
  }

  private progressRound(): void {
    const rev = this.store().rev;
    for (const w of this.progressWatchers) {
      if (w.synced && w.lastSentRev < rev) w.sink.send({ watchId: w.id, revision: rev });
    }
  }

  private markSynced(w: Watcher): void {
    w.synced = true;
    if (w.spec.range.end === undefined) {
      let set = this.syncedByKey.get(w.spec.range.start);
      if (!set) this.syncedByKey.set(w.spec.range.start, (set = new Set()));
      set.add(w);
    } else this.syncedRanges.add(w);
    w.sink.onSynced?.();
  }

  private unmarkSynced(w: Watcher): void {
    w.synced = false;
    if (w.spec.range.end === undefined) {
      const set = this.syncedByKey.get(w.spec.range.start);
      set?.delete(w);
      if (set && set.size === 0) this.syncedByKey.delete(w.spec.range.start);
    } else this.syncedRanges.delete(w);
  }

  /**
   * The store was replaced by a snapshot from the leader: every synced watcher may have
   * missed events, so all of them catch up from the new store's history (etcd's
   * watchableStore.Restore moves every synced watcher to unsynced the same way). Catch-up
   * of a revision the snapshot compacted away cancels the watch with compact_revision.
   */
  restored(): void {
    const all: Watcher[] = [...this.syncedRanges];
    for (const set of this.syncedByKey.values()) all.push(...set);
    for (const w of all) {
      this.unmarkSynced(w);
      this.unsynced.add(w);
    }
    if (all.length > 0) setImmediate(() => this.resume(all));
  }

  /** Called by a stream when it drains: its watchers can be caught up again. */
  resume(ws: Iterable<Watcher>): void {
    for (const w of ws) if (this.unsynced.has(w)) this.catchUp(w);
  }
}

const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
