/**
 * Differential test: history, compaction and revisions, coord against etcd 3.4.
 *
 * Goal: reads at past revisions, reads at future revisions, compaction (and reads,
 * compactions and hashes below the compacted revision) give the same answers, error texts,
 * gRPC codes (visible in etcdctl's retry warning on stderr) and exit codes as etcd.
 *
 * Method: as in kv.test.ts, with its own pair of servers because compaction is global to
 * the store. Revisions in commands are `{rev+N}` templates resolved per side, and are
 * printed relative to the revision at the start of each test.
 */
import { expectSameAsEtcd, prefixFor } from '../harness/scenario';
import { usePair } from '../harness/target';

const pair = usePair();

describe('revisions and compaction against etcd', () => {
  test('compaction argument edge cases on a store never compacted (runs first)', async () => {
    await expectSameAsEtcd(pair, [
      // Before anything is compacted, etcd accepts 0 once: it becomes the compacted
      // revision, so a second `compaction 0` is "required revision has been compacted".
      { args: ['compaction', '0'] },
      { args: ['compaction', '0', '-w', 'json'], code: 1 },
      { args: ['compaction', '-1'], code: 1 },
      { args: ['compaction', '--', '-1'], code: 1 },
      { args: ['compaction', 'abc'], code: 1 },
      { args: ['compaction'], code: 128 },
      { args: ['compaction', '{rev}', '-w', 'fields'] },
      { args: ['compaction', '0'], code: 1 },
    ]);
  });

  test('historical reads of a key through puts and a delete', async () => {
    const p = prefixFor('history');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'v1'] }, // rev+1
      { args: ['put', `${p}k`, 'v2'] }, // rev+2
      { args: ['put', `${p}other`, 'o'] }, // rev+3
      { args: ['del', `${p}k`] }, // rev+4
      { args: ['put', `${p}k`, 'v3'] }, // rev+5: a new generation, version 1 again
      { args: ['get', `${p}k`, '--rev={rev}', '-w', 'json'] },
      { args: ['get', `${p}k`, '--rev={rev+1}', '-w', 'json'] },
      { args: ['get', `${p}k`, '--rev={rev+2}', '-w', 'json'] },
      { args: ['get', `${p}k`, '--rev={rev+3}', '-w', 'fields'] },
      { args: ['get', `${p}k`, '--rev={rev+4}', '-w', 'json'] },
      { args: ['get', `${p}k`, '--rev={rev+5}', '-w', 'json'] },
      { args: ['get', p, '--prefix', '--rev={rev+4}'] },
      { args: ['get', p, '--prefix', '--rev={rev+2}', '--sort-by=MODIFY', '--order=DESCEND', '-w', 'json'] },
      { args: ['del', p, '--prefix', '--prev-kv', '-w', 'json'] }, // rev+6
      { args: ['get', p, '--prefix', '--rev={rev+5}', '--keys-only'] },
      { args: ['get', p, '--prefix', '--rev={rev+6}', '--keys-only'] },
    ]);
  });

  test('reads at a future revision fail with OutOfRange', async () => {
    const p = prefixFor('future');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'v'] },
      { args: ['get', `${p}k`, '--rev={rev+1}'] },
      { args: ['get', `${p}k`, '--rev={rev+2}'], code: 1 },
      { args: ['get', `${p}k`, '--rev={rev+1000000}', '-w', 'json'], code: 1 },
      { args: ['get', `${p}k`, '--rev=9223372036854775807'], code: 1 },
      { args: ['get', `${p}k`, '--rev=9223372036854775808'], code: 1 },
      { args: ['endpoint', 'hashkv', '--rev={rev+2}'], code: 1 },
      { args: ['compaction', '{rev+2}'], code: 1 },
    ]);
  });

  test('compaction, then reads, compactions and hashes below, at and above it', async () => {
    const p = prefixFor('compact');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'v1'] }, // rev+1
      { args: ['put', `${p}k`, 'v2'] }, // rev+2
      { args: ['put', `${p}k`, 'v3'] }, // rev+3
      { args: ['put', `${p}k`, 'v4'] }, // rev+4
      { args: ['compaction', '{rev+2}'] },
      { args: ['get', `${p}k`, '--rev={rev+1}'], code: 1 },
      { args: ['get', `${p}k`, '--rev={rev+1}', '-w', 'json'], code: 1 },
      { args: ['get', `${p}k`, '--rev={rev+2}', '-w', 'json'] },
      { args: ['get', `${p}k`, '--rev={rev+3}'] },
      { args: ['get', `${p}k`] },
      { args: ['get', `${p}k`, '--rev=1'], code: 1 },
      // etcd's txn (with a historical range inside) fails as a whole.
      { args: ['txn'], stdin: `\nget ${p}k --rev={rev+1}\n\n\n`, code: 1 },
      // Compacting again at or below the compacted revision is an error; above it is fine.
      { args: ['compaction', '{rev+2}'], code: 1 },
      { args: ['compaction', '{rev+1}', '-w', 'json'], code: 1 },
      { args: ['compaction', '{rev+3}', '--physical'] },
      { args: ['get', `${p}k`, '--rev={rev+2}'], code: 1 },
      { args: ['endpoint', 'hashkv', '--rev={rev+2}'], code: 1 },
      { args: ['endpoint', 'hashkv', '-w', 'json'] },
      { args: ['endpoint', 'hashkv', '--rev={rev+4}', '-w', 'json'] },
      { args: ['put', `${p}k`, 'v5'] },
      { args: ['get', `${p}k`, '--rev={rev+3}', '-w', 'json'] },
      { args: ['get', `${p}k`, '-w', 'json'] },
    ]);
  });

});
