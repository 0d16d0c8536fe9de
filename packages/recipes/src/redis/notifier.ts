/**
 * Notifier: the pub/sub side of the Redis backend. One subscriber connection per ioredis client
 * (a `duplicate()`, since a subscribed connection can run nothing else), shared by every waiter,
 * observer and watcher of that client, opened on the first subscription and closed after the
 * last one ends.
 *
 * Each subscriber gets an `Inbox`: a bounded queue of the messages of its channels, plus a
 * `resync` item when messages may have been missed. Redis pub/sub is fire-and-forget: a message
 * published while the connection is down is lost. So
 * - after a reconnect we subscribe again ourselves (`autoResubscribe` is off, so we know when the
 *   server has confirmed) and only then put `resync` in every inbox; the consumer re-reads;
 * - an inbox that holds `messagesMax` unread messages drops them and keeps one `resync`
 *   instead of growing without bound (a slow consumer re-reads, as etcd's slow watchers do).
 *
 * Callers subscribe *before* they read the state they then follow, so nothing published after
 * the read can be missed; versions in the messages tell them what the read already covered.
 */
import type { Redis } from 'ioredis';

export type InboxItem =
  | { readonly kind: 'message'; readonly channel: string; readonly message: string }
  /** Messages may have been lost (reconnect, overflow): read the state again. */
  | { readonly kind: 'resync' }
  /** `next(timeoutMs)` ran out. */
  | { readonly kind: 'timeout' };

/** Unread messages an inbox keeps before it drops them for one `resync`. */
export const INBOX_MESSAGES_MAX = 10_000;

export class Inbox {
  private readonly items: InboxItem[] = [];
  private waiter: ((item: InboxItem | undefined) => void) | undefined;
  private closed = false;

  constructor(
    private readonly onClose: (inbox: Inbox) => void,
    readonly channels: readonly string[],
    private readonly messagesMax = INBOX_MESSAGES_MAX,
  ) {}

  /** @internal */
  push(item: InboxItem): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(item);
      return;
    }
    if (this.items.length >= this.messagesMax) {
      this.items.length = 0;
      this.items.push({ kind: 'resync' });
    }
    if (item.kind === 'resync' && this.items.some((i) => i.kind === 'resync')) return;
    this.items.push(item);
  }

  /** Unread items, without waiting. */
  get pending(): number {
    return this.items.length;
  }

  /** Drop everything unread (the caller is about to read the state anyway). */
  clear(): void {
    this.items.length = 0;
  }

  /**
   * The next item; `{kind: 'timeout'}` after `timeoutMs` (undefined: no limit). Rejects with
   * `signal`'s reason when it aborts. Only one `next()` may wait at a time.
   */
  next(signal?: AbortSignal, timeoutMs?: number): Promise<InboxItem> {
    const item = this.items.shift();
    if (item) return Promise.resolve(item);
    if (this.closed) return Promise.reject(new Error('inbox closed'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.waiter) throw new Error('Inbox.next: already waiting');
    return new Promise<InboxItem>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        done();
        reject(signal!.reason);
      };
      const done = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.waiter = undefined;
      };
      this.waiter = (i) => {
        done();
        if (i) resolve(i);
        else reject(new Error('inbox closed'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done();
          resolve({ kind: 'timeout' });
        }, Math.max(0, timeoutMs));
      }
    });
  }

  /** Unsubscribe. A pending `next()` rejects. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.items.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
    this.onClose(this);
  }
}

/** The subscriber connection of one ioredis client, shared by all its inboxes. */
export class Notifier {
  private static readonly byClient = new WeakMap<Redis, Notifier>();

  static of(redis: Redis): Notifier {
    let n = Notifier.byClient.get(redis);
    if (!n) {
      n = new Notifier(redis);
      Notifier.byClient.set(redis, n);
    }
    return n;
  }

  private conn: Redis | undefined;
  private readonly inboxes = new Map<string, Set<Inbox>>();

  private constructor(private readonly redis: Redis) {}

  /** Channels with at least one inbox (for tests and metrics). */
  get channelCount(): number {
    return this.inboxes.size;
  }

  /**
   * An inbox of `channels`, resolved once the server confirmed the subscription: every message
   * published on them from then on is delivered (or replaced by a `resync`).
   */
  async subscribe(channels: readonly string[], options: { messagesMax?: number } = {}): Promise<Inbox> {
    if (channels.length === 0) throw new TypeError('subscribe needs at least one channel');
    const inbox = new Inbox((i) => this.remove(i), channels, options.messagesMax);
    for (const ch of channels) {
      let set = this.inboxes.get(ch);
      if (!set) this.inboxes.set(ch, (set = new Set()));
      set.add(inbox);
    }
    const conn = this.connection();
    try {
      await conn.subscribe(...channels);
    } catch (err) {
      inbox.close();
      throw err;
    }
    return inbox;
  }

  private connection(): Redis {
    if (this.conn) return this.conn;
    // Our own resubscription: we need to know when the server has confirmed it (see the header).
    const conn = this.redis.duplicate({ autoResubscribe: false, lazyConnect: false });
    let interrupted = false;
    conn.on('error', () => undefined); // reconnects are ioredis' job; waiters have their own deadlines
    conn.on('close', () => {
      interrupted = true;
    });
    conn.on('ready', () => {
      if (!interrupted || this.conn !== conn) return;
      interrupted = false;
      const channels = [...this.inboxes.keys()];
      const resync = () => {
        for (const set of this.inboxes.values()) for (const inbox of set) inbox.push({ kind: 'resync' });
      };
      if (channels.length === 0) return;
      conn.subscribe(...channels).then(resync, () => undefined);
    });
    conn.on('message', (channel: string, message: string) => {
      if (this.conn !== conn) return;
      const set = this.inboxes.get(channel);
      if (!set) return;
      for (const inbox of set) inbox.push({ kind: 'message', channel, message });
    });
    this.conn = conn;
    return conn;
  }

  private remove(inbox: Inbox): void {
    const gone: string[] = [];
    for (const ch of inbox.channels) {
      const set = this.inboxes.get(ch);
      if (!set) continue;
      set.delete(inbox);
      if (set.size === 0) {
        this.inboxes.delete(ch);
        gone.push(ch);
      }
    }
    const conn = this.conn;
    if (!conn) return;
    if (this.inboxes.size === 0) {
      this.conn = undefined;
      conn.disconnect();
    } else if (gone.length > 0) {
      conn.unsubscribe(...gone).catch(() => undefined);
    }
  }
}
