/**
 * Operating errors of the Raft core: typed values a caller is expected to handle
 * (a proposal dropped because there is no leader, a compacted index asked of storage).
 * A broken invariant is not one of these: it is an `assertion failed` Error from
 * `util/assert` and means a bug.
 */
export type RaftErrorCode =
  /** The proposal (or read, or transfer) was not accepted: no leader known, transfer in progress, limit reached, … */
  | 'ERR_PROPOSAL_DROPPED'
  /** A configuration change is already pending, or the leader has not yet committed an entry of its term. */
  | 'ERR_CONF_CHANGE_PENDING'
  /** The configuration change is not valid against the current configuration. */
  | 'ERR_CONF_CHANGE_INVALID'
  /** A local message type was given to `step` (only the node itself makes those). */
  | 'ERR_STEP_LOCAL_MSG'
  /** A message from a peer that is not in the configuration was given to `step`. */
  | 'ERR_STEP_PEER_NOT_FOUND'
  /** Storage: the requested index is older than the first available (compacted into a snapshot). */
  | 'ERR_COMPACTED'
  /** Storage: the requested index is newer than the last entry. */
  | 'ERR_UNAVAILABLE'
  /** Storage: the snapshot given is older than the one held. */
  | 'ERR_SNAP_OUT_OF_DATE'
  /** Configuration given to the node is invalid. */
  | 'ERR_CONFIG_INVALID';

export class RaftError extends Error {
  override readonly name = 'RaftError';
  constructor(
    readonly code: RaftErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export function isRaftError(e: unknown, code?: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && (code === undefined || e.code === code);
}
