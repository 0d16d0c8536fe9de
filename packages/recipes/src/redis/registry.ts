/**
 * RedisServiceRegistry: service instances registered under a RedisSession, so an instance
 * disappears when its process stops sending heartbeats; discovered and followed by anybody.
 * Shaped like the etcd-backed `ServiceRegistry` (register / deregister / discover / watch /
 * picker / close, `Registration` with `lost` and `signal`), with the same instance JSON.
 *
 * Layout (keys.ts): per service, a HASH id → instance JSON, a HASH id → "<session token>
 * <create version> <mod version>", and a version counter. Scripts (scripts.ts) change them and,
 * in the same script, bump the version and publish one message per bump:
 * `"<version> added|updated|removed <token> <create> <mod> <session pttl>\n<json>"`.
 *
 * `watch(service)`: list-then-subscribe without gap or duplicate. It subscribes to the
 * service's channel *first*, then reads the list and its version V in one script; every
 * change after the read is a message with a version > V, and every message with a version <= V
 * is already in the list (dropped). Versions are consecutive (one message per bump), so a
 * message lost in between (a reconnect of the subscriber) shows as a gap: the watcher then reads
 * the list again and reports the difference as ordinary added/updated/removed changes (and
 * calls `onRelist`), as the etcd backend does after a compaction. A reconnect itself also makes
 * it re-read.
 *
 * Expiry: an instance lives while its session key does. Redis announces no expiry, so the
 * scripts drop instances whose session key is gone whenever they list, and each watcher runs a
 * sweep when the soonest session TTL it knows of runs out (the messages carry each registering
 * session's TTL). The sweep publishes a `removed` message per dropped instance, which every
 * watcher then sees. So an instance whose heartbeats stop vanishes within its session TTL (plus
 * a few milliseconds), as soon as any reader or watcher looks.
 *
 * Differences from the etcd registry: `prefix` is `namespace`; entries carry `sessionId`
 * instead of `leaseId`, and per-service versions instead of store revisions; `key` is
 * `<service>/<id>` (the instance's place in its service's hash); a registration taken over by
 * another session, or deleted by an operator, is noticed (`lost`, reason `key-deleted`) at the
 * owner's next heartbeat.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { AbortError } from '@coord/client';
import { RegistrationLostError, SessionClosedError, type LostReason } from '../errors';
import { assertSegment } from '../keys';
import { Picker, type PickStrategy } from '../picker';
import { DEFAULT_REGISTRY_TTL_SECONDS, encodeInstance, type ServiceInstance, type ServiceInstanceInput } from '../registry';
import { RedisHold } from './hold';
import { DEFAULT_REDIS_NAMESPACE, RedisKeys, type ServiceKeys } from './keys';
import { Notifier } from './notifier';
import { RedisScripts } from './scripts';
import { raceSignal, RedisSession } from './session';

/** An instance as discovered. */
export interface RedisServiceEntry extends ServiceInstance {
  /** `<service>/<id>`. */
  readonly key: string;
  /** The token of the session that registered it. */
  readonly sessionId: string;
  /** The service's version when the instance was first registered. */
  readonly createRevision: bigint;
  /** The service's version at its last registration. */
  readonly modRevision: bigint;
}

export interface RedisServiceList {
  readonly instances: readonly RedisServiceEntry[];
  /** The service's version the list reflects. */
  readonly revision: bigint;
}

export type RedisServiceChange =
  | { readonly type: 'snapshot'; readonly instances: readonly RedisServiceEntry[]; readonly revision: bigint }
  | {
      readonly type: 'added' | 'updated' | 'removed';
      readonly instance: RedisServiceEntry;
      readonly instances: readonly RedisServiceEntry[];
      readonly revision: bigint;
    };

export interface RedisServiceRegistryOptions {
  /** Key namespace (default `coord:`). */
  namespace?: string;
  /** The session registrations are bound to. Default: the registry's own, created with `ttl` on the first `register()`. */
  session?: RedisSession;
  /** TTL in seconds of the registry's own session (default 10). */
  ttl?: number;
}

/** Added to the soonest session expiry before sweeping, so the key has surely expired. */
const EXPIRY_SLACK_MS = 15;
/** Without anything to expire, watchers still re-list this often (a lost message with nothing after it). */
const IDLE_RELIST_MS = 60_000;

function validateInstance(i: ServiceInstanceInput): ServiceInstance {
  if (!i || typeof i !== 'object') throw new TypeError('register needs { service, id, address, port, metadata? }');
  assertSegment(i.service, 'service');
  assertSegment(i.id, 'id');
  if (/[\u0000-\u001f{}]/.test(i.service)) throw new TypeError(`service must not contain control characters or braces, got ${JSON.stringify(i.service)}`);
  if (typeof i.address !== 'string' || i.address.length === 0) throw new TypeError(`address must be a non-empty string, got ${JSON.stringify(i.address)}`);
  if (!Number.isInteger(i.port) || i.port < 0 || i.port > 65535) throw new TypeError(`port must be an integer in 0..65535, got ${i.port}`);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.metadata ?? {})) {
    if (typeof v !== 'string') throw new TypeError(`metadata values must be strings; ${k} is ${typeof v}`);
    metadata[k] = v;
  }
  return Object.freeze({ service: i.service, id: i.id, address: i.address, port: i.port, metadata: Object.freeze(metadata) });
}

/** An entry from its stored JSON and owner record; undefined when the JSON is not an instance. */
function decodeEntry(service: string, id: string, meta: string, json: string): RedisServiceEntry | undefined {
  const [sessionId, create, mod] = meta.split(' ');
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.address !== 'string' || typeof o.port !== 'number') return undefined;
  const metadata: Record<string, string> = {};
  if (o.metadata && typeof o.metadata === 'object') {
    for (const [k, val] of Object.entries(o.metadata as Record<string, unknown>)) if (typeof val === 'string') metadata[k] = val;
  }
  return Object.freeze({
    service,
    id,
    address: o.address,
    port: o.port,
    metadata: Object.freeze(metadata),
    key: `${service}/${id}`,
    sessionId,
    createRevision: BigInt(create),
    modRevision: BigInt(mod),
  });
}

interface ParsedMessage {
  readonly version: bigint;
  readonly type: 'added' | 'updated' | 'removed';
  readonly id: string;
  readonly entry: RedisServiceEntry | undefined;
  readonly ttlMs: number;
}

function parseMessage(service: string, message: string): ParsedMessage {
  const nl = message.indexOf('\n');
  const head = (nl < 0 ? message : message.slice(0, nl)).split(' ');
  const json = nl < 0 ? '{}' : message.slice(nl + 1);
  const [version, type, token, create, mod, ttl] = head;
  let id = '';
  try {
    id = String((JSON.parse(json) as { id?: unknown }).id ?? '');
  } catch {
    // an entry that is not JSON: dropped below
  }
  return {
    version: BigInt(version),
    type: type as ParsedMessage['type'],
    id,
    entry: id ? decodeEntry(service, id, `${token} ${create} ${mod}`, json) : undefined,
    ttlMs: Number(ttl),
  };
}

const byKey = (a: RedisServiceEntry, b: RedisServiceEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** A registered instance; `lost` when its session ends or its record is gone or taken over. */
export class RedisRegistration extends EventEmitter {
  private hold: RedisHold | undefined;
  private readonly signalRef: AbortSignal;

  /** @internal Use `registry.register()`. */
  constructor(
    readonly session: RedisSession,
    private readonly keys: ServiceKeys,
    /** `<service>/<id>`. */
    readonly key: string,
    readonly instance: ServiceInstance,
    readonly createRevision: bigint,
    /** The service's version after the registration. */
    readonly revision: bigint,
    private readonly onEnd: (r: RedisRegistration) => void,
  ) {
    super();
    const scripts = RedisScripts.of(session.redis);
    const id = instance.id;
    this.hold = new RedisHold(
      session,
      key,
      createRevision,
      {
        check: (p) => void scripts.svcCheck(p, keys, id, session.id),
        release: (p) => void scripts.svcRemove(keys, id, session.id, p),
      },
      {
        error: (reason: LostReason, cause: unknown) => new RegistrationLostError(key, reason, { cause }),
        lost: (err) => {
          this.hold = undefined;
          this.onEnd(this);
          this.emit('lost', err);
        },
      },
    );
    this.signalRef = this.hold.signal;
  }

  /** Aborted when the registration ends: lost (`RegistrationLostError`) or deregistered. */
  get signal(): AbortSignal {
    return this.signalRef;
  }

  get active(): boolean {
    return this.hold !== undefined;
  }

  override on(event: 'lost', listener: (err: RegistrationLostError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'lost', listener: (err: RegistrationLostError) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /** @internal The same registry registered the same instance again: this object is done, nothing is lost. */
  replaced(): void {
    const hold = this.hold;
    if (!hold) return;
    this.hold = undefined;
    hold.release(new SessionClosedError('registered again'));
  }

  /** Remove the instance (only if our session still owns it). No-op once ended. */
  async deregister(options: { timeoutMs?: number } = {}): Promise<void> {
    const hold = this.hold;
    if (!hold) return;
    hold.beginRelease();
    try {
      const p = RedisScripts.of(this.session.redis).svcRemove(this.keys, this.instance.id, this.session.id);
      await (options.timeoutMs === undefined ? p : raceSignal(p, AbortSignal.timeout(options.timeoutMs)));
    } catch (err) {
      hold.cancelRelease();
      throw err;
    }
    hold.release(new SessionClosedError('deregistered'));
    this.hold = undefined;
    this.onEnd(this);
  }
}

/** A picker kept current by a watch of one service. */
export class RedisLivePicker {
  private readonly picker: Picker<RedisServiceEntry>;
  private readonly controller = new AbortController();
  private readonly first: Promise<void>;
  private failure: unknown;

  /** @internal Use `registry.picker()`. */
  constructor(registry: RedisServiceRegistry, service: string, strategy: PickStrategy, signal?: AbortSignal) {
    this.picker = new Picker<RedisServiceEntry>(strategy, (e) => e.key);
    if (signal) {
      if (signal.aborted) this.controller.abort(signal.reason);
      else signal.addEventListener('abort', () => this.close(), { once: true });
    }
    let resolveFirst!: () => void;
    let rejectFirst!: (err: unknown) => void;
    this.first = new Promise((resolve, reject) => {
      resolveFirst = resolve;
      rejectFirst = reject;
    });
    this.first.catch(() => undefined);
    const picker = this.picker;
    void (async () => {
      try {
        for await (const change of registry.watch(service, { signal: this.controller.signal })) {
          picker.update(change.instances);
          resolveFirst();
        }
        resolveFirst();
      } catch (err) {
        this.failure = err;
        rejectFirst(err);
      }
    })();
  }

  ready(): Promise<void> {
    return this.first;
  }

  pick(): RedisServiceEntry | undefined {
    return this.picker.pick();
  }

  get instances(): readonly RedisServiceEntry[] {
    return this.picker.all;
  }

  get error(): unknown {
    return this.failure;
  }

  close(): void {
    if (!this.controller.signal.aborted) this.controller.abort();
  }
}

export class RedisServiceRegistry {
  readonly keys: RedisKeys;
  private session: RedisSession | undefined;
  private sessionPromise: Promise<RedisSession> | undefined;
  private readonly ownSession: boolean;
  private readonly ttl: number;
  /** Active registrations by `<service>/<id>`. */
  private readonly registrations = new Map<string, RedisRegistration>();
  private readonly scripts: RedisScripts;

  constructor(
    readonly redis: Redis,
    options: RedisServiceRegistryOptions = {},
  ) {
    if (options.session && options.session.redis !== redis) throw new TypeError('the session must use the same ioredis client as the registry');
    this.keys = new RedisKeys(redis, options.session?.namespace ?? options.namespace ?? DEFAULT_REDIS_NAMESPACE);
    this.session = options.session;
    this.ownSession = options.session === undefined;
    this.ttl = options.ttl ?? DEFAULT_REGISTRY_TTL_SECONDS;
    this.scripts = RedisScripts.of(redis);
  }

  /**
   * Register an instance under the registry's session. A second registration of the same
   * service and ID replaces the first: through this registry, the first object just ends
   * (`active` false, `signal` aborted, no `lost`); from another session, its owner sees `lost`
   * (reason `key-deleted`) at its next heartbeat.
   */
  async register(input: ServiceInstanceInput, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RedisRegistration> {
    const instance = validateInstance(input);
    const keys = this.keys.service(instance.service);
    const session = await this.currentSession();
    session.throwIfEnded();
    const signal = options.timeoutMs !== undefined ? AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])]) : options.signal;
    const reply = await raceSignal(this.scripts.svcRegister(keys, session.key, instance.id, encodeInstance(instance), session.id), signal);
    if (Number(reply[0]) !== 1) {
      session.throwIfEnded();
      throw new RegistrationLostError(`${instance.service}/${instance.id}`, 'session-lost');
    }
    const key = `${instance.service}/${instance.id}`;
    const reg = new RedisRegistration(session, keys, key, instance, BigInt(String(reply[1])), BigInt(String(reply[2])), (r) => {
      if (this.registrations.get(key) === r) this.registrations.delete(key);
    });
    // A second registration of the same instance replaces the first object (one hold each).
    this.registrations.get(key)?.replaced();
    if (reg.active) this.registrations.set(key, reg);
    return reg;
  }

  /** Remove an instance whoever registered it (an operator's removal). True if it was there. */
  async deregister(service: string, id: string): Promise<boolean> {
    assertSegment(id, 'id');
    return Number(await this.scripts.svcRemove(this.keys.service(service), id, '')) === 1;
  }

  /** The live instances of `service`, sorted by key, at one version. */
  async discover(service: string, options: { signal?: AbortSignal } = {}): Promise<RedisServiceList> {
    const { instances, revision } = await raceSignal(this.list(service), options.signal);
    return { instances: [...instances.values()].sort(byKey), revision };
  }

  /**
   * Follow `service`: first a `snapshot`, then one change per instance added, updated or
   * removed, each with the full set after it. Ends without error when `signal` aborts or the
   * consumer breaks. See the file comment for why there is no gap and no duplicate.
   */
  async *watch(service: string, options: { signal?: AbortSignal; onRelist?: () => void } = {}): AsyncGenerator<RedisServiceChange, void, undefined> {
    const keys = this.keys.service(service);
    const signal = options.signal;
    if (signal?.aborted) return;
    const subscribing = Notifier.of(this.redis).subscribe([keys.events]);
    let inbox;
    try {
      inbox = await raceSignal(subscribing, signal);
    } catch (err) {
      subscribing.then((i) => i.close(), () => undefined);
      if (signal?.aborted) return;
      throw err;
    }
    const clock = () => performance.now();
    let sweepAt: number | undefined;
    const expireWithin = (ttlMs: number) => {
      if (ttlMs < 0) return;
      const at = clock() + ttlMs + EXPIRY_SLACK_MS;
      if (sweepAt === undefined || at < sweepAt) sweepAt = at;
    };
    try {
      let listed = await raceSignal(this.list(service), signal);
      let entries = listed.instances;
      let version = listed.revision;
      expireWithin(listed.leastTtlMs);
      const all = () => [...entries.values()].sort(byKey);
      yield { type: 'snapshot', instances: all(), revision: version };
      // Each pass handles one message, resync or timer; the loop ends with the signal or the consumer.
      for (;;) {
        const item = await inbox.next(signal, sweepAt === undefined ? IDLE_RELIST_MS : Math.max(0, sweepAt - clock()));
        let relist = item.kind === 'resync';
        if (item.kind === 'timeout') {
          if (sweepAt === undefined) {
            relist = true;
          } else {
            // Drop expired instances: the sweep publishes their removals, which come back to us.
            sweepAt = undefined;
            expireWithin(Number(await raceSignal(this.scripts.svcSweep(keys, this.keys.sessionPrefix), signal)));
            continue;
          }
        }
        if (item.kind === 'message') {
          const m = parseMessage(service, item.message);
          if (m.version <= version) continue; // already in what we listed
          if (m.version === version + 1n) {
            version = m.version;
            expireWithin(m.ttlMs);
            if (m.type === 'removed') {
              const before = entries.get(m.id);
              if (!before) continue;
              entries.delete(m.id);
              yield { type: 'removed', instance: before, instances: all(), revision: version };
            } else if (m.entry) {
              const existed = entries.has(m.id);
              entries.set(m.id, m.entry);
              yield { type: existed ? 'updated' : 'added', instance: m.entry, instances: all(), revision: version };
            }
            continue;
          }
          relist = true; // a gap: some message was lost
        }
        if (!relist) continue;
        options.onRelist?.();
        inbox.clear();
        listed = await raceSignal(this.list(service), signal);
        sweepAt = undefined;
        expireWithin(listed.leastTtlMs);
        const before = entries;
        entries = new Map(before);
        version = listed.revision;
        for (const [id, old] of before) {
          if (listed.instances.has(id)) continue;
          entries.delete(id);
          yield { type: 'removed', instance: old, instances: all(), revision: version };
        }
        for (const [id, e] of listed.instances) {
          const old = before.get(id);
          if (old && old.modRevision === e.modRevision && old.sessionId === e.sessionId) continue;
          entries.set(id, e);
          yield { type: old ? 'updated' : 'added', instance: e, instances: all(), revision: version };
        }
      }
    } catch (err) {
      if (signal?.aborted && (err === signal.reason || err instanceof AbortError)) return;
      throw err;
    } finally {
      inbox.close();
    }
  }

  /** A round-robin (default) or random picker over `service`, kept current by a watch. */
  picker(service: string, options: { strategy?: PickStrategy; signal?: AbortSignal } = {}): RedisLivePicker {
    this.keys.service(service);
    return new RedisLivePicker(this, service, options.strategy ?? 'round-robin', options.signal);
  }

  /** Deregister everything this registry registered and close its own session. */
  async close(): Promise<void> {
    const regs = [...this.registrations.values()];
    await Promise.all(regs.map((r) => r.deregister().catch(() => undefined)));
    if (this.ownSession && this.session) await this.session.close().catch(() => undefined);
  }

  // ---- internals -----------------------------------------------------------------------------

  private async list(service: string): Promise<{ instances: Map<string, RedisServiceEntry>; revision: bigint; leastTtlMs: number }> {
    const keys = this.keys.service(service);
    const reply = (await this.scripts.svcList(keys, this.keys.sessionPrefix)).map(String);
    const instances = new Map<string, RedisServiceEntry>();
    for (let i = 2; i + 2 < reply.length; i += 3) {
      const e = decodeEntry(service, reply[i], reply[i + 1], reply[i + 2]);
      if (e) instances.set(e.id, e);
    }
    return { instances, revision: BigInt(reply[0]), leastTtlMs: Number(reply[1]) };
  }

  private async currentSession(): Promise<RedisSession> {
    if (this.session && (this.session.alive || !this.ownSession)) return this.session;
    if (!this.sessionPromise) {
      this.sessionPromise = RedisSession.create(this.redis, { ttl: this.ttl, namespace: this.keys.namespace }).finally(() => {
        this.sessionPromise = undefined;
      });
      this.session = await this.sessionPromise;
      return this.session;
    }
    return this.sessionPromise;
  }
}
