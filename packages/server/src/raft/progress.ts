/**
 * What the leader knows about each follower's log (Figure 2's nextIndex/matchIndex) and
 * the flow control around it, after etcd's tracker package:
 *
 * - `probe`: we do not know where the follower's log ends; send one append at a time and
 *   wait for its answer (or the next heartbeat) before sending another.
 * - `replicate`: the follower is caught up to `match`; send appends optimistically
 *   (pipelining), at most `maxInflightMsgs` unacknowledged messages / `maxInflightBytes`.
 * - `snapshot`: the follower needs a snapshot; send nothing until it reports back.
 */
import { assert } from '../util/assert';
import type { ConfState, NodeId } from './types';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded ring of the last indexes of in-flight appends, with their sizes. */
export class Inflights {
  private start = 0;
  private count = 0;
  private bytes = 0;
  private readonly indexes: bigint[];
  private readonly sizes: number[];

  constructor(
    readonly maxMsgs: number,
    readonly maxBytes: number,
  ) {
    assert(maxMsgs > 0, 'inflights: maxMsgs > 0');
    assert(maxBytes > 0, 'inflights: maxBytes > 0');
    this.indexes = new Array<bigint>(maxMsgs);
    this.sizes = new Array<number>(maxMsgs);
  }

  add(index: bigint, bytes: number): void {
    assert(!this.full(), 'inflights: cannot add to a full window');
    if (this.count > 0) {
      const lastIdx = this.indexes[(this.start + this.count - 1) % this.maxMsgs];
      assert(index > lastIdx, `inflights: indexes increase (${index} after ${lastIdx})`);
    }
    const slot = (this.start + this.count) % this.maxMsgs;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Acknowledge every in-flight message whose last index is ≤ `to`. */
  freeLE(to: bigint): void {
    while (this.count > 0 && this.indexes[this.start] <= to) {
      this.bytes -= this.sizes[this.start];
      this.start = (this.start + 1) % this.maxMsgs;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
    assert(this.bytes >= 0, 'inflights: bytes stay non-negative');
  }

  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]);
  }

  full(): boolean {
    return this.count === this.maxMsgs || this.bytes >= this.maxBytes;
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0n;
  next: bigint;
  state: ProgressState = 'probe';
  /** In `snapshot` state, the index of the snapshot being sent. */
  pendingSnapshot = 0n;
  /** Heard from since the last CheckQuorum round (thesis §6.2). */
  recentActive = false;
  /** In `probe` state, an append is outstanding: wait for its answer or a heartbeat. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(
    next: bigint,
    public isLearner: boolean,
    maxInflightMsgs: number,
    maxInflightBytes: number,
  ) {
    assert(next >= 1n, 'progress: next >= 1');
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0n;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least the snapshot: probe from just after it.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = (this.match > pending ? this.match : pending) + 1n;
    } else {
      this.resetState('probe');
      this.next = this.match + 1n;
    }
    assert(this.next > this.match, 'progress: next > match');
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1n;
  }

  becomeSnapshot(snapshotIndex: bigint): void {
    assert(snapshotIndex > 0n, 'progress: snapshot index > 0');
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** The follower has entries up to n; false if that is old news. */
  maybeUpdate(n: bigint): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < n + 1n) this.next = n + 1n;
    assert(this.next > this.match, 'progress: next > match after update');
    return updated;
  }

  /** Pipelining: assume the append of entries up to n will succeed. */
  optimisticUpdate(n: bigint): void {
    assert(n >= this.next - 1n, 'progress: optimistic next only moves forward');
    this.next = n + 1n;
  }

  /**
   * The follower rejected an append at index `rejected`; `matchHint` is the highest index
   * that may match. Returns false when the rejection is stale (an older message's answer).
   */
  maybeDecrTo(rejected: bigint, matchHint: bigint): boolean {
    if (this.state === 'replicate') {
      // A rejection at or below match is stale: match is known good.
      if (rejected <= this.match) return false;
      this.next = this.match + 1n;
      return true;
    }
    // In probe state only the answer to the last probe (index next-1) counts.
    if (this.next - 1n !== rejected) return false;
    let next = rejected < matchHint + 1n ? rejected : matchHint + 1n;
    if (next < this.match + 1n) next = this.match + 1n;
    this.next = next;
    this.probeSent = false;
    assert(this.next >= 1n, 'progress: next >= 1 after decrement');
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

export type VoteResult = 'pending' | 'won' | 'lost';

/**
 * The configuration (voters, learners), each member's progress, and the votes of the
 * current election. Single-server changes only (thesis §4.1), so one majority rule.
 */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(
    readonly maxInflightMsgs: number,
    readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    const sorted = (s: Set<NodeId>): NodeId[] => [...s].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return { voters: sorted(this.voters), learners: sorted(this.learners) };
  }

  /** Replace the configuration; progress is kept for members that stay, created for new ones. */
  setConfig(cs: ConfState, nextIndex: bigint): void {
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    for (const l of learners) assert(!voters.has(l), `node ${l} is not both voter and learner`);
    const progress = new Map<NodeId, Progress>();
    for (const id of [...voters, ...learners]) {
      const old = this.progress.get(id);
      if (old !== undefined) {
        old.isLearner = learners.has(id);
        progress.set(id, old);
      } else {
        const pr = new Progress(nextIndex, learners.has(id), this.maxInflightMsgs, this.maxInflightBytes);
        // A new member is assumed active, so CheckQuorum does not count it against us at once.
        pr.recentActive = true;
        progress.set(id, pr);
      }
    }
    this.voters = voters;
    this.learners = learners;
    this.progress = progress;
    assert(this.progress.size === voters.size + learners.size, 'one progress per member');
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /**
   * The highest index replicated on a quorum of voters: sort the voters' match indexes
   * descending and take the quorum-th (§5.3, "a log entry is committed once the leader
   * that created the entry has replicated it on a majority of the servers").
   */
  committedIndex(): bigint {
    if (this.voters.size === 0) return 0n;
    const matches: bigint[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0n);
    matches.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    const idx = matches[this.quorum() - 1];
    assert(idx !== undefined, 'a quorum of matches exists');
    return idx;
  }

  /** CheckQuorum: were a quorum of voters (counting `self`) heard from recently? */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    const missing = this.voters.size - granted - rejected;
    let result: VoteResult = 'pending';
    if (granted >= q) result = 'won';
    else if (granted + missing < q) result = 'lost';
    return { granted, rejected, result };
  }

  /** Does a quorum of voters satisfy `pred` (counting `self` as satisfying it)? */
  quorumSatisfies(self: NodeId, pred: (id: NodeId) => boolean): boolean {
    let n = 0;
    for (const id of this.voters) if (id === self || pred(id)) n++;
    return n >= this.quorum();
  }
}
