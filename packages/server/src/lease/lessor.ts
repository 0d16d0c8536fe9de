/**
 * Leases: which exist, and which keys are attached to each. Grant, revoke, keepalive and
 * expiry arrive with the watch/lease issue; today the lessor only answers "does this lease
 * exist" (no lease exists yet, so a put naming one fails as etcd's does) and keeps the
 * key attachments that apply reports, so its state is already part of every snapshot.
 */
import type { LeaseLookup } from '../apply/kv-applier';

interface LeaseState {
  ttlSeconds: number;
  keys: Set<string>;
}

export class Lessor implements LeaseLookup {
  private readonly leases = new Map<bigint, LeaseState>();

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  attach(key: Buffer, oldLease: bigint, newLease: bigint): void {
    const k = key.toString('latin1');
    if (oldLease !== 0n) this.leases.get(oldLease)?.keys.delete(k);
    if (newLease !== 0n) this.leases.get(newLease)?.keys.add(k);
  }

  serialize(): unknown {
    return [...this.leases].map(([id, l]) => ({ id: String(id), ttl: l.ttlSeconds, keys: [...l.keys].map((k) => Buffer.from(k, 'latin1').toString('base64')) }));
  }

  restore(data: unknown): void {
    this.leases.clear();
    for (const l of (data as { id: string; ttl: number; keys: string[] }[]) ?? []) {
      this.leases.set(BigInt(l.id), { ttlSeconds: l.ttl, keys: new Set(l.keys.map((k) => Buffer.from(k, 'base64').toString('latin1'))) });
    }
  }
}
