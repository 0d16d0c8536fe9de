/**
 * Unit test of the differential harness's normalization (no servers).
 *
 * Goal: normalization erases what legitimately differs between two members (IDs, ports,
 * names, terms, sizes, timings, revision offsets) and nothing else: a changed value, a
 * changed relation between IDs, or a changed table layout must still show.
 *
 * Method: feed hand-written etcdctl outputs (copied from etcdctl 3.4.23 against etcd
 * 3.4.23) through Normalizer and check the results.
 */
import type { EtcdctlResult } from './etcdctl';
import { Normalizer, parseArgs, renderTable } from './normalize';

function result(stdout: string | Buffer, stderr = '', code = 0): EtcdctlResult {
  const out = Buffer.isBuffer(stdout) ? stdout : Buffer.from(stdout);
  return { code, stdout: out.toString(), stderr, stdoutBytes: out, stderrBytes: Buffer.from(stderr), argv: [] };
}

const side = (clientPort: number, peerPort: number, name: string) =>
  new Normalizer([{ clientPort, peerPort, name: name.length < 6 ? `member-${name}` : name }]);

describe('normalize', () => {
  test('parseArgs finds the command words and the output format', () => {
    expect(parseArgs(['get', 'k', '--prefix', '-w', 'json'])).toEqual({ command: 'get', writeOut: 'json' });
    expect(parseArgs(['endpoint', 'status', '--write-out=table'])).toEqual({ command: 'endpoint status', writeOut: 'table' });
    expect(parseArgs(['get', '--rev', '5', 'k'])).toEqual({ command: 'get', writeOut: 'simple' });
  });

  test('the same answer from two members normalizes to the same text; IDs keep their relations', () => {
    const a = side(2379, 2380, 'etcd-a');
    const b = side(12379, 12380, 'etcd-b');
    const sa = '[{"Endpoint":"127.0.0.1:2379","Status":{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":13668033151171901709,"raftIndex":4,"raftTerm":2,"raftAppliedIndex":4,"dbSizeInUse":16384}}]\n';
    const sb = '[{"Endpoint":"127.0.0.1:12379","Status":{"header":{"cluster_id":1850401922742720869,"member_id":18015568737534674063,"revision":1,"raft_term":3},"version":"3.4.0","dbSize":24576,"leader":18015568737534674063,"raftIndex":6,"raftTerm":3,"raftAppliedIndex":5,"dbSizeInUse":16384}}]\n';
    const args = ['endpoint', 'status', '-w', 'json'];
    const na = a.normalize(args, result(sa));
    expect(na).toEqual(b.normalize(args, result(sb)));
    expect(na.stdout).toContain('"member_id":<ID2>');
    expect(na.stdout).toContain('"leader":<ID2>');
    // The hex form of the same member ID (member list) maps to the same placeholder.
    const ml = a.normalize(['member', 'list'], result('bdae9bbc11dd390d, started, etcd-a, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n'));
    expect(ml.stdout).toBe('<ID2>, started, <NAME>, http://127.0.0.1:<PEER_PORT>, http://127.0.0.1:<CLIENT_PORT>, false\n');
  });

  test('a leader that is not the answering member stays visible', () => {
    const a = side(2379, 2380, 'a');
    const b = side(2379, 2380, 'a');
    const args = ['endpoint', 'status', '-w', 'json'];
    const same = a.normalize(args, result('{"header":{"member_id":11},"leader":11}'));
    const other = b.normalize(args, result('{"header":{"member_id":11},"leader":12}'));
    expect(other).not.toEqual(same);
  });

  test('revisions are relative to the base; zero and -1 are kept', () => {
    const a = side(1, 2, 'a');
    a.revisionBase = 100n;
    const n = a.normalize(['get', 'k', '-w', 'json'], result('{"header":{"revision":103},"kvs":[{"create_revision":99,"mod_revision":0}],"compact_revision":-1}'));
    expect(n.stdout).toBe('{"header":{"revision":<R+3>},"kvs":[{"create_revision":<R-1>,"mod_revision":0}],"compact_revision":-1}');
    expect(a.normalize(['compaction', '102'], result('compacted revision 102\n')).stdout).toBe('compacted revision <R+2>\n');
  });

  test('values, versions and counts are not normalized', () => {
    const a = side(1, 2, 'a');
    const b = side(1, 2, 'a');
    const args = ['get', 'k', '-w', 'json'];
    expect(a.normalize(args, result('{"kvs":[{"version":2,"value":"YQ=="}],"count":1}'))).not.toEqual(
      b.normalize(args, result('{"kvs":[{"version":3,"value":"YQ=="}],"count":1}')),
    );
    expect(a.normalize(['get', 'k'], result('k\nv1\n'))).not.toEqual(b.normalize(['get', 'k'], result('k\nv2\n')));
  });

  test('tables: cells are normalized by column, and a layout unlike tablewriter\'s is reported', () => {
    const t = renderTable(['ENDPOINT', 'HASH'], [['127.0.0.1:2379', '1084519789']]);
    expect(t).toBe(
      '+----------------+------------+\n' +
        '|    ENDPOINT    |    HASH    |\n' +
        '+----------------+------------+\n' +
        '| 127.0.0.1:2379 | 1084519789 |\n' +
        '+----------------+------------+\n',
    );
    const a = side(2379, 2380, 'a');
    expect(a.normalize(['endpoint', 'hashkv', '-w', 'table'], result(t)).stdout).toBe('| ENDPOINT | HASH |\n| 127.0.0.1:<CLIENT_PORT> | <HASH1> |\n');
    const leftAligned = t.replace('| 127.0.0.1:2379 | 1084519789 |', '| 127.0.0.1:2379 |1084519789  |');
    expect(side(2379, 2380, 'a').normalize(['endpoint', 'hashkv', '-w', 'table'], result(leftAligned)).stdout).toMatch(/^<TABLE LAYOUT DIFFERS/);
  });

  test('stderr: timestamps, client UUIDs and durations go; the gRPC code and message stay', () => {
    const a = side(23791, 23801, 'etcd-1-a');
    const err =
      '{"level":"warn","ts":"2026-11-25T13:48:52.698Z","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-e74e877b-d536-4ca3-b887-e8c62484cd89/127.0.0.1:23791","attempt":0,"error":"rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision"}\nError: etcdserver: mvcc: required revision is a future revision\n';
    const n = a.normalize(['get', 'k', '--rev=100'], result('', err, 1));
    expect(n.stderr).toBe(
      '{"level":"warn","ts":"<TS>","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-<UUID>/127.0.0.1:<CLIENT_PORT>","attempt":0,"error":"rpc error: code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision"}\nError: etcdserver: mvcc: required revision is a future revision\n',
    );
    expect(n.code).toBe(1);
    const h = a.normalize(['endpoint', 'health'], result('', '127.0.0.1:23791 is healthy: successfully committed proposal: took = 1.959337ms\n'));
    expect(h.stderr).toBe('127.0.0.1:<CLIENT_PORT> is healthy: successfully committed proposal: took = <DURATION>\n');
  });

  test('lease IDs: hex in text and decimal in json are the same placeholder', () => {
    const a = side(1, 2, 'a');
    expect(a.normalize(['lease', 'grant', '60'], result('lease 694d6280d047720f granted with TTL(60s)\n')).stdout).toBe('lease <ID1> granted with TTL(60s)\n');
    expect(a.normalize(['get', 'k', '-w', 'json'], result(`{"kvs":[{"lease":${BigInt('0x694d6280d047720f')}}]}`)).stdout).toBe('{"kvs":[{"lease":<ID1>}]}');
  });

  test('binary output that is not UTF-8 is shown byte-exactly', () => {
    const a = side(1, 2, 'a');
    const n = a.normalize(['get', 'k'], result(Buffer.from([0x6b, 0x0a, 0x00, 0xff, 0x0a])));
    expect(n.stdout).toBe('<non-utf8>k\n\u0000\\xff\n');
  });
});
