/**
 * Goal: log replication follows §5.3 and §5.4.2, with etcd's flow control (probe /
 * replicate states, bounded in-flight messages, message size limit) and fast backtracking.
 * Method: RawNodes over the synchronous TestNet, and single nodes fed crafted messages.
 */
import { MemoryStorage, RawNode, SeededRand, message, type Entry } from '../../src/raft';
import { TestNet, bootstrapStorage, drive, enc } from './helpers';

describe('§5.3 log replication', () => {
  test('§5.3 an entry replicated on a majority is committed and applied everywhere, in order', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    for (const v of ['a', 'b', 'c']) net.propose(1n, v);
    net.tickAll(2);
    for (const id of [1n, 2n, 3n]) expect(net.appliedData(id)).toEqual(['a', 'b', 'c']);
  });

  test('§5.3 a proposal on a follower is forwarded to the leader', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.propose(3n, 'x');
    net.tickAll(1);
    expect(net.appliedData(1n)).toEqual(['x']);
  });

  test('§5.3 a proposal with no leader is dropped with ERR_PROPOSAL_DROPPED', () => {
    const net = new TestNet([1n, 2n, 3n]);
    expect(() => net.get(1n).node.propose(enc('x'))).toThrow(/ERR_PROPOSAL_DROPPED/);
  });

  test('§5.3 "the leader forces the followers\' logs to duplicate its own": conflicting uncommitted entries are overwritten', () => {
    const net = new TestNet([1n, 2n, 3n], { preVote: false, checkQuorum: false });
    net.campaign(1n);
    net.propose(1n, 'committed');
    // 1 appends entries that only it has, then loses leadership.
    net.isolate(1n);
    net.get(1n).node.propose(enc('lost1'));
    net.get(1n).node.propose(enc('lost2'));
    net.settle();
    net.campaign(2n);
    net.propose(2n, 'new');
    net.heal();
    net.tickAll(3);
    for (const id of [1n, 2n, 3n]) expect(net.appliedData(id)).toEqual(['committed', 'new']);
    const l1 = net.logOf(1n).map((e) => `${e.index}/${e.term}`);
    const l2 = net.logOf(2n).map((e) => `${e.index}/${e.term}`);
    expect(l1).toEqual(l2);
  });

  test('§5.4.2 a leader never commits an entry of a previous term by counting replicas', () => {
    // Node 1 is leader of term 2 with entry 3 (term 2) held only by itself; then it wins term 3.
    const s = bootstrapStorage([1n, 2n, 3n]);
    s.append([
      { term: 1n, index: 2n, type: 'normal', data: new Uint8Array(0) },
      { term: 2n, index: 3n, type: 'normal', data: enc('old') },
    ]);
    s.setHardState({ term: 2n, vote: 1n, commit: 2n });
    const n = new RawNode({ id: 1n, storage: s, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1, preVote: false });
    n.campaign();
    drive(n, s);
    n.step(message({ type: 'voteResp', from: 2n, to: 1n, term: 3n }));
    expect(n.status().softState.role).toBe('leader');
    drive(n, s);
    // 2 acknowledges index 3 (the old-term entry) but not the new no-op at 4.
    n.step(message({ type: 'appResp', from: 2n, to: 1n, term: 3n, index: 3n }));
    expect(n.status().hardState.commit).toBe(2n);
    n.step(message({ type: 'appResp', from: 2n, to: 1n, term: 3n, index: 4n }));
    expect(n.status().hardState.commit).toBe(4n);
    const rd = drive(n, s);
    expect(rd.committedEntries.map((e: Entry) => e.index)).toEqual([3n, 4n]);
  });

  test('§5.3 a follower rejects an append whose previous entry does not match, with a backtracking hint', () => {
    const s = bootstrapStorage([1n, 2n]);
    s.append([2n, 3n, 4n].map((i) => ({ term: 2n, index: i, type: 'normal' as const, data: new Uint8Array(0) })));
    const n = new RawNode({ id: 2n, storage: s, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1 });
    n.step(message({ type: 'app', from: 1n, to: 2n, term: 5n, index: 9n, logTerm: 4n, commit: 1n }));
    const rd = n.ready();
    const resp = rd.messages[0];
    expect(resp.type).toBe('appResp');
    expect(resp.reject).toBe(true);
    // Largest index ≤ min(9, last=4) with term ≤ 4: index 4 (term 2).
    expect(resp.rejectHint).toBe(4n);
    expect(resp.logTerm).toBe(2n);
  });

  // Figure 2, AppendEntries rule 5: "If leaderCommit > commitIndex, set commitIndex =
  // min(leaderCommit, index of last new entry)". A follower whose log has a divergent
  // uncommitted tail must never commit past what the leader has shown it matches (the
  // simulator did not catch an injected bug here, so these pin it down directly).
  test('§5.3 rule 5: an append commits only up to its last new entry, never the follower\'s own divergent tail', () => {
    const s = bootstrapStorage([1n, 2n]);
    // The follower holds 2..6 of term 2; the leader of term 5 has 2..3 of term 2, then term 5.
    s.append([2n, 3n, 4n, 5n, 6n].map((i) => ({ term: 2n, index: i, type: 'normal' as const, data: enc(`old${i}`) })));
    const n = new RawNode({ id: 2n, storage: s, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1 });
    const entry4 = { term: 5n, index: 4n, type: 'normal' as const, data: enc('new4') };
    n.step(message({ type: 'app', from: 1n, to: 2n, term: 5n, index: 3n, logTerm: 2n, entries: [entry4], commit: 10n }));
    const rd = drive(n, s);
    expect(rd.messages[0]).toMatchObject({ type: 'appResp', reject: false, index: 4n });
    // Committed: min(leaderCommit 10, last new entry 4) = 4; entries 5 and 6 (old term) are gone.
    expect(rd.hardState?.commit).toBe(4n);
    expect(rd.committedEntries.map((e) => `${e.index}/${e.term}`)).toEqual(['2/2', '3/2', '4/5']);
    expect(s.lastIndex()).toBe(4n);
  });

  test('§5.3 rule 5: an append whose entries the follower already has commits only up to them, not its longer tail', () => {
    const s = bootstrapStorage([1n, 2n]);
    s.append([2n, 3n, 4n, 5n, 6n].map((i) => ({ term: 2n, index: i, type: 'normal' as const, data: enc(`e${i}`) })));
    const n = new RawNode({ id: 2n, storage: s, rand: new SeededRand(1), electionTicks: 10, heartbeatTicks: 1 });
    // The leader (term 3) shows a match only up to 3 (an empty append at 3/2) with commit 6.
    n.step(message({ type: 'app', from: 1n, to: 2n, term: 3n, index: 3n, logTerm: 2n, commit: 6n }));
    const rd = drive(n, s);
    expect(rd.hardState?.commit).toBe(3n);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2n, 3n]);
  });

  test('§5.3 a heartbeat carries commit = min(follower match, leader commit), so it never commits an unmatched tail', () => {
    const net = new TestNet([1n, 2n, 3n], { preVote: false, checkQuorum: false });
    net.campaign(1n);
    net.propose(1n, 'a');
    net.isolate(3n);
    for (let i = 0; i < 5; i++) net.propose(1n, `b${i}`);
    net.trafficLog.length = 0;
    net.heal();
    net.tickAll(1);
    const toThree = net.trafficLog.filter((m) => m.to === 3n && m.type === 'heartbeat');
    expect(toThree.length).toBeGreaterThan(0);
    // 3 had matched only up to 'a' when the heartbeats left: none claims more.
    const matchBefore = net.logOf(1n).find((e) => new TextDecoder().decode(e.data) === 'a')!.index;
    for (const m of toThree) expect(m.commit).toBeLessThanOrEqual(matchBefore);
  });

  test('§5.3 fast backtracking: a follower far behind with a divergent tail is found in few probes', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    net.isolate(3n);
    for (let i = 0; i < 100; i++) net.propose(1n, `v${i}`);
    net.heal();
    net.trafficLog.length = 0;
    net.tickAll(2);
    const rejects = net.trafficLog.filter((m) => m.from === 3n && m.type === 'appResp' && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(net.appliedData(3n).length).toBe(100);
  });

  test('flow control: at most maxInflightMsgs unacknowledged appends to a follower in replicate state', () => {
    const net = new TestNet([1n, 2n], { maxInflightMsgs: 3 });
    net.campaign(1n);
    let held = 0;
    net.dropFilter = (m) => {
      if (m.from === 2n) {
        held++;
        return true;
      }
      return false;
    };
    for (let i = 0; i < 10; i++) net.propose(1n, `p${i}`);
    const appsTo2 = net.trafficLog.filter((m) => m.to === 2n && m.type === 'app' && m.entries.length > 0 && m.entries[0].data.byteLength > 0);
    expect(appsTo2.length).toBe(3);
    expect(held).toBeGreaterThan(0);
    expect(net.get(1n).node.status().progress?.get(2n)?.state).toBe('replicate');
  });

  test('flow control: one append carries at most maxSizePerMsgBytes (but at least one entry)', () => {
    const net = new TestNet([1n, 2n], { maxSizePerMsgBytes: 250 });
    net.campaign(1n);
    net.isolate(2n);
    for (let i = 0; i < 10; i++) net.get(1n).node.propose(new Uint8Array(100));
    net.settle();
    net.heal();
    net.trafficLog.length = 0;
    net.tickAll(3);
    const apps = net.trafficLog.filter((m) => m.type === 'app' && m.entries.length > 0);
    for (const m of apps) expect(m.entries.length).toBeLessThanOrEqual(2);
    expect(net.get(2n).applied.filter((e) => e.data.byteLength === 100).length).toBe(10);
  });

  test('the leader may write its entries in parallel with sending them (thesis §10.2.1)', () => {
    const net = new TestNet([1n, 2n, 3n]);
    net.campaign(1n);
    const n = net.get(1n).node;
    n.propose(enc('x'));
    const rd = n.ready();
    expect(rd.entries.length).toBe(1);
    expect(rd.messagesMayPrecedePersist).toBe(true);
    // Nothing is committed by the leader's own (not yet durable) copy.
    expect(rd.committedEntries.length).toBe(0);
    n.advance(rd);
  });

  test('MemoryStorage: half-open ranges, compaction and snapshot', () => {
    const s = new MemoryStorage();
    s.append([1n, 2n, 3n, 4n].map((i) => ({ term: 1n, index: i, type: 'normal' as const, data: new Uint8Array(10) })));
    expect(s.entries(2n, 4n, 1000).map((e) => e.index)).toEqual([2n, 3n]);
    expect(s.entries(1n, 5n, 40).map((e) => e.index)).toEqual([1n]);
    s.createSnapshot(3n, { voters: [1n], learners: [] }, enc('d'));
    s.compact(3n);
    expect(s.firstIndex()).toBe(4n);
    expect(s.term(3n)).toBe(1n);
    expect(() => s.entries(3n, 4n, 100)).toThrow(/ERR_COMPACTED/);
    expect(() => s.term(5n)).toThrow(/ERR_UNAVAILABLE/);
    s.append([{ term: 2n, index: 4n, type: 'normal', data: new Uint8Array(0) }]);
    expect(s.lastIndex()).toBe(4n);
    expect(s.term(4n)).toBe(2n);
  });
});
