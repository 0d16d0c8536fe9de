/**
 * Election: leader election laid out as etcd's `concurrency.Election` (and so as
 * `etcdctl elect NAME` and etcd's v3election service): each candidate's key is
 * `<name>/<lease id in %x>` holding its proposal, attached to its session's lease; the leader
 * is the candidate with the lowest create revision. Candidates queue like Mutex waiters: each
 * watches only its predecessor's delete.
 *
 * Differences from etcd's:
 * - Never two leaders that both believe it. A leader stops believing (`isLeader` false,
 *   `signal` aborted, `lost` emitted) when its session is lost, which the session declares
 *   before the server could expire the lease, so before the next candidate's key can be first
 *   (see session.ts and hold.ts); and when its key is deleted. Guard side effects with
 *   `txnIfLeader()`, which the server checks against the key's create revision.
 * - Campaigning stops with the session: a candidate whose session ends while it waits rejects
 *   with the session's error instead of waiting on a dead lease.
 * - `observe()` reports *every* leader change, including "no leader" (`leader: undefined`)
 *   when the last candidate goes; etcd's Observe only ever reports a leader, so an observer
 *   cannot tell "no leader" from "same leader".
 */
import { EventEmitter } from 'node:events';
import {
  AbortError,
  compare,
  op,
  type Client,
  type Compare,
  type KeyValue,
  type Op,
  type ResponseHeader,
  type TxnCallOptions,
  type TxnResult,
} from '@coord/client';
import { LeadershipLostError, LockBusyError, NotLeaderError, SessionExpiredError, type LostReason } from './errors';
import { Hold } from './hold';
import { FIRST_CREATE, leaseKey, recipePrefix } from './keys';
import type { Session } from './session';
import { listThenWatch, RangeState } from './snapshot-watch';
import { dropTicket, takeTicket } from './ticket';
import { WaitScope, waitForPredecessors, type WaitOptions } from './wait';

/** The leader as observers see it. */
export interface LeaderInfo {
  /** The leader's key, `<name>/<lease hex>`. */
  readonly key: string;
  /** Its proposal, as UTF-8 text. */
  readonly value: string;
  /** Its proposal, as bytes. */
  readonly rawValue: Buffer;
  /** Its create revision: the leadership's fencing token, growing with every new leader. */
  readonly createRevision: bigint;
  /** The revision of its last proclaim. */
  readonly modRevision: bigint;
  /** Its session's lease. */
  readonly leaseId: bigint;
}

/** One observation: the leader (undefined: no leader) as of `revision`. */
export interface LeaderChange {
  readonly leader: LeaderInfo | undefined;
  readonly revision: bigint;
}

/** What a successful `campaign()` returns. */
export interface Leadership {
  readonly key: string;
  /** The key's create revision: strictly greater than every earlier leader's. */
  readonly createRevision: bigint;
  readonly header: ResponseHeader;
  /** Aborted (reason: `LeadershipLostError`) when leadership is lost; also when resigned. */
  readonly signal: AbortSignal;
}

export type ElectionState = 'idle' | 'campaigning' | 'leader' | 'resigning';

const CLEANUP_TIMEOUT_MS = 5000;

function toLeader(kv: KeyValue): LeaderInfo {
  return Object.freeze({
    key: kv.keyString(),
    value: kv.valueString(),
    rawValue: kv.value,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    leaseId: kv.lease,
  });
}

const sameLeader = (a: LeaderInfo | undefined, b: LeaderInfo | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.key === b.key && a.createRevision === b.createRevision && a.modRevision === b.modRevision);

export class Election extends EventEmitter {
  /** `<name>/`: every candidate's key is under it. */
  readonly prefix: string;
  /** This session's candidate key: `<name>/<lease hex>`. */
  readonly key: string;
  private current: ElectionState = 'idle';
  private hold: Hold | undefined;
  private releaseClaim: (() => void) | undefined;

  constructor(
    readonly session: Session,
    /** The election's name, as given to `etcdctl elect NAME`. */
    readonly name: string,
  ) {
    super();
    this.prefix = recipePrefix(name);
    this.key = leaseKey(name, session.leaseId);
  }

  get state(): ElectionState {
    return this.current;
  }

  /** True while this candidate believes it is the leader. */
  get isLeader(): boolean {
    return this.current === 'leader';
  }

  /** The signal of the current leadership (see `Leadership.signal`); undefined when not leader. */
  get signal(): AbortSignal | undefined {
    return this.current === 'leader' ? this.hold?.signal : undefined;
  }

  /** Our key's create revision while leader. */
  get leaderRevision(): bigint | undefined {
    return this.current === 'leader' ? this.hold?.createRevision : undefined;
  }

  override on(event: 'elected', listener: (l: Leadership) => void): this;
  override on(event: 'lost', listener: (err: LeadershipLostError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  override once(event: 'elected', listener: (l: Leadership) => void): this;
  override once(event: 'lost', listener: (err: LeadershipLostError) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this;
  override once(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.once(event, listener);
  }

  /**
   * Become a candidate with `value` and wait until elected. Rejects with `WaitTimeoutError`,
   * the client's `AbortError`, or the session's error if it ends meanwhile; our candidate key
   * is then removed (etcd resigns on cancel too).
   */
  async campaign(value: string | Buffer, options: WaitOptions = {}): Promise<Leadership> {
    if (this.current !== 'idle') throw new LockBusyError(`${this.key} is ${this.current}`);
    this.session.throwIfEnded();
    this.releaseClaim = this.session.claim(this.key);
    this.current = 'campaigning';
    const scope = new WaitScope(`campaign ${this.name}`, options, [this.session.signal]);
    let createRevision: bigint | undefined;
    try {
      const ticket = await takeTicket(this.session, this.prefix, this.key, value, 1, scope.signal);
      createRevision = ticket.createRevision;
      let header = ticket.header;
      if (ticket.reused && !Buffer.from(value).equals(ticket.value ?? Buffer.alloc(0))) {
        // etcd: a campaign that finds its key already there proclaims the new value.
        const res = await this.session.client.txn({
          compare: [compare.create(this.key, '=', createRevision)],
          success: [op.put(this.key, value, { lease: this.session.leaseId })],
          signal: scope.signal,
        });
        if (!res.succeeded) throw new NotLeaderError(`${this.key} vanished while campaigning`);
        header = res.header;
      }
      if (!ticket.acquired) {
        await waitForPredecessors(this.session.client, this.prefix, createRevision, scope.signal);
        const mine = await this.session.client.getRange({ key: this.key, signal: scope.signal });
        const kv = mine.kvs[0];
        if (!kv || kv.createRevision !== createRevision) {
          scope.check();
          throw this.session.alive ? new LeadershipLostError(this.key, 'key-deleted') : new SessionExpiredError(this.key);
        }
        header = mine.header;
      }
      scope.check();
      return this.startLeading(createRevision, header);
    } catch (err) {
      const e = scope.error(err);
      if (this.session.alive) {
        await dropTicket(this.session.client, this.key, createRevision, this.session.leaseId, CLEANUP_TIMEOUT_MS).catch(() => undefined);
      }
      this.finish();
      throw e;
    } finally {
      scope.dispose();
    }
  }

  /**
   * Announce a new value without a new election (etcd's `Proclaim`). Rejects with
   * `NotLeaderError` when not leader; when the server finds our key gone, leadership is
   * declared lost too.
   */
  async proclaim(value: string | Buffer, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ResponseHeader> {
    const hold = this.hold;
    if (this.current !== 'leader' || !hold) throw new NotLeaderError(this.key);
    const res = await this.session.client.txn({
      compare: [compare.create(this.key, '=', hold.createRevision)],
      success: [op.put(this.key, value, { lease: this.session.leaseId })],
      ...options,
    });
    if (!res.succeeded) {
      hold.lose('key-deleted', undefined);
      throw new NotLeaderError(`${this.key} is gone`);
    }
    return res.header;
  }

  /** Give up leadership (delete our key if it is still ours). No-op when not leader. */
  async resign(options: { timeoutMs?: number } = {}): Promise<void> {
    const hold = this.hold;
    if (this.current !== 'leader' || !hold) {
      if (this.current === 'campaigning' || this.current === 'resigning') throw new LockBusyError(`resign during ${this.current}`);
      return;
    }
    this.current = 'resigning';
    hold.beginRelease();
    try {
      await dropTicket(this.session.client, this.key, hold.createRevision, this.session.leaseId, options.timeoutMs);
    } catch (err) {
      hold.cancelRelease();
      if (this.current === 'resigning') this.current = hold.active ? 'leader' : 'idle';
      throw err;
    }
    hold.release(new NotLeaderError('resigned'));
    this.finish();
  }

  /** The current leader, or undefined when there is none (etcd returns ErrElectionNoLeader). */
  async leader(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<LeaderInfo | undefined> {
    return Election.leader(this.session.client, this.name, options);
  }

  /** See the static `Election.observe`. */
  observe(options: { signal?: AbortSignal; onRelist?: () => void } = {}): AsyncGenerator<LeaderChange, void, undefined> {
    return Election.observe(this.session.client, this.name, options);
  }

  /** A compare that holds only while we are the leader (our key with our create revision). */
  isLeaderCompare(): Compare {
    const rev = this.leaderRevision;
    if (rev === undefined) throw new NotLeaderError(this.key);
    return compare.create(this.key, '=', rev);
  }

  /**
   * Run `ops` only if we are still the leader, checked by the server. A failed compare means
   * leadership is gone: it is declared lost and `succeeded` is false.
   */
  async txnIfLeader(ops: Op[], options: Omit<TxnCallOptions, 'compare' | 'success'> = {}): Promise<TxnResult> {
    const hold = this.hold;
    const res = await this.session.client.txn({ ...options, compare: [this.isLeaderCompare()], success: ops });
    if (!res.succeeded) hold?.lose('key-deleted', undefined);
    return res;
  }

  /** The leader of election `name`, without being a candidate. */
  static async leader(client: Client, name: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<LeaderInfo | undefined> {
    const res = await client.getRange({ key: recipePrefix(name), ...FIRST_CREATE, ...options });
    return res.kvs[0] ? toLeader(res.kvs[0]) : undefined;
  }

  /**
   * Every leader change of election `name` as an async iterable: first the current leader (or
   * `leader: undefined`), then each change of leader or of its value, and `leader: undefined`
   * whenever the last candidate disappears. Changes are reported per revision (all candidates
   * a txn touched at once), from a list-then-watch of the prefix (snapshot-watch.ts), so none
   * is missed and none repeated, also across compactions (`onRelist` is called when one forced
   * a re-read). Ends without error when `signal` aborts or the consumer breaks out of its loop.
   */
  static async *observe(
    client: Client,
    name: string,
    options: { signal?: AbortSignal; onRelist?: () => void } = {},
  ): AsyncGenerator<LeaderChange, void, undefined> {
    const state = new RangeState();
    let last: LeaderInfo | undefined;
    let emitted = false;
    try {
      for await (const update of listThenWatch(client, { key: recipePrefix(name), prefix: true, signal: options.signal, onRelist: options.onRelist })) {
        state.apply(update);
        const first = state.first();
        const leader = first ? toLeader(first) : undefined;
        if (emitted && sameLeader(last, leader)) continue;
        emitted = true;
        last = leader;
        yield { leader, revision: update.revision };
      }
    } catch (err) {
      if (err instanceof AbortError && options.signal?.aborted) return;
      throw err;
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  private startLeading(createRevision: bigint, header: ResponseHeader): Leadership {
    const hold = new Hold(this.session, this.key, createRevision, header.revision + 1n, {
      error: (reason: LostReason, cause: unknown) => new LeadershipLostError(this.key, reason, { cause }),
      lost: (err) => {
        if (this.hold !== hold) return;
        this.finish();
        this.emit('lost', err);
      },
    });
    this.hold = hold;
    this.current = 'leader';
    const leadership: Leadership = { key: this.key, createRevision, header, signal: hold.signal };
    this.emit('elected', leadership);
    return leadership;
  }

  private finish(): void {
    this.current = 'idle';
    this.hold = undefined;
    this.releaseClaim?.();
    this.releaseClaim = undefined;
  }
}
