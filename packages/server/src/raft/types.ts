/**
 * The data types of the Raft core: log entries, hard and soft state, messages,
 * snapshots and membership. Everything here is plain data (no classes, no Node types) so
 * that a driver can encode it for the WAL and the peer transport as it likes.
 *
 * Terms, indexes and node IDs are `bigint` (DESIGN.md §3.4: int64 stays exact). The
 * entry and hard-state shapes match `storage/wal.ts` (`LogEntry`, `HardState`), except
 * that the entry type is spelled as a string here: `'normal'` is the WAL's
 * `EntryType.Normal` (0) and `'confChange'` its `EntryType.ConfChange` (1).
 */

/** A member's ID; 0n means "none" (no vote, no leader). */
export type NodeId = bigint;
export const NONE: NodeId = 0n;

export type EntryKind = 'normal' | 'confChange';

export interface Entry {
  readonly term: bigint;
  readonly index: bigint;
  readonly type: EntryKind;
  /** Opaque to raft for `normal`; an encoded {@link ConfChange} for `confChange`. Empty for a leader's no-op. */
  readonly data: Uint8Array;
}

/** What must be on disk before a message that depends on it leaves (Figure 2: "persistent state"). */
export interface HardState {
  readonly term: bigint;
  readonly vote: NodeId;
  readonly commit: bigint;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0n, vote: NONE, commit: 0n });

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state, useful to the driver (who to forward to, whether to send in parallel with the disk write). */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/** The membership: voters decide elections and commitment; learners only receive the log (thesis §4.2.1). */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMeta {
  readonly index: bigint;
  readonly term: bigint;
  readonly confState: ConfState;
}

/** A state-machine snapshot: `data` is opaque to raft (the driver streams it in chunks as it likes). */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: Object.freeze([]), learners: Object.freeze([]) });

export function isEmptySnapshot(s: Snapshot | null): boolean {
  return s === null || s.meta.index === 0n;
}

/**
 * A single-server membership change (thesis §4.1). `addNode` of an existing learner
 * promotes it to voter; `addLearner` of a voter is refused (demotion is not supported).
 */
export type ConfChangeType = 'addNode' | 'addLearner' | 'removeNode';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque to raft: e.g. the new member's peer URLs. */
  readonly context: Uint8Array;
}

/** A linearizable read's answer (thesis §6.4): serve the read once applied ≥ `index`. */
export interface ReadState {
  readonly index: bigint;
  readonly requestCtx: Uint8Array;
}

export type MessageType =
  // local messages (never sent on the wire)
  | 'hup' // start an election
  | 'beat' // leader: send heartbeats
  | 'checkQuorum' // leader: step down if a quorum was not heard from
  | 'unreachable' // driver: the transport could not reach `from`
  | 'snapStatus' // driver: a snapshot to `from` finished (reject = failed)
  // messages between peers (and forwarded local requests)
  | 'prop' // a proposal, forwarded to the leader
  | 'app' // AppendEntries (§5.3)
  | 'appResp'
  | 'vote' // RequestVote (§5.2)
  | 'voteResp'
  | 'preVote' // thesis §9.6
  | 'preVoteResp'
  | 'snap' // InstallSnapshot (§7)
  | 'heartbeat' // an empty AppendEntries carrying commit and a read round (thesis §6.4)
  | 'heartbeatResp'
  | 'transferLeader' // thesis §3.10: ask the leader to hand over to `from`
  | 'timeoutNow' // thesis §3.10: start an election now, ignoring leases
  | 'readIndex' // a read forwarded to the leader
  | 'readIndexResp';

export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  /** 0n for local and forwarded-local (`prop`, `readIndex`) messages. */
  readonly term: bigint;
  /** app: term of the entry at `index`; rejecting appResp: term at `rejectHint`; vote: last log term. */
  readonly logTerm: bigint;
  /** app: index of the entry preceding `entries`; appResp: last index appended (or rejected index); vote: last log index; readIndexResp: the read index; transferLeader: the transferee. */
  readonly index: bigint;
  readonly entries: readonly Entry[];
  readonly commit: bigint;
  readonly snapshot: Snapshot | null;
  readonly reject: boolean;
  readonly rejectHint: bigint;
  /** vote: "transfer" marks a §3.10 election; heartbeat(Resp): the read round; readIndex(Resp): the request's context. */
  readonly context: Uint8Array | null;
}

export type MessageInit = Partial<Message> & Pick<Message, 'type'>;

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);

/** Build a message with every field present (defaults: zero, empty, null); `from`/`term` override the init's. */
export function message(m: MessageInit, from?: NodeId, term?: bigint): Message {
  return {
    type: m.type,
    to: m.to ?? NONE,
    from: from ?? m.from ?? NONE,
    term: term ?? m.term ?? 0n,
    logTerm: m.logTerm ?? 0n,
    index: m.index ?? 0n,
    entries: m.entries ?? NO_ENTRIES,
    commit: m.commit ?? 0n,
    snapshot: m.snapshot ?? null,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0n,
    context: m.context ?? null,
  };
}

/** Messages a driver must never send on the wire: they only make sense inside a node. */
export function isLocalMessage(t: MessageType): boolean {
  return t === 'hup' || t === 'beat' || t === 'checkQuorum' || t === 'unreachable' || t === 'snapStatus';
}

/** Responses: a node answers requests, never responses, so these may be dropped freely. */
export function isResponseMessage(t: MessageType): boolean {
  return t === 'appResp' || t === 'voteResp' || t === 'preVoteResp' || t === 'heartbeatResp' || t === 'readIndexResp';
}

export function voteRespType(t: MessageType): MessageType {
  if (t === 'vote') return 'voteResp';
  if (t === 'preVote') return 'preVoteResp';
  throw new Error(`assertion failed: not a vote message: ${t}`);
}

/** Approximate encoded size of an entry; the unit of `maxSizePerMsgBytes` and the uncommitted-bytes limit. */
export const ENTRY_OVERHEAD_BYTES = 24;
export function entryBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

export function entriesBytes(es: readonly Entry[]): number {
  let n = 0;
  for (const e of es) n += entryBytes(e);
  return n;
}

/** Payload bytes only, for the uncommitted-log limit (as etcd's payloadSize: an empty entry is free). */
export function payloadBytes(es: readonly Entry[]): number {
  let n = 0;
  for (const e of es) n += e.data.byteLength;
  return n;
}

export function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

export function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
