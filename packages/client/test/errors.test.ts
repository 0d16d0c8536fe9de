/**
 * Goal: every etcd server message maps to its own error class, with the gRPC code and the
 * details kept, and the catalogue stays in step with etcd itself.
 * Method: feed `fromGrpcError` status objects shaped like grpc-js `ServiceError`s (exact text,
 * wrapped text, unknown text, each fallback code); check each catalogue text is present in the
 * reference etcd binary (/usr/bin/etcd, 3.4), so a typo cannot hide in both code and test.
 */
import * as fs from 'node:fs';
import {
  AbortError,
  CompactedError,
  DeadlineExceededError,
  DuplicateKeyError,
  ERROR_CATALOGUE,
  EmptyKeyError,
  EtcdError,
  FutureRevisionError,
  KeyNotFoundError,
  LeaseNotFoundError,
  MessageTooLargeError,
  NoLeaderError,
  RequestTooLargeError,
  Status,
  TimeoutDueToLeaderFailError,
  TimeoutError,
  TooManyOpsError,
  UnavailableError,
  fromGrpcError,
} from '../src/errors';
import { ETCD_BIN } from './helpers/etcd';

const grpcError = (code: number, details: string) =>
  Object.assign(new Error(`${code} X: ${details}`), { code, details, metadata: undefined });

describe('fromGrpcError', () => {
  it.each([
    ['etcdserver: mvcc: required revision has been compacted', Status.OUT_OF_RANGE, CompactedError],
    ['etcdserver: mvcc: required revision is a future revision', Status.OUT_OF_RANGE, FutureRevisionError],
    ['etcdserver: request is too large', Status.INVALID_ARGUMENT, RequestTooLargeError],
    ['etcdserver: duplicate key given in txn request', Status.INVALID_ARGUMENT, DuplicateKeyError],
    ['etcdserver: too many operations in txn request', Status.INVALID_ARGUMENT, TooManyOpsError],
    ['etcdserver: key is not provided', Status.INVALID_ARGUMENT, EmptyKeyError],
    ['etcdserver: key not found', Status.INVALID_ARGUMENT, KeyNotFoundError],
    ['etcdserver: requested lease not found', Status.NOT_FOUND, LeaseNotFoundError],
    ['etcdserver: no leader', Status.UNAVAILABLE, NoLeaderError],
    ['etcdserver: request timed out', Status.UNAVAILABLE, TimeoutError],
  ])('maps %j to its class', (text, code, cls) => {
    const e = fromGrpcError(grpcError(code, text));
    expect(e).toBeInstanceOf(cls);
    expect(e).toBeInstanceOf(EtcdError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe(code);
    expect(e.details).toBe(text);
    expect(e.message).toBe(text);
    expect(e.name).toBe(cls.name);
  });

  it('maps every catalogue entry to its own class, keeping the code', () => {
    const classes = new Set<unknown>();
    for (const entry of ERROR_CATALOGUE) {
      const e = fromGrpcError(grpcError(entry.code, entry.message));
      expect(e.constructor).toBe(entry.errorClass);
      expect(e.code).toBe(entry.code);
      classes.add(entry.errorClass);
    }
    // One class per message: no two messages share a class.
    expect(classes.size).toBe(ERROR_CATALOGUE.length);
  });

  it('prefers the longest catalogue text when the details wrap a message', () => {
    const long = 'etcdserver: request timed out, possibly due to previous leader failure';
    expect(fromGrpcError(grpcError(Status.UNAVAILABLE, long))).toBeInstanceOf(TimeoutDueToLeaderFailError);
    const wrapped = fromGrpcError(grpcError(Status.UNAVAILABLE, `proxy: ${long}`));
    expect(wrapped).toBeInstanceOf(TimeoutDueToLeaderFailError);
    expect(wrapped.details).toBe(`proxy: ${long}`);
    expect(fromGrpcError(grpcError(Status.UNAVAILABLE, 'rpc error: etcdserver: request timed out'))).toBeInstanceOf(TimeoutError);
  });

  it('falls back on the gRPC code for unknown texts', () => {
    const unavailable = fromGrpcError(grpcError(Status.UNAVAILABLE, 'No connection established'));
    expect(unavailable).toBeInstanceOf(UnavailableError);
    expect(unavailable.code).toBe(Status.UNAVAILABLE);
    expect(fromGrpcError(grpcError(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'))).toBeInstanceOf(DeadlineExceededError);
    const tooBig = fromGrpcError(grpcError(Status.RESOURCE_EXHAUSTED, 'grpc: received message larger than max (3 vs. 2)'));
    expect(tooBig).toBeInstanceOf(MessageTooLargeError);
    const other = fromGrpcError(grpcError(Status.PERMISSION_DENIED, 'something else'));
    expect(other.constructor).toBe(EtcdError);
    expect(other.code).toBe(Status.PERMISSION_DENIED);
    expect(other.details).toBe('something else');
  });

  it('keeps the original error as cause and passes EtcdErrors through', () => {
    const original = grpcError(Status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted');
    const e = fromGrpcError(original);
    expect(e.cause).toBe(original);
    expect(fromGrpcError(e)).toBe(e);
    const fromPlain = fromGrpcError(new Error('boom'));
    expect(fromPlain.code).toBe(Status.UNKNOWN);
    expect(fromPlain.details).toBe('boom');
  });

  it('gives AbortError the CANCELLED code and the signal reason as cause', () => {
    const reason = new Error('stop');
    const e = new AbortError(reason);
    expect(e.name).toBe('AbortError');
    expect(e.code).toBe(Status.CANCELLED);
    expect(e.cause).toBe(reason);
  });
});

const haveEtcd = fs.existsSync(ETCD_BIN);
(haveEtcd ? describe : describe.skip)('catalogue against the reference etcd binary', () => {
  it('every message text occurs verbatim in etcd', () => {
    const binary = fs.readFileSync(ETCD_BIN).toString('latin1');
    const missing = ERROR_CATALOGUE.filter((e) => !binary.includes(e.message)).map((e) => e.message);
    expect(missing).toEqual([]);
  });
});
