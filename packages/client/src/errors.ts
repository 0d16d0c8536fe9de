/**
 * The client's error catalogue: one class per etcd server message, microsoft/etcd3 style.
 * etcd clients match errors on the exact `etcdserver: ...` text (the gRPC code alone is too
 * coarse: UNAVAILABLE means "no leader", "leader changed", "request timed out", ...), so we
 * do too. The texts are those of etcd 3.4's `api/v3rpc/rpctypes/error.go`; a test checks that
 * each one occurs in the reference etcd binary and that each maps to its class.
 *
 * Every error extends `EtcdError` and carries `.code` (the gRPC status number) and
 * `.details` (the status text the server sent, or ours for client-side failures).
 */
import { status as Status } from '@grpc/grpc-js';

export { Status };

export class EtcdError extends Error {
  /** gRPC status code (`@grpc/grpc-js` `status`). */
  readonly code: number;
  /** The gRPC status details: etcd's message text for server errors. */
  readonly details: string;

  constructor(details: string, code: number = Status.UNKNOWN, options?: { cause?: unknown }) {
    super(details, options);
    this.code = code;
    this.details = details;
    this.name = new.target.name;
  }
}

// ---- client-side and transport errors -------------------------------------------------

/** No endpoint could be reached, or the transport failed (gRPC UNAVAILABLE without an etcd text). */
export class UnavailableError extends EtcdError {
  constructor(details = 'no endpoint is available', options?: { cause?: unknown }) {
    super(details, Status.UNAVAILABLE, options);
  }
}

/** The call's deadline (`timeoutMs` / `callTimeoutMs`) passed before the server answered. */
export class DeadlineExceededError extends EtcdError {
  constructor(details = 'deadline exceeded', options?: { cause?: unknown }) {
    super(details, Status.DEADLINE_EXCEEDED, options);
  }
}

/** The caller's AbortSignal fired; the gRPC call was cancelled. `.cause` is `signal.reason`. */
export class AbortError extends EtcdError {
  constructor(reason?: unknown) {
    super('the operation was aborted', Status.CANCELLED, { cause: reason });
  }
}

/** The client was closed; no further calls are possible. */
export class ClientClosedError extends EtcdError {
  constructor() {
    super('the client is closed', Status.CANCELLED);
  }
}

/** gRPC refused a message over its size limit ("grpc: received message larger than max ..."). */
export class MessageTooLargeError extends EtcdError {}

/**
 * A watch could not continue because the revision it had to resume from (its start revision,
 * or the revision after the last one it delivered) has been compacted away. Events in
 * between are gone: the caller must re-read the current state and watch again from
 * `compactRevision` or later. etcd sends this as a `canceled` WatchResponse with
 * `compact_revision` set, not as a gRPC status.
 */
export class WatchCompactedError extends EtcdError {
  /** The server's compaction revision: the oldest revision still available. */
  readonly compactRevision: bigint;
  /** The revision the watch asked to (re)start from. */
  readonly requestedRevision: bigint;

  constructor(compactRevision: bigint, requestedRevision: bigint) {
    super(
      `etcdserver: mvcc: required revision has been compacted (watch from ${requestedRevision}, compacted at ${compactRevision})`,
      Status.OUT_OF_RANGE,
    );
    this.compactRevision = compactRevision;
    this.requestedRevision = requestedRevision;
  }
}

/** Why a kept-alive lease was declared lost. */
export type LeaseLostReason =
  /** A keep-alive was answered with TTL 0: the lease expired or was revoked (by anyone). */
  | 'expired'
  /** No keep-alive was acknowledged in time; the server may already have expired it. */
  | 'deadline'
  /** The grant itself failed; the lease never existed. */
  | 'grant-failed';

/**
 * A lease the client was keeping alive can no longer be assumed to exist. Raised on
 * `lease.signal` (as its reason) and as the `lost` event; never thrown by the server.
 */
export class LeaseLostError extends EtcdError {
  readonly leaseId: bigint | undefined;
  readonly reason: LeaseLostReason;

  constructor(leaseId: bigint | undefined, reason: LeaseLostReason, details: string, options?: { cause?: unknown }) {
    const cause = options?.cause;
    const code =
      reason === 'expired' ? Status.NOT_FOUND : reason === 'deadline' ? Status.DEADLINE_EXCEEDED : cause instanceof EtcdError ? cause.code : Status.UNKNOWN;
    super(details, code, options);
    this.leaseId = leaseId;
    this.reason = reason;
  }
}

/**
 * A peer URL given to memberAdd/memberUpdate is not one etcd accepts (etcd's `types.NewURLs`,
 * which clientv3 checks before sending: http, https, unix or unixs, `host:port`, no path).
 * Client-side: nothing was sent. `details` is Go's text, as etcdctl prints it.
 */
export class InvalidPeerURLsError extends EtcdError {
  constructor(details: string) {
    super(details, Status.INVALID_ARGUMENT);
  }
}

/**
 * moveLeader found no endpoint that says it leads (none answered as leader: the leader is not
 * among the endpoints, there is no leader right now, or the endpoints did not answer). The text
 * is etcdctl's; `.cause` is the first endpoint failure, if any.
 */
export class LeaderEndpointNotFoundError extends EtcdError {
  readonly endpoints: readonly string[];

  constructor(endpoints: readonly string[], cause?: unknown) {
    super(`no leader endpoint given at [${endpoints.join(' ')}]`, Status.FAILED_PRECONDITION, cause === undefined ? undefined : { cause });
    this.endpoints = Object.freeze([...endpoints]);
  }
}

// ---- etcd server errors: one class per message ----------------------------------------

export class EmptyKeyError extends EtcdError {}
export class KeyNotFoundError extends EtcdError {}
export class ValueProvidedError extends EtcdError {}
export class LeaseProvidedError extends EtcdError {}
export class TooManyOpsError extends EtcdError {}
export class DuplicateKeyError extends EtcdError {}
export class CompactedError extends EtcdError {}
export class FutureRevisionError extends EtcdError {}
export class NoSpaceError extends EtcdError {}

export class LeaseNotFoundError extends EtcdError {}
export class LeaseExistsError extends EtcdError {}
export class LeaseTTLTooLargeError extends EtcdError {}

export class WatchCanceledError extends EtcdError {}

export class MemberExistsError extends EtcdError {}
export class PeerURLExistsError extends EtcdError {}
export class MemberNotEnoughStartedError extends EtcdError {}
export class MemberBadURLsError extends EtcdError {}
/**
 * "etcdserver: member not found". etcd also answers with this text for a member that was
 * removed (its internal `membership.ErrIDRemoved`, mapped to ErrGRPCMemberNotFound in
 * `v3rpc/util.go`): there is no separate "ID removed" text on the wire to match.
 */
export class MemberNotFoundError extends EtcdError {}
export class MemberNotLearnerError extends EtcdError {}
export class LearnerNotReadyError extends EtcdError {}
export class TooManyLearnersError extends EtcdError {}

export class RequestTooLargeError extends EtcdError {}
export class TooManyRequestsError extends EtcdError {}

export class RootUserNotExistError extends EtcdError {}
export class RootRoleNotExistError extends EtcdError {}
export class UserAlreadyExistsError extends EtcdError {}
export class UserEmptyError extends EtcdError {}
export class UserNotFoundError extends EtcdError {}
export class RoleAlreadyExistsError extends EtcdError {}
export class RoleNotFoundError extends EtcdError {}
export class RoleEmptyError extends EtcdError {}
export class AuthFailedError extends EtcdError {}
export class PermissionDeniedError extends EtcdError {}
export class RoleNotGrantedError extends EtcdError {}
export class PermissionNotGrantedError extends EtcdError {}
export class AuthNotEnabledError extends EtcdError {}
export class InvalidAuthTokenError extends EtcdError {}
export class InvalidAuthMgmtError extends EtcdError {}

export class NoLeaderError extends EtcdError {}
export class NotLeaderError extends EtcdError {}
export class LeaderChangedError extends EtcdError {}
export class NotCapableError extends EtcdError {}
export class StoppedError extends EtcdError {}
export class TimeoutError extends EtcdError {}
export class TimeoutDueToLeaderFailError extends EtcdError {}
export class TimeoutDueToConnectionLostError extends EtcdError {}
export class UnhealthyError extends EtcdError {}
export class CorruptError extends EtcdError {}
export class NotSupportedForLearnerError extends EtcdError {}
export class BadLeaderTransfereeError extends EtcdError {}

type EtcdErrorClass = new (details: string, code?: number, options?: { cause?: unknown }) => EtcdError;

export interface CatalogueEntry {
  /** etcd's exact status text. */
  readonly message: string;
  /** The gRPC status etcd sends it with. */
  readonly code: Status;
  readonly errorClass: EtcdErrorClass;
}

const entry = (message: string, code: Status, errorClass: EtcdErrorClass): CatalogueEntry =>
  Object.freeze({ message, code, errorClass });

/** etcd 3.4 `rpctypes.ErrGRPC*`, in the order of error.go. */
export const ERROR_CATALOGUE: readonly CatalogueEntry[] = Object.freeze([
  entry('etcdserver: key is not provided', Status.INVALID_ARGUMENT, EmptyKeyError),
  entry('etcdserver: key not found', Status.INVALID_ARGUMENT, KeyNotFoundError),
  entry('etcdserver: value is provided', Status.INVALID_ARGUMENT, ValueProvidedError),
  entry('etcdserver: lease is provided', Status.INVALID_ARGUMENT, LeaseProvidedError),
  entry('etcdserver: too many operations in txn request', Status.INVALID_ARGUMENT, TooManyOpsError),
  entry('etcdserver: duplicate key given in txn request', Status.INVALID_ARGUMENT, DuplicateKeyError),
  entry('etcdserver: mvcc: required revision has been compacted', Status.OUT_OF_RANGE, CompactedError),
  entry('etcdserver: mvcc: required revision is a future revision', Status.OUT_OF_RANGE, FutureRevisionError),
  entry('etcdserver: mvcc: database space exceeded', Status.RESOURCE_EXHAUSTED, NoSpaceError),

  entry('etcdserver: requested lease not found', Status.NOT_FOUND, LeaseNotFoundError),
  entry('etcdserver: lease already exists', Status.FAILED_PRECONDITION, LeaseExistsError),
  entry('etcdserver: too large lease TTL', Status.OUT_OF_RANGE, LeaseTTLTooLargeError),

  entry('etcdserver: watch canceled', Status.CANCELLED, WatchCanceledError),

  entry('etcdserver: member ID already exist', Status.FAILED_PRECONDITION, MemberExistsError),
  entry('etcdserver: Peer URLs already exists', Status.FAILED_PRECONDITION, PeerURLExistsError),
  entry('etcdserver: re-configuration failed due to not enough started members', Status.FAILED_PRECONDITION, MemberNotEnoughStartedError),
  entry('etcdserver: given member URLs are invalid', Status.INVALID_ARGUMENT, MemberBadURLsError),
  entry('etcdserver: member not found', Status.NOT_FOUND, MemberNotFoundError),
  entry('etcdserver: can only promote a learner member', Status.FAILED_PRECONDITION, MemberNotLearnerError),
  entry('etcdserver: can only promote a learner member which is in sync with leader', Status.FAILED_PRECONDITION, LearnerNotReadyError),
  entry('etcdserver: too many learner members in cluster', Status.FAILED_PRECONDITION, TooManyLearnersError),

  entry('etcdserver: request is too large', Status.INVALID_ARGUMENT, RequestTooLargeError),
  entry('etcdserver: too many requests', Status.RESOURCE_EXHAUSTED, TooManyRequestsError),

  entry('etcdserver: root user does not exist', Status.FAILED_PRECONDITION, RootUserNotExistError),
  entry('etcdserver: root user does not have root role', Status.FAILED_PRECONDITION, RootRoleNotExistError),
  entry('etcdserver: user name already exists', Status.FAILED_PRECONDITION, UserAlreadyExistsError),
  entry('etcdserver: user name is empty', Status.INVALID_ARGUMENT, UserEmptyError),
  entry('etcdserver: user name not found', Status.FAILED_PRECONDITION, UserNotFoundError),
  entry('etcdserver: role name already exists', Status.FAILED_PRECONDITION, RoleAlreadyExistsError),
  entry('etcdserver: role name not found', Status.FAILED_PRECONDITION, RoleNotFoundError),
  entry('etcdserver: role name is empty', Status.INVALID_ARGUMENT, RoleEmptyError),
  entry('etcdserver: authentication failed, invalid user ID or password', Status.INVALID_ARGUMENT, AuthFailedError),
  entry('etcdserver: permission denied', Status.PERMISSION_DENIED, PermissionDeniedError),
  entry('etcdserver: role is not granted to the user', Status.FAILED_PRECONDITION, RoleNotGrantedError),
  entry('etcdserver: permission is not granted to the role', Status.FAILED_PRECONDITION, PermissionNotGrantedError),
  entry('etcdserver: authentication is not enabled', Status.FAILED_PRECONDITION, AuthNotEnabledError),
  entry('etcdserver: invalid auth token', Status.UNAUTHENTICATED, InvalidAuthTokenError),
  entry('etcdserver: invalid auth management', Status.INVALID_ARGUMENT, InvalidAuthMgmtError),

  entry('etcdserver: no leader', Status.UNAVAILABLE, NoLeaderError),
  entry('etcdserver: not leader', Status.FAILED_PRECONDITION, NotLeaderError),
  entry('etcdserver: leader changed', Status.UNAVAILABLE, LeaderChangedError),
  entry('etcdserver: not capable', Status.UNAVAILABLE, NotCapableError),
  entry('etcdserver: server stopped', Status.UNAVAILABLE, StoppedError),
  entry('etcdserver: request timed out', Status.UNAVAILABLE, TimeoutError),
  entry('etcdserver: request timed out, possibly due to previous leader failure', Status.UNAVAILABLE, TimeoutDueToLeaderFailError),
  entry('etcdserver: request timed out, possibly due to connection lost', Status.UNAVAILABLE, TimeoutDueToConnectionLostError),
  entry('etcdserver: unhealthy cluster', Status.UNAVAILABLE, UnhealthyError),
  entry('etcdserver: corrupt cluster', Status.DATA_LOSS, CorruptError),
  entry('etcdserver: rpc not supported for learner', Status.UNAVAILABLE, NotSupportedForLearnerError),
  entry('etcdserver: bad leader transferee', Status.FAILED_PRECONDITION, BadLeaderTransfereeError),
]);

const BY_MESSAGE = new Map<string, CatalogueEntry>(ERROR_CATALOGUE.map((e) => [e.message, e]));
// Longest first, so "request timed out, possibly due to ..." wins over "request timed out".
const BY_LENGTH = [...ERROR_CATALOGUE].sort((a, b) => b.message.length - a.message.length);

/** What we need from a gRPC failure (`@grpc/grpc-js` `ServiceError` has these). */
export interface GrpcStatusLike {
  code?: number;
  details?: string;
  message?: string;
}

/**
 * Map a gRPC failure to the catalogue. The match is on etcd's text: exact first, then the
 * longest catalogue text the details contain (a proxy may wrap the message). Unknown texts
 * fall back by gRPC code (UNAVAILABLE and DEADLINE_EXCEEDED have their own classes) and
 * finally to a plain `EtcdError` that keeps the code and details.
 */
export function fromGrpcError(err: unknown): EtcdError {
  if (err instanceof EtcdError) return err;
  const e = (err ?? {}) as GrpcStatusLike;
  const code = typeof e.code === 'number' ? e.code : Status.UNKNOWN;
  const details = typeof e.details === 'string' ? e.details : typeof e.message === 'string' ? e.message : String(err);
  const options = { cause: err };

  const found = BY_MESSAGE.get(details) ?? BY_LENGTH.find((c) => details.includes(c.message));
  if (found) return new found.errorClass(details, code, options);

  if (/received message larger than max/i.test(details)) return new MessageTooLargeError(details, code, options);
  if (code === Status.UNAVAILABLE) return new UnavailableError(details, options);
  if (code === Status.DEADLINE_EXCEEDED) return new DeadlineExceededError(details, options);
  return new EtcdError(details, code, options);
}
