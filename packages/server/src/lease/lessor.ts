/**
 * Leases as replicated state: which leases exist, their granted TTL, and which keys each
 * holds. This part is deterministic (changed only by applying log entries). When each lease
 * expires is NOT here: that is the primary member's clock, kept by LeaseExpiry, and expiry
 * is carried out by proposing a revoke through the log (DESIGN.md principle 2).
 */
import { assert } from '../util/assert';
import type { LeaseLookup } from '../apply/kv-applier';
import type { KeyString } from '../mvcc/key-range';

/** etcd's MaxLeaseTTL: 9,000,000,000 seconds. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000n;

export interface LeaseState {
  readonly id: bigint;
  /** TTL in seconds as granted (after raising to the minimum). */
  readonly ttlSeconds: bigint;
  readonly keys: Set<KeyString>;
}

export class Lessor implements LeaseLookup {
  private readonly leases = new Map<bigint, LeaseState>();

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  get(id: bigint): LeaseState | undefined {
    return this.leases.get(id);
  }

  all(): IterableIterator<LeaseState> {
    return this.leases.values();
  }

  get size(): number {
    return this.leases.size;
  }

  grant(id: bigint, ttlSeconds: bigint): LeaseState {
    // etcd's LeaseID is any int64 but NoLease (0): a client may grant an explicit negative
    // ID (etcd 3.4 accepts LeaseGrant{ID: -5}). Asserting positivity here crashed the member
    // on apply, and again on every restart, since the entry is already in the log.
    assert(id !== 0n, 'lease ID 0 is NoLease');
    assert(!this.leases.has(id), 'grant of a new lease');
    const l: LeaseState = { id, ttlSeconds, keys: new Set() };
    this.leases.set(id, l);
    return l;
  }

  /** Removes the lease; returns its keys in byte order (etcd deletes them sorted). */
  revoke(id: bigint): KeyString[] {
    const l = this.leases.get(id);
    assert(l !== undefined, 'revoke of an existing lease');
    this.leases.delete(id);
    return [...l.keys].sort();
  }

  attach(key: Buffer, oldLease: bigint, newLease: bigint): void {
    const k = key.toString('latin1');
    if (oldLease !== 0n) this.leases.get(oldLease)?.keys.delete(k);
    if (newLease !== 0n) {
      const l = this.leases.get(newLease);
      assert(l !== undefined, 'keys attach only to existing leases (checked before apply)');
      l.keys.add(k);
    }
  }

  serialize(): unknown {
    return [...this.leases.values()].map((l) => ({
      id: String(l.id),
      ttl: String(l.ttlSeconds),
      keys: [...l.keys].map((k) => Buffer.from(k, 'latin1').toString('base64')),
    }));
  }

  restore(data: unknown): void {
    this.leases.clear();
    for (const l of (data as { id: string; ttl: string; keys: string[] }[]) ?? []) {
      const id = BigInt(l.id);
      this.leases.set(id, { id, ttlSeconds: BigInt(l.ttl), keys: new Set(l.keys.map((k) => Buffer.from(k, 'base64').toString('latin1'))) });
    }
  }
}
