/**
 * The state-machine snapshot: what a member saves every --snapshot-count entries and what
 * a leader sends a follower that is too far behind. Layout: u32 meta length | JSON meta
 * (format version, leases, membership, raft configuration) | MVCC store bytes.
 */
import { assert } from '../util/assert';
import { MvccStore } from '../mvcc/store';
import type { Lessor } from '../lease/lessor';
import { Membership, type MembershipJson } from './membership';
import type { ConfState } from '../raft';

const FORMAT_VERSION = 2;

interface SnapshotMetaJson {
  version: number;
  leases: unknown;
  membership: MembershipJson;
  confState: { voters: string[]; learners: string[] };
  /** Request IDs of the latest applied entries (applied-requests.ts); absent in older snapshots. */
  appliedRequests?: string[];
}

export interface DecodedSnapshot {
  readonly store: MvccStore;
  readonly leases: unknown;
  readonly membership: Membership;
  readonly confState: ConfState;
  readonly appliedRequests: readonly string[];
}

export function encodeSnapshot(store: MvccStore, lessor: Lessor, membership: Membership, confState: ConfState, appliedRequests: readonly string[] = []): Buffer {
  const meta: SnapshotMetaJson = {
    version: FORMAT_VERSION,
    leases: lessor.serialize(),
    membership: membership.toJSON(),
    confState: { voters: confState.voters.map(String), learners: confState.learners.map(String) },
    appliedRequests: [...appliedRequests],
  };
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(metaBytes.length, 0);
  return Buffer.concat([head, metaBytes, store.serialize()]);
}

export function decodeSnapshot(data: Buffer): DecodedSnapshot {
  assert(data.length >= 4, 'a snapshot has a meta length');
  const metaLen = data.readUInt32BE(0);
  assert(4 + metaLen <= data.length, 'the snapshot meta fits in the snapshot');
  const meta = JSON.parse(data.toString('utf8', 4, 4 + metaLen)) as SnapshotMetaJson;
  assert(meta.version === FORMAT_VERSION, `snapshot format version ${FORMAT_VERSION} (found ${meta.version})`);
  return {
    // restore() owns the buffer it is given: copy, the caller may keep `data` (raft sends it on).
    store: MvccStore.restore(Buffer.from(data.subarray(4 + metaLen))),
    leases: meta.leases,
    membership: Membership.fromJSON(meta.membership),
    confState: { voters: meta.confState.voters.map(BigInt), learners: meta.confState.learners.map(BigInt) },
    appliedRequests: meta.appliedRequests ?? [],
  };
}
