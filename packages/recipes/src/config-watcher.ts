/**
 * ConfigWatcher: a key, or every key under a prefix, read as one typed configuration object
 * and kept current, for applications that hot-reload their configuration.
 *
 * - Values are decoded (JSON by default) and handed to the caller's `parse(value: unknown) => T`,
 *   which validates and returns the typed config (a zod/io-ts schema's `parse` fits) or throws.
 * - Single key: `parse` gets the decoded value, or `undefined` when the key does not exist.
 *   Prefix: `parse` gets an object mapping each key *relative to the prefix* to its decoded
 *   value, e.g. `{ "db/host": "x", "db/port": 5432 }` for `app/db/host` and `app/db/port`.
 * - Snapshots are atomic: each one is the whole state at one revision. A txn that changes
 *   several keys under the prefix produces one `change`, never a half-applied config (etcd
 *   sends all events of a revision in one watch response; see snapshot-watch.ts).
 * - A new value that fails to decode or to parse does not replace the current one: the watcher
 *   keeps the last good snapshot and emits `invalid` with a `ConfigInvalidError` (its `cause`
 *   is the decoder's or parser's error). When a later revision is valid again, `change` fires.
 * - `change` fires only when the stored bytes differ from those of the current snapshot (a put
 *   of the same bytes, or a return to them after rejected values, is not a change).
 *
 *   const cfg = new ConfigWatcher(client, { key: 'app/config', parse: AppConfig.parse });
 *   const first = await cfg.start();            // ConfigSnapshot<AppConfig>
 *   cfg.on('change', (next, prev) => reconfigure(next.value));
 *   cfg.on('invalid', (err) => log.warn(err.message));
 */
import { EventEmitter } from 'node:events';
import { AbortError, type Client, type KeyValue } from '@coord/client';
import { ConfigInvalidError } from './errors';
import { listThenWatch, RangeState } from './snapshot-watch';

export interface ConfigWatcherOptions<T> {
  /** The key, or the prefix with `prefix: true`. */
  key: string;
  prefix?: boolean;
  /** Validate the decoded value and return the typed config; throw to reject it. */
  parse: (value: unknown) => T;
  /** Turn a stored value into the input of `parse`. Default: JSON of the UTF-8 text. */
  decode?: (value: Buffer, key: string) => unknown;
  /**
   * Used when the first snapshot is invalid: `start()` then resolves with it (revision 0n) and
   * emits `invalid`, instead of rejecting.
   */
  fallback?: T;
}

/** The config at one revision. */
export interface ConfigSnapshot<T> {
  readonly value: T;
  /** The store revision this snapshot reflects (0n for a fallback). */
  readonly revision: bigint;
  /** What `parse` was given. */
  readonly raw: unknown;
}

const defaultDecode = (value: Buffer): unknown => JSON.parse(value.toString('utf8'));

export class ConfigWatcher<T> extends EventEmitter {
  private readonly options: ConfigWatcherOptions<T>;
  private readonly controller = new AbortController();
  private snapshot: ConfigSnapshot<T> | undefined;
  /** Fingerprint of the raw bytes behind `snapshot`. */
  private goodFingerprint: string | undefined;
  /** Fingerprint of the last state evaluated (good or rejected). */
  private fingerprint: string | undefined;
  private started: Promise<ConfigSnapshot<T>> | undefined;
  private readonly waiters: { resolve(r: IteratorResult<ConfigSnapshot<T>>): void; reject(e: unknown): void }[] = [];
  private readonly pending: ConfigSnapshot<T>[] = [];
  private failure: unknown;
  private closed = false;

  constructor(
    readonly client: Client,
    options: ConfigWatcherOptions<T>,
  ) {
    super();
    if (!options || typeof options.key !== 'string') throw new TypeError('ConfigWatcher needs { key, parse }');
    if (typeof options.parse !== 'function') throw new TypeError('ConfigWatcher needs a parse(value) function');
    this.options = { ...options };
  }

  /** The current (last good) snapshot; undefined before `start()` resolved. */
  get current(): ConfigSnapshot<T> | undefined {
    return this.snapshot;
  }

  /** The current config value. Throws before `start()` resolved. */
  get value(): T {
    if (!this.snapshot) throw new Error('ConfigWatcher: not started (await start())');
    return this.snapshot.value;
  }

  override on(event: 'change', listener: (next: ConfigSnapshot<T>, prev: ConfigSnapshot<T> | undefined) => void): this;
  override on(event: 'invalid', listener: (err: ConfigInvalidError) => void): this;
  override on(event: 'error', listener: (err: unknown) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'change', listener: (next: ConfigSnapshot<T>, prev: ConfigSnapshot<T> | undefined) => void): this;
  override once(event: 'invalid', listener: (err: ConfigInvalidError) => void): this;
  override once(event: 'error', listener: (err: unknown) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /**
   * Read the first snapshot and start following changes. Rejects with `ConfigInvalidError`
   * when the first snapshot is invalid and there is no `fallback` (the watcher is closed then).
   * Calling it again returns the same promise.
   */
  start(): Promise<ConfigSnapshot<T>> {
    if (!this.started) {
      this.started = new Promise((resolve, reject) => void this.run(resolve, reject));
      this.started.catch(() => undefined);
    }
    return this.started;
  }

  /** Stop following. Iterators end; no more events. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort();
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  /** Every new good snapshot after the first, as an async iterable (the `change` events). */
  [Symbol.asyncIterator](): AsyncIterator<ConfigSnapshot<T>> {
    return {
      next: () => {
        const value = this.pending.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (this.failure !== undefined) return Promise.reject(this.failure);
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  // ---- internals -----------------------------------------------------------------------------

  private async run(resolve: (s: ConfigSnapshot<T>) => void, reject: (e: unknown) => void): Promise<void> {
    const state = new RangeState();
    let first = true;
    try {
      for await (const update of listThenWatch(this.client, { key: this.options.key, prefix: this.options.prefix === true, signal: this.controller.signal })) {
        const changes = state.apply(update);
        if (!first && changes.length === 0) continue;
        const fingerprint = this.fingerprintOf(state);
        if (!first && fingerprint === this.fingerprint) continue;
        const result = this.evaluate(state, update.revision);
        if (first) {
          first = false;
          if (result instanceof ConfigInvalidError) {
            if (!('fallback' in this.options)) {
              this.close();
              reject(result);
              return;
            }
            this.snapshot = Object.freeze({ value: this.options.fallback as T, revision: 0n, raw: undefined });
            this.fingerprint = fingerprint;
            this.goodFingerprint = undefined;
            resolve(this.snapshot);
            this.emit('invalid', result);
            continue;
          }
          this.snapshot = result;
          this.fingerprint = fingerprint;
          this.goodFingerprint = fingerprint;
          resolve(result);
          continue;
        }
        this.fingerprint = fingerprint;
        if (result instanceof ConfigInvalidError) {
          this.emit('invalid', result);
          continue;
        }
        // Back to the bytes of the current good snapshot (after rejected ones): not a change.
        if (fingerprint === this.goodFingerprint) continue;
        this.goodFingerprint = fingerprint;
        const prev = this.snapshot;
        this.snapshot = result;
        this.deliver(result);
        this.emit('change', result, prev);
      }
    } catch (err) {
      if (err instanceof AbortError && this.controller.signal.aborted) return;
      if (first) {
        this.close();
        reject(err);
        return;
      }
      this.failure = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
      this.closed = true;
      if (this.listenerCount('error') > 0) this.emit('error', err);
    }
  }

  private deliver(s: ConfigSnapshot<T>): void {
    const w = this.waiters.shift();
    if (w) w.resolve({ value: s, done: false });
    else {
      this.pending.push(s);
      // Iteration is optional: keep only the latest few if nobody consumes them.
      if (this.pending.length > 16) this.pending.shift();
    }
  }

  private fingerprintOf(state: RangeState): string {
    const entries = [...state.kvs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return JSON.stringify(entries.map(([k, kv]) => [k, kv.value.toString('base64')]));
  }

  private evaluate(state: RangeState, revision: bigint): ConfigSnapshot<T> | ConfigInvalidError {
    const decode = this.options.decode ?? defaultDecode;
    let raw: unknown;
    const decodeOne = (kv: KeyValue): unknown => {
      try {
        return decode(kv.value, kv.keyString());
      } catch (err) {
        throw new ConfigInvalidError(revision, `${kv.keyString()} does not decode: ${(err as Error).message}`, { cause: err });
      }
    };
    try {
      if (this.options.prefix) {
        const obj: Record<string, unknown> = {};
        const kvs = [...state.kvs.values()].sort((a, b) => Buffer.compare(a.key, b.key));
        for (const kv of kvs) obj[kv.keyString().slice(this.options.key.length)] = decodeOne(kv);
        raw = obj;
      } else {
        const kv = state.kvs.values().next().value as KeyValue | undefined;
        raw = kv ? decodeOne(kv) : undefined;
      }
    } catch (err) {
      return err as ConfigInvalidError;
    }
    try {
      return Object.freeze({ value: this.options.parse(raw), revision, raw });
    } catch (err) {
      return new ConfigInvalidError(revision, `rejected by parse: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }
}
