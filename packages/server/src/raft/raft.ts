/**
 * The Raft state machine (Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm", and Ongaro's thesis "Consensus: Bridging Theory and Practice"), after
 * etcd-io/raft's `raft` struct. Pure: no I/O, no clock, no randomness of its own. Input
 * is `tick()` and `step(message)`; output accumulates in `msgs`, `readStates` and the log,
 * which `RawNode` packages as a `Ready`.
 *
 * Extensions beyond the paper's core, each cited where it is implemented:
 * PreVote (thesis §9.6), CheckQuorum (thesis §6.2 / §4.2.3), batched ReadIndex (thesis
 * §6.4), leadership transfer (thesis §3.10), single-server membership changes with learners
 * (thesis §4.1, §4.2.1), and pipelined replication with flow control (thesis §10.2.2).
 */
import { assert } from '../util/assert';
import { applyToConfState, confChangeRefusal, decodeConfChange } from './confchange';
import { RaftError } from './errors';
import { RaftLog } from './log';
import { ProgressTracker } from './progress';
import type { Rand } from './rand';
import { ReadOnly, type ReadRequest } from './read-only';
import type { LogStorage } from './storage';
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageInit,
  type NodeId,
  NONE,
  type ReadState,
  type Role,
  type Snapshot,
  type SoftState,
  entriesBytes,
  isEmptySnapshot,
  message,
  minBig,
  payloadBytes,
  voteRespType,
} from './types';

export interface RaftConfig {
  /** This member's ID (> 0). */
  readonly id: NodeId;
  readonly storage: LogStorage;
  /** Injected randomness for election timeouts (DESIGN.md §3.1). */
  readonly rand: Rand;
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [electionTicks, 2·electionTicks) (§5.2). */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats; must be well below electionTicks. */
  readonly heartbeatTicks: number;
  /** The last index the driver applied before a restart (entries after it are handed out again). */
  readonly applied?: bigint;
  /** Limit of one append message's entries (at least one entry is always sent). Default 1 MiB. */
  readonly maxSizePerMsgBytes?: number;
  /** Limit of unacknowledged appends to one follower in `replicate` state (pipelining). Default 256. */
  readonly maxInflightMsgs?: number;
  /** Limit of unacknowledged bytes to one follower. Default unlimited. */
  readonly maxInflightBytes?: number;
  /** The leader refuses proposals once this many payload bytes are uncommitted. Default unlimited. */
  readonly maxUncommittedEntriesBytes?: number;
  /** Limit of committedEntries in one Ready (at least one). Default unlimited. */
  readonly maxCommittedBytesPerReady?: number;
  /** Limit of reads waiting for a ReadIndex round. Default 4096. */
  readonly maxPendingReads?: number;
  /** Leader steps down when it has not heard from a quorum for an election timeout (thesis §6.2). Default true. */
  readonly checkQuorum?: boolean;
  /** Run a pre-election before incrementing the term (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Optional trace of state changes (for debugging the simulator). */
  readonly trace?: (line: string) => void;
}

type CampaignType = 'preElection' | 'election' | 'transfer';

const TRANSFER_CTX = new TextEncoder().encode('transfer');

function isTransferCtx(ctx: Uint8Array | null): boolean {
  if (ctx === null || ctx.byteLength !== TRANSFER_CTX.byteLength) return false;
  for (let i = 0; i < ctx.byteLength; i++) if (ctx[i] !== TRANSFER_CTX[i]) return false;
  return true;
}

export interface ProgressStatus {
  readonly match: bigint;
  readonly next: bigint;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflight: number;
}

export interface BasicStatus {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: bigint;
  readonly lastIndex: bigint;
  readonly leadTransferee: NodeId;
}

export interface Status extends BasicStatus {
  readonly confState: ConfState;
  /** Only on the leader. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
}

function validateConfig(c: RaftConfig): void {
  const bad = (m: string): never => {
    throw new RaftError('ERR_CONFIG_INVALID', m);
  };
  if (c.id <= 0n) bad('id must be > 0');
  if (!Number.isInteger(c.heartbeatTicks) || c.heartbeatTicks <= 0) bad('heartbeatTicks must be a positive integer');
  if (!Number.isInteger(c.electionTicks) || c.electionTicks <= c.heartbeatTicks) bad('electionTicks must be an integer > heartbeatTicks');
  if (c.maxInflightMsgs !== undefined && (!Number.isInteger(c.maxInflightMsgs) || c.maxInflightMsgs <= 0)) bad('maxInflightMsgs must be > 0');
  if (c.maxSizePerMsgBytes !== undefined && c.maxSizePerMsgBytes <= 0) bad('maxSizePerMsgBytes must be > 0');
  if (c.maxInflightBytes !== undefined && c.maxInflightBytes <= 0) bad('maxInflightBytes must be > 0');
  if (c.maxUncommittedEntriesBytes !== undefined && c.maxUncommittedEntriesBytes <= 0) bad('maxUncommittedEntriesBytes must be > 0');
  if (c.maxPendingReads !== undefined && c.maxPendingReads <= 0) bad('maxPendingReads must be > 0');
}

export class Raft {
  readonly id: NodeId;
  term = 0n;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  /** Not a voter in the current configuration (a learner, or not a member at all). */
  isLearner = false;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  /** Non-zero while a leadership transfer to this node is in progress (thesis §3.10). */
  leadTransferee: NodeId = NONE;
  /** A conf change may only be proposed once applied ≥ this (one change at a time, thesis §4.1). */
  pendingConfIndex = 0n;
  uncommittedBytes = 0;
  readonly readOnly: ReadOnly;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  private readonly rand: Rand;
  private readonly maxMsgBytes: number;
  private readonly maxUncommittedBytes: number;
  private readonly trace: ((line: string) => void) | null;

  constructor(config: RaftConfig) {
    validateConfig(config);
    this.id = config.id;
    this.rand = config.rand;
    this.electionTimeout = config.electionTicks;
    this.heartbeatTimeout = config.heartbeatTicks;
    this.checkQuorum = config.checkQuorum ?? true;
    this.preVote = config.preVote ?? true;
    this.maxMsgBytes = config.maxSizePerMsgBytes ?? 1024 * 1024;
    this.maxUncommittedBytes = config.maxUncommittedEntriesBytes ?? Number.POSITIVE_INFINITY;
    this.trace = config.trace ?? null;
    this.log = new RaftLog(config.storage, config.maxCommittedBytesPerReady ?? Number.POSITIVE_INFINITY);
    this.trk = new ProgressTracker(config.maxInflightMsgs ?? 256, config.maxInflightBytes ?? Number.POSITIVE_INFINITY);
    this.readOnly = new ReadOnly(config.maxPendingReads ?? 4096);

    const { hardState, confState } = config.storage.initialState();
    this.trk.setConfig(confState, this.log.lastIndex() + 1n);
    this.isLearner = !this.trk.isVoter(this.id);
    if (hardState.term !== 0n || hardState.commit !== 0n || hardState.vote !== NONE) {
      assert(hardState.commit >= this.log.committed, `hard state commit ${hardState.commit} >= snapshot index ${this.log.committed}`);
      assert(hardState.commit <= this.log.lastIndex(), `hard state commit ${hardState.commit} <= last index ${this.log.lastIndex()}`);
      this.log.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (config.applied !== undefined && config.applied > 0n) this.log.appliedTo(config.applied);
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- state

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  /** A voter can campaign; learners and removed nodes cannot. */
  promotable(): boolean {
    return this.trk.isVoter(this.id);
  }

  /** The cheap part of status(): no progress map, no configuration. */
  basicStatus(): BasicStatus {
    return { id: this.id, hardState: this.hardState(), softState: this.softState(), applied: this.log.applied, lastIndex: this.log.lastIndex(), leadTransferee: this.leadTransferee };
  }

  status(): Status {
    let progress: Map<NodeId, ProgressStatus> | null = null;
    if (this.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of this.trk.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          inflight: pr.inflights.size(),
        });
      }
    }
    return {
      id: this.id,
      hardState: this.hardState(),
      softState: this.softState(),
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      confState: this.trk.confState(),
      leadTransferee: this.leadTransferee,
      progress,
    };
  }

  private t(line: string): void {
    if (this.trace !== null) this.trace(`${this.id} t${this.term} ${this.role}: ${line}`);
  }

  // ---------------------------------------------------------------- sending

  private send(init: MessageInit): void {
    const isVote = init.type === 'vote' || init.type === 'voteResp' || init.type === 'preVote' || init.type === 'preVoteResp';
    let term = init.term ?? 0n;
    if (isVote) {
      // Vote messages carry the term they are about (a pre-vote's is our term + 1).
      assert(term !== 0n, `${init.type} carries a term`);
    } else {
      assert(term === 0n, `${init.type}: the term is filled in by send`);
      // Proposals and reads forwarded to the leader travel as local messages (term 0).
      if (init.type !== 'prop' && init.type !== 'readIndex') term = this.term;
    }
    assert(init.to !== undefined && init.to !== NONE && init.to !== this.id, `${init.type} goes to another node`);
    this.msgs.push(message(init, this.id, term));
  }

  /** Send an append (or a snapshot) to `to` if flow control allows; true if a message was sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    assert(pr !== undefined, `progress for ${to} exists`);
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1n;
    const prevTerm = this.log.term(prevIndex);
    const ents = prevTerm === null ? null : this.log.entriesFrom(pr.next, this.maxMsgBytes);
    if (ents !== null && ents.length === 0 && !sendIfEmpty) return false;

    if (prevTerm === null || ents === null) {
      // The entries the follower needs are compacted: send the snapshot instead (§7).
      if (!pr.recentActive) return false;
      const snap = this.log.snapshot();
      assert(!isEmptySnapshot(snap), 'entries are compacted only behind a snapshot');
      const cs = snap.meta.confState;
      if (!cs.voters.includes(to) && !cs.learners.includes(to)) {
        // The snapshot predates `to` joining; the follower would refuse it. Wait for a newer one.
        this.t(`snapshot ${snap.meta.index} does not name ${to}; waiting for a newer one`);
        return false;
      }
      pr.becomeSnapshot(snap.meta.index);
      this.t(`sending snapshot ${snap.meta.index} to ${to}`);
      this.send({ type: 'snap', to, snapshot: snap });
      return true;
    }

    if (ents.length > 0) {
      const last = ents[ents.length - 1].index;
      assert(last === prevIndex + BigInt(ents.length), 'an append is contiguous after prevIndex');
      switch (pr.state) {
        case 'replicate':
          // Pipelining: assume success, remember the message in the in-flight window.
          pr.optimisticUpdate(last);
          pr.inflights.add(last, entriesBytes(ents));
          break;
        case 'probe':
          pr.probeSent = true;
          break;
        case 'snapshot':
          assert(false, 'no appends while a snapshot is in flight');
      }
    }
    this.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed });
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | null): void {
    const pr = this.trk.progress.get(to);
    assert(pr !== undefined, `progress for ${to} exists`);
    // The follower may not have the leader's entries up to commit yet: never tell it to
    // commit past what it is known to match (it would commit entries it does not have).
    const commit = minBig(pr.match, this.log.committed);
    this.send({ type: 'heartbeat', to, commit, context: ctx });
  }

  private forEachPeer(f: (id: NodeId) => void): void {
    const ids = [...this.trk.progress.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const id of ids) if (id !== this.id) f(id);
  }

  bcastAppend(): void {
    this.forEachPeer((id) => this.maybeSendAppend(id, true));
  }

  bcastHeartbeat(ctx: Uint8Array | null): void {
    this.forEachPeer((id) => this.sendHeartbeat(id, ctx));
  }

  // ---------------------------------------------------------------- roles

  private reset(term: bigint): void {
    if (this.term !== term) {
      assert(term > this.term, `term only increases (${this.term} → ${term})`);
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      pr.match = id === this.id ? last : 0n;
      pr.next = last + 1n;
      pr.becomeProbe();
      pr.next = last + 1n;
      pr.recentActive = false;
    }
    this.pendingConfIndex = 0n;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
  }

  private resetRandomizedElectionTimeout(): void {
    // §5.2: "election timeouts are chosen randomly from a fixed interval".
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.intn(this.electionTimeout);
    assert(this.randomizedElectionTimeout >= this.electionTimeout, 'randomized timeout >= election timeout');
    assert(this.randomizedElectionTimeout < 2 * this.electionTimeout, 'randomized timeout < 2 × election timeout');
  }

  becomeFollower(term: bigint, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.t(`became follower (lead ${lead})`);
  }

  becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not become pre-candidate');
    // Thesis §9.6: a pre-candidate does not change its term or vote.
    this.trk.resetVotes();
    this.lead = NONE;
    this.role = 'preCandidate';
    this.t('became pre-candidate');
  }

  becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not become candidate');
    // §5.2: "a follower increments its current term and transitions to candidate state.
    // It then votes for itself".
    this.reset(this.term + 1n);
    this.vote = this.id;
    this.role = 'candidate';
    this.t('became candidate');
  }

  becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    assert(this.vote === this.id, 'a leader voted for itself in its term');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) self.becomeReplicate();
    // Every follower starts in probe state with next = last + 1 (§5.3: "When a leader first
    // comes to power, it initializes all nextIndex values to the index just after the last
    // one in its log").
    //
    // §5.4.2 / thesis §6.4: a leader commits a no-op entry of its own term at the start of
    // its term, which also commits everything before it.
    const ok = this.appendEntry([{ term: 0n, index: 0n, type: 'normal', data: new Uint8Array(0) }]);
    assert(ok, 'the empty entry is always accepted');
    // A membership change may be proposed only once this entry is applied: then every
    // earlier change is applied too, and an entry of this term is committed (the fix to
    // single-server changes across leader changes, Ongaro raft-dev 2015).
    this.pendingConfIndex = this.log.lastIndex();
    this.t(`became leader at last index ${this.log.lastIndex()}`);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: 'hup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: 'checkQuorum', from: this.id }));
      // Thesis §3.10: "if the transfer does not complete after about an election timeout,
      // the prior leader aborts the transfer and resumes accepting client requests".
      if (this.role === 'leader' && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: 'beat', from: this.id }));
    }
  }

  // ---------------------------------------------------------------- elections

  private hup(t: CampaignType): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    // A node with committed but unapplied conf changes may be campaigning with a stale
    // configuration: wait until it has applied them.
    if (this.log.committed > this.log.applied) {
      const ents = this.log.slice(this.log.applied + 1n, this.log.committed + 1n, Number.POSITIVE_INFINITY);
      if (ents === null || ents.some((e) => e.type === 'confChange')) {
        this.t('not campaigning: conf changes to apply');
        return;
      }
    }
    this.campaign(t);
  }

  campaign(t: CampaignType): void {
    assert(this.promotable(), 'only a voter campaigns');
    let term: bigint;
    let voteType: 'vote' | 'preVote';
    if (t === 'preElection') {
      this.becomePreCandidate();
      voteType = 'preVote';
      // Thesis §9.6: ask whether we *would* win at the next term, without moving to it.
      term = this.term + 1n;
    } else {
      this.becomeCandidate();
      voteType = 'vote';
      term = this.term;
    }
    this.trk.recordVote(this.id, true);
    if (this.trk.tallyVotes().result === 'won') {
      // A single-voter cluster wins at once.
      if (t === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    const voters = [...this.trk.voters].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const id of voters) {
      if (id === this.id) continue;
      this.send({ type: voteType, to: id, term, index: lastIndex, logTerm: lastTerm, context: t === 'transfer' ? TRANSFER_CTX : null });
    }
  }

  private poll(from: NodeId, granted: boolean): 'pending' | 'won' | 'lost' {
    this.trk.recordVote(from, granted);
    return this.trk.tallyVotes().result;
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    // Figure 2, "Rules for all servers": if a message carries a higher term, adopt it and
    // become a follower — with the exceptions below.
    if (m.term === 0n) {
      // local message (or a forwarded proposal / read)
    } else if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = isTransferCtx(m.context);
        // Thesis §4.2.3 / §6.2: "if a server receives a RequestVote request within the
        // minimum election timeout of hearing from a current leader, it does not update its
        // term or grant its vote". This keeps a rejoining or removed member from deposing
        // a leader that a quorum still hears from. A §3.10 transfer overrides it.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          this.t(`ignoring ${m.type} from ${m.from} at term ${m.term}: in lease of ${this.lead}`);
          return;
        }
      }
      if (m.type === 'preVote') {
        // Never change term for a pre-vote (thesis §9.6).
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the term we would move to; we move when we win.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A leader of an older term is still talking to us. With CheckQuorum or PreVote we
        // may have advanced our term without it learning (our votes are ignored), so tell
        // it our term, or it would never step down (etcd raft, "stale leader" case).
        this.send({ type: 'appResp', to: m.from });
      } else if (m.type === 'preVote') {
        // Answer, so that a pre-candidate with an old term learns the newer one.
        this.send({ type: 'preVoteResp', to: m.from, term: this.term, reject: true });
      }
      // Otherwise ignore: "if a server receives a request with a stale term number, it rejects the request" (§5.1).
      return;
    }

    switch (m.type) {
      case 'hup':
        this.hup(this.preVote ? 'preElection' : 'election');
        return;
      case 'vote':
      case 'preVote': {
        // §5.2 / §5.4.1: grant if we have not voted for another candidate in this term and
        // the candidate's log is at least as up-to-date as ours.
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === 'preVote' && m.term > this.term);
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          this.t(`granting ${m.type} to ${m.from} at term ${m.term}`);
          this.send({ type: voteRespType(m.type), to: m.from, term: m.term });
          if (m.type === 'vote') {
            // Only a real vote is recorded (it must be persisted before the answer leaves).
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true });
        }
        return;
      }
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        this.bcastHeartbeat(this.readOnly.roundCtx());
        return;
      case 'checkQuorum':
        // Thesis §6.2: "a leader steps down if an election timeout elapses without a
        // successful round of heartbeats to a majority of its cluster".
        if (!this.trk.quorumActive(this.id)) {
          this.t('stepping down: quorum not active');
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case 'prop':
        this.leaderPropose(m.entries);
        return;
      case 'readIndex':
        this.leaderReadIndex({ from: m.from === NONE ? this.id : m.from, ctx: m.context ?? new Uint8Array(0) });
        return;
      case 'transferLeader':
        this.leaderTransfer(m.index);
        return;
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return; // not (or no longer) a member
    switch (m.type) {
      case 'appResp': {
        pr.recentActive = true;
        if (m.reject) {
          // Fast backtracking: skip all entries of the conflicting term at once.
          let nextProbe = m.rejectHint;
          if (m.logTerm > 0n) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            this.t(`${m.from} rejected ${m.index}; probing from ${pr.next}`);
            if (pr.state === 'replicate') pr.becomeProbe();
            this.maybeSendAppend(m.from, true);
          }
          return;
        }
        // Within one term the follower's log matches ours up to m.index, so we have it.
        assert(m.index <= this.log.lastIndex(), `${m.from} acknowledged ${m.index} beyond our last ${this.log.lastIndex()}`);
        const wasPaused = pr.isPaused();
        if (!pr.maybeUpdate(m.index)) return;
        if (pr.state === 'probe') {
          pr.becomeReplicate();
        } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        } else if (pr.state === 'replicate') {
          pr.inflights.freeLE(m.index);
        }
        if (this.maybeCommit()) {
          this.bcastAppend();
        } else if (wasPaused) {
          this.maybeSendAppend(m.from, true);
        }
        // The window may have opened: send as many appends as flow control allows.
        for (let i = 0; i < this.trk.maxInflightMsgs && this.maybeSendAppend(m.from, false); i++) {
          // bounded by the in-flight window
        }
        if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
          // Thesis §3.10: the target is caught up; tell it to start an election now.
          this.send({ type: 'timeoutNow', to: m.from });
        }
        return;
      }
      case 'heartbeatResp': {
        pr.recentActive = true;
        pr.probeSent = false;
        // A heartbeat answered while the window is full suggests appends were lost: free one slot.
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks !== null && this.trk.quorumSatisfies(this.id, (id) => acks.has(id))) {
          const done = this.readOnly.finishRound();
          for (const req of done.reqs) this.answerRead(req, done.index);
        }
        return;
      }
      case 'snapStatus':
        if (pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0n;
        // Either way, probe: wait for an append answer (or a heartbeat) before sending more.
        pr.becomeProbe();
        pr.probeSent = true;
        return;
      case 'unreachable':
        // Pipelined appends to an unreachable follower are likely lost.
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  private leaderPropose(entries: readonly Entry[]): void {
    assert(entries.length > 0, 'a proposal has entries');
    if (!this.trk.progress.has(this.id)) throw new RaftError('ERR_PROPOSAL_DROPPED', 'this leader was removed from the configuration');
    if (this.leadTransferee !== NONE) throw new RaftError('ERR_PROPOSAL_DROPPED', `leadership transfer to ${this.leadTransferee} in progress`);
    for (const e of entries) {
      if (e.type !== 'confChange') continue;
      // Thesis §4.1: one membership change at a time — the next may start only once the
      // previous one is applied.
      if (this.pendingConfIndex > this.log.applied) {
        throw new RaftError('ERR_CONF_CHANGE_PENDING', `a configuration change is pending (index ${this.pendingConfIndex}, applied ${this.log.applied})`);
      }
      const refusal = confChangeRefusal(this.trk.confState(), decodeConfChange(e.data));
      if (refusal !== null) throw new RaftError('ERR_CONF_CHANGE_INVALID', refusal);
      if (entries.filter((x) => x.type === 'confChange').length > 1) throw new RaftError('ERR_CONF_CHANGE_INVALID', 'one configuration change per proposal');
    }
    if (!this.appendEntry(entries)) throw new RaftError('ERR_PROPOSAL_DROPPED', 'too many uncommitted bytes');
    if (entries.some((e) => e.type === 'confChange')) this.pendingConfIndex = this.log.lastIndex();
    this.bcastAppend();
  }

  /** Leader: append entries of the current term (Figure 2: "append entry to local log"). */
  appendEntry(entries: readonly Entry[]): boolean {
    assert(this.role === 'leader', 'only a leader appends its own entries');
    const bytes = payloadBytes(entries);
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.maxUncommittedBytes) return false;
    const li = this.log.lastIndex();
    const stamped = entries.map((e, i): Entry => ({ term: this.term, index: li + 1n + BigInt(i), type: e.type, data: e.data }));
    const last = this.log.append(stamped);
    this.uncommittedBytes += bytes;
    // The leader counts its own log as matching. The driver persists these entries before
    // applying or acknowledging anything committed with them (thesis §10.2.1).
    this.trk.progress.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
    return true;
  }

  /** §5.3/§5.4.2: advance commit to the quorum's match, if that entry is of the current term. */
  maybeCommit(): boolean {
    const before = this.log.committed;
    const idx = this.trk.committedIndex();
    const advanced = this.log.maybeCommit(idx, this.term);
    assert(this.log.committed >= before, 'commit never decreases');
    assert(!advanced || this.log.term(this.log.committed) === this.term, 'a leader commits an entry of its own term');
    return advanced;
  }

  private leaderReadIndex(req: ReadRequest): void {
    if (!this.readOnly.enqueue(req)) throw new RaftError('ERR_PROPOSAL_DROPPED', 'too many pending reads');
    // The round starts in flushReadIndex (called when the driver collects a Ready), so that
    // every read that arrived in this turn shares one heartbeat round.
  }

  /** Thesis §6.4: the leader must have committed an entry of its term before serving reads. */
  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** Can flushReadIndex do anything now? */
  readIndexFlushable(): boolean {
    return this.role === 'leader' && this.readOnly.hasWaiting() && this.committedEntryInCurrentTerm();
  }

  /** Start one heartbeat round for every read waiting (or answer them at once in a one-voter cluster). */
  flushReadIndex(): void {
    if (!this.readIndexFlushable()) return;
    const index = this.log.committed;
    if (this.trk.voters.size === 1 && this.trk.isVoter(this.id)) {
      for (const req of this.readOnly.takeWaiting()) this.answerRead(req, index);
      return;
    }
    const ctx = this.readOnly.startRound(index, this.id);
    this.bcastHeartbeat(ctx);
  }

  private answerRead(req: ReadRequest, index: bigint): void {
    assert(index <= this.log.committed, 'a read index is committed');
    if (req.from === this.id) this.readStates.push({ index, requestCtx: req.ctx });
    else this.send({ type: 'readIndexResp', to: req.from, index, context: req.ctx });
  }

  private leaderTransfer(transferee: NodeId): void {
    const pr = this.trk.progress.get(transferee);
    if (pr === undefined || pr.isLearner) return; // only a voter can become leader
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return; // already in progress
      this.leadTransferee = NONE;
    }
    if (transferee === this.id) return;
    // Thesis §3.10: stop accepting proposals, bring the target up to date, then TimeoutNow.
    // The transfer must finish within an election timeout, so restart the count.
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    this.t(`transferring leadership to ${transferee}`);
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: transferee });
    else this.maybeSendAppend(transferee, true);
  }

  private stepCandidate(m: Message): void {
    const myRespType = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'prop':
        throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader');
      case 'readIndex':
        throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader');
      case 'app':
        // §5.2: "if the AppendEntries RPC is from another server claiming to be leader
        // whose term is at least as large as the candidate's current term, the candidate
        // recognizes the leader as legitimate and returns to follower state".
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        if (m.type !== myRespType) return;
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.role === 'preCandidate') this.campaign('election');
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          // A pre-candidate that lost stays at its term (thesis §9.6).
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.lead === NONE) throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader');
        this.send({ type: 'prop', to: this.lead, entries: m.entries });
        return;
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
        if (this.lead === NONE) throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader to transfer from');
        this.send({ type: 'transferLeader', to: this.lead, index: m.index });
        return;
      case 'timeoutNow':
        // Thesis §3.10: start an election at once, bypassing PreVote and leases.
        this.t(`timeoutNow from ${m.from}`);
        this.hup('transfer');
        return;
      case 'readIndex':
        if (this.lead === NONE) throw new RaftError('ERR_PROPOSAL_DROPPED', 'no leader');
        this.send({ type: 'readIndex', to: this.lead, context: m.context });
        return;
      case 'readIndexResp':
        assert(m.context !== null, 'a read answer carries the request context');
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- receivers

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index is known to match: say so.
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    // §5.3 consistency check failed: reject, with a hint for fast backtracking — the
    // largest index ≤ min(m.index, lastIndex) whose term is ≤ the leader's term there.
    const hint = this.log.findConflictByTerm(minBig(m.index, this.log.lastIndex()), m.logTerm);
    this.t(`rejecting app at ${m.index} (logTerm ${m.logTerm}); hint ${hint.index}/${hint.term}`);
    this.send({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', to: m.from, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    assert(s !== null, 'a snap message carries a snapshot');
    if (this.restore(s)) {
      this.t(`restored snapshot ${s.meta.index}`);
      this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
    }
  }

  /** Install a snapshot (§7, InstallSnapshot receiver). False if it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    assert(this.role === 'follower', 'only a follower restores a snapshot');
    const cs = s.meta.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) return false;
    // "If existing log entry has same index and term as snapshot's last included entry,
    // retain log entries following it": just move commit forward.
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.trk.setConfig(cs, this.log.lastIndex() + 1n);
    this.isLearner = !this.trk.isVoter(this.id);
    assert(this.log.committed === s.meta.index, 'restore commits the snapshot index');
    assert(this.log.lastIndex() === s.meta.index, 'restore empties the log after the snapshot');
    return true;
  }

  // ---------------------------------------------------------------- membership

  /**
   * Apply a committed conf change (the driver calls this when it applies the entry). Like
   * etcd, a configuration takes effect when applied; an invalid change is a no-op.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const before = this.trk.confState();
    if (confChangeRefusal(before, cc) !== null) {
      this.t(`ignoring invalid conf change ${cc.type} ${cc.nodeId}`);
      return before;
    }
    const cs = applyToConfState(before, cc);
    this.trk.setConfig(cs, this.log.lastIndex() + 1n);
    this.isLearner = !this.trk.isVoter(this.id);
    this.t(`applied conf change ${cc.type} ${cc.nodeId}: voters ${cs.voters.join(',')} learners ${cs.learners.join(',')}`);
    if (this.role !== 'leader') return cs;
    if (!this.trk.isVoter(this.id)) {
      // Thesis §4.2.2: a leader that is removed steps down once the change is committed.
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (cs.voters.length === 0) return cs;
    // A smaller quorum may commit more; a new member needs appends.
    if (this.maybeCommit()) this.bcastAppend();
    else this.forEachPeer((id) => this.maybeSendAppend(id, false));
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    return cs;
  }

  // ---------------------------------------------------------------- driver feedback

  /** The driver persisted and applied a Ready (see RawNode.advance). */
  advance(committed: readonly Entry[], lastEntry: Entry | null, snapshot: Snapshot | null): void {
    if (committed.length > 0) {
      this.log.appliedTo(committed[committed.length - 1].index);
      const bytes = payloadBytes(committed);
      this.uncommittedBytes = bytes > this.uncommittedBytes ? 0 : this.uncommittedBytes - bytes;
    }
    if (lastEntry !== null) this.log.stableTo(lastEntry.index, lastEntry.term);
    if (snapshot !== null && !isEmptySnapshot(snapshot)) {
      this.log.stableSnapTo(snapshot.meta.index);
      if (this.log.applied < snapshot.meta.index) this.log.applied = snapshot.meta.index;
    }
    assert(this.log.applied <= this.log.committed, 'applied <= committed after advance');
  }
}
