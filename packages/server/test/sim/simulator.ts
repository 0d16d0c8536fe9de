/**
 * Deterministic simulator of a Raft cluster (TigerBeetle's VOPR and FoundationDB's
 * simulation are the models). One seed fixes everything: fault rates, the network's
 * delays, losses, duplicates and partitions, crashes and restarts, client operations,
 * membership changes and leadership transfers. `SIM_SEED=N` replays seed N exactly.
 *
 * Time is a step counter; every `tickSteps` steps each live node ticks. The disk is each
 * node's MemoryStorage, which survives crashes; a crash may strike before a Ready is
 * persisted (a leader may already have sent its messages, thesis §10.2.1), in the middle
 * of writing its entries (a prefix survives, as a torn WAL tail would be truncated), or
 * after it is persisted but before messages are sent and entries applied.
 *
 * Phases: a safety phase with every fault on, then a liveness phase on a healed network
 * with every node restarted, which must commit a final entry on every member.
 *
 * Checkers (each failure names the seed):
 * - election safety: at most one leader per term (§5.2)
 * - log matching: two logs with an entry of the same index and term agree on it and on
 *   everything before it (§5.3), checked inductively on every durable append
 * - leader completeness: a new leader's log holds every entry known committed (§5.4)
 * - state-machine safety: every member applies the same entry at each index, in order,
 *   and a snapshot carries the same state hash as applying the entries (§5.4.3)
 * - no acknowledged write lost: every put answered to a client is in the final state
 * - linearizability of the client-visible KV history (puts via the log, gets via ReadIndex)
 */
import {
  MemoryStorage,
  RawNode,
  SeededRand,
  decodeConfChange,
  isRaftError,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type Snapshot,
} from '../../src/raft';
import { checkKv, type KvOp } from './linearizability';

export interface SimOptions {
  /** Steps of the safety phase. */
  readonly safetySteps?: number;
  /** Steps the liveness phase may take at most. */
  readonly livenessStepsMax?: number;
  /** Keep a trace of raft events (slower); printed on failure. */
  readonly trace?: boolean;
}

export interface SimStats {
  readonly seed: number;
  readonly members: number;
  readonly steps: number;
  readonly puts: number;
  readonly putsAcked: number;
  readonly gets: number;
  readonly getsAnswered: number;
  readonly crashes: number;
  readonly elections: number;
  readonly confChanges: number;
  readonly transfers: number;
  readonly snapshotsSent: number;
  readonly messages: number;
  readonly linearizabilityInconclusive: boolean;
}

export class SimFailure extends Error {
  constructor(
    readonly seed: number,
    readonly reason: string,
    readonly trace: readonly string[],
  ) {
    super(`seed=${seed}: ${reason} (replay: SIM_SEED=${seed})`);
  }
}

/** Fault and workload rates, drawn once per seed. */
interface Rates {
  lossRate: number;
  dupRate: number;
  delayMaxSteps: number;
  partitionRate: number;
  partitionStepsMax: number;
  crashRate: number;
  crashInReadyRate: number;
  downStepsMax: number;
  putRate: number;
  getRate: number;
  confChangeRate: number;
  transferRate: number;
  snapshotEvery: number;
  compactKeep: number;
  maxInflightMsgs: number;
  maxSizePerMsgBytes: number;
}

function drawRates(r: SeededRand): Rates {
  const pick = <T>(xs: T[]): T => xs[r.intn(xs.length)];
  return {
    lossRate: pick([0, 0, 0.01, 0.05, 0.1, 0.2]),
    dupRate: pick([0, 0.01, 0.05, 0.1]),
    delayMaxSteps: pick([1, 2, 5, 10, 20]),
    partitionRate: pick([0, 0.002, 0.005, 0.01]),
    partitionStepsMax: pick([50, 200, 500]),
    crashRate: pick([0, 0.0005, 0.001, 0.003]),
    crashInReadyRate: pick([0, 0.002, 0.01]),
    downStepsMax: pick([20, 100, 400]),
    putRate: pick([0.05, 0.2, 0.5]),
    getRate: pick([0.05, 0.2, 0.4]),
    confChangeRate: pick([0, 0.002, 0.005]),
    transferRate: pick([0, 0.001, 0.003]),
    snapshotEvery: pick([5, 20, 100, 1000]),
    compactKeep: pick([0, 2, 10]),
    maxInflightMsgs: pick([1, 4, 256]),
    maxSizePerMsgBytes: pick([64, 1024, 1 << 20]),
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** FNV-1a over a previous hash and an entry's type and data. */
function chainHash(prev: number, e: Entry): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  h = Math.imul(h ^ (e.type === 'normal' ? 1 : 2), 16777619) >>> 0;
  for (let i = 0; i < e.data.byteLength; i++) h = Math.imul(h ^ e.data[i], 16777619) >>> 0;
  return h;
}

function entryDigest(e: Entry): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < e.data.byteLength; i++) h = Math.imul(h ^ e.data[i], 16777619) >>> 0;
  return `${e.type}:${e.data.byteLength}:${h}`;
}

interface PutCmd {
  op: number;
  key: string;
  value: string;
}

/** The replicated state machine: a KV map, the set of applied op IDs, and a chained hash. */
class StateMachine {
  kv = new Map<string, string>();
  ops = new Set<number>();
  applied = 0n;
  hash = 0;

  apply(e: Entry): PutCmd | null {
    this.applied = e.index;
    this.hash = chainHash(this.hash, e);
    if (e.type !== 'normal' || e.data.byteLength === 0) return null;
    const cmd = JSON.parse(dec.decode(e.data)) as PutCmd;
    // Raft §8: the network may duplicate a forwarded proposal, so the log may hold a command
    // twice (seed 17770); exactly-once is the state machine's job: a command already applied
    // is not applied again. (The set is part of the snapshot, so every member skips the same.)
    if (this.ops.has(cmd.op)) return null;
    this.kv.set(cmd.key, cmd.value);
    this.ops.add(cmd.op);
    return cmd;
  }

  encode(): Uint8Array {
    return enc.encode(JSON.stringify({ kv: [...this.kv], ops: [...this.ops], hash: this.hash, applied: String(this.applied) }));
  }

  static decode(s: Snapshot): StateMachine {
    const sm = new StateMachine();
    sm.applied = s.meta.index;
    if (s.data.byteLength === 0) return sm; // the bootstrap snapshot
    const o = JSON.parse(dec.decode(s.data)) as { kv: [string, string][]; ops: number[]; hash: number; applied: string };
    if (BigInt(o.applied) !== s.meta.index) throw new Error(`snapshot data at ${o.applied} labelled ${s.meta.index}`);
    sm.kv = new Map(o.kv);
    sm.ops = new Set(o.ops);
    sm.hash = o.hash;
    return sm;
  }
}

interface PendingOp {
  op: KvOpDraft;
  node: NodeId;
  incarnation: number;
  deadline: number;
  readIndex: bigint | null;
}

interface KvOpDraft {
  id: number;
  kind: 'put' | 'get';
  key: string;
  value: string | null;
  call: number;
  ret: number;
}

interface SimNode {
  id: NodeId;
  storage: MemoryStorage;
  node: RawNode | null;
  sm: StateMachine;
  incarnation: number;
  downUntil: number;
  removed: boolean;
  /** Snapshot/compaction bookkeeping. */
  lastSnapshotIndex: bigint;
  confState: ConfState;
}

interface InFlight {
  at: number;
  seq: number;
  m: Message;
  fromIncarnation: number;
}

const KEYS = ['a', 'b', 'c', 'd', 'e'];

export class Simulation {
  readonly rand: SeededRand;
  readonly rates: Rates;
  readonly nodes = new Map<NodeId, SimNode>();
  private now = 0;
  private seq = 0;
  private inflight: InFlight[] = [];
  /** Directed links that are cut: `${from}>${to}`. */
  private cut = new Set<string>();
  private partitionUntil = 0;
  private nextNodeId: NodeId;
  private nextOpId = 1;
  private readonly clientsMax: number;
  private readonly pending: PendingOp[] = [];
  private readonly history: KvOpDraft[] = [];
  private readonly traceLines: string[] = [];
  private faultsOn = true;

  // checker state
  private readonly leaderOfTerm = new Map<bigint, NodeId>();
  private readonly logIndex = new Map<string, string>();
  /**
   * Entries seen committed: term, digest, and an upper bound of the term they were committed
   * in (the highest leader term seen when first applied; the committing leader is among them).
   */
  private readonly committed = new Map<bigint, { term: bigint; digest: string; committedBy: bigint }>();
  private maxLeaderTerm = 0n;
  private readonly stateHashAt = new Map<bigint, number>();
  private readonly ackedPuts = new Set<number>();
  private maxAckedIndex = 0n;
  /** The liveness phase's final write, and the index it was applied at. */
  private markerOp = -1;
  private markerIndex: bigint | null = null;

  private stats = {
    puts: 0,
    putsAcked: 0,
    gets: 0,
    getsAnswered: 0,
    crashes: 0,
    elections: 0,
    confChanges: 0,
    transfers: 0,
    snapshotsSent: 0,
    messages: 0,
  };

  constructor(
    readonly seed: number,
    readonly opts: SimOptions = {},
  ) {
    this.rand = new SeededRand(seed);
    this.rates = drawRates(this.rand);
    const members = this.rand.chance(0.5) ? 3 : 5;
    this.clientsMax = 1 + this.rand.intn(6);
    const voters: NodeId[] = [];
    for (let i = 1; i <= members; i++) voters.push(BigInt(i));
    for (const id of voters) {
      const storage = new MemoryStorage();
      storage.applySnapshot({ meta: { index: 1n, term: 1n, confState: { voters, learners: [] } }, data: new Uint8Array(0) });
      storage.setHardState({ term: 1n, vote: 0n, commit: 1n });
      this.nodes.set(id, {
        id,
        storage,
        node: null,
        sm: new StateMachine(),
        incarnation: 0,
        downUntil: 0,
        removed: false,
        lastSnapshotIndex: 1n,
        confState: { voters, learners: [] },
      });
      this.start(id);
    }
    this.nextNodeId = BigInt(members + 1);
  }

  private trace(line: string): void {
    if (this.opts.trace !== true) return;
    this.traceLines.push(`[${this.now}] ${line}`);
    if (this.traceLines.length > 400_000) this.traceLines.splice(0, 100_000);
  }

  fail(reason: string): never {
    throw new SimFailure(this.seed, reason, this.traceLines);
  }

  private start(id: NodeId): void {
    const n = this.nodes.get(id)!;
    const snap = n.storage.snapshot();
    n.sm = StateMachine.decode(snap);
    n.incarnation++;
    n.confState = snap.meta.confState;
    n.lastSnapshotIndex = snap.meta.index;
    n.node = new RawNode({
      id,
      storage: n.storage,
      rand: this.rand.fork(),
      electionTicks: 10,
      heartbeatTicks: 1,
      applied: snap.meta.index,
      maxInflightMsgs: this.rates.maxInflightMsgs,
      maxSizePerMsgBytes: this.rates.maxSizePerMsgBytes,
      maxUncommittedEntriesBytes: 1 << 20,
      trace: this.opts.trace === true ? (l) => this.trace(l) : undefined,
    });
    this.trace(`node ${id} started (incarnation ${n.incarnation}, snapshot ${snap.meta.index})`);
  }

  private crash(id: NodeId, why: string): void {
    const n = this.nodes.get(id)!;
    if (n.node === null) return;
    n.node = null;
    n.downUntil = this.now + 1 + this.rand.intn(this.rates.downStepsMax);
    this.stats.crashes++;
    this.trace(`node ${id} crashed (${why})`);
    // Its clients' operations have unknown outcomes now: puts may still commit, gets are dropped.
    for (let i = this.pending.length - 1; i >= 0; i--) {
      if (this.pending[i].node === id) this.abandon(i);
    }
  }

  private abandon(i: number): void {
    const p = this.pending[i];
    this.pending.splice(i, 1);
    if (p.op.kind === 'put') {
      p.op.ret = Infinity;
      this.history.push(p.op);
    }
  }

  // ------------------------------------------------------------ network

  private send(from: SimNode, m: Message): void {
    this.stats.messages++;
    if (m.type === 'snap') this.stats.snapshotsSent++;
    const copies = this.faultsOn && this.rand.chance(this.rates.dupRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const at = this.now + 1 + this.rand.intn(this.rates.delayMaxSteps);
      this.inflight.push({ at, seq: this.seq++, m, fromIncarnation: from.incarnation });
    }
  }

  private deliverDue(): void {
    if (this.inflight.length === 0) return;
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.inflight) (f.at <= this.now ? due : rest).push(f);
    if (due.length === 0) return;
    this.inflight = rest;
    due.sort((a, b) => a.at - b.at || a.seq - b.seq);
    for (const f of due) {
      const m = f.m;
      const to = this.nodes.get(m.to);
      const from = this.nodes.get(m.from)!;
      const lost =
        to === undefined ||
        to.node === null ||
        to.removed ||
        this.cut.has(`${m.from}>${m.to}`) ||
        (this.faultsOn && this.rand.chance(this.rates.lossRate));
      if (m.type === 'snap' && from.node !== null && from.incarnation === f.fromIncarnation) {
        // The transport knows whether a snapshot stream completed.
        from.node.reportSnapshot(m.to, lost ? 'failure' : 'finish');
      }
      if (lost) continue;
      try {
        to.node!.step(m);
      } catch (e) {
        if (!isRaftError(e)) this.fail(`node ${m.to} stepping ${m.type} from ${m.from}: ${(e as Error).stack ?? e}`);
      }
    }
  }

  private maybePartition(): void {
    if (this.cut.size > 0 && this.now >= this.partitionUntil) {
      this.cut.clear();
      this.trace('partition healed');
    }
    if (!this.faultsOn || this.cut.size > 0 || !this.rand.chance(this.rates.partitionRate)) return;
    const ids = [...this.nodes.keys()];
    const kind = this.rand.intn(3);
    if (kind === 0) {
      // isolate one node
      const x = ids[this.rand.intn(ids.length)];
      for (const y of ids) if (y !== x) this.cut.add(`${x}>${y}`).add(`${y}>${x}`);
    } else if (kind === 1) {
      // split into two sides
      const side = new Set(ids.filter(() => this.rand.chance(0.5)));
      for (const x of ids) for (const y of ids) if (side.has(x) !== side.has(y)) this.cut.add(`${x}>${y}`);
    } else {
      // asymmetric: some directed links fail one way only
      for (const x of ids) for (const y of ids) if (x !== y && this.rand.chance(0.3)) this.cut.add(`${x}>${y}`);
    }
    this.partitionUntil = this.now + 1 + this.rand.intn(this.rates.partitionStepsMax);
    this.trace(`partition ${[...this.cut].join(' ')} until ${this.partitionUntil}`);
  }

  // ------------------------------------------------------------ node loop

  private processReady(n: SimNode): void {
    const node = n.node!;
    const rd = node.ready();
    if (rd.softState !== null && rd.softState.role === 'leader') this.checkNewLeader(n, node.basicStatus().hardState.term);

    const crashRoll = this.faultsOn && this.rand.chance(this.rates.crashInReadyRate) ? this.rand.intn(3) : -1;
    if (rd.messagesMayPrecedePersist) for (const m of rd.messages) this.send(n, m);
    if (crashRoll === 0) return this.crash(n.id, 'before persisting a Ready');

    if (rd.snapshot !== null) {
      n.storage.applySnapshot(rd.snapshot);
      n.sm = StateMachine.decode(rd.snapshot);
      n.confState = rd.snapshot.meta.confState;
      n.lastSnapshotIndex = rd.snapshot.meta.index;
      this.checkStateHash(n, rd.snapshot.meta.index, n.sm.hash, 'snapshot');
    }
    if (crashRoll === 1 && rd.entries.length > 0) {
      // A torn write: only a prefix of the entries reaches the disk, the hard state does not.
      this.persistEntries(n, rd.entries.slice(0, this.rand.intn(rd.entries.length)));
      return this.crash(n.id, 'while persisting a Ready');
    }
    this.persistEntries(n, rd.entries);
    if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
    if (crashRoll === 2) return this.crash(n.id, 'after persisting a Ready');

    if (!rd.messagesMayPrecedePersist) for (const m of rd.messages) this.send(n, m);
    if (rd.softState !== null && rd.softState.role === 'leader') this.checkLeaderCompleteness(n, node.basicStatus().hardState.term);
    this.applyCommitted(n, rd);
    if (n.node === null || n.removed) return;
    for (const rs of rd.readStates) {
      const id = Number(dec.decode(rs.requestCtx));
      const p = this.pending.find((x) => x.op.id === id && x.node === n.id && x.incarnation === n.incarnation);
      if (p !== undefined) p.readIndex = rs.index;
    }
    node.advance(rd);
    this.maybeSnapshot(n);
  }

  private persistEntries(n: SimNode, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // Log matching, inductively: (index, term) determines the entry and its predecessor's term.
    let prevTerm: bigint | null;
    try {
      prevTerm = n.storage.term(entries[0].index - 1n);
    } catch {
      prevTerm = null;
    }
    for (const e of entries) {
      const key = `${e.index}:${e.term}`;
      const val = `${prevTerm ?? '?'}|${entryDigest(e)}`;
      const seen = this.logIndex.get(key);
      if (seen === undefined || seen.startsWith('?')) this.logIndex.set(key, val);
      else if (seen !== val && !val.startsWith('?')) {
        this.fail(`log matching: entry ${key} on node ${n.id} is ${val}, elsewhere ${seen}`);
      }
      prevTerm = e.term;
    }
    n.storage.append(entries);
  }

  private applyCommitted(n: SimNode, rd: Ready): void {
    for (const e of rd.committedEntries) {
      if (e.index !== n.sm.applied + 1n) this.fail(`node ${n.id} applies ${e.index} after ${n.sm.applied}`);
      const digest = entryDigest(e);
      const c = this.committed.get(e.index);
      if (c === undefined) this.committed.set(e.index, { term: e.term, digest, committedBy: this.maxLeaderTerm });
      else if (c.term !== e.term || c.digest !== digest) {
        this.fail(`state machine safety: node ${n.id} applies ${e.index}/${e.term} ${digest}, another applied ${c.term} ${c.digest}`);
      }
      const cmd = n.sm.apply(e);
      this.checkStateHash(n, e.index, n.sm.hash, 'apply');
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        n.confState = n.node!.applyConfChange(cc);
        this.trace(`node ${n.id} applied ${cc.type} ${cc.nodeId} at ${e.index}`);
        if (cc.type === 'removeNode') {
          const gone = this.nodes.get(cc.nodeId);
          if (gone !== undefined && !gone.removed) {
            // The removed member is shut down (etcd's peers refuse a removed member).
            gone.removed = true;
            gone.node = null;
            for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i].node === gone.id) this.abandon(i);
            this.trace(`node ${gone.id} removed and stopped`);
          }
          if (n.removed) return;
        }
        // A snapshot naming the new configuration, so that a new member can be sent one.
        this.takeSnapshot(n);
      }
      if (cmd !== null && cmd.op === this.markerOp && this.markerIndex === null) this.markerIndex = e.index;
      if (cmd !== null) {
        const i = this.pending.findIndex((p) => p.op.id === cmd.op && p.node === n.id && p.incarnation === n.incarnation);
        if (i >= 0) {
          const p = this.pending[i];
          this.pending.splice(i, 1);
          p.op.ret = this.now;
          this.history.push(p.op);
          this.ackedPuts.add(cmd.op);
          if (e.index > this.maxAckedIndex) this.maxAckedIndex = e.index;
          this.trace(`ack op ${cmd.op} at ${e.index}/${e.term} on node ${n.id}`);
          this.stats.putsAcked++;
        }
      }
    }
  }

  private takeSnapshot(n: SimNode): void {
    if (n.sm.applied <= n.lastSnapshotIndex) return;
    n.storage.createSnapshot(n.sm.applied, n.confState, n.sm.encode());
    n.lastSnapshotIndex = n.sm.applied;
    const keep = BigInt(this.rates.compactKeep);
    const compactTo = n.sm.applied - keep;
    if (compactTo > n.storage.firstIndex() - 1n && compactTo <= n.storage.lastIndex()) n.storage.compact(compactTo);
  }

  private maybeSnapshot(n: SimNode): void {
    if (n.sm.applied - n.lastSnapshotIndex >= BigInt(this.rates.snapshotEvery)) this.takeSnapshot(n);
  }

  // ------------------------------------------------------------ checkers

  private checkNewLeader(n: SimNode, term: bigint): void {
    this.stats.elections++;
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== n.id) this.fail(`election safety: nodes ${other} and ${n.id} both leaders of term ${term}`);
    this.leaderOfTerm.set(term, n.id);
    if (term > this.maxLeaderTerm) this.maxLeaderTerm = term;
    this.trace(`node ${n.id} is leader of term ${term}`);
  }

  /**
   * §5.4 Leader Completeness: "If a log entry is committed in a given term, then that entry
   * will be present in the logs of the leaders for all higher-numbered terms." Only higher:
   * a delayed vote can still elect a leader of an older term after a newer term committed
   * entries it lacks (found by seed 39496), and that is legal.
   */
  private checkLeaderCompleteness(n: SimNode, term: bigint): void {
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    for (const [index, c] of this.committed) {
      if (c.committedBy >= term) continue; // perhaps committed in this term or a later one
      if (index < first) continue; // covered by the leader's snapshot (checked by state hash)
      if (index > last) this.fail(`leader completeness: leader ${n.id} lacks committed entry ${index} (last ${last})`);
      const t = n.storage.term(index);
      if (t !== c.term) this.fail(`leader completeness: leader ${n.id} has ${index}/${t}, committed was ${index}/${c.term}`);
    }
  }

  private checkStateHash(n: SimNode, index: bigint, hash: number, how: string): void {
    const h = this.stateHashAt.get(index);
    if (h === undefined) this.stateHashAt.set(index, hash);
    else if (h !== hash) this.fail(`state machine safety: node ${n.id} state at ${index} (${how}) differs from another member's`);
  }

  // ------------------------------------------------------------ workload

  private liveMembers(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.node !== null && !n.removed);
  }

  private leader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1n;
    for (const n of this.liveMembers()) {
      const st = n.node!.basicStatus();
      if (st.softState.role === 'leader' && st.hardState.term > bestTerm) {
        best = n;
        bestTerm = st.hardState.term;
      }
    }
    return best;
  }

  private clientStep(): void {
    const live = this.liveMembers();
    if (live.length === 0) return;
    // Give up on operations past their deadline (a put's outcome is then unknown).
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i].deadline <= this.now) this.abandon(i);
    // Answer reads whose member has applied past their read index.
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i];
      if (p.op.kind !== 'get' || p.readIndex === null) continue;
      const n = this.nodes.get(p.node)!;
      if (n.sm.applied < p.readIndex) continue;
      p.op.value = n.sm.kv.get(p.op.key) ?? null;
      p.op.ret = this.now;
      this.history.push(p.op);
      this.pending.splice(i, 1);
      this.stats.getsAnswered++;
    }
    if (!this.faultsOn || this.pending.length >= this.clientsMax) return;
    const isPut = this.rand.chance(this.rates.putRate);
    const isGet = !isPut && this.rand.chance(this.rates.getRate);
    if (!isPut && !isGet) return;
    const n = live[this.rand.intn(live.length)];
    const id = this.nextOpId++;
    const key = KEYS[this.rand.intn(KEYS.length)];
    const op: KvOpDraft = { id, kind: isPut ? 'put' : 'get', key, value: isPut ? `v${id}` : null, call: this.now, ret: Infinity };
    try {
      if (isPut) {
        this.stats.puts++;
        n.node!.propose(enc.encode(JSON.stringify({ op: id, key, value: op.value as string } satisfies PutCmd)));
      } else {
        this.stats.gets++;
        n.node!.readIndex(enc.encode(String(id)));
      }
    } catch (e) {
      if (!isRaftError(e)) throw e;
      return; // refused at once: no effect, left out of the history
    }
    this.pending.push({ op, node: n.id, incarnation: n.incarnation, deadline: this.now + 300, readIndex: null });
  }

  private adminStep(): void {
    if (!this.faultsOn) return;
    if (this.rand.chance(this.rates.confChangeRate)) this.confChange();
    if (this.rand.chance(this.rates.transferRate)) {
      const l = this.leader();
      if (l === null) return;
      const voters = l.confState.voters.filter((v) => v !== l.id);
      if (voters.length === 0) return;
      const to = voters[this.rand.intn(voters.length)];
      this.stats.transfers++;
      this.trace(`transfer leadership ${l.id} → ${to}`);
      l.node!.transferLeader(to);
    }
  }

  private confChange(): void {
    const l = this.leader();
    if (l === null) return;
    const cs = l.node!.status().confState;
    const choice = this.rand.intn(3);
    let cc: { type: 'addNode' | 'addLearner' | 'removeNode'; nodeId: NodeId } | null = null;
    if (choice === 0 && cs.voters.length + cs.learners.length < 7 && this.nextNodeId <= 12n) {
      cc = { type: 'addLearner', nodeId: this.nextNodeId };
    } else if (choice === 1 && cs.learners.length > 0) {
      // Promote a learner once it has caught up (thesis §4.2.1).
      const id = cs.learners[this.rand.intn(cs.learners.length)];
      const pr = l.node!.status().progress?.get(id);
      if (pr !== undefined && pr.match + 5n >= l.node!.status().lastIndex && cs.voters.length < 5) cc = { type: 'addNode', nodeId: id };
    } else if (choice === 2) {
      const all = [...cs.voters, ...cs.learners];
      const id = all[this.rand.intn(all.length)];
      if (cs.learners.includes(id) || cs.voters.length > 3) cc = { type: 'removeNode', nodeId: id };
    }
    if (cc === null) return;
    try {
      l.node!.proposeConfChange({ ...cc, context: new Uint8Array(0) });
    } catch (e) {
      if (!isRaftError(e)) throw e;
      return;
    }
    this.stats.confChanges++;
    this.trace(`proposed ${cc.type} ${cc.nodeId} via ${l.id}`);
    if (cc.type === 'addLearner') {
      // The new member starts empty; the leader brings it up to date (log or snapshot).
      const storage = new MemoryStorage();
      this.nodes.set(cc.nodeId, {
        id: cc.nodeId,
        storage,
        node: null,
        sm: new StateMachine(),
        incarnation: 0,
        downUntil: 0,
        removed: false,
        lastSnapshotIndex: 0n,
        confState: { voters: [], learners: [] },
      });
      this.start(cc.nodeId);
      this.nextNodeId++;
    }
  }

  // ------------------------------------------------------------ main loop

  private step(): void {
    this.now++;
    this.maybePartition();
    this.deliverDue();
    const tickSteps = 5;
    for (const n of this.nodes.values()) {
      if (n.removed) continue;
      if (n.node === null) {
        if (n.downUntil <= this.now) this.start(n.id);
        continue;
      }
      if (this.faultsOn && this.rand.chance(this.rates.crashRate)) {
        this.crash(n.id, 'at random');
        continue;
      }
      if ((this.now + Number(n.id)) % tickSteps === 0) n.node.tick();
    }
    this.adminStep();
    this.clientStep();
    for (const n of this.nodes.values()) {
      for (let k = 0; k < 4 && n.node !== null && n.node.hasReady(); k++) this.processReady(n);
    }
  }

  run(): SimStats {
    try {
      return this.runInner();
    } catch (e) {
      if (e instanceof SimFailure) throw e;
      throw new SimFailure(this.seed, `exception: ${(e as Error).stack ?? e}`, this.traceLines);
    }
  }

  private runInner(): SimStats {
    const safetySteps = this.opts.safetySteps ?? 3000;
    for (let i = 0; i < safetySteps; i++) this.step();

    // Liveness: heal everything, restart everyone, stop faults; a final write must commit
    // on every member of the configuration.
    this.faultsOn = false;
    this.cut.clear();
    for (const n of this.nodes.values()) if (!n.removed && n.node === null) this.start(n.id);
    this.trace('--- liveness phase ---');
    const livenessMax = this.opts.livenessStepsMax ?? 4000;
    const markerOp = this.nextOpId++;
    this.markerOp = markerOp;
    let proposedAt = -Infinity;
    for (let i = 0; i < livenessMax; i++) {
      this.step();
      const l = this.leader();
      if (l === null) continue;
      const markerIndex = this.markerIndex;
      if (markerIndex === null) {
        if (this.now - proposedAt > 200) {
          proposedAt = this.now;
          try {
            l.node!.propose(this.markerData(markerOp));
          } catch (e) {
            if (!isRaftError(e)) throw e;
          }
        }
        continue;
      }
      const cs = l.node!.status().confState;
      const members = [...cs.voters, ...cs.learners].map((id) => this.nodes.get(id)!);
      // Every member has applied the marker and every acknowledged write (some are
      // acknowledged during this phase, after the marker).
      const target: bigint = markerIndex > this.maxAckedIndex ? markerIndex : this.maxAckedIndex;
      if (members.every((m) => m.node !== null && m.sm.applied >= target)) {
        this.finalChecks(members);
        return this.result(members.length);
      }
    }
    const st = [...this.nodes.values()].map((n) => {
      const s = n.node?.status();
      return `${n.id}:${n.removed ? 'removed' : s === undefined ? 'down' : `${s.softState.role} t${s.hardState.term} commit ${s.hardState.commit} applied ${n.sm.applied} last ${s.lastIndex} voters ${s.confState.voters.join(',')} learners ${s.confState.learners.join(',')}`}`;
    });
    this.fail(`liveness: no final commit on every member within ${livenessMax} steps (marker index ${this.markerIndex}); ${st.join('; ')}`);
  }

  private markerData(op: number): Uint8Array {
    return enc.encode(JSON.stringify({ op, key: '__marker', value: 'done' } satisfies PutCmd));
  }

  private finalChecks(members: SimNode[]): void {
    for (const m of members) {
      for (const op of this.ackedPuts) {
        if (!m.sm.ops.has(op)) this.fail(`lost write: op ${op} was acknowledged but member ${m.id} (applied ${m.sm.applied}) does not have it`);
      }
    }
    // Operations still pending have unknown outcomes.
    for (const p of this.pending) if (p.op.kind === 'put') this.history.push({ ...p.op, ret: Infinity });
    const res = checkKv(this.history.map((o): KvOp => ({ id: o.id, kind: o.kind, key: o.key, value: o.value, call: o.call, ret: o.ret })));
    if (!res.ok) {
      const lines = res.ops
        .slice()
        .sort((a, b) => a.call - b.call)
        .map((o) => `  #${o.id} ${o.kind} ${o.value ?? 'null'} [${o.call}, ${o.ret}]`);
      this.fail(`linearizability: history of key ${res.key} is not linearizable:\n${lines.join('\n')}`);
    }
    this.linInconclusive = res.inconclusive;
  }

  private linInconclusive = false;

  private result(members: number): SimStats {
    return { seed: this.seed, members, steps: this.now, ...this.stats, linearizabilityInconclusive: this.linInconclusive };
  }
}

/** Run one seed; throws SimFailure (whose message starts with `seed=N`) on any violation. */
export function runSeed(seed: number, opts: SimOptions = {}): SimStats {
  return new Simulation(seed, opts).run();
}
