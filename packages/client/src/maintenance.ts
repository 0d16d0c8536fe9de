/**
 * The Maintenance service: status, hashKV and the alarm list (idempotent, so they fail over),
 * and moveLeader (leadership transfer).
 *
 * Some questions are about one member, not about the cluster: "what is *this* member's raft
 * index", "which endpoint is the leader". For those, `status({ endpoint })` asks exactly that
 * endpoint (no failover: another member's answer would be a different answer). moveLeader must
 * reach the leader (anyone else answers "etcdserver: not leader"), so without an endpoint it
 * asks every endpoint's status first, as etcdctl's move-leader does, and sends the request to
 * the one that says it leads.
 */
import * as grpc from '@grpc/grpc-js';
import type { ConnectionPool } from './connection';
import { AbortError, DeadlineExceededError, EtcdError, LeaderEndpointNotFoundError, Status, fromGrpcError } from './errors';
import { fromWire, int64ToWire, uint64ToWire } from './int64';
import { decodeHeader } from './ops';
import type { CallOptions, Int64Input, ResponseHeader } from './types';
import type { UnaryCallback, WireHashKVResponse, WireResponseHeader, WireStatusResponse } from './wire';

const READ = { idempotent: true } as const;

export interface StatusResult {
  header: ResponseHeader;
  /** Server version, e.g. "3.4.23". */
  version: string;
  dbSize: bigint;
  /** Member ID of the current leader (0n when there is none). */
  leader: bigint;
  raftIndex: bigint;
  raftTerm: bigint;
  raftAppliedIndex: bigint;
  errors: string[];
  dbSizeInUse: bigint;
  isLearner: boolean;
}

export interface HashKVResult {
  header: ResponseHeader;
  /** Hash of the key-value store up to the revision (uint32). */
  hash: number;
  compactRevision: bigint;
}

/** Options for calls that may be aimed at one endpoint. */
export interface EndpointCallOptions extends CallOptions {
  /**
   * Ask this endpoint only (an entry of the client's `endpoints`, or its index): no failover.
   * The call waits for the endpoint to connect until its deadline.
   */
  endpoint?: string | number;
}

export type AlarmName = 'NONE' | 'NOSPACE' | 'CORRUPT' | 'UNKNOWN';

export interface AlarmMember {
  /** The member that raised the alarm. */
  memberId: bigint;
  alarm: AlarmName;
}

export interface AlarmListResult {
  header: ResponseHeader;
  alarms: AlarmMember[];
}

export interface MoveLeaderResult {
  /** etcd 3.4 sends no header with MoveLeaderResponse: undefined then. */
  header: ResponseHeader | undefined;
  /** The member that led when the transfer was asked for. */
  leader: bigint;
  /** The member asked to take over. */
  target: bigint;
  /** The endpoint the request was sent to (the leader's). */
  endpoint: string;
}

interface WireAlarmResponse {
  header: WireResponseHeader | null;
  alarms: { memberID: string; alarm: number }[];
}

interface WireMoveLeaderResponse {
  header: WireResponseHeader | null;
}

const ALARM_NAMES: readonly AlarmName[] = ['NONE', 'NOSPACE', 'CORRUPT'];

function decodeStatus(r: WireStatusResponse): StatusResult {
  return {
    header: decodeHeader(r.header),
    version: r.version,
    dbSize: fromWire(r.dbSize),
    leader: fromWire(r.leader),
    raftIndex: fromWire(r.raftIndex),
    raftTerm: fromWire(r.raftTerm),
    raftAppliedIndex: fromWire(r.raftAppliedIndex),
    errors: r.errors ?? [],
    dbSizeInUse: fromWire(r.dbSizeInUse),
    isLearner: !!r.isLearner,
  };
}

function callOf(o: CallOptions | undefined): CallOptions {
  return { signal: o?.signal, timeoutMs: o?.timeoutMs };
}

export class Maintenance {
  constructor(private readonly pool: ConnectionPool) {}

  /** Status of the member that answers (the active endpoint), or of `options.endpoint`. */
  async status(options: EndpointCallOptions = {}): Promise<StatusResult> {
    if (options.endpoint !== undefined) {
      return decodeStatus(await this.pinned<object, WireStatusResponse>(options.endpoint, 'Status', {}, this.pool.deadlineFor(options), options.signal));
    }
    return decodeStatus(await this.pool.unary<object, WireStatusResponse>('maintenance', 'Status', {}, READ, callOf(options)));
  }

  /** Hash of the KV store at `revision` (0 or absent: latest), for consistency checks between members. */
  async hashKV(revision: Int64Input = 0, options: CallOptions = {}): Promise<HashKVResult> {
    const req = { revision: int64ToWire(revision, 'revision') };
    const r = await this.pool.unary<typeof req, WireHashKVResponse>('maintenance', 'HashKV', req, READ, callOf(options));
    return { header: decodeHeader(r.header), hash: r.hash >>> 0, compactRevision: fromWire(r.compact_revision) };
  }

  /** The active alarms (NOSPACE, CORRUPT) of every member: `Alarm` with action GET. */
  async alarmList(options: CallOptions = {}): Promise<AlarmListResult> {
    const req = { action: 0, memberID: '0', alarm: 0 };
    const r = await this.pool.unary<typeof req, WireAlarmResponse>('maintenance', 'Alarm', req, READ, callOf(options));
    return {
      header: decodeHeader(r.header),
      alarms: (r.alarms ?? []).map((a) => ({ memberId: fromWire(a.memberID), alarm: ALARM_NAMES[a.alarm] ?? 'UNKNOWN' })),
    };
  }

  /**
   * Transfer leadership to member `targetId` (a started voter; otherwise "etcdserver: bad
   * leader transferee"). Sent to `options.endpoint` when given, else to whichever endpoint
   * says it leads; `LeaderEndpointNotFoundError` when none of the endpoints does. Not
   * retried: an UNAVAILABLE answer may come after the transfer happened.
   */
  async moveLeader(targetId: Int64Input, options: EndpointCallOptions = {}): Promise<MoveLeaderResult> {
    const req = { targetID: uint64ToWire(targetId, 'targetId') };
    const deadline = this.pool.deadlineFor(options);
    let endpoint = options.endpoint;
    let leader: bigint;
    if (endpoint === undefined) {
      const found = await this.findLeader(deadline, options.signal);
      endpoint = found.endpoint;
      leader = found.leader;
    } else {
      leader = (await this.status({ ...options, endpoint, timeoutMs: Math.max(1, deadline - Date.now()) })).leader;
    }
    const r = await this.pinned<typeof req, WireMoveLeaderResponse>(endpoint, 'MoveLeader', req, deadline, options.signal);
    return {
      header: r.header ? decodeHeader(r.header) : undefined,
      leader,
      target: BigInt(req.targetID),
      endpoint: this.address(endpoint),
    };
  }

  /** Ask every endpoint's status at once; the first that leads wins. */
  private async findLeader(deadline: number, signal: AbortSignal | undefined): Promise<{ endpoint: number; leader: bigint }> {
    const endpoints = this.pool.options.endpoints;
    const failures: unknown[] = [];
    const found = await new Promise<{ endpoint: number; leader: bigint } | undefined>((resolve) => {
      let pending = endpoints.length;
      endpoints.forEach((_e, i) => {
        this.pinned<object, WireStatusResponse>(i, 'Status', {}, deadline, signal).then(
          (r) => {
            const s = decodeStatus(r);
            if (s.leader !== 0n && s.leader === s.header.memberId) resolve({ endpoint: i, leader: s.leader });
            if (--pending === 0) resolve(undefined);
          },
          (err: unknown) => {
            failures.push(err);
            if (--pending === 0) resolve(undefined);
          },
        );
      });
    });
    if (found) return found;
    if (signal?.aborted) throw new AbortError(signal.reason);
    throw new LeaderEndpointNotFoundError([...endpoints], failures[0]);
  }

  private address(endpoint: string | number): string {
    return typeof endpoint === 'number' ? this.pool.options.endpoints[endpoint] : endpoint;
  }

  /** One unary Maintenance call to exactly this endpoint, waiting for it to connect until the deadline. */
  private pinned<Req, Res>(endpoint: string | number, method: string, request: Req, deadline: number, signal: AbortSignal | undefined): Promise<Res> {
    if (signal?.aborted) return Promise.reject(new AbortError(signal.reason));
    const client = this.pool.raw(endpoint).maintenance as unknown as Record<string, unknown>;
    const fn = client[method] as (...a: unknown[]) => grpc.ClientUnaryCall;
    const address = this.address(endpoint);
    return new Promise<Res>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const callback: UnaryCallback<Res> = (err, res) => {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
        if (!err) return resolve(res as Res);
        if (signal?.aborted && err.code === Status.CANCELLED) return reject(new AbortError(signal.reason));
        if (err.code === Status.DEADLINE_EXCEEDED && !err.details.startsWith('etcdserver')) {
          return reject(new DeadlineExceededError(`deadline exceeded calling maintenance.${method} on ${address}`, { cause: err }));
        }
        reject(fromGrpcError(err) as EtcdError);
      };
      // waitForReady: wait out a (re)connect until the deadline instead of failing at once.
      const call = fn.call(client, request, new grpc.Metadata({ waitForReady: true }), { deadline }, callback);
      if (signal) {
        onAbort = () => call.cancel();
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }
}
