/**
 * Goal: leader election follows the Raft paper's rules (§5.1, §5.2, §5.4.1) and the
 * thesis's PreVote (§9.6) and CheckQuorum (§6.2) extensions.
 * Method: small clusters of RawNodes over a synchronous in-memory network (helpers.ts);
 * each test names the sentence of the paper it checks.
 */
import { MemoryStorage, RawNode, SeededRand, message } from '../../src/raft';
import { TestNet, bootstrapStorage } from './helpers';

describe('§5.2 leader election', () => {
  test('§5.2 "a candidate wins an election if it receives votes from a majority": one leader, term 2', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    expect(net.leader()).toBe(1n);
    for (const id of [1n, 2n, 3n]) expect(net.get(id).node.status().hardState.term).toBe(2n);
    expect(net.get(2n).node.status().softState.lead).toBe(1n);
  });

  test('§5.2 a follower that hears nothing for an election timeout campaigns (randomized in [et, 2et))', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.tickAll(20);
    expect(net.leader()).not.toBeNull();
  });

  test('§5.2 "each server will vote for at most one candidate in a given term"', () => {
    const storage = bootstrapStorage([1n, 2n, 3n]);
    const n = new RawNode({ id: 1n, storage, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1, preVote: false, checkQuorum: false });
    n.step(message({ type: 'vote', from: 2n, to: 1n, term: 5n, index: 1n, logTerm: 1n }));
    n.step(message({ type: 'vote', from: 3n, to: 1n, term: 5n, index: 1n, logTerm: 1n }));
    const rd = n.ready();
    expect(rd.hardState?.vote).toBe(2n);
    const resps = rd.messages.map((m) => [m.to, m.type, m.reject]);
    expect(resps).toEqual([
      [2n, 'voteResp', false],
      [3n, 'voteResp', true],
    ]);
    // The vote must be persisted before the answers are sent.
    expect(rd.messagesMayPrecedePersist).toBe(false);
    expect(rd.mustSync).toBe(true);
  });

  test('§5.4.1 election restriction: a voter denies a candidate whose log is less up-to-date', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.propose(1n, 'a');
    // Node 3 misses entries; it cannot win against 2, which has them.
    net.isolate(3n);
    net.propose(1n, 'b');
    net.heal();
    net.isolate(1n);
    net.campaign(3n);
    expect(net.get(3n).node.status().softState.role).not.toBe('leader');
    net.campaign(2n);
    expect(net.get(2n).node.status().softState.role).toBe('leader');
  });

  test('§5.1 a node that sees a higher term becomes a follower of it', () => {
    const net = new TestNet([1n, 2n, 3n], { preVote: false, checkQuorum: false });
    net.campaign(1n);
    net.isolate(1n);
    net.campaign(2n);
    expect(net.get(2n).node.status().hardState.term).toBe(3n);
    net.heal();
    net.tick(2n, 1); // heartbeat at term 3 reaches 1
    expect(net.get(1n).node.status().softState.role).toBe('follower');
    expect(net.get(1n).node.status().hardState.term).toBe(3n);
    expect(net.get(1n).node.status().softState.lead).toBe(2n);
  });

  test('§5.2 a single-voter cluster elects itself at once', () => {
    const net = new TestNet([1n]);
    net.campaign(1n);
    expect(net.leader()).toBe(1n);
  });

  test('a learner never campaigns (thesis §4.2.1)', () => {
    const net = new TestNet([1n, 2n], {}, [3n]);
    net.tick(3n, 100);
    expect(net.get(3n).node.status().hardState.term).toBe(1n);
  });
});

describe('thesis §9.6 PreVote and §6.2 CheckQuorum', () => {
  test('§9.6 a partitioned member does not raise its term, and on rejoining does not depose the leader', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    const term = net.get(1n).node.status().hardState.term;
    net.isolate(3n);
    for (let i = 0; i < 50; i++) {
      net.get(3n).node.tick();
      net.tickAll(0);
      net.settle();
    }
    expect(net.get(3n).node.status().hardState.term).toBe(term);
    net.heal();
    net.tickAll(30);
    expect(net.leader()).toBe(1n);
    expect(net.get(1n).node.status().hardState.term).toBe(term);
  });

  test('§4.2.3 without PreVote, CheckQuorum leases still ignore a disruptive vote request', () => {
    const net = new TestNet([1n, 2n, 3n], { preVote: false, checkQuorum: true });
    net.campaign(1n);
    net.tickAll(1);
    const term = net.get(1n).node.status().hardState.term;
    // 3 campaigns with a higher term; 1 and 2 heard from the leader within the timeout.
    net.get(3n).node.campaign();
    net.settle();
    expect(net.get(2n).node.status().hardState.term).toBe(term);
    expect(net.leader()).toBe(1n);
  });

  test('§6.2 CheckQuorum: a leader that cannot reach a quorum steps down within an election timeout', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(1n);
    for (let i = 0; i < 25; i++) {
      net.get(1n).node.tick();
      net.settle();
    }
    expect(net.get(1n).node.status().softState.role).toBe('follower');
  });

  test('§9.6 PreVote: a pre-candidate that would lose stays at its term', () => {
    const storage = new MemoryStorage();
    storage.applySnapshot({ meta: { index: 1n, term: 1n, confState: { voters: [1n, 2n, 3n], learners: [] } }, data: new Uint8Array(0) });
    const n = new RawNode({ id: 1n, storage, rand: new SeededRand(3), electionTicks: 10, heartbeatTicks: 1 });
    n.campaign();
    let rd = n.ready();
    expect(rd.messages.map((m) => [m.type, m.term])).toEqual([
      ['preVote', 1n],
      ['preVote', 1n],
    ]);
    n.advance(rd);
    n.step(message({ type: 'preVoteResp', from: 2n, to: 1n, term: 0n + 5n, reject: true }));
    rd = n.ready();
    expect(rd.softState?.role).toBe('follower');
    expect(n.status().hardState.term).toBe(5n);
    n.advance(rd);
  });
});
