/**
 * When leases expire, by the primary member's clock. This is local bookkeeping, not
 * replicated state: a member that becomes primary (on start, and after the Raft issue on
 * becoming leader) gives every lease its full TTL again, as etcd's lessor.Promote does, so
 * a lease never expires early because of a restart or a leader change.
 */
export class LeaseExpiry {
  private readonly deadlines = new Map<bigint, number>();

  constructor(private readonly nowMs: () => number) {}

  /**
   * Starts (or restarts) the lease's countdown: expires ttl seconds (plus `extendMs`) from
   * now. etcd's lessor.Promote(extend) refreshes every lease with extend = the election
   * timeout when a member becomes leader (etcdserver applyEntryNormal, on the leader's
   * empty entry), so after a restart `lease timetolive` shows TTL + 1 s with the defaults.
   */
  refresh(id: bigint, ttlSeconds: bigint, extendMs = 0): void {
    this.deadlines.set(id, this.nowMs() + Number(ttlSeconds) * 1000 + extendMs);
  }

  forget(id: bigint): void {
    this.deadlines.delete(id);
  }

  /** Remaining milliseconds, or undefined for an unknown lease. */
  remainingMs(id: bigint): number | undefined {
    const d = this.deadlines.get(id);
    return d === undefined ? undefined : Math.max(0, d - this.nowMs());
  }

  /** Leases whose deadline has passed, at most `max` of them (etcd rate-limits revokes). */
  expired(max: number): bigint[] {
    const now = this.nowMs();
    const out: bigint[] = [];
    for (const [id, d] of this.deadlines) {
      if (d <= now) out.push(id);
      if (out.length >= max) break;
    }
    return out;
  }
}
