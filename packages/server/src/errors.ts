/**
 * The error catalogue: every error the member returns to a client, with etcd's gRPC status
 * code and its exact text. Clients (etcdctl, clientv3, the etcd3 npm client) match on the
 * text, so these strings are part of the wire protocol; they are copied from etcd's
 * api/v3rpc/rpctypes. `retryable` marks errors a client may safely retry.
 */
export const enum GrpcCode {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

export interface ErrorSpec {
  readonly code: GrpcCode;
  readonly message: string;
  readonly retryable: boolean;
}

const spec = (code: GrpcCode, message: string, retryable = false): ErrorSpec => ({ code, message, retryable });

export const ERRORS = {
  emptyKey: spec(GrpcCode.InvalidArgument, 'etcdserver: key is not provided'),
  keyNotFound: spec(GrpcCode.InvalidArgument, 'etcdserver: key not found'),
  valueProvided: spec(GrpcCode.InvalidArgument, 'etcdserver: value is provided'),
  leaseProvided: spec(GrpcCode.InvalidArgument, 'etcdserver: lease is provided'),
  tooManyOps: spec(GrpcCode.InvalidArgument, 'etcdserver: too many operations in txn request'),
  duplicateKey: spec(GrpcCode.InvalidArgument, 'etcdserver: duplicate key given in txn request'),
  compacted: spec(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: spec(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: spec(GrpcCode.ResourceExhausted, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: spec(GrpcCode.NotFound, 'etcdserver: requested lease not found'),
  leaseExist: spec(GrpcCode.FailedPrecondition, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: spec(GrpcCode.OutOfRange, 'etcdserver: too large lease TTL'),
  memberExist: spec(GrpcCode.FailedPrecondition, 'etcdserver: member ID already exist'),
  peerURLExist: spec(GrpcCode.FailedPrecondition, 'etcdserver: Peer URLs already exists'),
  memberNotEnoughStarted: spec(GrpcCode.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members'),
  memberBadURLs: spec(GrpcCode.InvalidArgument, 'etcdserver: given member URLs are invalid'),
  memberNotFound: spec(GrpcCode.NotFound, 'etcdserver: member not found'),
  memberNotLearner: spec(GrpcCode.FailedPrecondition, 'etcdserver: can only promote a learner member'),
  learnerNotReady: spec(GrpcCode.FailedPrecondition, 'etcdserver: can only promote a learner member which is in sync with leader'),
  tooManyLearners: spec(GrpcCode.FailedPrecondition, 'etcdserver: too many learner members in cluster'),
  requestTooLarge: spec(GrpcCode.InvalidArgument, 'etcdserver: request is too large'),
  tooManyRequests: spec(GrpcCode.ResourceExhausted, 'etcdserver: too many requests', true),
  rootUserNotExist: spec(GrpcCode.FailedPrecondition, 'etcdserver: root user does not exist'),
  authNotEnabled: spec(GrpcCode.FailedPrecondition, 'etcdserver: authentication is not enabled'),
  permissionDenied: spec(GrpcCode.PermissionDenied, 'etcdserver: permission denied'),
  noLeader: spec(GrpcCode.Unavailable, 'etcdserver: no leader', true),
  notLeader: spec(GrpcCode.FailedPrecondition, 'etcdserver: not leader', true),
  leaderChanged: spec(GrpcCode.Unavailable, 'etcdserver: leader changed', true),
  notCapable: spec(GrpcCode.Unavailable, 'etcdserver: not capable'),
  stopped: spec(GrpcCode.Unavailable, 'etcdserver: server stopped', true),
  timeout: spec(GrpcCode.Unavailable, 'etcdserver: request timed out', true),
  timeoutDueToLeaderFail: spec(GrpcCode.Unavailable, 'etcdserver: request timed out, possibly due to previous leader failure', true),
  timeoutDueToConnectionLost: spec(GrpcCode.Unavailable, 'etcdserver: request timed out, possibly due to connection lost', true),
  unhealthy: spec(GrpcCode.Unavailable, 'etcdserver: unhealthy cluster', true),
  corrupt: spec(GrpcCode.DataLoss, 'etcdserver: corrupt cluster'),
  learnerNotSupported: spec(GrpcCode.Unavailable, 'etcdserver: rpc not supported for learner', true),
  badLeaderTransferee: spec(GrpcCode.FailedPrecondition, 'etcdserver: bad leader transferee'),
  unimplemented: spec(GrpcCode.Unimplemented, 'etcdserver: not implemented in coord yet'),
} as const;

export type ErrorName = keyof typeof ERRORS;

/** An error that travels to the client as a gRPC status with etcd's code and text. */
export class EtcdError extends Error {
  readonly code: GrpcCode;
  readonly retryable: boolean;
  constructor(readonly name_: ErrorName, detail?: string) {
    const s = ERRORS[name_];
    super(detail ? `${s.message}: ${detail}` : s.message);
    this.name = 'EtcdError';
    this.code = s.code;
    this.retryable = s.retryable;
  }
}

export const etcdError = (name: ErrorName): EtcdError => new EtcdError(name);

/**
 * Storage-level (mvcc) errors, before the API layer maps them. Kept apart because apply
 * returns them as values: a compacted read inside a txn is an answer, not a crash.
 */
export class MvccCompactedError extends EtcdError {
  constructor() {
    super('compacted');
  }
}
export class MvccFutureRevError extends EtcdError {
  constructor() {
    super('futureRev');
  }
}
