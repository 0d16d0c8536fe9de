/**
 * RedisConfigWatcher: a typed configuration kept current from Redis, shaped like the etcd-backed
 * `ConfigWatcher` (same options, `start()`, `current`, `value`, events `change` / `invalid` /
 * `error`, async iteration of changes).
 *
 * - Key mode reads one STRING; `prefix: true` reads a HASH whose fields are the "keys under the
 *   prefix", relative names as in the etcd version (see config-store.ts for the layout and the
 *   writers).
 * - It subscribes to the config's channel (and to the data keys' keyspace notifications, which
 *   arrive only if the server enables them) *before* the first read, and re-reads on every
 *   message, so a write after the first read is never missed. Bursts coalesce: a watcher that
 *   falls behind reads the latest state once, so intermediate values may be skipped (the etcd
 *   version reports every revision). After a reconnect of the subscriber it re-reads.
 * - A value that fails to decode or to parse does not replace the current one: the watcher keeps
 *   the last good snapshot and emits `invalid` with a `ConfigInvalidError` (`cause`: the error).
 * - `change` fires only when the stored bytes differ from those of the current snapshot.
 * - `revision` is the config's version (bumped by each write through RedisConfigStore), not an
 *   etcd store revision; a write that bypassed the store is reported with an unchanged revision.
 *
 *   const cfg = new RedisConfigWatcher(redis, { key: 'app/config', parse: AppConfig.parse });
 *   const first = await cfg.start();
 *   cfg.on('change', (next, prev) => reconfigure(next.value));
 *   cfg.on('invalid', (err) => log.warn(err.message));
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { ConfigInvalidError } from '../errors';
import type { ConfigSnapshot, ConfigWatcherOptions } from '../config-watcher';
import { DEFAULT_REDIS_NAMESPACE, RedisKeys, type ConfigKeys } from './keys';
import { Notifier, type Inbox } from './notifier';
import { RedisScripts } from './scripts';
import { raceSignal } from './session';

export interface RedisConfigWatcherOptions<T> extends ConfigWatcherOptions<T> {
  /** Key namespace (default `coord:`). */
  namespace?: string;
}

const defaultDecode = (value: Buffer): unknown => JSON.parse(value.toString('utf8'));

export class RedisConfigWatcher<T> extends EventEmitter {
  private readonly options: RedisConfigWatcherOptions<T>;
  private readonly keys: ConfigKeys;
  private readonly controller = new AbortController();
  private snapshot: ConfigSnapshot<T> | undefined;
  private goodFingerprint: string | undefined;
  private fingerprint: string | undefined;
  private started: Promise<ConfigSnapshot<T>> | undefined;
  private readonly waiters: { resolve(r: IteratorResult<ConfigSnapshot<T>>): void; reject(e: unknown): void }[] = [];
  private readonly pending: ConfigSnapshot<T>[] = [];
  private failure: unknown;
  private closed = false;

  constructor(
    readonly redis: Redis,
    options: RedisConfigWatcherOptions<T>,
  ) {
    super();
    if (!options || typeof options.key !== 'string') throw new TypeError('RedisConfigWatcher needs { key, parse }');
    if (typeof options.parse !== 'function') throw new TypeError('RedisConfigWatcher needs a parse(value) function');
    this.options = { ...options };
    this.keys = new RedisKeys(redis, options.namespace ?? DEFAULT_REDIS_NAMESPACE).config(options.key);
  }

  get current(): ConfigSnapshot<T> | undefined {
    return this.snapshot;
  }

  get value(): T {
    if (!this.snapshot) throw new Error('RedisConfigWatcher: not started (await start())');
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
    const signal = this.controller.signal;
    let inbox: Inbox | undefined;
    let first = true;
    try {
      const subscribing = Notifier.of(this.redis).subscribe([this.keys.changed, ...this.keys.keyspace]);
      inbox = await raceSignal(subscribing, signal).catch((err) => {
        subscribing.then((i) => i.close(), () => undefined);
        throw err;
      });
      // Each pass follows a notification (or a resync); the loop ends with close().
      for (;;) {
        inbox.clear();
        const { version, entries } = await raceSignal(this.read(), signal);
        const fingerprint = JSON.stringify(entries.map(([k, v]) => [k, v.toString('base64')]));
        if (first || fingerprint !== this.fingerprint) {
          const result = this.evaluate(entries, version);
          if (first) {
            first = false;
            this.fingerprint = fingerprint;
            if (result instanceof ConfigInvalidError) {
              if (!('fallback' in this.options)) {
                this.close();
                reject(result);
                return;
              }
              this.snapshot = Object.freeze({ value: this.options.fallback as T, revision: 0n, raw: undefined });
              this.goodFingerprint = undefined;
              resolve(this.snapshot);
              this.emit('invalid', result);
            } else {
              this.snapshot = result;
              this.goodFingerprint = fingerprint;
              resolve(result);
            }
          } else {
            this.fingerprint = fingerprint;
            if (result instanceof ConfigInvalidError) {
              this.emit('invalid', result);
            } else if (fingerprint !== this.goodFingerprint) {
              this.goodFingerprint = fingerprint;
              const prev = this.snapshot;
              this.snapshot = result;
              this.deliver(result);
              this.emit('change', result, prev);
            }
          }
        }
        await inbox.next(signal);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (first) {
        this.close();
        reject(err);
        return;
      }
      this.failure = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
      this.closed = true;
      if (this.listenerCount('error') > 0) this.emit('error', err);
    } finally {
      inbox?.close();
    }
  }

  /** The version and the entries (sorted by field; key mode: at most one, named ''). */
  private async read(): Promise<{ version: bigint; entries: [string, Buffer][] }> {
    const prefix = this.options.prefix === true;
    const reply = await RedisScripts.of(this.redis).cfgRead(this.keys, prefix ? 'fields' : 'value');
    const version = BigInt(reply[0].toString());
    const entries: [string, Buffer][] = [];
    if (!prefix) {
      if (reply.length > 1) entries.push(['', reply[1]]);
    } else {
      for (let i = 1; i + 1 < reply.length; i += 2) entries.push([reply[i].toString('utf8'), reply[i + 1]]);
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    }
    return { version, entries };
  }

  private deliver(s: ConfigSnapshot<T>): void {
    const w = this.waiters.shift();
    if (w) w.resolve({ value: s, done: false });
    else {
      this.pending.push(s);
      if (this.pending.length > 16) this.pending.shift();
    }
  }

  private evaluate(entries: [string, Buffer][], revision: bigint): ConfigSnapshot<T> | ConfigInvalidError {
    const decode = this.options.decode ?? defaultDecode;
    const name = (field: string) => (this.options.prefix ? `${this.options.key}/${field}` : this.options.key);
    let raw: unknown;
    try {
      const decodeOne = (field: string, value: Buffer): unknown => {
        try {
          return decode(value, name(field));
        } catch (err) {
          throw new ConfigInvalidError(revision, `${name(field)} does not decode: ${(err as Error).message}`, { cause: err });
        }
      };
      if (this.options.prefix) {
        const obj: Record<string, unknown> = {};
        for (const [field, value] of entries) obj[field] = decodeOne(field, value);
        raw = obj;
      } else {
        raw = entries.length > 0 ? decodeOne('', entries[0][1]) : undefined;
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
