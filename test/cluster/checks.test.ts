/**
 * The cluster suites' end-of-scenario check can fail: it catches a lost, a changed and a
 * phantom write.
 *
 * Goal: failover.test.ts and membership.test.ts pass only if verify.ts expectConverged
 * passes; this file shows that expectConverged is not vacuous, on the same kind of server
 * (CLUSTER_TEST_TARGET).
 *
 * Method: a 1-member cluster and a short WriteLoad. Then, one at a time: an acknowledgement
 * the server never gave (a lost write), a key overwritten behind the load's back (a
 * changed write), a key under the prefix that no writer attempted (a phantom) must each
 * make expectConverged fail with that finding; the untouched history must pass.
 */
import { Cluster, clusterKind } from '../harness/cluster';
import { WriteLoad } from '../harness/write-load';
import { expectConverged } from './verify';

const kind = clusterKind();
const PREFIX = `/checks/${process.pid}-${Date.now()}/`;

describe(`end-of-scenario checks (${kind})`, () => {
  let cluster: Cluster;
  const loads: WriteLoad[] = [];

  /** A short load under a prefix of its own, stopped. */
  async function written(name: string): Promise<{ prefix: string; load: WriteLoad }> {
    const prefix = `${PREFIX}${name}/`;
    const load = new WriteLoad(() => cluster.allEndpoints(), { prefix, writers: 4 });
    loads.push(load);
    load.start();
    await load.waitAcks(20);
    await load.stop();
    return { prefix, load };
  }

  beforeAll(async () => {
    cluster = await Cluster.start({ kind, size: 1 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(loads.map((l) => l.stop()));
    await cluster?.destroy();
  }, 30_000);

  test('an untouched history passes', async () => {
    const { prefix, load } = await written('untouched');
    const c = await expectConverged(cluster, prefix, [load], 'untouched');
    expect(c.present).toBe(load.attempted.size);
  });

  test('an acknowledged write that is not there is reported as lost', async () => {
    const { prefix, load } = await written('lost');
    load.acks.push({ key: `${prefix}never-written`, value: 'x', revision: load.maxRevision(), sentMs: 0, ackMs: 0, endpoint: 'nowhere' });
    await expect(expectConverged(cluster, prefix, [load], 'lost')).rejects.toThrow(/never-written/);
  });

  test('an acknowledged write whose value changed is reported as wrong', async () => {
    const { prefix, load } = await written('changed');
    await cluster.members[0].kv().put(load.acks[0].key, 'changed-behind-its-back');
    await expect(expectConverged(cluster, prefix, [load], 'changed')).rejects.toThrow(/changed-behind-its-back/);
  });

  test('a key that no writer attempted is reported as a phantom', async () => {
    const { prefix, load } = await written('phantom');
    await cluster.members[0].kv().put(`${prefix}phantom`, 'boo');
    await expect(expectConverged(cluster, prefix, [load], 'phantom')).rejects.toThrow(/phantom=boo/);
  });
});
