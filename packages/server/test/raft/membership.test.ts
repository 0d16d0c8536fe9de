/**
 * Goal: single-server membership changes (thesis §4.1) with learners (§4.2.1: "new servers
 * join as non-voting members until caught up"), removal of the leader (§4.2.2), and
 * leadership transfer (§3.10).
 * Method: TestNet clusters; conf changes are applied by the harness as a driver would.
 */
import { MemoryStorage, RawNode, SeededRand, decodeConfChange, encodeConfChange } from '../../src/raft';
import { TestNet, enc } from './helpers';

function createSnapshotAt(net: TestNet, id: bigint): void {
  const tn = net.get(id);
  const last = tn.applied[tn.applied.length - 1].index;
  if (last > tn.storage.snapshot().meta.index) tn.storage.createSnapshot(last, tn.node.status().confState, enc(`state@${last}`));
}

describe('thesis §4.1 single-server membership changes', () => {
  test('conf change entries round-trip', () => {
    const cc = { type: 'addLearner' as const, nodeId: 0xfedcba9876543210n, context: enc('http://x:2380') };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
  });

  test('§4.2.1 a new server joins as a learner, catches up (by snapshot), then is promoted and votes', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    for (let i = 0; i < 5; i++) net.propose(1n, `v${i}`);
    net.get(1n).node.proposeConfChange({ type: 'addLearner', nodeId: 4n, context: new Uint8Array(0) });
    net.settle();
    expect(net.get(1n).node.status().confState.learners).toEqual([4n]);
    // The driver snapshots after applying a conf change, so the new member can be sent one.
    createSnapshotAt(net, 1n);
    net.get(1n).storage.compact(net.get(1n).storage.snapshot().meta.index);
    net.addNode(4n, new MemoryStorage());
    net.tickAll(3);
    expect(net.get(4n).node.status().confState.learners).toEqual([4n]);
    // A learner does not count toward the quorum.
    expect(net.get(1n).node.status().progress?.get(4n)?.isLearner).toBe(true);
    net.propose(1n, 'after');
    net.tickAll(1);
    expect(net.appliedData(4n)).toContain('after');
    // Promote.
    net.get(1n).node.proposeConfChange({ type: 'addNode', nodeId: 4n, context: new Uint8Array(0) });
    net.settle();
    net.tickAll(1);
    for (const id of [1n, 2n, 3n, 4n]) expect(net.get(id).node.status().confState.voters).toEqual([1n, 2n, 3n, 4n]);
    // With four voters, the quorum is three: 1 and 2 alone cannot commit.
    net.dropFilter = (m) => m.from === 3n || m.to === 3n || m.from === 4n || m.to === 4n;
    const commit = net.get(1n).node.status().hardState.commit;
    net.propose(1n, 'needs-three');
    expect(net.get(1n).node.status().hardState.commit).toBe(commit);
  });

  test('§4.1 only one change at a time: a second proposal is refused while the first is pending', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(3n);
    net.dropFilter = (m) => m.to !== 1n && m.from !== 1n; // nothing reaches the followers
    net.dropFilter = (m) => m.from === 2n || m.from === 3n;
    net.get(1n).node.proposeConfChange({ type: 'addLearner', nodeId: 4n, context: new Uint8Array(0) });
    expect(() => net.get(1n).node.proposeConfChange({ type: 'addLearner', nodeId: 5n, context: new Uint8Array(0) })).toThrow(/ERR_CONF_CHANGE_PENDING/);
  });

  test('a new leader may not change membership before it has applied an entry of its own term', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.get(1n).node.campaign();
    // Only the election happens; the no-op of the new term is not yet committed.
    net.dropFilter = (m) => m.type === 'app' || m.type === 'appResp';
    net.settle();
    expect(net.leader()).toBe(1n);
    expect(() => net.get(1n).node.proposeConfChange({ type: 'addLearner', nodeId: 4n, context: new Uint8Array(0) })).toThrow(/ERR_CONF_CHANGE_PENDING/);
  });

  test('invalid changes are refused: re-adding a voter, removing the last voter, demoting a voter', () => {
    const net = new TestNet([1n]);
    net.campaign(1n);
    const n = net.get(1n).node;
    expect(() => n.proposeConfChange({ type: 'addNode', nodeId: 1n, context: new Uint8Array(0) })).toThrow(/ERR_CONF_CHANGE_INVALID/);
    expect(() => n.proposeConfChange({ type: 'removeNode', nodeId: 1n, context: new Uint8Array(0) })).toThrow(/ERR_CONF_CHANGE_INVALID/);
    expect(() => n.proposeConfChange({ type: 'addLearner', nodeId: 1n, context: new Uint8Array(0) })).toThrow(/ERR_CONF_CHANGE_INVALID/);
  });

  test('removing a follower shrinks the quorum: 2 of 2 remain and commit without it', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.get(1n).node.proposeConfChange({ type: 'removeNode', nodeId: 3n, context: new Uint8Array(0) });
    net.settle();
    net.tickAll(1);
    expect(net.get(1n).node.status().confState.voters).toEqual([1n, 2n]);
    net.isolate(3n);
    net.propose(1n, 'two');
    expect(net.appliedData(2n)).toEqual(['two']);
  });

  test('§4.2.2 a leader that removes itself steps down once the change is applied, and the rest elect a leader', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.get(1n).node.proposeConfChange({ type: 'removeNode', nodeId: 1n, context: new Uint8Array(0) });
    net.settle();
    expect(net.get(1n).node.status().softState.role).toBe('follower');
    net.isolate(1n);
    net.tickAll(40);
    const l = net.leader();
    expect(l === 2n || l === 3n).toBe(true);
  });
});

describe('thesis §3.10 leadership transfer', () => {
  test('§3.10 the leader brings the target up to date, sends TimeoutNow, and the target wins the next term', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(3n);
    for (let i = 0; i < 3; i++) net.propose(1n, `v${i}`);
    net.heal();
    const term = net.get(1n).node.status().hardState.term;
    net.trafficLog.length = 0;
    net.get(1n).node.transferLeader(3n);
    net.settle();
    expect(net.trafficLog.some((m) => m.type === 'timeoutNow' && m.to === 3n)).toBe(true);
    expect(net.leader()).toBe(3n);
    expect(net.get(3n).node.status().hardState.term).toBe(term + 1n);
    expect(net.appliedData(3n)).toEqual(['v0', 'v1', 'v2']);
  });

  test('§3.10 during a transfer the leader refuses proposals; an unreachable target aborts it after an election timeout', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(3n);
    net.get(1n).node.transferLeader(3n);
    net.settle();
    expect(() => net.get(1n).node.propose(enc('x'))).toThrow(/ERR_PROPOSAL_DROPPED/);
    net.dropFilter = (m) => m.to === 3n || m.from === 3n;
    for (let i = 0; i < 12; i++) {
      net.get(1n).node.tick();
      net.get(2n).node.tick();
      net.settle();
    }
    expect(net.leader()).toBe(1n);
    net.propose(1n, 'resumed');
    expect(net.appliedData(1n)).toEqual(['resumed']);
  });

  test('§3.10 a transfer asked of a follower is forwarded to the leader', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.get(2n).node.transferLeader(2n);
    net.settle();
    expect(net.leader()).toBe(2n);
  });

  test('§3.10 TimeoutNow overrides the CheckQuorum lease: voters grant the transfer election', () => {
    const net = new TestNet([1n, 2n, 3n], { checkQuorum: true, preVote: true });
    net.campaign(1n);
    net.tickAll(1);
    net.get(1n).node.transferLeader(2n);
    net.settle();
    expect(net.leader()).toBe(2n);
  });

  test('a learner cannot be the target of a transfer', () => {
    const net = new TestNet([1n, 2n], {}, [3n]);
    net.campaign(1n);
    net.get(1n).node.transferLeader(3n);
    net.settle();
    expect(net.leader()).toBe(1n);
    expect(net.get(1n).node.status().leadTransferee).toBe(0n);
  });
});

test('a node with an empty configuration (a member to be) does not campaign', () => {
  const n = new RawNode({ id: 9n, storage: new MemoryStorage(), rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1 });
  for (let i = 0; i < 100; i++) n.tick();
  expect(n.hasReady()).toBe(false);
});
