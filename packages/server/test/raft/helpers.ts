/**
 * Test harness for the Raft unit tests: a few RawNodes over MemoryStorage with a
 * synchronous, lossless network (messages are delivered breadth-first until quiet) and a
 * drop filter to cut links. Each node persists and applies its Ready exactly as the
 * ordering rules in rawnode.ts say.
 */
import {
  MemoryStorage,
  RawNode,
  SeededRand,
  decodeConfChange,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadState,
  type Snapshot,
} from '../../src/raft';

export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
}

export type NodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'rand'>>;

export function bootstrapStorage(voters: NodeId[], learners: NodeId[] = []): MemoryStorage {
  const s = new MemoryStorage();
  // The initial configuration as a snapshot at index 1, term 1: every member starts from
  // it, and a member added later receives it (or a newer one) from the leader.
  s.applySnapshot({ meta: { index: 1n, term: 1n, confState: { voters, learners } }, data: new Uint8Array(0) });
  s.setHardState({ term: 1n, vote: 0n, commit: 1n });
  return s;
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export class TestNet {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Return true to drop a message. */
  dropFilter: (m: Message) => boolean = () => false;
  /** Every message delivered (or dropped), for assertions on traffic. */
  readonly trafficLog: Message[] = [];
  /** The messages of trafficLog that the drop filter dropped. */
  readonly dropped = new WeakSet<Message>();
  private seed = 1;

  constructor(ids: NodeId[], opts: NodeOptions = {}, learners: NodeId[] = []) {
    for (const id of ids) this.addNode(id, bootstrapStorage(ids, learners), opts);
    for (const id of learners) this.addNode(id, bootstrapStorage(ids, learners), opts);
  }

  addNode(id: NodeId, storage: MemoryStorage, opts: NodeOptions = {}): TestNode {
    const node = new RawNode({
      id,
      storage,
      rand: new SeededRand(this.seed++),
      electionTicks: 10,
      heartbeatTicks: 1,
      maxSizePerMsgBytes: 1024 * 1024,
      maxInflightMsgs: 256,
      ...opts,
    });
    const tn: TestNode = { id, node, storage, applied: [], readStates: [] };
    this.nodes.set(id, tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isolate(id: NodeId): void {
    this.dropFilter = (m) => m.from === id || m.to === id;
  }

  heal(): void {
    this.dropFilter = () => false;
  }

  /** Process Readies and deliver messages until nothing is left to do. */
  settle(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      const out: Message[] = [];
      let busy = false;
      for (const tn of this.nodes.values()) {
        if (!tn.node.hasReady()) continue;
        busy = true;
        const rd = tn.node.ready();
        if (rd.snapshot !== null) {
          tn.storage.applySnapshot(rd.snapshot);
          tn.applied = [];
        }
        tn.storage.append(rd.entries);
        if (rd.hardState !== null) tn.storage.setHardState(rd.hardState);
        for (const e of rd.committedEntries) {
          tn.applied.push(e);
          if (e.type === 'confChange') tn.node.applyConfChange(decodeConfChange(e.data));
        }
        tn.readStates.push(...rd.readStates);
        for (const m of rd.messages) {
          if (m.type === 'snap') tn.node.reportSnapshot(m.to, this.dropFilter(m) ? 'failure' : 'finish');
        }
        out.push(...rd.messages);
        tn.node.advance(rd);
      }
      for (const m of out) {
        this.trafficLog.push(m);
        if (this.dropFilter(m)) {
          this.dropped.add(m);
          continue;
        }
        const to = this.nodes.get(m.to);
        if (to === undefined) continue;
        try {
          to.node.step(m);
        } catch (e) {
          if (!(e instanceof Error) || !e.message.startsWith('ERR_')) throw e;
        }
      }
      if (!busy && out.length === 0) return;
    }
    throw new Error('network did not settle');
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.get(id).node.tick();
      this.settle();
    }
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const tn of this.nodes.values()) tn.node.tick();
      this.settle();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.settle();
  }

  propose(id: NodeId, data: string): void {
    this.get(id).node.propose(enc(data));
    this.settle();
  }

  leader(): NodeId | null {
    const leaders = [...this.nodes.values()].filter((n) => n.node.status().softState.role === 'leader');
    return leaders.length === 0 ? null : leaders[leaders.length - 1].id;
  }

  appliedData(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === 'normal' && e.data.byteLength > 0)
      .map((e) => dec(e.data));
  }

  /** Entries in a node's durable log (after the snapshot). */
  logOf(id: NodeId): Entry[] {
    const s = this.get(id).storage;
    return s.entries(s.firstIndex(), s.lastIndex() + 1n, Number.MAX_SAFE_INTEGER);
  }
}

/** Persist and apply one Ready of a lone node (as TestNet does), returning it. */
export function drive(node: RawNode, storage: MemoryStorage): ReturnType<RawNode['ready']> {
  const rd = node.ready();
  if (rd.snapshot !== null) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== null) storage.setHardState(rd.hardState);
  node.advance(rd);
  return rd;
}

export function snapshotOf(index: bigint, term: bigint, voters: NodeId[]): Snapshot {
  return { meta: { index, term, confState: { voters, learners: [] } }, data: enc(`snap@${index}`) };
}
