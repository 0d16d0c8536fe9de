/**
 * Batched ReadIndex (thesis §6.4). A read needs (1) the leader's commit index at a moment
 * when (2) it was still the leader. Reads queue in `waiting`; at most one heartbeat round
 * is in flight; when it starts it takes every waiting read and records the commit index;
 * once a quorum acknowledges the round, leadership was confirmed after every one of those
 * reads arrived, and they are all answered with the recorded index. Reads that arrive
 * while a round is in flight wait for the next round (the round's heartbeats were sent
 * before they arrived, so they cannot vouch for them).
 */
import { assert } from '../util/assert';
import type { NodeId } from './types';

export interface ReadRequest {
  /** Who asked: the leader itself (answered as a ReadState) or a follower (answered by message). */
  readonly from: NodeId;
  readonly ctx: Uint8Array;
}

interface Round {
  readonly id: bigint;
  readonly index: bigint;
  readonly reqs: readonly ReadRequest[];
  readonly acks: Set<NodeId>;
}

export function encodeRoundCtx(id: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, id);
  return out;
}

export function decodeRoundCtx(ctx: Uint8Array | null): bigint | null {
  if (ctx === null || ctx.byteLength !== 8) return null;
  return new DataView(ctx.buffer, ctx.byteOffset, 8).getBigUint64(0);
}

export class ReadOnly {
  private waiting: ReadRequest[] = [];
  private round: Round | null = null;
  /** Never reset, so a stale acknowledgement can never match a later round. */
  private nextRoundId = 1n;

  constructor(readonly maxPendingReads: number) {
    assert(maxPendingReads > 0, 'readOnly: maxPendingReads > 0');
  }

  /** Queue a read; false when the queue is full (the caller drops it). */
  enqueue(req: ReadRequest): boolean {
    if (this.waiting.length + (this.round?.reqs.length ?? 0) >= this.maxPendingReads) return false;
    this.waiting.push(req);
    return true;
  }

  hasWaiting(): boolean {
    return this.waiting.length > 0 && this.round === null;
  }

  /** Start a round for every waiting read at commit index `index`; returns its heartbeat context. */
  startRound(index: bigint, self: NodeId): Uint8Array {
    assert(this.round === null, 'readOnly: one round in flight at a time');
    assert(this.waiting.length > 0, 'readOnly: a round serves at least one read');
    const id = this.nextRoundId++;
    this.round = { id, index, reqs: this.waiting, acks: new Set([self]) };
    this.waiting = [];
    return encodeRoundCtx(id);
  }

  /** Serve every waiting read at once without a round (a single-voter cluster is its own quorum). */
  takeWaiting(): ReadRequest[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }

  /** The context of the round in flight, which every heartbeat carries (so a lost one is retried). */
  roundCtx(): Uint8Array | null {
    return this.round === null ? null : encodeRoundCtx(this.round.id);
  }

  /** Record an acknowledgement; returns the acks of the current round if it matched. */
  recvAck(from: NodeId, ctx: Uint8Array | null): ReadonlySet<NodeId> | null {
    const id = decodeRoundCtx(ctx);
    if (id === null || this.round === null || this.round.id !== id) return null;
    this.round.acks.add(from);
    return this.round.acks;
  }

  /** The round is confirmed: its reads are answered with its index. */
  finishRound(): { index: bigint; reqs: readonly ReadRequest[] } {
    const r = this.round;
    assert(r !== null, 'readOnly: a round is in flight');
    this.round = null;
    assert(r.reqs.length > 0, 'readOnly: a finished round serves reads');
    return { index: r.index, reqs: r.reqs };
  }

  pendingCount(): number {
    return this.waiting.length + (this.round?.reqs.length ?? 0);
  }

  /** Forget everything (leadership lost: the reads are dropped, their callers time out). */
  reset(): void {
    this.waiting = [];
    this.round = null;
  }
}
