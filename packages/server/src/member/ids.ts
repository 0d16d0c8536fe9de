/**
 * Member, cluster and request IDs computed the way etcd computes them, so that a coord
 * member started with the same flags as an etcd member has the same IDs (and tooling that
 * prints them shows the same thing).
 */
import { createHash } from 'node:crypto';

/** etcd membership.NewMember: sha1(sorted peer URLs joined + cluster token), first 8 bytes. */
export function computeMemberId(peerUrls: readonly string[], clusterToken: string): bigint {
  const b = Buffer.from([...peerUrls].sort().join('') + clusterToken, 'utf8');
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

/** etcd RaftCluster.genID: sha1 of the sorted member IDs as big-endian uint64s, first 8 bytes. */
export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const b = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

/**
 * etcd's idutil.Generator: 2 bytes of member ID, 5 bytes of milliseconds at start, 1 byte
 * counter (the timestamp part absorbs carries), so IDs stay unique across restarts.
 */
export class RequestIdGenerator {
  private readonly prefix: bigint;
  private suffix: bigint;
  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & 0xffffn) << 48n;
    this.suffix = (BigInt(nowMs) & ((1n << 40n) - 1n)) << 8n;
  }
  next(): bigint {
    this.suffix = (this.suffix + 1n) & ((1n << 48n) - 1n);
    return this.prefix | this.suffix;
  }
}

export const toHex = (id: bigint): string => id.toString(16);
