/**
 * Goal: log compaction and InstallSnapshot (§7): a follower whose next entry the leader has
 * compacted receives the snapshot, installs it through its Ready, and resumes replication;
 * a snapshot that would not help is refused.
 * Method: TestNet clusters with compaction done the way a driver would.
 */
import { RawNode, SeededRand, message } from '../../src/raft';
import { TestNet, bootstrapStorage, enc } from './helpers';

function compactLeader(net: TestNet, id: bigint): bigint {
  const tn = net.get(id);
  const applied = tn.applied[tn.applied.length - 1].index;
  tn.storage.createSnapshot(applied, tn.node.status().confState, enc(`state@${applied}`));
  tn.storage.compact(applied);
  return applied;
}

describe('§7 log compaction and snapshots', () => {
  test('§7 "the leader must occasionally send snapshots to followers that lag behind"', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(3n);
    for (let i = 0; i < 20; i++) net.propose(1n, `v${i}`);
    const snapIndex = compactLeader(net, 1n);
    net.heal();
    net.trafficLog.length = 0;
    net.tickAll(3);
    const snaps = net.trafficLog.filter((m) => m.type === 'snap' && m.to === 3n);
    expect(snaps.length).toBe(1);
    expect(snaps[0].snapshot?.meta.index).toBe(snapIndex);
    expect(net.get(3n).storage.snapshot().meta.index).toBe(snapIndex);
    // Replication continues after the snapshot.
    net.propose(1n, 'after');
    net.tickAll(2);
    expect(net.appliedData(3n)).toEqual(['after']);
    expect(net.get(1n).node.status().progress?.get(3n)?.state).toBe('replicate');
  });

  test('§7 a lost snapshot is reported, and the leader sends it again', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(3n);
    for (let i = 0; i < 5; i++) net.propose(1n, `v${i}`);
    compactLeader(net, 1n);
    let dropped = 0;
    net.dropFilter = (m) => m.type === 'snap' && dropped++ === 0;
    net.tickAll(5);
    expect(dropped).toBeGreaterThanOrEqual(2);
    expect(net.get(3n).storage.snapshot().meta.index).toBe(net.get(1n).storage.snapshot().meta.index);
  });

  test('§7 "if the follower receives a snapshot that describes a prefix of its log", it keeps its log (commit moves)', () => {
    const s = bootstrapStorage([1n, 2n]);
    s.append([2n, 3n, 4n].map((i) => ({ term: 1n, index: i, type: 'normal' as const, data: new Uint8Array(0) })));
    const n = new RawNode({ id: 2n, storage: s, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1 });
    n.step(message({ type: 'snap', from: 1n, to: 2n, term: 2n, snapshot: { meta: { index: 3n, term: 1n, confState: { voters: [1n, 2n], learners: [] } }, data: enc('s') } }));
    const rd = n.ready();
    expect(rd.snapshot).toBeNull();
    expect(n.status().hardState.commit).toBe(3n);
    expect(rd.messages[0]).toMatchObject({ type: 'appResp', index: 3n, reject: false });
    n.advance(rd);
  });

  test('§7 a snapshot older than the commit index is ignored', () => {
    const net = new TestNet([1n, 2n]);
    net.campaign(1n);
    net.propose(1n, 'a');
    const commit = net.get(2n).node.status().hardState.commit;
    net.get(2n).node.step(message({ type: 'snap', from: 1n, to: 2n, term: net.get(1n).node.status().hardState.term, snapshot: { meta: { index: 1n, term: 1n, confState: { voters: [1n, 2n], learners: [] } }, data: enc('s') } }));
    const rd = net.get(2n).node.ready();
    expect(rd.snapshot).toBeNull();
    expect(rd.messages[0]).toMatchObject({ type: 'appResp', index: commit });
    net.get(2n).node.advance(rd);
  });

  test('a restarted node recovers from its storage (snapshot + log + hard state)', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    for (let i = 0; i < 5; i++) net.propose(1n, `v${i}`);
    const tn = net.get(2n);
    const before = tn.node.status();
    const restarted = new RawNode({ id: 2n, storage: tn.storage, rand: new SeededRand(9), electionTicks: 10, heartbeatTicks: 1 });
    const st = restarted.status();
    expect(st.hardState).toEqual(before.hardState);
    expect(st.lastIndex).toBe(before.lastIndex);
    // Everything committed is handed out again for the state machine to re-apply.
    const rd = restarted.ready();
    expect(rd.committedEntries.length).toBe(Number(before.hardState.commit - 1n));
  });
});
