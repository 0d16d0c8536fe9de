/**
 * The cluster's membership as the state machine knows it: every member's ID, name, peer
 * and client URLs and learner flag, plus the IDs removed for good (etcd never lets a
 * removed ID back in). Changed only by applying log entries (conf changes, and the
 * attribute/peer-URL updates members publish), so every member holds the same view at
 * the same applied index; saved in snapshots.
 *
 * Raft's own configuration (voters, learners) lives in the raft core; this is the
 * human-facing side of it (etcd's membership.RaftCluster).
 */
import { assert } from '../util/assert';

export interface MemberInfo {
  readonly id: bigint;
  /** Empty until the member has started and published its attributes (etcd shows "unstarted"). */
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/** The serialized form (snapshots, the joining member's fetch). */
export interface MembershipJson {
  readonly members: { id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }[];
  readonly removed: string[];
}

/** etcd caps learners at one (--experimental-max-learners defaults to 1 in 3.4). */
export const MAX_LEARNERS = 1;

export class Membership {
  private readonly members = new Map<bigint, MemberInfo>();
  private readonly removed = new Set<bigint>();

  static fromInitial(entries: readonly { id: bigint; name: string; peerUrls: readonly string[] }[]): Membership {
    const m = new Membership();
    for (const e of entries) m.add({ id: e.id, name: e.name, peerUrls: e.peerUrls, clientUrls: [], isLearner: false });
    return m;
  }

  list(): MemberInfo[] {
    // etcd lists members sorted by ID.
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): MemberInfo | undefined {
    return this.members.get(id);
  }

  has(id: bigint): boolean {
    return this.members.has(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  learnerCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (m.isLearner) n++;
    return n;
  }

  /** The member (other than `except`) already using one of these peer URLs, if any. */
  peerUrlOwner(urls: readonly string[], except?: bigint): MemberInfo | undefined {
    const wanted = new Set(urls);
    for (const m of this.members.values()) {
      if (m.id === except) continue;
      if (m.peerUrls.some((u) => wanted.has(u))) return m;
    }
    return undefined;
  }

  add(info: MemberInfo): void {
    assert(!this.removed.has(info.id), `member ${info.id.toString(16)} was removed and cannot come back`);
    this.members.set(info.id, { ...info, peerUrls: [...info.peerUrls], clientUrls: [...info.clientUrls] });
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  promote(id: bigint): void {
    const m = this.members.get(id);
    if (m) this.members.set(id, { ...m, isLearner: false });
  }

  setAttributes(id: bigint, name: string, clientUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m) this.members.set(id, { ...m, name, clientUrls: [...clientUrls] });
  }

  setPeerUrls(id: bigint, peerUrls: readonly string[]): void {
    const m = this.members.get(id);
    if (m) this.members.set(id, { ...m, peerUrls: [...peerUrls] });
  }

  toJSON(): MembershipJson {
    return {
      members: this.list().map((m) => ({ id: String(m.id), name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: m.isLearner })),
      removed: [...this.removed].map(String),
    };
  }

  static fromJSON(j: MembershipJson): Membership {
    const m = new Membership();
    for (const r of j.removed) m.removed.add(BigInt(r));
    for (const x of j.members) m.members.set(BigInt(x.id), { id: BigInt(x.id), name: x.name, peerUrls: x.peerUrls, clientUrls: x.clientUrls, isLearner: x.isLearner });
    return m;
  }
}

/** etcd compares peer URL sets ignoring order. */
export function samePeerUrls(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const x = [...a].sort();
  const y = [...b].sort();
  return x.every((u, i) => u === y[i]);
}
