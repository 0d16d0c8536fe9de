/**
 * Differential test: put, get and del through the real etcdctl, coord against etcd 3.4.
 *
 * Goal: every get/put/del flag and output format of etcdctl 3.4 prints the same thing with
 * the same exit code against coord as against the reference etcd, including binary and
 * empty values, unusual keys, and client- and server-side errors.
 *
 * Method: one reference etcd and one target (coord, or a second etcd with DIFF_TARGET=etcd)
 * for the whole file; each test uses its own key prefix and runs a list of etcdctl commands
 * on both sides (harness/scenario.ts); outputs are normalized (harness/normalize.ts: IDs,
 * terms, sizes, ports, names; revisions relative to the test's start) and the target's
 * transcript must equal the reference's. Each step also states the exit code etcd gives,
 * so the test documents etcd's behaviour and cannot pass because both sides failed alike.
 *
 * etcdctl 3.4 has no `get --count-only` (added in 3.5): it is an "unknown flag" usage error.
 */
import { expectSameAsEtcd, prefixFor, Step } from '../harness/scenario';
import { usePair } from '../harness/target';

const pair = usePair();

/** A few keys with distinct create/mod revisions, versions and a value order unlike key order. */
function seed(p: string): Step[] {
  return [
    { args: ['put', `${p}a`, 'delta'] },
    { args: ['put', `${p}b`, 'alpha'] },
    { args: ['put', `${p}c`, 'echo'] },
    { args: ['put', `${p}d`, 'charlie'] },
    { args: ['put', `${p}b`, 'bravo'] },
    { args: ['put', `${p}e`, 'bravo'] },
    { args: ['put', `${p}a`, 'delta2'] },
    { args: ['put', `${p}a`, 'delta3'] },
    { args: ['put', `${p}c`, 'echo'] },
    { args: ['put', `${p}zz`, 'foxtrot'] },
  ];
}

describe('kv: put/get/del against etcd', () => {
  test('a fresh member reports revision 1 in the header (absolute revisions)', async () => {
    const steps: Step[] = [
      { args: ['get', '/diff/fresh/none', '-w', 'json'] },
      { args: ['get', '/diff/fresh/none', '-w', 'fields'] },
      { args: ['get', '/diff/fresh/none', '-w', 'protobuf'] },
    ];
    const res = await expectSameAsEtcd(pair, steps, { absoluteRevisions: true });
    expect(res.reference[0].stdout).toContain('"revision":<R1>');
  });

  test('put then get in every output format', async () => {
    const p = prefixFor('formats');
    const res = await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'v1'] },
      { args: ['put', `${p}k`, 'v2', '-w', 'json'] },
      { args: ['put', `${p}k`, 'v3', '-w', 'fields'] },
      { args: ['put', `${p}k`, 'v4', '-w', 'protobuf'] },
      { args: ['put', `${p}k`, 'v5', '--prev-kv'] },
      { args: ['put', `${p}k`, 'v6', '--prev-kv', '-w', 'json'] },
      { args: ['put', `${p}k`, 'v7', '--prev-kv', '-w', 'fields'] },
      { args: ['put', `${p}new`, 'x', '--prev-kv', '-w', 'json'] },
      { args: ['get', `${p}k`] },
      { args: ['get', `${p}k`, '-w', 'simple'] },
      { args: ['get', `${p}k`, '-w', 'json'] },
      { args: ['get', `${p}k`, '-w', 'fields'] },
      { args: ['get', `${p}k`, '-w', 'protobuf'] },
      { args: ['get', `${p}k`, '--hex'] },
      { args: ['get', `${p}k`, '--hex', '-w', 'fields'] },
      { args: ['get', `${p}missing`] },
      { args: ['get', `${p}missing`, '-w', 'json'] },
      { args: ['get', `${p}missing`, '-w', 'fields'] },
      { args: ['get', `${p}k`, '-w', 'table'], code: 4 },
      { args: ['put', `${p}k`, 'v', '-w', 'table'], code: 4 },
      { args: ['get', `${p}k`, '-w', 'bogus'], code: 4 },
      { args: ['put', `${p}k`, 'v8', '--ignore-value'], code: 128 },
      { args: ['put', `${p}k`, '--ignore-value', '-w', 'json'] },
      { args: ['put', `${p}never`, '--ignore-value'], code: 1 },
    ]);
    expect(res.reference[10].stdout).toContain('"version":7');
  });

  test('get over a range: --prefix, range_end, --limit, --keys-only, --print-value-only, --consistency', async () => {
    const p = prefixFor('range');
    await expectSameAsEtcd(pair, [
      ...seed(p),
      { args: ['get', p, '--prefix'] },
      { args: ['get', p, '--prefix', '-w', 'json'] },
      { args: ['get', p, '--prefix', '-w', 'fields'] },
      { args: ['get', p, '--prefix', '-w', 'protobuf'] },
      { args: ['get', `${p}b`, `${p}d`] },
      { args: ['get', `${p}b`, `${p}d`, '-w', 'json'] },
      { args: ['get', `${p}d`, `${p}b`] },
      { args: ['get', p, '--prefix', '--limit=2'] },
      { args: ['get', p, '--prefix', '--limit=2', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--limit=2', '-w', 'fields'] },
      { args: ['get', p, '--prefix', '--limit=6', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--limit=100', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--limit=-1'] },
      { args: ['get', p, '--prefix', '--keys-only'] },
      { args: ['get', p, '--prefix', '--keys-only', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--print-value-only'] },
      { args: ['get', p, '--prefix', '--print-value-only', '--keys-only'] },
      { args: ['get', p, '--prefix', '--print-value-only', '-w', 'json'], code: 128 },
      { args: ['get', p, '--prefix', '--consistency=l', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--consistency=s', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--consistency=x'], code: 4 },
      { args: ['get', `${p}a`, `${p}b`, '--prefix'], code: 128 },
      { args: ['get', p, '--prefix', '--from-key'], code: 128 },
      { args: ['get', p, '--prefix', '--count-only'], code: 1 },
    ]);
  });

  test('get --sort-by each target and --order each direction', async () => {
    const p = prefixFor('sort');
    const steps: Step[] = [...seed(p)];
    for (const by of ['KEY', 'VERSION', 'CREATE', 'MODIFY', 'VALUE']) {
      steps.push({ args: ['get', p, '--prefix', `--sort-by=${by}`] });
      for (const order of ['ASCEND', 'DESCEND']) {
        steps.push({ args: ['get', p, '--prefix', `--sort-by=${by}`, `--order=${order}`, '--keys-only'] });
        steps.push({ args: ['get', p, '--prefix', `--sort-by=${by}`, `--order=${order}`, '--limit=3', '-w', 'json'] });
      }
    }
    steps.push(
      { args: ['get', p, '--prefix', '--order=DESCEND'] },
      { args: ['get', p, '--prefix', '--order=ASCEND', '--limit=2', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--sort-by=bogus'], code: 4 },
      { args: ['get', p, '--prefix', '--order=bogus'], code: 4 },
      { args: ['get', p, '--prefix', '--sort-by=value', '--order=descend'] },
    );
    await expectSameAsEtcd(pair, steps);
  });

  test('get --rev: a prefix as it was, the key before it existed, negative and zero revisions', async () => {
    const p = prefixFor('getrev');
    await expectSameAsEtcd(pair, [
      ...seed(p),
      { args: ['get', p, '--prefix', '--rev={rev}'] },
      { args: ['get', p, '--prefix', '--rev={rev+1}', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--rev={rev+5}'] },
      { args: ['get', p, '--prefix', '--rev={rev+5}', '--sort-by=VERSION', '--order=DESCEND', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--rev={rev+10}', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--rev=0', '--keys-only'] },
      { args: ['get', p, '--prefix', '--rev=-5', '--keys-only'] },
      { args: ['get', p, '--prefix', '--rev={rev+11}', '-w', 'json'], code: 1 },
    ]);
  });

  test('get and del --from-key', async () => {
    // Keys under "~" (0x7e) sort after every other test's keys, so --from-key sees only ours.
    const p = '~diff-fromkey/';
    await expectSameAsEtcd(pair, [
      ...seed(p),
      { args: ['get', `${p}c`, '--from-key'] },
      { args: ['get', `${p}c`, '--from-key', '--keys-only', '-w', 'json'] },
      { args: ['get', `${p}c`, '--from-key', '--limit=2', '-w', 'json'] },
      { args: ['get', `${p}c`, '--from-key', '--sort-by=VALUE', '--order=DESCEND'] },
      { args: ['get', `${p}c`, `${p}e`, '--from-key'], code: 128 },
      { args: ['del', `${p}d`, '--from-key', '--prev-kv', '-w', 'json'] },
      { args: ['get', p, '--from-key', '--keys-only'] },
      { args: ['del', p, '--from-key'] },
      { args: ['get', p, '--from-key'] },
    ]);
  });

  test('del: single key, missing key, range, --prefix, --prev-kv, formats', async () => {
    const p = prefixFor('del');
    await expectSameAsEtcd(pair, [
      ...seed(p),
      { args: ['del', `${p}missing`] },
      { args: ['del', `${p}missing`, '-w', 'json'] },
      { args: ['del', `${p}zz`] },
      { args: ['del', `${p}zz`] },
      { args: ['del', `${p}a`, '--prev-kv'] },
      { args: ['del', `${p}b`, `${p}d`, '--prev-kv', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--keys-only'] },
      { args: ['put', `${p}a`, 'again'] },
      { args: ['get', `${p}a`, '-w', 'json'] },
      { args: ['del', p, '--prefix', '-w', 'fields'] },
      { args: ['put', `${p}x`, '1'] },
      { args: ['put', `${p}y`, '2'] },
      { args: ['del', p, '--prefix', '--prev-kv', '-w', 'protobuf'] },
      { args: ['del', p, '--prefix', '--prev-kv'] },
      { args: ['del', `${p}a`, `${p}b`, '--prefix'], code: 128 },
      { args: ['del', p, '--prefix', '--from-key'], code: 128 },
      { args: ['del'], code: 128 },
    ]);
  });

  test('binary, empty, multi-line and unusual keys and values', async () => {
    const p = prefixFor('bytes');
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}bin`], stdin: allBytes },
      { args: ['get', `${p}bin`] },
      { args: ['get', `${p}bin`, '-w', 'json'] },
      { args: ['get', `${p}bin`, '--hex'] },
      { args: ['get', `${p}bin`, '-w', 'fields'] },
      { args: ['get', `${p}bin`, '-w', 'protobuf'] },
      { args: ['put', `${p}empty`, ''] },
      { args: ['get', `${p}empty`] },
      { args: ['get', `${p}empty`, '-w', 'json'] },
      { args: ['get', `${p}empty`, '-w', 'fields'] },
      { args: ['put', `${p}stdin-empty`], stdin: '', code: 128 },
      { args: ['get', `${p}stdin-empty`, '-w', 'json'] },
      { args: ['put', `${p}lines`], stdin: 'line one\nline two\n' },
      { args: ['get', `${p}lines`, '--print-value-only'] },
      { args: ['put', `${p}dash`, '--', '-starts-with-dash'] },
      { args: ['get', `${p}dash`] },
      { args: ['put', `${p}key with spaces/ünïcödé/✓`, 'välüe ✓'] },
      { args: ['get', `${p}key with spaces/ünïcödé/✓`, '-w', 'json'] },
      { args: ['get', p, '--prefix', '--keys-only', '--hex'] },
      { args: ['put', `${p}\x01\x7f`, 'ctl'] },
      { args: ['get', `${p}\x01\x7f`, '-w', 'json'] },
    ]);
  });

  test('errors: empty key, unknown lease, missing arguments, unknown command and flags', async () => {
    const p = prefixFor('errors');
    await expectSameAsEtcd(pair, [
      { args: ['get', ''], code: 1 },
      { args: ['put', '', 'v'], code: 1 },
      { args: ['del', ''], code: 1 },
      { args: ['get', '', '--prefix', '--limit=1', '--keys-only'] },
      { args: ['put', `${p}k`, 'v', '--lease=1234'], code: 1 },
      { args: ['put', `${p}k`, 'v', '--lease=zz'], code: 128 },
      { args: ['get', `${p}k`] },
      { args: ['get'], code: 128 },
      { args: ['put'], code: 128 },
      { args: ['put', `${p}k`], code: 128 },
      // etcdctl 3.4 ignores arguments after the value: this puts "v".
      { args: ['put', `${p}k`, 'v', 'extra'] },
      { args: ['get', `${p}k`, '-w', 'json'] },
      { args: ['get', `${p}k`, '--limit=abc'], code: 1 },
      { args: ['no-such-command'], code: 1 },
      { args: ['get', `${p}k`, '--no-such-flag'], code: 1 },
    ]);
  });

  test('leases: grant, attach, read the lease ID back, revoke deletes the key', async () => {
    const p = prefixFor('lease');
    const res = await expectSameAsEtcd(pair, [
      { args: ['lease', 'grant', '600'], capture: { name: 'L', re: /lease ([0-9a-f]+) granted/ } },
      { args: ['put', `${p}k`, 'v', '--lease={L}'] },
      { args: ['get', `${p}k`, '-w', 'json'] },
      { args: ['get', `${p}k`, '-w', 'fields'] },
      { args: ['put', `${p}k`, 'w', '--ignore-lease'] },
      { args: ['get', `${p}k`, '-w', 'json'] },
      { args: ['lease', 'revoke', '{L}'] },
      { args: ['get', `${p}k`] },
      { args: ['lease', 'revoke', '{L}'], code: 1 },
      { args: ['lease', 'timetolive', '{L}'] },
    ]);
    // The lease in the key's metadata is the lease that was granted.
    expect(res.reference[0].stdout).toMatch(/^lease <ID\d+> granted with TTL\(600s\)\n$/);
    const id = /lease (<ID\d+>)/.exec(res.reference[0].stdout)![1];
    expect(res.reference[2].stdout).toContain(`"lease":${id}`);
  });
});
