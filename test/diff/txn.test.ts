/**
 * Differential test: `etcdctl txn` (compare / success / failure), coord against etcd 3.4.
 *
 * Goal: transactions take the same branch, return the same per-operation responses (note:
 * etcd fills only `revision` in the headers of the responses inside a txn) and fail with
 * the same errors, for every compare target (value, version, create, mod) and operator
 * (=, !=, >, <), in every output format.
 *
 * Method: as in kv.test.ts: one reference etcd and one target per file, a fresh prefix per
 * test, transcripts of normalized etcdctl output compared with toEqual. Transactions are
 * fed on stdin in etcdctl's non-interactive format: compares, blank line, success ops,
 * blank line, failure ops, blank line. Revisions in compares use `{rev+N}` templates,
 * resolved per side against the revision at the start of the test.
 */
import { expectSameAsEtcd, prefixFor, Step } from '../harness/scenario';
import { usePair } from '../harness/target';

const pair = usePair();

/** etcdctl's txn input: compares, blank, success ops, blank, failure ops, blank. */
function txn(compares: string[], success: string[], failure: string[] = []): string {
  return [...compares, '', ...success, '', ...failure, ''].join('\n') + '\n';
}

function txnStep(compares: string[], success: string[], failure: string[] = [], extra: Partial<Step> = {}): Step {
  return { args: ['txn', ...(extra.args ?? [])], stdin: txn(compares, success, failure), code: extra.code };
}

describe('txn against etcd', () => {
  test('every compare target with every operator, both branches', async () => {
    const p = prefixFor('txn-compares');
    const steps: Step[] = [
      { args: ['put', `${p}k`, 'm'] }, // rev+1: create = mod = rev+1, version 1
      { args: ['put', `${p}k`, 'm'] }, // rev+2: mod = rev+2, version 2
    ];
    const k = `"${p}k"`;
    const cases: Array<[string, string]> = [
      // [compare, expected branch on etcd: documentation only; the transcript decides]
      [`value(${k}) = "m"`, 'S'], [`value(${k}) = "n"`, 'F'],
      [`value(${k}) != "n"`, 'S'], [`value(${k}) != "m"`, 'F'],
      [`value(${k}) > "l"`, 'S'], [`value(${k}) > "m"`, 'F'],
      [`value(${k}) < "n"`, 'S'], [`value(${k}) < "m"`, 'F'],
      [`version(${k}) = "2"`, 'S'], [`version(${k}) != "2"`, 'F'],
      [`version(${k}) > "1"`, 'S'], [`version(${k}) < "2"`, 'F'],
      [`create(${k}) = "{rev+1}"`, 'S'], [`create(${k}) != "{rev+1}"`, 'F'],
      [`create(${k}) > "{rev}"`, 'S'], [`create(${k}) < "{rev+1}"`, 'F'],
      [`mod(${k}) = "{rev+2}"`, 'S'], [`mod(${k}) != "{rev+2}"`, 'F'],
      [`mod(${k}) > "{rev+1}"`, 'S'], [`mod(${k}) < "{rev+2}"`, 'F'],
      [`val(${k}) = "m"`, 'S'],
      // A missing key has version 0, create 0, mod 0 and an empty value that compares false.
      [`version("${p}missing") = "0"`, 'S'], [`create("${p}missing") = "0"`, 'S'],
      [`mod("${p}missing") < "1"`, 'S'], [`value("${p}missing") = ""`, 'F'],
    ];
    for (const [cmp] of cases) {
      steps.push(txnStep([cmp], [`get ${p}k`], [`get ${p}missing`]));
    }
    // Several compares: all must hold.
    steps.push(txnStep([`value(${k}) = "m"`, `version(${k}) = "2"`], [`put ${p}both yes`], [`put ${p}both no`]));
    steps.push(txnStep([`value(${k}) = "m"`, `version(${k}) = "3"`], [`put ${p}both2 yes`], [`put ${p}both2 no`]));
    steps.push({ args: ['get', p, '--prefix', '-w', 'json'] });
    const res = await expectSameAsEtcd(pair, steps);
    // The transcript agrees with the branch each case documents.
    cases.forEach(([, branch], i) => {
      expect(res.reference[2 + i].stdout.split('\n')[0]).toBe(branch === 'S' ? 'SUCCESS' : 'FAILURE');
    });
  });

  test('operations inside a txn: put, get with flags, del with flags, in every output format', async () => {
    const p = prefixFor('txn-ops');
    const body = txn(
      [`value("${p}a") = "1"`],
      [`put ${p}c 3`, `get ${p} --prefix`, `del ${p}b --prev-kv`, `get ${p} --prefix --keys-only --limit=1`, `put ${p}d 4 --prev-kv`],
      [`put ${p}failed yes`, `get ${p}a`],
    );
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}a`, '1'] },
      { args: ['put', `${p}b`, '2'] },
      { args: ['txn'], stdin: body },
      { args: ['put', `${p}b`, '2'] },
      { args: ['txn', '-w', 'json'], stdin: body },
      { args: ['put', `${p}b`, '2'] },
      { args: ['txn', '-w', 'fields'], stdin: body },
      { args: ['put', `${p}b`, '2'] },
      { args: ['txn', '-w', 'protobuf'], stdin: body },
      { args: ['put', `${p}a`, 'changed'] },
      { args: ['txn'], stdin: body },
      { args: ['txn', '-w', 'json'], stdin: body },
      { args: ['txn', '-w', 'fields'], stdin: body },
      { args: ['txn', '-w', 'table'], stdin: body, code: 4 },
      { args: ['get', p, '--prefix', '-w', 'json'] },
    ]);
  });

  test('empty transactions and empty branches', async () => {
    const p = prefixFor('txn-empty');
    await expectSameAsEtcd(pair, [
      txnStep([], []),
      txnStep([], [], [], { args: ['-w', 'json'] }),
      txnStep([`value("${p}x") = "1"`], []),
      txnStep([`value("${p}x") = "1"`], [], [], { args: ['-w', 'json'] }),
      txnStep([], [`put ${p}x 1`]),
      txnStep([`value("${p}x") = "1"`], [], [`put ${p}y 1`], { args: ['-w', 'json'] }),
      { args: ['get', p, '--prefix', '-w', 'json'] },
    ]);
  });

  test('server-side txn errors: duplicate keys, too many operations, unknown lease, future revision', async () => {
    const p = prefixFor('txn-errors');
    const many = Array.from({ length: 129 }, (_, i) => `put ${p}m${i} v`);
    const max = Array.from({ length: 128 }, (_, i) => `put ${p}n${i} v`);
    await expectSameAsEtcd(pair, [
      txnStep([], [`put ${p}dup a`, `put ${p}dup b`], [], { code: 1 }),
      txnStep([], [`put ${p}dup a`, `del ${p}dup`], [], { code: 1 }),
      txnStep([], [`put ${p}dup a`], [`put ${p}dup a`, `put ${p}dup b`], { code: 1 }),
      // A put and a get of the same key are not duplicates.
      txnStep([], [`put ${p}dup a`, `get ${p}dup`]),
      txnStep([], many, [], { code: 1 }),
      txnStep([], [], many, { code: 1 }),
      txnStep([], max.slice(0, 64), max.slice(64)),
      txnStep([], max),
      txnStep([], [`put ${p}leased v --lease=1234`], [], { code: 1 }),
      txnStep([], [`get ${p}dup --rev={rev+1000}`], [], { code: 1 }),
      { args: ['get', `${p}n`, '--prefix', '--count-only'], code: 1 },
      { args: ['get', `${p}n`, '--prefix', '--keys-only', '--limit=3', '-w', 'json'] },
      { args: ['get', `${p}m`, '--prefix', '-w', 'json'] },
    ]);
  });

  test('malformed transactions are rejected by etcdctl with the same texts and exit codes', async () => {
    const p = prefixFor('txn-malformed');
    await expectSameAsEtcd(pair, [
      { args: ['txn'], stdin: '', code: 3 },
      { args: ['txn'], stdin: '\n', code: 3 },
      { args: ['txn'], stdin: `value("${p}k") = "1"\n\nput ${p}k 1\n\nput ${p}k 2\n`, code: 3 },
      { args: ['txn'], stdin: txn(['bogus'], []), code: 3 },
      { args: ['txn'], stdin: txn([`value("${p}k") = 1`], []), code: 3 },
      { args: ['txn'], stdin: txn([`mod("${p}k") = "abc"`], []), code: 3 },
      { args: ['txn'], stdin: txn([], ['bogus op']), code: 3 },
      { args: ['txn'], stdin: txn([], [`put ${p}only-key`]), code: 128 },
      { args: ['get', p, '--prefix'] },
    ]);
  });

  test('txn put of a quoted key and value, then historical get inside a txn', async () => {
    const p = prefixFor('txn-quoted');
    await expectSameAsEtcd(pair, [
      txnStep([], [`put "${p}key with space" "value with space"`, `get "${p}key with space"`]),
      { args: ['put', `${p}h`, 'one'] },
      { args: ['put', `${p}h`, 'two'] },
      txnStep([], [`get ${p}h --rev={rev+2}`, `get ${p}h`], [], { args: ['-w', 'json'] }),
      { args: ['get', p, '--prefix', '-w', 'json'] },
    ]);
  });
});
