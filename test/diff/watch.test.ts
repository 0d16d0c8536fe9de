/**
 * Differential test: `etcdctl watch`, coord against etcd 3.4.
 *
 * Goal: everything etcdctl 3.4's watch can do prints the same events, in the same order and
 * grouping, with the same exit codes and messages, against coord as against the reference
 * etcd: a key, a prefix, a [key, range_end) range, replay with --rev (from revision 1, from
 * the middle, into the future, negative), --prev-kv, the json and fields printers, interactive
 * mode (`watch -i`: several watches on one stream, `progress`, bad lines, EOF), `watch … --
 * CMD` (what CMD sees in ETCD_WATCH_*, and a failing CMD), argument errors, an empty range,
 * and watching a compacted revision (exit code 5 and etcd's message).
 *
 * Method: scenarios as in kv.test.ts (one reference etcd and one target for the file, key
 * prefix per test, outputs normalized, exit codes stated). A watch runs as a background
 * etcdctl on each side (scenario.ts: spawn / await / input / barrier) and its output is
 * collected until the expected number of events has arrived (deadline 10 s), then the
 * process is stopped. A live watch (no --rev) is synchronized with a barrier (put a key
 * until the watch prints it) so both sides see exactly the writes that follow; a replay
 * (--rev) needs no barrier. Compaction is global to the store, so its test runs last.
 */
import { eventsAtLeast, printed } from '../harness/background';
import { expectSameAsEtcd, prefixFor } from '../harness/scenario';
import { usePair } from '../harness/target';

const pair = usePair();

/** etcdctl txn input: compares, blank, success ops, blank, failure ops, blank. */
function txn(compares: string[], success: string[], failure: string[] = []): string {
  return [...compares, '', ...success, '', ...failure, ''].join('\n') + '\n';
}

describe('watch against etcd', () => {
  test('replay of the whole key space from revision 1 on a fresh member (runs first; absolute revisions)', async () => {
    const p = prefixFor('from-rev-1');
    await expectSameAsEtcd(
      pair,
      [
        { args: ['put', `${p}a`, '1'] }, // rev 2
        { args: ['put', `${p}b`, '2'] }, // rev 3
        { args: ['put', `${p}a`, '3'] }, // rev 4
        { args: ['del', `${p}b`] }, // rev 5
        { spawn: 'all', args: ['watch', '', '--prefix', '--rev', '1'] },
        { await: 'all', until: eventsAtLeast(4) },
        // One catch-up response holds every past revision (header = current revision).
        { spawn: 'json', args: ['watch', '', '--prefix', '--rev', '1', '-w', 'json'] },
        { await: 'json', until: eventsAtLeast(4, 'json') },
        { spawn: 'fields', args: ['watch', `${p}a`, '--rev', '1', '-w', 'fields', '--prev-kv'] },
        { await: 'fields', until: printed(/"Value" : "3"/) },
      ],
      { absoluteRevisions: true },
    );
  });

  test('watch KEY: live puts and deletes of that key only', async () => {
    const p = prefixFor('key');
    await expectSameAsEtcd(pair, [
      { spawn: 'w', args: ['watch', `${p}k`] },
      { barrier: 'w', key: `${p}k` },
      { args: ['put', `${p}k`, 'v1'] },
      { args: ['put', `${p}kk`, 'not watched'] },
      { args: ['put', `${p}other`, 'not watched'] },
      { args: ['put', `${p}k`, 'v2 with spaces'] },
      { args: ['put', `${p}k`, ''] },
      { args: ['del', `${p}k`] },
      { args: ['del', `${p}k`] }, // nothing to delete: no event
      { args: ['put', `${p}k`, 'v3'] },
      { await: 'w', until: eventsAtLeast(5) },
    ]);
  });

  test('watch --prefix --prev-kv: puts, deletes, a txn (events in txn order), del --prefix', async () => {
    const p = prefixFor('prefix');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}x`, 'before'] },
      { spawn: 'w', args: ['watch', p, '--prefix', '--prev-kv'] },
      { spawn: 'j', args: ['watch', p, '--prefix', '-w', 'json'] },
      { barrier: 'w', key: `${p}sync` },
      { barrier: 'j', key: `${p}sync` },
      { args: ['put', `${p}c`, '1'] },
      { args: ['put', `${p}a`, '2'] },
      { args: ['put', `${p}c`, '3'] },
      { args: ['put', `/diff/prefiy`, 'outside'] },
      { args: ['txn'], stdin: txn([], [`put ${p}z z1`, `del ${p}c`, `put ${p}b b1`, `put ${p}a a2`]) },
      { args: ['del', p, '--prefix'] },
      { await: 'w', until: eventsAtLeast(12) },
      // Live events: one response per revision, header revision = the event's revision.
      { await: 'j', until: eventsAtLeast(12, 'json') },
    ]);
  });

  test('watch KEY RANGE_END replayed with --rev from the middle of the history, in every printer', async () => {
    const p = prefixFor('range');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}a`, 'a1'] }, // rev+1
      { args: ['put', `${p}b`, 'b1'] }, // rev+2
      { args: ['put', `${p}c`, 'c1'] }, // rev+3
      { args: ['put', `${p}d`, 'd1'] }, // rev+4: outside [b, d)
      { args: ['put', `${p}b`, 'b2'] }, // rev+5
      { args: ['txn'], stdin: txn([], [`del ${p}b`, `put ${p}c c2`, `put ${p}a a2`]) }, // rev+6
      { spawn: 's', args: ['watch', `${p}b`, `${p}d`, '--rev', '{rev+2}'] },
      { await: 's', until: eventsAtLeast(5) },
      { spawn: 'p', args: ['watch', `${p}b`, `${p}d`, '--rev', '{rev+3}', '--prev-kv'] },
      { await: 'p', until: eventsAtLeast(4) },
      { spawn: 'j', args: ['watch', `${p}b`, `${p}d`, '--rev', '{rev+2}', '--prev-kv', '-w', 'json'] },
      { await: 'j', until: eventsAtLeast(5, 'json') },
      { spawn: 'h', args: ['watch', `${p}b`, `${p}d`, '--rev', '{rev+5}', '--hex'] },
      { await: 'h', until: eventsAtLeast(3) },
      // Replay, then live events on the same watch.
      { spawn: 'live', args: ['watch', `${p}b`, `${p}d`, '--rev', '{rev+6}', '-w', 'json'] },
      { await: 'live', until: eventsAtLeast(2, 'json'), keep: true },
      { args: ['put', `${p}b`, 'b3'] }, // rev+7
      { args: ['put', `${p}a`, 'a3'] }, // rev+8: outside
      { args: ['put', `${p}c`, 'c3'] }, // rev+9
      { await: 'live', until: eventsAtLeast(2, 'json') },
    ]);
  });

  test('--rev in the future waits for that revision; --rev=-1 on an uncompacted store replays nothing', async () => {
    // etcd turns a negative start revision into a history key range that is empty (the
    // revision is encoded unsigned), so the watcher replays nothing and then sees new events.
    const p = prefixFor('rev-edges');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'v1'] },
      { spawn: 'neg', args: ['watch', `${p}k`, '--rev=-1'] },
      { barrier: 'neg', key: `${p}k` },
      { spawn: 'future', args: ['watch', `${p}k`, '--rev', '{rev+3}'] },
      { args: ['put', `${p}k`, 'v2'] }, // rev+1
      { args: ['put', `${p}k`, 'v3'] }, // rev+2: before the future watch's start
      { args: ['put', `${p}k`, 'v4'] }, // rev+3
      { args: ['put', `${p}k`, 'v5'] }, // rev+4
      { await: 'future', until: eventsAtLeast(2) },
      { await: 'neg', until: eventsAtLeast(4) },
    ]);
  });

  test('argument errors, and an empty range (created and canceled by the server)', async () => {
    const p = prefixFor('args');
    await expectSameAsEtcd(pair, [
      { args: ['watch'], code: 128 },
      { args: ['watch', `${p}a`, `${p}b`, '--prefix'], code: 128 },
      { args: ['watch', `${p}a`, '--'], code: 128 },
      { args: ['watch', `${p}a`, '--rev=abc'], code: 1 },
      { spawn: 'empty', args: ['watch', `${p}b`, `${p}a`] },
      { await: 'empty', code: 5 },
      { spawn: 'emptyjson', args: ['watch', `${p}b`, `${p}b`, '-w', 'json'] },
      { await: 'emptyjson', code: 5 },
    ]);
  });

  test('watch -- CMD runs CMD once per event with ETCD_WATCH_* set; a failing CMD ends the watch', async () => {
    const p = prefixFor('exec');
    const show =
      'printf "ETCD_WATCH_REVISION=%s ETCD_WATCH_EVENT_TYPE=%s ETCD_WATCH_KEY=%s ETCD_WATCH_VALUE=%s\\n" ' +
      '"$ETCD_WATCH_REVISION" "$ETCD_WATCH_EVENT_TYPE" "$ETCD_WATCH_KEY" "$ETCD_WATCH_VALUE"';
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'plain'] }, // rev+1
      { args: ['put', `${p}k`, 'he said "hi"\ttab'] }, // rev+2
      { args: ['del', `${p}k`] }, // rev+3
      { args: ['put', `${p}k2`, 'x'] }, // rev+4
      // Replay: one response, so every CMD sees the response's header revision.
      { spawn: 'exec', args: ['watch', p, '--prefix', '--rev', '{rev+1}', '--', 'sh', '-c', show] },
      { await: 'exec', until: printed(/^ETCD_WATCH_REVISION=/m, 4), keep: true },
      { args: ['put', `${p}k`, 'live'] }, // rev+5
      { await: 'exec', until: printed(/^ETCD_WATCH_REVISION=/m, 1) },
      { spawn: 'fail', args: ['watch', `${p}k`, '--rev', '{rev+1}', '--', 'sh', '-c', 'echo ran; exit 3'] },
      { await: 'fail', code: 1 },
      { spawn: 'missing', args: ['watch', `${p}k`, '--rev', '{rev+1}', '--', '/nonexistent/cmd'] },
      { await: 'missing', code: 1 },
    ]);
  });

  test('watch -i: several watches on one stream, progress, bad lines, EOF', async () => {
    const p = prefixFor('interactive');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}old`, 'o1'] }, // rev+1
      { spawn: 'i', args: ['watch', '-i'], stdin: `watch ${p}a\n` },
      { barrier: 'i', key: `${p}a` },
      { args: ['put', `${p}a`, 'a1'] },
      { await: 'i', until: eventsAtLeast(1), keep: true },
      { input: 'i', text: `watch ${p}old --rev 1\n` },
      { await: 'i', until: eventsAtLeast(1), keep: true },
      // Every watch on the stream is synced: each of the two prints the progress notification.
      { input: 'i', text: 'progress\n' },
      { await: 'i', until: printed(/^progress notify/m, 2), keep: true },
      { input: 'i', text: `bogus\n\nwatch\nwatch ${p}x ${p}y --prefix\n` },
      { await: 'i', until: printed(/\n/, 4, 'stderr'), keep: true },
      { input: 'i', text: `watch ${p}b --prev-kv -- echo ran\n` },
      { input: 'i', text: 'progress\n' },
      { await: 'i', until: printed(/^progress notify/m, 3), keep: true },
      { args: ['put', `${p}b`, 'b1'] },
      { await: 'i', until: printed(/^ran$/m), keep: true },
      { input: 'i', text: '', end: true },
      { await: 'i', code: 3 },
    ]);
  });

  test('watching a compacted revision: canceled with the compact revision, exit 5 (runs last: compaction is global)', async () => {
    const p = prefixFor('compacted');
    await expectSameAsEtcd(pair, [
      { args: ['put', `${p}k`, 'v1'] }, // rev+1
      { args: ['put', `${p}k`, 'v2'] }, // rev+2
      { args: ['put', `${p}k`, 'v3'] }, // rev+3
      { args: ['compaction', '{rev+2}'] },
      { spawn: 's', args: ['watch', `${p}k`, '--rev', '{rev+1}'] },
      { await: 's', code: 5 },
      { spawn: 'j', args: ['watch', `${p}k`, '--rev', '{rev+1}', '-w', 'json'] },
      { await: 'j', code: 5 },
      { spawn: 'f', args: ['watch', `${p}k`, '--rev', '1', '-w', 'fields'] },
      { await: 'f', code: 5 },
      { spawn: 'neg', args: ['watch', `${p}k`, '--rev=-1'] },
      { await: 'neg', code: 5 },
      // At the compacted revision itself the history is still there.
      { spawn: 'at', args: ['watch', `${p}k`, '--rev', '{rev+2}', '--prev-kv'] },
      { await: 'at', until: eventsAtLeast(2) },
      { spawn: 'i', args: ['watch', '-i'], stdin: `watch ${p}k --rev {rev+1}\nwatch ${p}k --rev {rev+3}\n` },
      { await: 'i', until: (o) => /compacted/.test(o.stderr) && /^PUT$/m.test(o.stdout), keep: true },
      { input: 'i', text: '', end: true },
      { await: 'i', code: 3 },
    ]);
  });
});
