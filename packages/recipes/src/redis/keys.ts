/**
 * Key and channel layout of the Redis backend. Every key lives under one namespace (default
 * `coord:`), and each recipe instance's keys share a `{hash tag}` so they would land in one
 * slot; the backend still needs a single primary (see docs/RECIPES.md, "Redis backend": the
 * scripts also read session keys, which live elsewhere, so Redis Cluster is not supported).
 *
 *   coord:session:<token>                   STRING, PX = session TTL: the session is alive while it exists
 *   coord:mutex:{<name>}:queue              ZSET   waiting tokens, score = arrival (FIFO)
 *   coord:mutex:{<name>}:holder             HASH   token, fence, mod, value of the current holder
 *   coord:mutex:{<name>}:values             HASH   token → value of each waiter (the election's proposals)
 *   coord:mutex:{<name>}:fence              counter: fencing tokens (INCR at each hand-over)
 *   coord:mutex:{<name>}:seq                counter: arrival numbers of the queue
 *   coord:mutex:{<name>}:version            counter: bumped by every change of the holder or its value
 *   channel coord:mutex:{<name>}:wake:<token>   one waiter's wake-up (published when it is handed the hold)
 *   channel coord:mutex:{<name>}:events         the holder's state after every change (elections)
 *   (elections: the same with `election` for `mutex`)
 *   coord:svc:{<service>}:instances         HASH   id → instance JSON
 *   coord:svc:{<service>}:owners            HASH   id → "<session token> <create version> <mod version>"
 *   coord:svc:{<service>}:version           counter, bumped (and published) by every change
 *   channel coord:svc:{<service>}:events    one message per version
 *   coord:config:{<key>}:value              STRING the config (key mode)
 *   coord:config:{<key>}:fields             HASH   field → value (prefix mode)
 *   coord:config:{<key>}:version            counter, bumped (and published) by every write through the API
 *   channel coord:config:{<key>}:changed    the new version
 *
 * ioredis' `keyPrefix` option is honoured: KEYS passed to scripts get it from ioredis, and the
 * keys a script builds itself (other sessions' keys) and all channels are built with it here.
 */
import type { Redis } from 'ioredis';

/** Where the backend's keys live unless told otherwise. */
export const DEFAULT_REDIS_NAMESPACE = 'coord:';

/** A recipe name, service, or config key: non-empty, no control characters, no braces. */
export function assertRedisName(value: unknown, what: string): asserts value is string {
  // Braces would break the `{hash tag}` and could make two names share keys; control
  // characters would make the keys unreadable in redis-cli and break the event messages.
  if (typeof value !== 'string' || value.length === 0 || /[\u0000-\u001f\u007f{}]/.test(value)) {
    throw new TypeError(`${what} must be a non-empty string without control characters or braces, got ${JSON.stringify(value)}`);
  }
}

function assertNamespace(ns: unknown): asserts ns is string {
  if (typeof ns !== 'string' || /[\u0000-\u001f\u007f{}]/.test(ns)) throw new TypeError(`namespace must be a string without control characters or braces, got ${JSON.stringify(ns)}`);
}

/** The keys of one queue-with-a-holder (a mutex or an election). */
export interface QueueKeys {
  readonly queue: string;
  readonly holder: string;
  readonly values: string;
  readonly fence: string;
  readonly seq: string;
  readonly version: string;
  /** Channel prefix: `wake + token` is a waiter's channel (full name, with the client's keyPrefix). */
  readonly wake: string;
  /** Channel of the holder's state after each change. */
  readonly events: string;
}

export interface ServiceKeys {
  readonly instances: string;
  readonly owners: string;
  readonly version: string;
  readonly events: string;
}

export interface ConfigKeys {
  readonly value: string;
  readonly fields: string;
  readonly version: string;
  readonly changed: string;
  /** Keyspace-notification channels of the data keys (delivered only if the server enables them). */
  readonly keyspace: readonly string[];
}

/** Builds every key and channel of one namespace for one ioredis client. */
export class RedisKeys {
  /** The client's `keyPrefix` option ('' when none). */
  readonly keyPrefix: string;
  /** The client's database number (for keyspace-notification channels). */
  readonly db: number;

  constructor(
    redis: Redis,
    readonly namespace: string = DEFAULT_REDIS_NAMESPACE,
  ) {
    assertNamespace(namespace);
    const options = (redis as { options?: { keyPrefix?: string; db?: number } }).options ?? {};
    this.keyPrefix = options.keyPrefix ?? '';
    this.db = options.db ?? 0;
  }

  /** A session's key (without the client's keyPrefix: for KEYS and ordinary commands). */
  session(token: string): string {
    return `${this.namespace}session:${token}`;
  }

  /** The full name of every session key up to the token, for scripts that build it. */
  get sessionPrefix(): string {
    return `${this.keyPrefix}${this.namespace}session:`;
  }

  queue(kind: 'mutex' | 'election', name: string): QueueKeys {
    assertRedisName(name, 'name');
    const base = `${this.namespace}${kind}:{${name}}:`;
    return Object.freeze({
      queue: base + 'queue',
      holder: base + 'holder',
      values: base + 'values',
      fence: base + 'fence',
      seq: base + 'seq',
      version: base + 'version',
      wake: this.keyPrefix + base + 'wake:',
      events: this.keyPrefix + base + 'events',
    });
  }

  service(service: string): ServiceKeys {
    assertRedisName(service, 'service');
    if (service.includes('/')) throw new TypeError(`service must not contain "/", got ${JSON.stringify(service)}`);
    const base = `${this.namespace}svc:{${service}}:`;
    return Object.freeze({ instances: base + 'instances', owners: base + 'owners', version: base + 'version', events: this.keyPrefix + base + 'events' });
  }

  config(key: string): ConfigKeys {
    assertRedisName(key, 'key');
    const base = `${this.namespace}config:{${key}}:`;
    const space = `__keyspace@${this.db}__:${this.keyPrefix}`;
    return Object.freeze({
      value: base + 'value',
      fields: base + 'fields',
      version: base + 'version',
      changed: this.keyPrefix + base + 'changed',
      keyspace: Object.freeze([space + base + 'value', space + base + 'fields']),
    });
  }
}
