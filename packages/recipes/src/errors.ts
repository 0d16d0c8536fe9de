/**
 * The recipes' own errors: one class per failure a caller may want to handle, each with a
 * stable `code` (`ERR_*`) from the single table below. Where etcd's concurrency package has an
 * equivalent error, our message starts with etcd's text (`mutex: session is expired`,
 * `election: not leader`, ...) so logs read the same across Go and TypeScript users.
 *
 * Errors of the etcd API itself (unavailable, deadline, aborted, compacted...) are the
 * client's classes and pass through unchanged; `AbortError` is re-exported from index.ts.
 */

/** Every code a recipe error can carry, with its message template. */
export const RECIPE_ERRORS = Object.freeze({
  ERR_SESSION_EXPIRED: 'mutex: session is expired',
  ERR_SESSION_CLOSED: 'session: closed',
  ERR_LOCK_LOST: 'mutex: lock lost',
  ERR_NOT_LOCKED: 'mutex: not locked',
  ERR_LOCK_BUSY: 'mutex: already locking',
  ERR_KEY_IN_USE: 'session: key already in use by another recipe object of this session',
  ERR_WAIT_TIMEOUT: 'wait: timed out',
  ERR_NOT_LEADER: 'election: not leader',
  ERR_LEADERSHIP_LOST: 'election: leadership lost',
  ERR_TOO_MANY_CLIENTS: 'barrier: too many clients',
  ERR_CONFIG_INVALID: 'config: invalid value',
  ERR_STM_RETRIES_EXCEEDED: 'stm: too many conflicting retries',
  ERR_REGISTRATION_LOST: 'registry: registration lost',
} as const);

export type RecipeErrorCode = keyof typeof RECIPE_ERRORS;

/** Base class of the recipes' errors. */
export class RecipeError extends Error {
  readonly code: RecipeErrorCode;

  constructor(code: RecipeErrorCode, details?: string, options?: { cause?: unknown }) {
    super(details ? `${RECIPE_ERRORS[code]}: ${details}` : RECIPE_ERRORS[code], options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * The session's lease is gone (or may be gone: its keep-alive deadline passed), so every key
 * attached to it is, or is about to be, deleted by the server. Raised when a wait (lock,
 * campaign, acquire) is interrupted by the loss, and as the reason of a session's signal.
 */
export class SessionExpiredError extends RecipeError {
  constructor(details?: string, options?: { cause?: unknown }) {
    super('ERR_SESSION_EXPIRED', details, options);
  }
}

/** The session was closed by its owner (`close()`): its lease was revoked. */
export class SessionClosedError extends RecipeError {
  constructor(details?: string) {
    super('ERR_SESSION_CLOSED', details);
  }
}

/** Why a held lock (or leadership, or semaphore slot) ended without being released. */
export type LostReason =
  /** The session's lease expired, was revoked, or its keep-alive deadline passed. */
  | 'session-lost'
  /** The session was closed while the key was held. */
  | 'session-closed'
  /** Somebody deleted the key (e.g. `etcdctl del`), or a guarded txn found it changed. */
  | 'key-deleted';

/** A lock that was held is no longer held. `reason` says why. */
export class LockLostError extends RecipeError {
  constructor(
    readonly key: string,
    readonly reason: LostReason,
    options?: { cause?: unknown },
  ) {
    super('ERR_LOCK_LOST', `${key} (${reason})`, options);
  }
}

/** The operation needs the lock to be held by this Mutex, and it is not. */
export class NotLockedError extends RecipeError {
  constructor(details?: string) {
    super('ERR_NOT_LOCKED', details);
  }
}

/** `lock()` was called while this Mutex object is already locking or holding. */
export class LockBusyError extends RecipeError {
  constructor(details?: string) {
    super('ERR_LOCK_BUSY', details);
  }
}

/**
 * Two recipe objects of one session tried to use the same key (e.g. two `Mutex` objects with
 * one session and one name). etcd's Mutex would silently let both "hold" it, since the key
 * is per lease; we refuse, because that would break mutual exclusion between them.
 */
export class KeyInUseError extends RecipeError {
  constructor(readonly key: string) {
    super('ERR_KEY_IN_USE', key);
  }
}

/** A wait (`lock`, `campaign`, `acquire`, barrier `wait`) passed its `timeoutMs`. */
export class WaitTimeoutError extends RecipeError {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super('ERR_WAIT_TIMEOUT', `${operation} after ${timeoutMs} ms`);
  }
}

/** `proclaim` or a guarded txn, but this Election is not (any more) the leader. */
export class NotLeaderError extends RecipeError {
  constructor(details?: string) {
    super('ERR_NOT_LEADER', details);
  }
}

/** Leadership that was held has ended without `resign()`. `reason` says why. */
export class LeadershipLostError extends RecipeError {
  constructor(
    readonly key: string,
    readonly reason: LostReason,
    options?: { cause?: unknown },
  ) {
    super('ERR_LEADERSHIP_LOST', `${key} (${reason})`, options);
  }
}

/** More participants than the DoubleBarrier's count entered. */
export class TooManyClientsError extends RecipeError {
  constructor(details?: string) {
    super('ERR_TOO_MANY_CLIENTS', details);
  }
}

/** A config value failed to decode or to pass the caller's parser. */
export class ConfigInvalidError extends RecipeError {
  constructor(
    readonly revision: bigint,
    details: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_CONFIG_INVALID', `at revision ${revision}: ${details}`, options);
  }
}

/** An STM transaction conflicted on every attempt up to `retriesMax`. */
export class StmRetriesExceededError extends RecipeError {
  constructor(readonly attempts: number) {
    super('ERR_STM_RETRIES_EXCEEDED', `${attempts} attempts`);
  }
}

/** A service registration's session was lost, so the instance has (or will) vanish. */
export class RegistrationLostError extends RecipeError {
  constructor(
    readonly key: string,
    readonly reason: LostReason,
    options?: { cause?: unknown },
  ) {
    super('ERR_REGISTRATION_LOST', `${key} (${reason})`, options);
  }
}
