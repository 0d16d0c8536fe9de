/**
 * The Raft driver: owns the raft core's clock (ticks), its disk (the WAL and the
 * snapshot files) and its network (a `send` function), and runs the Ready loop in the
 * order the core requires (raft/rawnode.ts `Ready`):
 *
 *   1. install a snapshot from the leader (file, WAL marker, log cache, state machine);
 *   2. append entries + hard state to the WAL; fdatasync when `mustSync`;
 *   3. send messages — before the write when `messagesMayPrecedePersist` (a leader
 *      writing its log in parallel with replicating it, Raft thesis §10.2.1), else after;
 *   4. apply committed entries, calling `applyConfChange` for membership changes;
 *   5. hand confirmed reads (ReadIndex, thesis §6.4) to the state machine;
 *   6. advance.
 *
 * One Ready is processed at a time; everything that arrives meanwhile (proposals, peer
 * messages) accumulates in the core and goes out in the next Ready, so one fdatasync
 * covers every entry that arrived during the previous one (group commit).
 *
 * The in-memory `MemoryStorage` mirrors the WAL's live tail (what the leader sends to
 * followers); entries are added to it only after they are durable, then compacted behind
 * snapshots, keeping `SNAPSHOT_CATCHUP_ENTRIES` for slow followers as etcd does.
 */
import { assert } from '../util/assert';
import {
  RawNode,
  MemoryStorage,
  SeededRand,
  decodeConfChange,
  isRaftError,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type ReadState,
  type Ready,
  type Snapshot,
  type SoftState,
  type Status,
} from '../raft';
import { EntryType, type LogEntry, type Wal } from '../storage/wal';
import type { SnapshotStore } from '../storage/snapshot-store';

/** Entries kept in memory behind a snapshot so a slightly slow follower catches up from the log (etcd: 5000). */
export const SNAPSHOT_CATCHUP_ENTRIES = 5000n;
/** etcd's raft MaxSizePerMsg (1 MiB) and MaxInflightMsgs (256, the pipelining window). */
const MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
const MAX_INFLIGHT_MSGS = 256;
/** The leader refuses proposals beyond this many uncommitted payload bytes (etcd: 1 GiB; ours is lower, control data is small). */
const MAX_UNCOMMITTED_BYTES = 256 * 1024 * 1024;

/** What the driver needs from the state machine above it. */
export interface StateMachine {
  /** Apply committed normal entries, in order (an empty `data` is a new leader's no-op). */
  applyEntries(entries: readonly Entry[]): void;
  /** A committed membership change was applied to raft's configuration. */
  applyConfChange(cc: ConfChange, confState: ConfState, index: bigint): void;
  /** The state at `appliedIndex`, encoded for a snapshot. */
  snapshotData(confState: ConfState): Buffer;
  /** Replace the state with the leader's snapshot. */
  installSnapshot(snapshot: Snapshot): void;
  /** Leader or role changed. */
  onSoftState(ss: SoftState): void;
  /** ReadIndex rounds confirmed. */
  onReadStates(rs: readonly ReadState[]): void;
  /** Entries up to this index are applied (after a Ready). */
  onApplied(index: bigint): void;
}

export interface RaftDriverOptions {
  readonly id: bigint;
  readonly wal: Wal;
  readonly snapshots: SnapshotStore;
  readonly storage: MemoryStorage;
  readonly confState: ConfState;
  readonly applied: bigint;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly snapshotCount: number;
  readonly send: (msgs: readonly Message[]) => void;
  readonly sm: StateMachine;
  readonly fatal: (err: unknown) => never;
  readonly log?: (line: string) => void;
}

const toWalEntry = (e: Entry): LogEntry => ({
  term: e.term,
  index: e.index,
  type: e.type === 'confChange' ? EntryType.ConfChange : EntryType.Normal,
  data: Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength),
});

export const fromWalEntry = (e: LogEntry): Entry => ({
  term: e.term,
  index: e.index,
  type: e.type === EntryType.ConfChange ? 'confChange' : 'normal',
  data: e.data,
});

const TRACE = process.env.COORD_RAFT_TRACE === '1';

export class RaftDriver {
  readonly node: RawNode;
  private readonly storage: MemoryStorage;
  private confState: ConfState;
  private applied: bigint;
  private snapshotIndex: bigint;
  private snapshotting = false;
  /** The snapshot being written (file, WAL marker, release), if any: a graceful stop lets it finish. */
  private snapshotSaving: Promise<void> | undefined;
  private processing = false;
  private scheduled = false;
  private stopped = false;
  private ticker: NodeJS.Timeout | undefined;

  constructor(private readonly o: RaftDriverOptions) {
    this.storage = o.storage;
    this.confState = o.confState;
    this.applied = o.applied;
    this.snapshotIndex = o.storage.snapshot().meta.index;
    const electionTicks = Math.max(2, Math.round(o.electionTimeoutMs / o.heartbeatIntervalMs));
    this.node = new RawNode({
      id: o.id,
      storage: o.storage,
      // Election timeouts are randomized per member (§5.2); the seed only needs to differ between members.
      rand: new SeededRand(Number(o.id & 0xffffffffn) ^ (Date.now() & 0xffffffff) ^ process.pid),
      electionTicks,
      heartbeatTicks: 1,
      applied: o.applied,
      maxSizePerMsgBytes: MAX_SIZE_PER_MSG_BYTES,
      maxInflightMsgs: MAX_INFLIGHT_MSGS,
      maxUncommittedEntriesBytes: MAX_UNCOMMITTED_BYTES,
      checkQuorum: true,
      preVote: true,
    });
  }

  start(): void {
    this.ticker = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, this.o.heartbeatIntervalMs);
    // A cluster of one need not wait an election timeout to lead itself (etcd advances
    // the ticks of a fresh single-member cluster for the same reason).
    const cs = this.confState;
    if (cs.voters.length === 1 && cs.voters[0] === this.o.id) this.node.campaign();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.ticker);
  }

  /** Resolves when no snapshot is being written (a restart then replays from it, not from the whole WAL). */
  async snapshotWritten(): Promise<void> {
    await this.snapshotSaving?.catch(() => undefined);
  }

  get appliedIndex(): bigint {
    return this.applied;
  }

  get configuration(): ConfState {
    return this.confState;
  }

  status(): Status {
    return this.node.status();
  }

  /** Deliver messages from peers. */
  step(msgs: readonly Message[]): void {
    if (this.stopped) return;
    if (TRACE) process.stderr.write(`${performance.now().toFixed(1)} recv ${msgs.map((m) => m.type).join(',')}\n`);
    for (const m of msgs) {
      try {
        this.node.step(m);
      } catch (err) {
        // A late response from a removed peer, or a local type from a confused sender: drop it.
        if (!isRaftError(err)) throw err;
      }
    }
    this.schedule();
  }

  /** Propose; throws RaftError ERR_PROPOSAL_DROPPED when no leader can take it now. */
  propose(data: Uint8Array): void {
    this.node.propose(data);
    this.schedule();
  }

  proposeConfChange(cc: ConfChange): void {
    this.node.proposeConfChange(cc);
    this.schedule();
  }

  readIndex(ctx: Uint8Array): void {
    this.node.readIndex(ctx);
    this.schedule();
  }

  transferLeader(to: bigint): void {
    this.node.transferLeader(to);
    this.schedule();
  }

  reportUnreachable(id: bigint): void {
    this.node.reportUnreachable(id);
    this.schedule();
  }

  reportSnapshot(id: bigint, status: 'finish' | 'failure'): void {
    this.node.reportSnapshot(id, status);
    this.schedule();
  }

  /** Runs the Ready loop soon; calls within one turn of the event loop share one run. */
  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.processing || this.stopped) return;
    this.processing = true;
    try {
      while (!this.stopped && this.node.hasReady()) await this.handle(this.node.ready());
    } catch (err) {
      this.o.fatal(err);
    } finally {
      this.processing = false;
    }
    if (!this.stopped && this.node.hasReady()) this.schedule();
  }

  private async handle(rd: Ready): Promise<void> {
    const { wal } = this.o;
    const t0 = TRACE ? performance.now() : 0;
    if (rd.softState) this.o.sm.onSoftState(rd.softState);
    if (rd.snapshot) await this.installSnapshot(rd.snapshot);
    if (rd.entries.length > 0 || rd.hardState) wal.append(rd.entries.map(toWalEntry), rd.hardState ?? undefined);
    // A leader with new entries replicates them in parallel with its own write; a leader's
    // Ready that only moves the commit index answers its clients first (apply), then tells
    // the followers; a follower acknowledges (sends) before it applies.
    const early = rd.messagesMayPrecedePersist && rd.entries.length > 0;
    const applyFirst = rd.messagesMayPrecedePersist && !early;
    if (early) this.send(rd.messages);
    // Figure 2: term, vote and entries are on stable storage before any message that
    // depends on them leaves. A commit-only change rides the next fdatasync.
    if (rd.mustSync) await wal.sync();
    const t1 = TRACE ? performance.now() : 0;
    if (this.stopped) return;
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (!early && !applyFirst) this.send(rd.messages);
    if (rd.committedEntries.length > 0) this.applyCommitted(rd.committedEntries);
    if (applyFirst) this.send(rd.messages);
    if (rd.readStates.length > 0) this.o.sm.onReadStates(rd.readStates);
    this.node.advance(rd);
    this.o.sm.onApplied(this.applied);
    this.maybeSnapshot();
    if (TRACE) {
      const t2 = performance.now();
      process.stderr.write(`${t0.toFixed(1)} ready: ents=${rd.entries.length} msgs=${rd.messages.map((m) => m.type).join(',')} committed=${rd.committedEntries.length} sync=${(t1 - t0).toFixed(2)}ms apply=${(t2 - t1).toFixed(2)}ms early=${rd.messagesMayPrecedePersist}\n`);
    }
  }

  private send(msgs: readonly Message[]): void {
    if (msgs.length > 0) this.o.send(msgs);
  }

  private applyCommitted(entries: readonly Entry[]): void {
    let run: Entry[] = [];
    let confChanged = false;
    for (const e of entries) {
      assert(e.index === this.applied + 1n, `entries are applied in log order, once (${this.applied} then ${e.index})`);
      if (e.type === 'confChange') {
        if (run.length > 0) this.o.sm.applyEntries(run);
        run = [];
        const cc = decodeConfChange(e.data);
        this.confState = this.node.applyConfChange(cc);
        this.applied = e.index;
        this.o.sm.applyConfChange(cc, this.confState, e.index);
        confChanged = true;
      } else {
        run.push(e);
        this.applied = e.index;
      }
    }
    if (run.length > 0) this.o.sm.applyEntries(run);
    // The leader sends a lagging follower its newest snapshot, whose configuration must name
    // the follower (raft/README.md): after a membership change, snapshot right away.
    if (confChanged) this.snapshotNow(true);
  }

  private async installSnapshot(s: Snapshot): Promise<void> {
    const data = Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength);
    await this.o.snapshots.save({ index: s.meta.index, term: s.meta.term }, data);
    // The marker goes in the WAL before any hard state whose commit passes it.
    await this.o.wal.saveSnapshotMarker(s.meta.index, s.meta.term);
    this.storage.applySnapshot(s);
    this.o.sm.installSnapshot(s);
    this.confState = s.meta.confState;
    this.applied = s.meta.index;
    this.snapshotIndex = s.meta.index;
    this.o.log?.(`raft: installed the leader's snapshot at index ${s.meta.index} (term ${s.meta.term})`);
  }

  private maybeSnapshot(): void {
    if (this.applied - this.snapshotIndex >= BigInt(this.o.snapshotCount)) this.snapshotNow(false);
  }

  /**
   * Snapshots the state machine at the applied index: in memory at once (for followers),
   * then to a file, a WAL marker, and the release of WAL segments it covers.
   */
  private snapshotNow(force: boolean): void {
    const index = this.applied;
    if (index <= this.storage.snapshot().meta.index) return;
    if (this.snapshotting && !force) return;
    const data = this.o.sm.snapshotData(this.confState);
    const snap = this.storage.createSnapshot(index, this.confState, data);
    const compactTo = index - SNAPSHOT_CATCHUP_ENTRIES;
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
    if (this.snapshotting) return;
    this.snapshotting = true;
    const { snapshots, wal } = this.o;
    this.snapshotSaving = snapshots
      .save({ index, term: snap.meta.term }, data)
      .then(() => wal.saveSnapshotMarker(index, snap.meta.term))
      .then(() => wal.releaseTo(index))
      .then(() => {
        this.snapshotIndex = index;
        this.snapshotting = false;
      })
      .catch((err: unknown) => (this.stopped ? undefined : this.o.fatal(err)));
  }
}
