/**
 * Opening a member's data dir, in the three ways etcd knows:
 *   - restart: the newest valid snapshot + the WAL after it (hard state, entries);
 *   - a new cluster (`--initial-cluster-state new`): every initial member starts from the
 *     same snapshot at index 1, term 1 naming the initial configuration (raft/README.md),
 *     so all of them agree on the cluster without talking first;
 *   - joining an existing cluster (`--initial-cluster-state existing`, after `member add`):
 *     the member asks a peer for the membership to learn its own ID and the cluster's, and
 *     starts empty; the leader then sends it a snapshot.
 */
import { ConfigError, type MemberConfig } from './config';
import { computeClusterId, computeMemberId } from './ids';
import { Membership, samePeerUrls, type MembershipJson } from './membership';
import { decodeSnapshot, encodeSnapshot } from './snapshot-codec';
import { fromWalEntry } from './raft-driver';
import { MvccStore } from '../mvcc/store';
import { Lessor } from '../lease/lessor';
import { Wal } from '../storage/wal';
import type { SnapshotStore } from '../storage/snapshot-store';
import { EMPTY_CONF_STATE, MemoryStorage, type ConfState } from '../raft';

export interface OpenedDataDir {
  readonly wal: Wal;
  readonly storage: MemoryStorage;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly store: MvccStore;
  readonly leases: unknown;
  readonly membership: Membership;
  readonly confState: ConfState;
  /** Request IDs of the latest applied entries (applied-requests.ts). */
  readonly appliedRequests: readonly string[];
  /** The index the state above reflects (raft hands out committed entries after it). */
  readonly applied: bigint;
}

/** What `/coord/members` answers a joining member. */
export interface MembersAnswer {
  readonly clusterId: string;
  readonly membership: MembershipJson;
}

export type FetchMembers = (peerUrl: string) => Promise<MembersAnswer>;

export async function openDataDir(
  config: MemberConfig,
  walDir: string,
  snapshots: SnapshotStore,
  fetchMembers: FetchMembers,
  log: (msg: string) => void,
): Promise<OpenedDataDir> {
  if (Wal.exists(walDir)) return restart(walDir, snapshots, log);
  if (config.initialClusterState === 'existing') return join(config, walDir, fetchMembers);
  return bootstrapNew(config, walDir, snapshots);
}

async function restart(walDir: string, snapshots: SnapshotStore, log: (msg: string) => void): Promise<OpenedDataDir> {
  const snap = await snapshots.loadNewest();
  for (const s of snap?.skipped ?? []) log(`warning: skipped corrupt snapshot ${s}`);
  const { wal, recovered } = await Wal.open(walDir, snap ? snap.meta.index : 0n);
  if (recovered.tornTailTruncatedBytes > 0) log(`wal: truncated a torn record at the tail (${recovered.tornTailTruncatedBytes} bytes)`);
  const { memberId, clusterId } = recovered.metadata;
  const storage = new MemoryStorage();
  let state = { store: new MvccStore(), leases: undefined as unknown, membership: new Membership(), confState: EMPTY_CONF_STATE, appliedRequests: [] as readonly string[] };
  if (snap) {
    state = decodeSnapshot(snap.data);
    storage.applySnapshot({ meta: { index: snap.meta.index, term: snap.meta.term, confState: state.confState }, data: snap.data });
  }
  storage.append(recovered.entries.map(fromWalEntry));
  storage.setHardState(recovered.hardState);
  return { wal, storage, memberId, clusterId, ...state, applied: snap ? snap.meta.index : 0n };
}

async function bootstrapNew(config: MemberConfig, walDir: string, snapshots: SnapshotStore): Promise<OpenedDataDir> {
  const initial = [...config.initialCluster].map(([name, urls]) => ({ name, peerUrls: urls, id: computeMemberId(urls, config.initialClusterToken) }));
  const self = initial.find((m) => m.name === config.name);
  if (!self) throw new ConfigError(`couldn't find local name "${config.name}" in the initial cluster configuration`);
  if (!samePeerUrls(self.peerUrls, config.initialAdvertisePeerUrls)) {
    throw new ConfigError(
      `--initial-cluster has ${config.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${config.initialAdvertisePeerUrls.join(',')}`,
    );
  }
  const clusterId = computeClusterId(initial.map((m) => m.id));
  const membership = Membership.fromInitial(initial);
  const confState: ConfState = { voters: initial.map((m) => m.id).sort((a, b) => (a < b ? -1 : 1)), learners: [] };
  const store = new MvccStore();
  const data = encodeSnapshot(store, new Lessor(), membership, confState);
  // Every initial member writes the same snapshot at index 1, term 1 (raft/README.md "Bootstrapping").
  await snapshots.save({ index: 1n, term: 1n }, data);
  const wal = await Wal.create(walDir, { memberId: self.id, clusterId });
  await wal.saveSnapshotMarker(1n, 1n);
  const hardState = { term: 1n, vote: 0n, commit: 1n };
  wal.append([], hardState);
  await wal.sync();
  const storage = new MemoryStorage();
  storage.applySnapshot({ meta: { index: 1n, term: 1n, confState }, data });
  storage.setHardState(hardState);
  return { wal, storage, memberId: self.id, clusterId, store: decodeSnapshot(data).store, leases: undefined, membership, confState, appliedRequests: [], applied: 1n };
}

async function join(config: MemberConfig, walDir: string, fetchMembers: FetchMembers): Promise<OpenedDataDir> {
  const own = new Set(config.initialAdvertisePeerUrls);
  const peerUrls = [...config.initialCluster.values()].flat().filter((u) => !own.has(u));
  if (peerUrls.length === 0) throw new ConfigError('--initial-cluster-state existing needs --initial-cluster to name at least one running peer');
  const errors: string[] = [];
  for (const url of peerUrls) {
    let answer: MembersAnswer;
    try {
      answer = await fetchMembers(url);
    } catch (err) {
      errors.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const membership = Membership.fromJSON(answer.membership);
    const self = membership.list().find((m) => samePeerUrls(m.peerUrls, config.initialAdvertisePeerUrls));
    if (!self) {
      throw new ConfigError(
        `no member of the cluster has peer URLs ${config.initialAdvertisePeerUrls.join(',')}: add this member first (coord member add ${config.name} --peer-urls=${config.initialAdvertisePeerUrls.join(',')})`,
      );
    }
    const clusterId = BigInt(answer.clusterId);
    const wal = await Wal.create(walDir, { memberId: self.id, clusterId });
    return { wal, storage: new MemoryStorage(), memberId: self.id, clusterId, store: new MvccStore(), leases: undefined, membership, confState: EMPTY_CONF_STATE, appliedRequests: [], applied: 0n };
  }
  throw new Error(`cannot join the cluster: no peer answered (${errors.join('; ')})`);
}
