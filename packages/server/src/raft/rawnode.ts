/**
 * `RawNode`: the driver's handle on the Raft state machine, after etcd-io/raft's RawNode.
 * Synchronous and single-threaded; the driver owns time (calls `tick`), the network
 * (delivers messages to `step`, sends `Ready.messages`), the disk (persists what a Ready
 * says) and the state machine (applies `Ready.committedEntries`).
 *
 * The loop:
 *
 * ```ts
 * node.tick();                  // every heartbeat interval / N
 * node.step(msgFromPeer);       // as messages arrive
 * if (node.hasReady()) {
 *   const rd = node.ready();    // one Ready at a time
 *   // persist rd.snapshot, rd.entries, rd.hardState; send rd.messages; apply rd.committedEntries
 *   node.advance(rd);
 * }
 * ```
 */
import { assert } from '../util/assert';
import { encodeConfChange } from './confchange';
import { RaftError } from './errors';
import { Raft, type BasicStatus, type RaftConfig, type Status } from './raft';
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
  type SoftState,
  isLocalMessage,
  isResponseMessage,
  message,
} from './types';

/**
 * Everything the driver must do, in order. Fields are read-only; the arrays must not be
 * mutated. Ordering rules (each field repeats its own):
 *
 * 1. Install `snapshot` (if any).
 * 2. Persist `entries` and `hardState` (fsync when `mustSync`).
 * 3. Send `messages` — only after step 2, except when `messagesMayPrecedePersist`
 *    (a leader writing to its disk in parallel with replication, thesis §10.2.1).
 * 4. Apply `committedEntries`, after step 2 (they may include this Ready's `entries`).
 * 5. Serve `readStates` once applied ≥ their index.
 * 6. Call `advance(ready)`.
 */
export interface Ready {
  /**
   * The leader and this node's role, when they changed since the previous Ready (else
   * null). Informational: where to forward requests; never needs to be persisted.
   */
  readonly softState: SoftState | null;
  /**
   * Term, vote and commit, when they changed (else null). Must be durable before any of
   * `messages` is sent: a vote or a term must never be forgotten after a peer has seen it
   * (Figure 2: persistent state is "updated on stable storage before responding to RPCs").
   */
  readonly hardState: HardState | null;
  /**
   * Linearizable reads confirmed by a ReadIndex round (thesis §6.4): answer each read with
   * `requestCtx` once the state machine has applied at least `index`.
   */
  readonly readStates: readonly ReadState[];
  /**
   * Log entries to append to stable storage, before `messages` are sent (a follower's
   * acknowledgement says they are durable). An entry at index i replaces every persisted
   * entry at index ≥ i. Exception: see `messagesMayPrecedePersist`.
   */
  readonly entries: readonly Entry[];
  /**
   * A snapshot from the leader to install (storage and state machine), before persisting
   * `entries` and before applying `committedEntries`. Null if none. Its `data` is opaque.
   */
  readonly snapshot: Snapshot | null;
  /**
   * Committed entries to apply to the state machine, in order, only after this Ready's
   * `snapshot`, `entries` and `hardState` are durable (they may include entries from this
   * very Ready). For a `confChange` entry, decode it and call `applyConfChange`.
   */
  readonly committedEntries: readonly Entry[];
  /**
   * Messages to send, after `entries` and `hardState` are durable — unless
   * `messagesMayPrecedePersist`. Raft tolerates their loss, duplication and reordering.
   * When a `snap` message fails to arrive, call `reportSnapshot(to, 'failure')`; when it
   * was delivered, `reportSnapshot(to, 'finish')`.
   */
  readonly messages: readonly Message[];
  /**
   * True when this node is the leader and `hardState` changes neither term nor vote: the
   * messages (appends to followers) may then be sent while `entries` are being written,
   * in parallel with the leader's own disk write (thesis §10.2.1). The leader counts its
   * own entries as matching, but anything committed with them appears only in
   * `committedEntries`, which are applied after the write completes, and in messages of a
   * later Ready, so nothing is acknowledged before it is durable on the leader too.
   */
  readonly messagesMayPrecedePersist: boolean;
  /** Whether `entries`/`hardState` need an fsync (false when only the commit index moved). */
  readonly mustSync: boolean;
}

export type SnapshotStatus = 'finish' | 'failure';

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.role === b.role;
}

export class RawNode {
  private readonly raft: Raft;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  /** A Ready was handed out and not yet advanced. */
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevHardState = config.storage.initialState().hardState;
    this.prevSoftState = this.raft.softState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advance logical time by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Start an election now (a pre-election first if PreVote is on). */
  campaign(): void {
    this.raft.step(message({ type: 'hup' }));
  }

  /**
   * Propose data to be appended to the log. Throws `ERR_PROPOSAL_DROPPED` when there is no
   * leader to take it, a transfer is in progress, or the uncommitted limit is reached.
   * Acceptance does not mean commitment: the driver learns of that when the entry comes
   * back in `committedEntries`.
   */
  propose(data: Uint8Array): void {
    this.raft.step(message({ type: 'prop', entries: [{ term: 0n, index: 0n, type: 'normal', data }] }));
  }

  /** Propose a single-server membership change (thesis §4.1). On the leader, refused while another is pending. */
  proposeConfChange(cc: ConfChange): void {
    this.raft.step(message({ type: 'prop', entries: [{ term: 0n, index: 0n, type: 'confChange', data: encodeConfChange(cc) }] }));
  }

  /** Apply a committed conf change (call while applying its entry); returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Deliver a message from a peer. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw new RaftError('ERR_STEP_LOCAL_MSG', `cannot step local message ${m.type}`);
    assert(m.to === this.raft.id, `message for ${m.to} stepped into ${this.raft.id}`);
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) {
      throw new RaftError('ERR_STEP_PEER_NOT_FOUND', `response from non-member ${m.from}`);
    }
    this.raft.step(m);
  }

  /**
   * Ask for a linearizable read (thesis §6.4). The answer arrives as a `ReadState` with
   * this `ctx` in a later Ready; all reads waiting when a heartbeat round starts share it.
   * Throws `ERR_PROPOSAL_DROPPED` when no leader is known (retry later).
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(message({ type: 'readIndex', context: ctx }));
  }

  /** Ask the leader to hand leadership to `to` (thesis §3.10). */
  transferLeader(to: NodeId): void {
    this.raft.step(message({ type: 'transferLeader', index: to }));
  }

  /** The transport could not reach `id`: stop pipelining to it. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: 'unreachable', from: id }));
  }

  /** The snapshot sent to `id` arrived (`finish`) or did not (`failure`). */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(message({ type: 'snapStatus', from: id, reject: status === 'failure' }));
  }

  /** Full status: hard and soft state, configuration, and (on the leader) every follower's progress. */
  status(): Status {
    return this.raft.status();
  }

  /** Hard and soft state, applied and last index: cheap enough to call every loop. */
  basicStatus(): BasicStatus {
    return this.raft.basicStatus();
  }

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    const r = this.raft;
    if (!sameSoftState(r.softState(), this.prevSoftState)) return true;
    if (!sameHardState(r.hardState(), this.prevHardState)) return true;
    if (r.log.unstable.snapshot !== null) return true;
    if (r.msgs.length > 0 || r.log.unstableEntries().length > 0 || r.log.hasNextCommittedEntries()) return true;
    if (r.readStates.length > 0) return true;
    return r.readIndexFlushable();
  }

  ready(): Ready {
    assert(this.outstanding === null, 'ready: the previous Ready was advanced');
    const r = this.raft;
    r.flushReadIndex();
    const ss = r.softState();
    const hs = r.hardState();
    const softState = sameSoftState(ss, this.prevSoftState) ? null : ss;
    const hardState = sameHardState(hs, this.prevHardState) ? null : hs;
    const entries = r.log.unstableEntries().slice();
    const termOrVoteChanged = hardState !== null && (hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote);
    const rd: Ready = {
      softState,
      hardState,
      readStates: r.readStates,
      entries,
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      messagesMayPrecedePersist: ss.role === 'leader' && !termOrVoteChanged && r.log.unstable.snapshot === null,
      mustSync: termOrVoteChanged || entries.length > 0,
    };
    assert(rd.committedEntries.length === 0 || rd.committedEntries[rd.committedEntries.length - 1].index <= hs.commit, 'committed entries are committed');
    assert(entries.length === 0 || entries[entries.length - 1].index === r.log.lastIndex(), 'a Ready carries every unstable entry');
    r.msgs = [];
    r.readStates = [];
    this.prevSoftState = ss;
    this.prevHardState = hs;
    this.outstanding = rd;
    return rd;
  }

  /** The driver has done everything `rd` asked (see `Ready`). */
  advance(rd: Ready): void {
    assert(this.outstanding === rd, 'advance: the Ready given is the one outstanding');
    this.outstanding = null;
    const last = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1] : null;
    this.raft.advance(rd.committedEntries, last, rd.snapshot);
  }
}
