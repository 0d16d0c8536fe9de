/**
 * RedisConfigStore: the writing side of RedisConfigWatcher. A config is either one value (key
 * mode: a STRING) or a set of fields (prefix mode: a HASH whose fields play the part of the keys
 * under an etcd prefix). Every write is one script that changes the data, bumps the config's
 * version and publishes the new version, so watchers learn of it at once and a multi-field write
 * is seen whole (never half-applied).
 *
 * Writes that bypass this store (a plain `SET` in redis-cli) do not bump the version or publish.
 * Watchers still notice them if the server has keyspace notifications on for the data key
 * (`notify-keyspace-events` with `K$` for key mode, `Kh` for prefix mode); otherwise only at the
 * next write through the store.
 *
 *   const store = new RedisConfigStore(redis);
 *   await store.set('app/config', JSON.stringify({ replicas: 3 }));
 *   await store.setFields('app/features', { beta: 'true', theme: '"dark"' }, { delete: ['old'] });
 */
import type { Redis } from 'ioredis';
import { DEFAULT_REDIS_NAMESPACE, RedisKeys } from './keys';
import { RedisScripts } from './scripts';

export class RedisConfigStore {
  readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;

  constructor(
    readonly redis: Redis,
    options: { namespace?: string } = {},
  ) {
    this.keys = new RedisKeys(redis, options.namespace ?? DEFAULT_REDIS_NAMESPACE);
    this.scripts = RedisScripts.of(redis);
  }

  /** Set the value of a key-mode config. Returns the new version. */
  async set(key: string, value: string | Buffer): Promise<bigint> {
    return this.write(key, ['set', value]);
  }

  /**
   * Set (and, with `delete`, remove) fields of a prefix-mode config in one atomic write; with
   * `replace: true` every other field is removed. Returns the new version.
   */
  async setFields(key: string, fields: Record<string, string | Buffer>, options: { delete?: readonly string[]; replace?: boolean } = {}): Promise<bigint> {
    const pairs = Object.entries(fields);
    const args: (string | Buffer)[] = ['fields', options.replace ? '1' : '0', String(pairs.length)];
    for (const [f, v] of pairs) args.push(f, v);
    args.push(...(options.delete ?? []));
    return this.write(key, args);
  }

  /** Remove a config (both modes). Returns the new version. */
  async delete(key: string): Promise<bigint> {
    return this.write(key, ['del']);
  }

  private async write(key: string, op: (string | Buffer)[]): Promise<bigint> {
    const v = await this.scripts.cfgWrite(this.keys.config(key), op);
    if (!v) throw new Error(`redis: config write ${String(op[0])} refused`);
    return BigInt(String(v));
  }
}
