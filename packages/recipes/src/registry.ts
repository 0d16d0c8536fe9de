/**
 * ServiceRegistry: service instances registered under a session lease, so an instance
 * disappears by itself when its process stops sending heartbeats (the lease's keep-alives),
 * and discovered or followed by anybody with read access.
 *
 * Key layout (one key per instance):
 *
 *     /coord/services/<service>/<id>   →   {"service":"api","id":"api-1","address":"10.0.0.7",
 *                                           "port":8080,"metadata":{"zone":"eu-1"}}
 *
 * The value is UTF-8 JSON with exactly those fields (`metadata` maps strings to strings; it is
 * `{}` when none was given). `<service>` and `<id>` are single path segments (no `/`). The key
 * carries the registering session's lease: revoking or expiring the lease deletes it. The
 * prefix (`/coord/services/`) can be changed per registry; readers and writers must agree.
 * Keys under a service whose value is not such JSON are ignored by readers.
 *
 * A registration is told it is lost (`lost`, `signal`) when its session ends or its key is
 * deleted. If another process registers the same service and ID, it takes the key over (its
 * lease replaces ours) without a delete, so ours is not told: give instances distinct IDs.
 *
 * `watch(service)` is list-then-watch (snapshot-watch.ts): a snapshot at revision R, then
 * every change from R + 1, no gap and no duplicate; if the history it needs is compacted it
 * reads a new snapshot and reports the difference as ordinary added/updated/removed changes.
 */
import { EventEmitter } from 'node:events';
import { AbortError, compare, op, type Client, type KeyValue, type ResponseHeader } from '@coord/client';
import { RegistrationLostError, SessionClosedError, type LostReason } from './errors';
import { Hold } from './hold';
import { assertSegment } from './keys';
import { Picker, type PickStrategy } from './picker';
import { Session } from './session';
import { listThenWatch, RangeState } from './snapshot-watch';

/** Where instances live unless a registry is given another prefix. */
export const DEFAULT_SERVICES_PREFIX = '/coord/services/';
/** TTL of a registry's own session: an instance whose heartbeats stop vanishes within it. */
export const DEFAULT_REGISTRY_TTL_SECONDS = 10;

/** What `register()` takes. */
export interface ServiceInstanceInput {
  service: string;
  id: string;
  address: string;
  port: number;
  metadata?: Record<string, string>;
}

/** An instance as stored (the JSON value). */
export interface ServiceInstance {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly metadata: Readonly<Record<string, string>>;
}

/** An instance as discovered: the stored instance plus where and when it was written. */
export interface ServiceEntry extends ServiceInstance {
  readonly key: string;
  /** The lease of the session that registered it (0n if registered without one). */
  readonly leaseId: bigint;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

/** The instances of a service at one revision. */
export interface ServiceList {
  readonly instances: readonly ServiceEntry[];
  readonly revision: bigint;
}

/** One step of `watch(service)`. `instances` is the full set after it, sorted by key. */
export type ServiceChange =
  | { readonly type: 'snapshot'; readonly instances: readonly ServiceEntry[]; readonly revision: bigint }
  | {
      readonly type: 'added' | 'updated' | 'removed';
      readonly instance: ServiceEntry;
      readonly instances: readonly ServiceEntry[];
      readonly revision: bigint;
    };

export interface ServiceRegistryOptions {
  /** Key prefix of every service (default `/coord/services/`); must end with `/`. */
  prefix?: string;
  /**
   * The session registrations are bound to. Default: the registry creates its own with
   * `ttl` on the first `register()` (and a new one if that session was lost).
   */
  session?: Session;
  /** TTL in seconds of the registry's own session (default 10). */
  ttl?: number;
}

function validateInstance(i: ServiceInstanceInput): ServiceInstance {
  if (!i || typeof i !== 'object') throw new TypeError('register needs { service, id, address, port, metadata? }');
  assertSegment(i.service, 'service');
  assertSegment(i.id, 'id');
  if (typeof i.address !== 'string' || i.address.length === 0) throw new TypeError(`address must be a non-empty string, got ${JSON.stringify(i.address)}`);
  if (!Number.isInteger(i.port) || i.port < 0 || i.port > 65535) throw new TypeError(`port must be an integer in 0..65535, got ${i.port}`);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.metadata ?? {})) {
    if (typeof v !== 'string') throw new TypeError(`metadata values must be strings; ${k} is ${typeof v}`);
    metadata[k] = v;
  }
  return Object.freeze({ service: i.service, id: i.id, address: i.address, port: i.port, metadata: Object.freeze(metadata) });
}

/** The stored JSON of an instance, in the documented field order. */
export function encodeInstance(i: ServiceInstance): string {
  return JSON.stringify({ service: i.service, id: i.id, address: i.address, port: i.port, metadata: i.metadata });
}

/** Parse a stored instance; undefined when the value is not a valid instance document. */
export function decodeInstance(kv: KeyValue): ServiceEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(kv.valueString());
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.service !== 'string' || typeof o.id !== 'string' || typeof o.address !== 'string' || typeof o.port !== 'number') return undefined;
  const metadata: Record<string, string> = {};
  if (o.metadata && typeof o.metadata === 'object') {
    for (const [k, val] of Object.entries(o.metadata as Record<string, unknown>)) if (typeof val === 'string') metadata[k] = val;
  }
  return Object.freeze({
    service: o.service,
    id: o.id,
    address: o.address,
    port: o.port,
    metadata: Object.freeze(metadata),
    key: kv.keyString(),
    leaseId: kv.lease,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
  });
}

const byKey = (a: ServiceEntry, b: ServiceEntry) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * A registered instance. Its key lives as long as its session; `lost` is emitted (and
 * `signal` aborted with a `RegistrationLostError`) when the session ends or the key is deleted.
 */
export class Registration extends EventEmitter {
  private hold: Hold | undefined;

  /** @internal Use `registry.register()`. */
  constructor(
    readonly session: Session,
    readonly key: string,
    readonly instance: ServiceInstance,
    readonly header: ResponseHeader,
    /** The key's create revision. */
    readonly createRevision: bigint,
    private readonly onEnd: (r: Registration) => void,
  ) {
    super();
    this.hold = new Hold(session, key, createRevision, header.revision + 1n, {
      error: (reason: LostReason, cause: unknown) => new RegistrationLostError(key, reason, { cause }),
      lost: (err) => {
        this.hold = undefined;
        this.onEnd(this);
        this.emit('lost', err);
      },
    });
    this.signalRef = this.hold.signal;
  }

  private readonly signalRef: AbortSignal;

  /** Aborted when the registration ends: lost (`RegistrationLostError`) or deregistered. */
  get signal(): AbortSignal {
    return this.signalRef;
  }

  /** True until deregistered or lost. */
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

  /** Delete the instance's key (only if it still carries our lease). No-op once ended. */
  async deregister(options: { timeoutMs?: number } = {}): Promise<void> {
    const hold = this.hold;
    if (!hold) return;
    hold.beginRelease();
    try {
      await this.session.client.txn({
        compare: [compare.lease(this.key, '=', this.session.leaseId)],
        success: [op.delete(this.key)],
        timeoutMs: options.timeoutMs,
      });
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
export class LivePicker {
  private readonly picker: Picker<ServiceEntry>;
  private readonly controller = new AbortController();
  private readonly first: Promise<void>;
  private failure: unknown;

  /** @internal Use `registry.picker()`. */
  constructor(registry: ServiceRegistry, service: string, strategy: PickStrategy, signal?: AbortSignal) {
    this.picker = new Picker<ServiceEntry>(strategy, (e) => e.key);
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

  /** Resolves once the first snapshot is in. */
  ready(): Promise<void> {
    return this.first;
  }

  /** One instance, or undefined when none is registered (or not ready yet). */
  pick(): ServiceEntry | undefined {
    return this.picker.pick();
  }

  get instances(): readonly ServiceEntry[] {
    return this.picker.all;
  }

  /** The error that stopped the watch, if any. */
  get error(): unknown {
    return this.failure;
  }

  close(): void {
    if (!this.controller.signal.aborted) this.controller.abort();
  }
}

export class ServiceRegistry {
  /** Prefix of every service's keys, ending with `/`. */
  readonly prefix: string;
  private session: Session | undefined;
  private sessionPromise: Promise<Session> | undefined;
  private readonly ownSession: boolean;
  private readonly ttl: number;
  private readonly registrations = new Set<Registration>();

  constructor(
    readonly client: Client,
    options: ServiceRegistryOptions = {},
  ) {
    const prefix = options.prefix ?? DEFAULT_SERVICES_PREFIX;
    if (typeof prefix !== 'string' || !prefix.endsWith('/')) throw new TypeError(`prefix must end with "/", got ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
    this.session = options.session;
    this.ownSession = options.session === undefined;
    this.ttl = options.ttl ?? DEFAULT_REGISTRY_TTL_SECONDS;
  }

  /** The key of an instance: `<prefix><service>/<id>`. */
  keyOf(service: string, id: string): string {
    assertSegment(service, 'service');
    assertSegment(id, 'id');
    return `${this.prefix}${service}/${id}`;
  }

  /**
   * Register an instance under the registry's session lease. A second registration of the same
   * service and ID replaces the first (the last writer's lease then owns the key).
   */
  async register(input: ServiceInstanceInput, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Registration> {
    const instance = validateInstance(input);
    const key = this.keyOf(instance.service, instance.id);
    const session = await this.currentSession();
    session.throwIfEnded();
    // Put and read back in one txn: the read gives the key's create revision (older than the
    // put when this replaces an earlier registration), which the hold checks after compactions.
    const res = await this.client.txn({ success: [op.put(key, encodeInstance(instance), { lease: session.leaseId }), op.get(key)], ...options });
    const got = res.responses[1];
    const createRevision = got.op === 'range' && got.kvs[0] ? got.kvs[0].createRevision : res.header.revision;
    const reg = new Registration(session, key, instance, res.header, createRevision, (r) => this.registrations.delete(r));
    if (reg.active) this.registrations.add(reg);
    return reg;
  }

  /** Delete an instance's key, whoever registered it (an operator's removal). */
  async deregister(service: string, id: string, options: { timeoutMs?: number } = {}): Promise<boolean> {
    const res = await this.client.delete(this.keyOf(service, id), options);
    return res.deleted > 0n;
  }

  /** The instances of `service` now, sorted by key, at one revision. */
  async discover(service: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ServiceList> {
    assertSegment(service, 'service');
    const res = await this.client.getRange({ key: `${this.prefix}${service}/`, prefix: true, ...options });
    const instances = res.kvs.map(decodeInstance).filter((e): e is ServiceEntry => e !== undefined);
    return { instances: instances.sort(byKey), revision: res.header.revision };
  }

  /**
   * Follow `service`: first a `snapshot`, then one change per instance added, updated or
   * removed, each with the full set after it. Ends without error when `signal` aborts or the
   * consumer breaks; other errors (client closed, permission denied) are thrown.
   */
  async *watch(service: string, options: { signal?: AbortSignal; onRelist?: () => void } = {}): AsyncGenerator<ServiceChange, void, undefined> {
    assertSegment(service, 'service');
    const state = new RangeState();
    const entries = new Map<string, ServiceEntry>();
    const list = () => [...entries.values()].sort(byKey);
    let first = true;
    try {
      for await (const update of listThenWatch(this.client, {
        key: `${this.prefix}${service}/`,
        prefix: true,
        signal: options.signal,
        onRelist: options.onRelist,
      })) {
        const changes = state.apply(update);
        if (first) {
          first = false;
          for (const kv of state.kvs.values()) {
            const e = decodeInstance(kv);
            if (e) entries.set(e.key, e);
          }
          yield { type: 'snapshot', instances: list(), revision: update.revision };
          continue;
        }
        for (const c of changes) {
          const before = entries.get(c.after ? c.after.keyString() : c.before!.keyString());
          const after = c.after ? decodeInstance(c.after) : undefined;
          if (after) {
            entries.set(after.key, after);
            yield { type: before ? 'updated' : 'added', instance: after, instances: list(), revision: update.revision };
          } else if (before) {
            entries.delete(before.key);
            yield { type: 'removed', instance: before, instances: list(), revision: update.revision };
          }
        }
      }
    } catch (err) {
      if (err instanceof AbortError && options.signal?.aborted) return;
      throw err;
    }
  }

  /** A round-robin (default) or random picker over `service`, kept current by a watch. */
  picker(service: string, options: { strategy?: PickStrategy; signal?: AbortSignal } = {}): LivePicker {
    assertSegment(service, 'service');
    return new LivePicker(this, service, options.strategy ?? 'round-robin', options.signal);
  }

  /**
   * Deregister every instance this registry registered and, if the registry created its own
   * session, close it (revoking its lease).
   */
  async close(): Promise<void> {
    const regs = [...this.registrations];
    await Promise.all(regs.map((r) => r.deregister().catch(() => undefined)));
    if (this.ownSession && this.session) await this.session.close().catch(() => undefined);
  }

  private async currentSession(): Promise<Session> {
    if (this.session && (this.session.alive || !this.ownSession)) return this.session;
    if (!this.sessionPromise) {
      this.sessionPromise = Session.create(this.client, { ttl: this.ttl }).finally(() => {
        this.sessionPromise = undefined;
      });
      this.session = await this.sessionPromise;
      return this.session;
    }
    return this.sessionPromise;
  }
}
