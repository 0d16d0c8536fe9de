/**
 * Differential test: `etcdctl lease …` and keys attached to leases, coord against etcd 3.4.
 *
 * Goal: lease grant / revoke / timetolive [--keys] / list / keep-alive [--once] and
 * `put --lease` print the same things with the same exit codes against coord as against
 * the reference etcd: the minimum TTL (`grant 1` gives TTL 2 with the default election
 * timeout), the maximum TTL (`etcdserver: too large lease TTL`), unknown leases, argument
 * errors, every output format; revoking or letting a lease expire deletes its keys in one
 * revision (a watcher sees the DELETEs in one response); a key does not disappear before
 * its lease's TTL, and keep-alive holds it past the TTL.
 *
 * Method: scenarios as in kv.test.ts; lease IDs are captured from `lease grant` output as
 * templates (`{L1}`) and normalized to placeholders; remaining TTLs are compared within a
 * window below the granted TTL (normalize.ts leaseRemaining), since they depend on timing;
 * lease lists and attached keys are compared as sets (etcd prints them in Go map order).
 * Streaming keep-alive and watches run as background etcdctl processes (scenario.ts). The
 * expiry tests wait for real time to pass (a 2 s lease expires 2-3 s after its last
 * renewal, checked every 500 ms by etcd and by coord); they assert what happens, never how
 * fast.
 */
import { eventsAtLeast, printed } from '../harness/background';
import { leaseRemaining, Normalized } from '../harness/normalize';
import { expectSameAsEtcd, prefixFor, Step } from '../harness/scenario';
import { usePair } from '../harness/target';

const pair = usePair();

/** `lease grant` step that captures the hex lease ID as template `{name}`. */
function grant(name: string, ttl: string, extra: string[] = []): Step {
  return { args: ['lease', 'grant', ttl, ...extra], capture: { name, re: /lease ([0-9a-f]+) granted/ } };
}

/** Collapses runs of identical lines (how many keep-alive answers arrive depends on timing). */
function dedupeLines(n: Normalized): Normalized {
  return { ...n, stdout: n.stdout.replace(/^(.+\n)(\1)+/gm, '$1(repeated)\n') };
}

describe('lease against etcd', () => {
  test('lease list on a fresh member, in every printer (runs first: no leases from other tests)', async () => {
    await expectSameAsEtcd(pair, [
      { args: ['lease', 'list'] },
      { args: ['lease', 'list', '-w', 'json'] },
      grant('A', '600'),
      grant('B', '600'),
      grant('C', '600'),
      { args: ['lease', 'list'] },
      { args: ['lease', 'list', '-w', 'json'] },
      { args: ['lease', 'list', '-w', 'fields'] },
      { args: ['lease', 'list', '-w', 'table'], code: 4 },
      { args: ['lease', 'revoke', '{B}'] },
      { args: ['lease', 'list'] },
      { args: ['lease', 'revoke', '{A}', '-w', 'json'] },
      { args: ['lease', 'revoke', '{C}', '-w', 'fields'] },
      { args: ['lease', 'list'] },
    ]);
  });

  test('grant: minimum TTL, maximum TTL, zero and negative TTLs, argument errors, printers', async () => {
    const res = await expectSameAsEtcd(pair, [
      { args: ['lease', 'grant', '1'] },
      { args: ['lease', 'grant', '2', '-w', 'json'] },
      { args: ['lease', 'grant', '3', '-w', 'fields'] },
      { args: ['lease', 'grant', '4', '-w', 'protobuf'] },
      { args: ['lease', 'grant', '0'] },
      { args: ['lease', 'grant', '--', '-5'] },
      { args: ['lease', 'grant', '9000000000'] },
      { args: ['lease', 'grant', '9000000001'], code: 1 },
      { args: ['lease', 'grant', '9223372036854775807', '-w', 'json'], code: 1 },
      { args: ['lease', 'grant', '9223372036854775808'], code: 128 },
      { args: ['lease', 'grant', 'abc'], code: 128 },
      { args: ['lease', 'grant'], code: 128 },
      { args: ['lease', 'grant', '10', '-w', 'table'], code: 4 },
    ]);
    expect(res.reference[0].stdout).toMatch(/granted with TTL\(2s\)/);
  });

  test('revoke, timetolive and keep-alive --once of unknown leases and bad IDs', async () => {
    await expectSameAsEtcd(pair, [
      { args: ['lease', 'revoke', '1234'], code: 1 },
      { args: ['lease', 'revoke', '7fffffffffffffff', '-w', 'json'], code: 1 },
      { args: ['lease', 'revoke', 'zz'], code: 128 },
      { args: ['lease', 'revoke'], code: 128 },
      { args: ['lease', 'revoke', '1', '2'], code: 128 },
      { args: ['lease', 'timetolive', '1234'] },
      { args: ['lease', 'timetolive', '1234', '--keys', '-w', 'json'] },
      { args: ['lease', 'timetolive', '1234', '-w', 'fields'] },
      { args: ['lease', 'timetolive', 'zz'], code: 128 },
      { args: ['lease', 'timetolive'], code: 128 },
      { args: ['lease', 'keep-alive', '--once', '1234'], code: 2 },
      { args: ['lease', 'keep-alive', '--once', '1234', '-w', 'json'], code: 2 },
      { args: ['lease', 'keep-alive', 'zz'], code: 128 },
      { args: ['lease', 'keep-alive'], code: 128 },
      { args: ['put', '/diff/lease-unknown/k', 'v', '--lease=1234'], code: 1 },
      { args: ['put', '/diff/lease-unknown/k', 'v', '--lease=zz'], code: 128 },
      { args: ['get', '/diff/lease-unknown/k'] },
    ]);
  });

  test('keys attached to leases: put --lease, timetolive --keys, moving and detaching keys, --ignore-lease', async () => {
    const p = prefixFor('lease-keys');
    const remaining = leaseRemaining(3);
    await expectSameAsEtcd(pair, [
      grant('L1', '600'),
      grant('L2', '300'),
      { args: ['put', `${p}z`, 'v', '--lease={L1}'] },
      { args: ['put', `${p}a`, 'v', '--lease={L1}'] },
      { args: ['put', `${p}m`, 'v', '--lease={L1}', '-w', 'json'] },
      { args: ['get', p, '--prefix', '-w', 'json'] },
      { args: ['lease', 'timetolive', '{L1}'], transform: remaining },
      { args: ['lease', 'timetolive', '{L1}', '--keys'], transform: remaining },
      { args: ['lease', 'timetolive', '{L1}', '--keys', '-w', 'json'], transform: remaining },
      { args: ['lease', 'timetolive', '{L1}', '--keys', '-w', 'fields'], transform: remaining },
      { args: ['lease', 'timetolive', '{L1}', '-w', 'protobuf'], transform: remaining },
      // Moving a key to another lease, keeping its lease on a value change, detaching it.
      { args: ['put', `${p}a`, 'v2', '--lease={L2}'] },
      { args: ['put', `${p}m`, 'v2', '--ignore-lease'] },
      { args: ['put', `${p}z`, 'v2'] },
      { args: ['get', p, '--prefix', '-w', 'json'] },
      { args: ['lease', 'timetolive', '{L1}', '--keys'], transform: remaining },
      { args: ['lease', 'timetolive', '{L2}', '--keys'], transform: remaining },
      { args: ['put', `${p}new`, 'v', '--ignore-lease'], code: 1 },
      { args: ['del', `${p}a`] },
      { args: ['lease', 'timetolive', '{L2}', '--keys', '-w', 'json'], transform: remaining },
      // A txn put with a lease, and a txn put with an unknown lease (the whole txn fails).
      { args: ['txn'], stdin: `\nput ${p}t v --lease={L2}\n\n\n` },
      { args: ['txn'], stdin: `\nput ${p}t2 v --lease=1234\n\n\n`, code: 1 },
      { args: ['lease', 'timetolive', '{L2}', '--keys'], transform: remaining },
      { args: ['lease', 'revoke', '{L1}'] },
      { args: ['lease', 'revoke', '{L2}'] },
      { args: ['get', p, '--prefix'] },
    ]);
  });

  test('revoke deletes every attached key in one revision; a watcher sees the DELETEs in one response', async () => {
    const p = prefixFor('lease-revoke');
    await expectSameAsEtcd(pair, [
      grant('L', '600'),
      { args: ['put', `${p}b`, 'v', '--lease={L}'] },
      { args: ['put', `${p}a`, 'v', '--lease={L}'] },
      { args: ['put', `${p}c`, 'v', '--lease={L}'] },
      { args: ['put', `${p}keep`, 'v'] },
      { spawn: 'w', args: ['watch', p, '--prefix', '--prev-kv', '-w', 'json'] },
      { barrier: 'w', key: `${p}sync` },
      { args: ['lease', 'revoke', '{L}'] },
      { await: 'w', until: eventsAtLeast(3, 'json') },
      { args: ['get', p, '--prefix', '-w', 'json'] },
      { args: ['lease', 'timetolive', '{L}'] },
      { args: ['lease', 'revoke', '{L}'], code: 1 },
      { args: ['lease', 'keep-alive', '--once', '{L}'], code: 2 },
      { args: ['put', `${p}x`, 'v', '--lease={L}'], code: 1 },
    ]);
  });

  test('keep-alive: --once renews; the streaming form prints each renewal and stops when the lease is revoked', async () => {
    await expectSameAsEtcd(pair, [
      grant('L', '600'),
      { args: ['lease', 'keep-alive', '--once', '{L}'] },
      { args: ['lease', 'keep-alive', '--once', '{L}', '-w', 'json'] },
      { args: ['lease', 'keep-alive', '--once', '{L}', '-w', 'fields'] },
      { args: ['lease', 'timetolive', '{L}'], transform: leaseRemaining(1) },
      // etcdctl renews every TTL/3 and learns of the revoke at its next renewal.
      grant('S', '6'),
      { spawn: 'ka', args: ['lease', 'keep-alive', '{S}'] },
      { await: 'ka', until: printed(/keepalived/), keep: true },
      { args: ['lease', 'revoke', '{S}'] },
      { await: 'ka', code: 0 },
      { args: ['lease', 'revoke', '{L}'] },
      grant('J', '600'),
      { spawn: 'kaj', args: ['lease', 'keep-alive', '{J}', '-w', 'json'] },
      { await: 'kaj', until: printed(/"TTL"/) },
      { args: ['lease', 'revoke', '{J}'] },
    ]);
  });

  test('expiry: keys of a 2 s lease live until the TTL, then go in one revision; the watcher sees DELETE', async () => {
    const p = prefixFor('lease-expiry');
    const res = await expectSameAsEtcd(pair, [
      { spawn: 'w', args: ['watch', p, '--prefix'] },
      { spawn: 'j', args: ['watch', p, '--prefix', '-w', 'json'] },
      { barrier: 'w', key: `${p}sync` },
      { barrier: 'j', key: `${p}sync` },
      grant('L', '2'),
      { args: ['put', `${p}k1`, 'v1', '--lease={L}'] },
      { args: ['put', `${p}k2`, 'v2', '--lease={L}'] },
      // Well inside the TTL: still there.
      { args: ['get', p, '--prefix', '--keys-only'] },
      { args: ['lease', 'timetolive', '{L}', '--keys'], transform: leaseRemaining(2) },
      { await: 'w', until: eventsAtLeast(4), timeoutMs: 15_000 },
      { await: 'j', until: eventsAtLeast(4, 'json'), timeoutMs: 15_000 },
      { args: ['get', p, '--prefix', '--keys-only'] },
      { args: ['lease', 'timetolive', '{L}'] },
      { args: ['lease', 'keep-alive', '--once', '{L}'], code: 2 },
      { args: ['lease', 'revoke', '{L}'], code: 1 },
    ]);
    // Not vacuous: etcd itself showed the keys first, and the DELETEs after.
    expect(res.reference[7].stdout).toContain(`${p}k1`);
    expect(res.reference[9].stdout).toMatch(/DELETE\n.*k1\n\nDELETE\n.*k2\n/);
  });

  test('expiry: a streaming keep-alive holds a 2 s lease past its TTL; stopped, the lease expires', async () => {
    const p = prefixFor('lease-held');
    const res = await expectSameAsEtcd(pair, [
      grant('L', '2'),
      { args: ['put', `${p}k`, 'v', '--lease={L}'] },
      { spawn: 'w', args: ['watch', `${p}k`, '--rev', '{rev+1}'] },
      { spawn: 'ka', args: ['lease', 'keep-alive', '{L}'] },
      // etcdctl renews every TTL/3: five renewals take about 3 s, more than the TTL.
      { await: 'ka', until: printed(/keepalived/, 5), timeoutMs: 15_000, transform: dedupeLines },
      { args: ['get', `${p}k`] },
      { await: 'w', until: eventsAtLeast(2), timeoutMs: 15_000 },
      { args: ['get', `${p}k`] },
    ]);
    expect(res.reference[5].stdout).toContain(`${p}k\nv\n`);
  });
});
