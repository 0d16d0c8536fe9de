/**
 * Linearizable reads through ReadIndex (Raft thesis §6.4), batched: every read that arrives
 * in one turn of the event loop shares one request to raft, and raft shares one heartbeat
 * round among all requests waiting when it starts. A read is served once the state
 * machine has applied the index the leader confirmed.
 *
 * Errors as etcd's linearizableReadLoop: "leader changed" when the leader changes while a
 * round is outstanding, "request timed out" when no answer comes in time; while no leader
 * is known, rounds wait for one (until their deadline).
 */
import { EtcdError } from '../errors';
import { isRaftError, type ReadState } from '../raft';

interface Round {
  readonly ctx: Uint8Array;
  readonly key: string;
  readonly waiters: { resolve(): void; reject(e: Error): void }[];
  readonly deadline: number;
  index: bigint | undefined;
  sent: boolean;
}

/** Bound on reads waiting at once: beyond it reads fail with "too many requests" (etcd bounds them too). */
const READS_PENDING_MAX = 100_000;

export class ReadIndexBatcher {
  private next: Round | undefined;
  /** Rounds sent to raft (or waiting for a leader), by context. */
  private readonly outstanding = new Map<string, Round>();
  /** Rounds confirmed, waiting for apply to reach their index. */
  private readonly confirmed: Round[] = [];
  private counter = 0n;
  private pending = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly readIndex: (ctx: Uint8Array) => void,
    private readonly applied: () => bigint,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.sweep(), 100);
    this.timer.unref();
  }

  /** Resolves when a read started now may be served from the applied state. */
  barrier(): Promise<void> {
    if (this.pending >= READS_PENDING_MAX) return Promise.reject(new EtcdError('tooManyRequests'));
    let round = this.next;
    if (!round) {
      const ctx = Buffer.alloc(8);
      ctx.writeBigUInt64BE(++this.counter);
      round = { ctx, key: ctx.toString('hex'), waiters: [], deadline: Date.now() + this.timeoutMs, index: undefined, sent: false };
      this.next = round;
      setImmediate(() => this.flushNext());
    }
    this.pending++;
    const r = round;
    return new Promise<void>((resolve, reject) => r.waiters.push({ resolve, reject }));
  }

  private flushNext(): void {
    const round = this.next;
    this.next = undefined;
    if (!round) return;
    this.outstanding.set(round.key, round);
    this.send(round);
  }

  private send(round: Round): void {
    try {
      this.readIndex(round.ctx);
      round.sent = true;
    } catch (err) {
      // No leader yet: the round waits for one (leaderChanged resends it).
      if (!isRaftError(err, 'ERR_PROPOSAL_DROPPED')) throw err;
      round.sent = false;
    }
  }

  onReadStates(states: readonly ReadState[]): void {
    for (const s of states) {
      const key = Buffer.from(s.requestCtx).toString('hex');
      const round = this.outstanding.get(key);
      if (!round) continue;
      this.outstanding.delete(key);
      round.index = s.index;
      this.confirmed.push(round);
    }
    this.onApplied();
  }

  onApplied(): void {
    if (this.confirmed.length === 0) return;
    const applied = this.applied();
    let kept = 0;
    for (const round of this.confirmed) {
      if (round.index! <= applied) this.settle(round, undefined);
      else this.confirmed[kept++] = round;
    }
    this.confirmed.length = kept;
  }

  /** The leader changed: rounds it was answering fail; rounds waiting for a leader go out now. */
  leaderChanged(hasLeader: boolean): void {
    for (const [key, round] of this.outstanding) {
      if (round.sent) {
        this.outstanding.delete(key);
        this.settle(round, new EtcdError('leaderChanged'));
      } else if (hasLeader) this.send(round);
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, round] of this.outstanding) {
      if (round.deadline > now) continue;
      this.outstanding.delete(key);
      this.settle(round, new EtcdError('timeout'));
    }
    for (const round of this.outstanding.values()) if (!round.sent) this.send(round);
  }

  private settle(round: Round, err: Error | undefined): void {
    this.pending -= round.waiters.length;
    for (const w of round.waiters) (err ? w.reject(err) : w.resolve());
  }

  failAll(err: Error): void {
    clearInterval(this.timer);
    if (this.next) this.outstanding.set(this.next.key, this.next);
    this.next = undefined;
    for (const round of [...this.outstanding.values(), ...this.confirmed]) this.settle(round, err);
    this.outstanding.clear();
    this.confirmed.length = 0;
  }
}
