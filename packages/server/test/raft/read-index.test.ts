/**
 * Goal: linearizable reads by ReadIndex follow thesis §6.4: the leader records its commit
 * index, confirms leadership with one heartbeat round, and only then answers; one round
 * serves every read waiting when it starts; a leader that has not committed an entry of
 * its term waits; followers forward reads to the leader.
 * Method: TestNet clusters; the traffic log counts heartbeat rounds.
 */
import { RawNode, SeededRand, message } from '../../src/raft';
import { TestNet, bootstrapStorage, dec, drive, enc } from './helpers';

describe('thesis §6.4 ReadIndex', () => {
  test('§6.4 a read on the leader is answered with its commit index after a quorum confirms leadership', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.propose(1n, 'x');
    const commit = net.get(1n).node.status().hardState.commit;
    net.get(1n).node.readIndex(enc('r1'));
    net.settle();
    const rs = net.get(1n).readStates;
    expect(rs.map((r) => [dec(r.requestCtx), r.index])).toEqual([['r1', commit]]);
  });

  test('§6.4 batching: one heartbeat round serves every read waiting when it starts', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.trafficLog.length = 0;
    for (let i = 0; i < 50; i++) net.get(1n).node.readIndex(enc(`r${i}`));
    net.settle();
    expect(net.get(1n).readStates.length).toBe(50);
    const heartbeats = net.trafficLog.filter((m) => m.type === 'heartbeat');
    expect(heartbeats.length).toBe(2); // one round: one heartbeat per follower
  });

  test('§6.4 without a quorum the read is not answered (a deposed leader must not serve stale reads)', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(1n);
    net.get(1n).node.readIndex(enc('r'));
    net.settle();
    expect(net.get(1n).readStates).toEqual([]);
  });

  test('§6.4 "if the leader has not yet marked an entry from its current term committed, it waits until it has"', () => {
    const s = bootstrapStorage([1n, 2n, 3n]);
    const n = new RawNode({ id: 1n, storage: s, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1, preVote: false });
    n.campaign();
    drive(n, s);
    n.step(message({ type: 'voteResp', from: 2n, to: 1n, term: 2n }));
    drive(n, s);
    n.readIndex(enc('early'));
    let rd = drive(n, s);
    expect(rd.messages.filter((m) => m.type === 'heartbeat')).toEqual([]);
    // The no-op of term 2 (index 2) commits: now the round starts.
    n.step(message({ type: 'appResp', from: 2n, to: 1n, term: 2n, index: 2n }));
    rd = drive(n, s);
    const hbs = rd.messages.filter((m) => m.type === 'heartbeat');
    expect(hbs.length).toBe(2);
    n.step(message({ type: 'heartbeatResp', from: 3n, to: 1n, term: 2n, context: hbs[0].context }));
    rd = drive(n, s);
    expect(rd.readStates.map((r) => [dec(r.requestCtx), r.index])).toEqual([['early', 2n]]);
  });

  test('§6.4 a follower forwards the read to the leader and gets the index back', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.propose(1n, 'x');
    net.get(3n).node.readIndex(enc('f'));
    net.settle();
    const rs = net.get(3n).readStates;
    expect(rs.length).toBe(1);
    expect(rs[0].index).toBe(net.get(1n).node.status().hardState.commit);
  });

  test('a read with no leader known is refused with ERR_PROPOSAL_DROPPED', () => {
    const net = new TestNet([1n, 2n, 3n]);
    expect(() => net.get(2n).node.readIndex(enc('r'))).toThrow(/ERR_PROPOSAL_DROPPED/);
  });

  test('a single-voter cluster answers reads without a round', () => {
    const net = new TestNet([1n]);
    net.campaign(1n);
    net.get(1n).node.readIndex(enc('r'));
    net.settle();
    expect(net.get(1n).readStates.length).toBe(1);
  });
});
