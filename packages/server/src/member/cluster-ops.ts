/**
 * etcd's membership API checks, run on the leader (the only member that knows how far each
 * follower has replicated): MemberAdd, MemberRemove, MemberUpdate, MemberPromote with
 * etcd 3.4's errors. Each change is one single-server raft conf change (Raft thesis §4.1),
 * except MemberUpdate, which changes only metadata (peer URLs) and goes through the log
 * as a normal entry.
 */
import { EtcdError } from '../errors';
import { computeMemberId } from './ids';
import { MAX_LEARNERS, type MemberInfo } from './membership';
import type { ClusterOp, Member } from './member';

/** etcd's readyPercent: a learner is promotable once its log has 90% of the leader's. */
const LEARNER_READY_PERCENT = 0.9;

export async function runClusterOp(m: Member, op: ClusterOp): Promise<{ member?: MemberInfo; members: MemberInfo[] }> {
  switch (op.op) {
    case 'add':
      return add(m, op.peerUrls, op.isLearner);
    case 'remove':
      return { members: await remove(m, BigInt(op.id)) };
    case 'update':
      return { members: await update(m, BigInt(op.id), op.peerUrls) };
    case 'promote':
      return { members: await promote(m, BigInt(op.id)) };
  }
}

/**
 * etcd's types.NewURLs: trimmed, scheme http/https/unix/unixs (any case), "host:port"
 * authority, no path (a query is allowed). Parsed by hand: WHATWG URL cannot tell
 * "http://h:1" from "http://h:1/", and Go's url.Parse can.
 */
const URL_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/;
const HOST_PORT = /^(\[[^\]]*\]|[^:[\]]*):[^:]*$/;

function checkUrls(urls: readonly string[]): void {
  if (urls.length === 0) throw new EtcdError('memberBadURLs');
  for (const raw of urls) {
    const m = URL_PARTS.exec(raw.trim());
    if (!m) throw new EtcdError('memberBadURLs');
    const [, scheme, authority, path] = m;
    if (!['http', 'https', 'unix', 'unixs'].includes(scheme.toLowerCase())) throw new EtcdError('memberBadURLs');
    if (!HOST_PORT.test(authority) || path !== '') throw new EtcdError('memberBadURLs');
  }
}

/** Members the leader heard from recently (itself included): etcd's "started" members for its strict reconfiguration check. */
function activeVoters(m: Member, voters: readonly bigint[]): number {
  const progress = m.raftProgress();
  let n = 0;
  for (const id of voters) if (id === m.memberId || progress?.get(id)?.recentActive) n++;
  return n;
}

const quorum = (n: number): number => Math.floor(n / 2) + 1;

async function add(m: Member, peerUrls: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
  checkUrls(peerUrls);
  const membership = m.membershipView();
  if (membership.peerUrlOwner(peerUrls)) throw new EtcdError('peerURLExist');
  if (isLearner && membership.learnerCount() >= MAX_LEARNERS) throw new EtcdError('tooManyLearners');
  if (!isLearner) {
    // etcd --strict-reconfig-check: the new voter must not cost the cluster its quorum while it starts.
    const voters = m.raftConfiguration().voters;
    if (activeVoters(m, voters) < quorum(voters.length + 1)) throw new EtcdError('memberNotEnoughStarted');
  }
  // etcd membership.NewMember hashes the peer URLs and the time in seconds; milliseconds and a
  // retry here, so that re-adding the same URLs right after a removal gets a fresh ID (a
  // removed ID can never come back).
  let id = 0n;
  for (let salt = Date.now(); id === 0n || membership.has(id) || membership.isRemoved(id); salt++) id = computeMemberId(peerUrls, String(salt));
  const members = await m.proposeConfChange(isLearner ? 'addLearner' : 'addNode', id, peerUrls);
  const member = members.find((x) => x.id === id)!;
  return { member, members };
}

async function remove(m: Member, id: bigint): Promise<MemberInfo[]> {
  const membership = m.membershipView();
  if (membership.isRemoved(id)) throw new EtcdError('memberNotFound', 'ID removed');
  const target = membership.get(id);
  if (!target) throw new EtcdError('memberNotFound');
  if (!target.isLearner) {
    const rest = m.raftConfiguration().voters.filter((v) => v !== id);
    if (rest.length === 0 || activeVoters(m, rest) < quorum(rest.length)) throw new EtcdError('memberNotEnoughStarted');
  }
  return m.proposeConfChange('removeNode', id, []);
}

async function update(m: Member, id: bigint, peerUrls: string[]): Promise<MemberInfo[]> {
  // etcd's MemberUpdate looks the member up before it looks at the URLs.
  const membership = m.membershipView();
  if (!membership.get(id)) throw new EtcdError('memberNotFound');
  checkUrls(peerUrls);
  if (membership.peerUrlOwner(peerUrls, id)) throw new EtcdError('peerURLExist');
  await m.proposeRequest({ member_peer_urls_set: { member_id: String(id), peer_urls: peerUrls } });
  return m.membershipView().list();
}

async function promote(m: Member, id: bigint): Promise<MemberInfo[]> {
  const target = m.membershipView().get(id);
  if (!target) throw new EtcdError('memberNotFound');
  if (!target.isLearner) throw new EtcdError('memberNotLearner');
  const progress = m.raftProgress();
  const leaderMatch = progress?.get(m.memberId)?.match ?? 0n;
  const learnerMatch = progress?.get(id)?.match ?? 0n;
  if (Number(learnerMatch) < Number(leaderMatch) * LEARNER_READY_PERCENT) throw new EtcdError('learnerNotReady');
  return m.proposeConfChange('addNode', id, target.peerUrls);
}
