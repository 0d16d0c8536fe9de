/**
 * Differential test: endpoint status / hashkv / health and member list, coord against etcd.
 *
 * Goal: the maintenance and cluster views that operators and scripts parse print the same
 * fields, in the same formats (simple, table, json, fields, protobuf where etcdctl supports
 * it), with the same relations between IDs (the leader is the member that answers, the
 * member in `member list` is the member in the response header), as etcd; and the
 * KV hash of an identical history is etcd's hash.
 *
 * Method: as in kv.test.ts. Normalization (harness/normalize.ts) replaces cluster and
 * member IDs by placeholders in order of first appearance (decimal in json/fields, hex in
 * table/simple map to the same placeholder), raft term by <TERMn>, raft indexes by
 * <INDEX>, db sizes by <SIZE>, the patch version by <PATCH>, durations, ports and member
 * names; tables must also be laid out exactly as etcdctl's tablewriter lays them out.
 * Raft indexes are checked separately for their invariants, since the number of raft
 * entries a member writes at startup is an implementation detail (etcd writes 4 or 5
 * depending on when the cluster-version entry lands).
 */
import { etcdctlOk } from '../harness/etcdctl';
import { expectSameAsEtcd, prefixFor } from '../harness/scenario';
import { usePair } from '../harness/target';

const pair = usePair();

describe('cluster and maintenance views against etcd', () => {
  test('endpoint hashkv of identical histories equals etcd\'s hash exactly (runs first)', async () => {
    // Same operations, in the same order, on two fresh stores: etcd's HashKV is a CRC32
    // (Castagnoli) over the stored revision keys and encoded KeyValues, so equal histories
    // must give equal hashes. The first tests of this file write only deterministic data.
    const p = prefixFor('hash');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}a`, '1'] },
      { args: ['put', `${p}b`, '2'] },
      { args: ['put', `${p}a`, '3'] },
      { args: ['del', `${p}b`] },
    ]);
    const raw = async (ep: string, rev?: string) => {
      const r = await etcdctlOk(ep, ['endpoint', 'hashkv', '-w', 'json', ...(rev ? [`--rev=${rev}`] : [])]);
      const hash = /"hash":(\d+)/.exec(r.stdout)?.[1] ?? 'absent';
      const compactRevision = /"compact_revision":(-?\d+)/.exec(r.stdout)?.[1] ?? 'absent';
      return { hash, compactRevision };
    };
    const [ref, tgt] = await Promise.all([raw(pair.reference.endpoint), raw(pair.target.endpoint)]);
    expect(tgt).toEqual(ref);
    // Fresh etcd 3.4 stores hash to 1084519789 at revision 1, whatever the member.
    const [ref1, tgt1] = await Promise.all([raw(pair.reference.endpoint, '1'), raw(pair.target.endpoint, '1')]);
    expect(ref1.hash).toBe('1084519789');
    expect(tgt1).toEqual(ref1);
  });

  test('endpoint status in every format', async () => {
    const res = await expectSameAsEtcd(pair, [
      { args: ['endpoint', 'status'] },
      { args: ['endpoint', 'status', '-w', 'simple'] },
      { args: ['endpoint', 'status', '-w', 'table'] },
      { args: ['endpoint', 'status', '-w', 'json'] },
      { args: ['endpoint', 'status', '-w', 'fields'] },
      { args: ['endpoint', 'status', '-w', 'protobuf'], code: 4 },
      { args: ['endpoint', 'status', '--cluster'] },
      { args: ['endpoint', 'status', '--cluster', '-w', 'table'] },
    ]);
    // The member that answers is the leader, in every format.
    expect(res.reference[3].stdout).toMatch(/"member_id":(<ID\d+>).*"leader":\1/);
    expect(res.reference[0].stdout).toMatch(/^127\.0\.0\.1:<CLIENT_PORT>, <ID1>, 3\.4\.<PATCH>, <SIZE>, true, false, <TERM1>, <INDEX>, <INDEX>, \n$/);
  });

  test('endpoint status raft indexes: applied <= committed, and they grow with writes', async () => {
    const status = async (ep: string) => {
      const r = await etcdctlOk(ep, ['endpoint', 'status', '-w', 'json']);
      const idx = BigInt(/"raftIndex":(\d+)/.exec(r.stdout)![1]);
      const applied = BigInt(/"raftAppliedIndex":(\d+)/.exec(r.stdout)![1]);
      const term = BigInt(/"raftTerm":(\d+)/.exec(r.stdout)![1]);
      const headerTerm = BigInt(/"raft_term":(\d+)/.exec(r.stdout)![1]);
      return { idx, applied, term, headerTerm };
    };
    for (const m of [pair.reference, pair.target]) {
      const before = await status(m.endpoint);
      expect(before.applied).toBeLessThanOrEqual(before.idx);
      expect(before.idx).toBeGreaterThan(0n);
      expect(before.term).toBeGreaterThan(0n);
      expect(before.term).toBe(before.headerTerm);
      await etcdctlOk(m.endpoint, ['put', `${prefixFor('raft-index')}k`, 'v']);
      const after = await status(m.endpoint);
      expect(after.idx).toBeGreaterThan(before.idx);
      expect(after.applied).toBeGreaterThan(before.applied);
    }
  });

  test('endpoint hashkv in every format, and its relation to writes', async () => {
    const p = prefixFor('hashkv');
    const res = await expectSameAsEtcd(pair, [
      { args: ['endpoint', 'hashkv'] },
      { args: ['endpoint', 'hashkv', '-w', 'table'] },
      { args: ['endpoint', 'hashkv', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '-w', 'fields'] },
      { args: ['endpoint', 'hashkv', '-w', 'protobuf'], code: 4 },
      { args: ['endpoint', 'hashkv', '--rev={rev}', '-w', 'json'] },
      { args: ['put', `${p}k`, 'v'] },
      { args: ['endpoint', 'hashkv', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '--rev={rev}', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '--cluster'] },
    ]);
    // Without writes the hash is stable; a write changes it; hashing at the old revision gives the old hash.
    expect(res.reference[0].stdout).toBe('127.0.0.1:<CLIENT_PORT>, <HASH1>\n');
    expect(res.reference[7].stdout).toContain('"hash":<HASH2>');
    expect(res.reference[8].stdout).toContain('"hash":<HASH1>');
  });

  test('endpoint health in every format', async () => {
    await expectSameAsEtcd(pair, [
      { args: ['endpoint', 'health'] },
      { args: ['endpoint', 'health', '-w', 'table'] },
      { args: ['endpoint', 'health', '-w', 'json'] },
      { args: ['endpoint', 'health', '-w', 'fields'] },
      { args: ['endpoint', 'health', '--cluster'] },
    ]);
  });

  test('member list in every format', async () => {
    const res = await expectSameAsEtcd(pair, [
      { args: ['member', 'list'] },
      { args: ['member', 'list', '-w', 'table'] },
      { args: ['member', 'list', '-w', 'json'] },
      { args: ['member', 'list', '-w', 'fields'] },
      { args: ['member', 'list', '-w', 'protobuf'] },
      { args: ['member', 'list', '--hex'] },
    ]);
    // The listed member is the one in the header, with the URLs and name it was started with.
    expect(res.reference[2].stdout).toMatch(
      /"member_id":(<ID\d+>).*"members":\[\{"ID":\1,"name":"<NAME>","peerURLs":\["http:\/\/127\.0\.0\.1:<PEER_PORT>"\],"clientURLs":\["http:\/\/127\.0\.0\.1:<CLIENT_PORT>"\]\}\]/,
    );
    expect(res.reference[0].stdout).toBe('<ID1>, started, <NAME>, http://127.0.0.1:<PEER_PORT>, http://127.0.0.1:<CLIENT_PORT>, false\n');
  });

  test('member and endpoint errors', async () => {
    await expectSameAsEtcd(pair, [
      { args: ['member', 'remove', '1234'], code: 1 },
      { args: ['member', 'remove', 'zz'], code: 128 },
      { args: ['member', 'update', '1234', '--peer-urls=http://127.0.0.1:1'], code: 1 },
      { args: ['member', 'promote', '1234'], code: 1 },
      { args: ['member', 'list', 'extra'], code: 0 },
      { args: ['alarm', 'list'] },
      { args: ['alarm', 'list', '-w', 'json'] },
    ]);
  });
});
