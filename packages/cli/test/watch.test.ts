/**
 * Goal: `coord watch` is etcdctl 3.4's `watch`: for the same server and history it prints the
 * same bytes on stdout and stderr and exits with the same status, in every output format,
 * with --prefix / RANGE_END / --rev / --prev-kv / --hex, `-- CMD` (ETCD_WATCH_* variables,
 * command failures), interactive mode (`-i`: watch and progress lines, invalid lines, end of
 * input), a compacted start revision (canceled by the server: exit 5), a refused create
 * (`watch b a`), `-w table` (exit 4) and argument errors (exit 128).
 *
 * Method: the real binaries (`node packages/cli/bin/run.js` and /usr/bin/etcdctl) run side by
 * side against the same server: a real etcd 3.4, then a `coord server` (the suite runs once
 * per target). Each target gets the same history (compacted at revision 3, then puts with
 * quotes, tabs and non-UTF-8 bytes, a delete, a two-put txn, and a final `h/zz-end`). A watch
 * never ends by itself, so replays are killed once the last event is printed, and live
 * watches are synchronised with a sentinel key first (watch-lease-harness.ts) and compared
 * after it. Outputs are compared whole; nothing is timed. Independent cases run a few at a
 * time; against the coord server only a representative subset runs (the CLI code paths are
 * the same; what differs is the server), to keep the suite near a minute.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { coord, etcdctl, type RunResult } from './helpers/run';
import { Background, CasePool, afterJsonEvent, afterSimpleEvent, both, ctl, startTarget, syncWatchers, type Target } from './watch-lease-harness';

jest.setTimeout(60000);

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const hexOf = (s: string): string => [...Buffer.from(s)].map((x) => '\\x' + x.toString(16).padStart(2, '0')).join('');

/** When a replay of h/ has printed its last event (`h/zz-end` = `end`). */
function replayDone(format: 'simple' | 'json' | 'fields' | 'hex'): (p: Background) => boolean {
  switch (format) {
    case 'simple':
      return (p) => p.stdout.endsWith('h/zz-end\nend\n');
    case 'hex':
      return (p) => p.stdout.endsWith(`${hexOf('h/zz-end')}\n${hexOf('end')}\n`);
    case 'json':
      return (p) => p.stdout.includes(`"${b64('h/zz-end')}"`) && p.stdout.endsWith('\n');
    case 'fields':
      return (p) => /"Key" : "h\/zz-end"\n"CreateRevision" : \d+\n"ModRevision" : \d+\n"Version" : \d+\n"Value" : "end"\n"Lease" : 0\n$/.test(p.stdout);
  }
}

const view = (r: RunResult) => ({ stdout: r.stdout.toString('latin1'), stderr: r.stderr, code: r.code });

/** Files for exec failures that do not depend on the machine: text with and without +x. */
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'coord-watch-test-'));
const NOT_A_BINARY = path.join(scratch, 'not-a-binary');
const NOT_EXECUTABLE = path.join(scratch, 'not-executable');
fs.writeFileSync(NOT_A_BINARY, 'just text\n', { mode: 0o755 });
fs.writeFileSync(NOT_EXECUTABLE, '#!/bin/sh\necho hi\n', { mode: 0o644 });
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe.each(['etcd', 'coord'] as const)('against %s', (targetName) => {
  let target: Target;
  let ep: string[];
  const pool = new CasePool(4);

  /** A case for the pool; against the coord server only when `onCoord`. */
  function kase(name: string, fn: () => Promise<void>, onCoord = false): void {
    if (targetName === 'coord' && !onCoord) return;
    pool.pooled(name, fn);
    it(name, () => pool.result(name));
  }

  beforeAll(async () => {
    target = await startTarget(targetName);
    ep = ['--endpoints', target.endpoint];
    const e = target.endpoint;
    const steps: [string[], string?][] = [
      [['put', 'h/old', '1']], // rev 2
      [['put', 'h/old', '2']], // rev 3
      [['compaction', '3']],
      [['put', 'h/a', 'he said "hi"']], // rev 4
      [['put', 'h/b', 'tab\there']], // rev 5
      [['put', 'h/a', 'v2']], // rev 6
      [['del', 'h/b']], // rev 7
      [['txn'], '\nput h/c x\nput h/d y\n\n\n'], // rev 8: two events, one revision
      [['put', 'h/e'], '\xff\xfe bytes'], // rev 9: not UTF-8 (value from stdin)
      [['put', 'h/zz-end', 'end']], // rev 10
    ];
    for (const [args, input] of steps) {
      const r = await ctl(e, args, input === undefined ? undefined : Buffer.from(input, 'latin1'));
      if (r.code !== 0) throw new Error(`seed ${args.join(' ')}: ${r.stderr}`);
    }
  });

  beforeAll(() => pool.start());

  afterAll(async () => {
    await target?.stop();
  });

  /** Run a watch with both binaries until `done`, kill both, compare the whole output. */
  async function replay(args: string[], done: (p: Background) => boolean, env?: Record<string, string>): Promise<void> {
    const [ref, ours] = both([...ep, ...args], { env });
    try {
      await Promise.all([ref.waitFor(done, 'the last event'), ours.waitFor(done, 'the last event')]);
    } finally {
      await Promise.all([ref.kill(), ours.kill()]);
    }
    expect({ stdout: ours.stdout, stderr: ours.stderr }).toEqual({ stdout: ref.stdout, stderr: ref.stderr });
  }

  /** Run a command that ends by itself with both binaries; compare stdout, stderr, status. */
  async function same(args: string[], env?: Record<string, string>, input?: string): Promise<RunResult> {
    const [ref, ours] = await Promise.all([etcdctl([...ep, ...args], { env, input }), coord([...ep, ...args], { env, input })]);
    expect(view(ours)).toEqual(view(ref));
    return ref;
  }

  describe('history replay (--rev)', () => {
    kase('simple --prev-kv', () => replay(['watch', 'h/', '--prefix', '--rev', '4', '--prev-kv'], replayDone('simple')), true);
    kase('json --prev-kv (the whole clientv3 WatchResponse)', () => replay(['watch', 'h/', '--prefix', '--rev', '4', '--prev-kv', '-w', 'json'], replayDone('json')), true);
    kase('fields --prev-kv', () => replay(['watch', 'h/', '--prefix', '--rev', '4', '--prev-kv', '-w', 'fields'], replayDone('fields')), true);
    kase('--hex', () => replay(['watch', '--hex', 'h/', '--prefix', '--rev', '4', '--prev-kv'], replayDone('hex')));
    kase('KEY RANGE_END', () => replay(['watch', 'h/a', 'h/zz-f', '--rev', '4'], replayDone('simple')));
    kase('ETCDCTL_WATCH_KEY', () => replay(['watch', '--prefix', '--rev', '4'], replayDone('simple'), { ETCDCTL_WATCH_KEY: 'h/' }));
  });

  describe('-- CMD: one run per event, ETCD_WATCH_* as etcdctl sets them', () => {
    kase(
      'the variables, in event order; a failing command ends the watch (exit 1)',
      async () => {
        // Ends itself: the command fails on the last event.
        const script = 'printf "%s|%s|%s|%s\\n" "$ETCD_WATCH_REVISION" "$ETCD_WATCH_EVENT_TYPE" "$ETCD_WATCH_KEY" "$ETCD_WATCH_VALUE"; test "$ETCD_WATCH_KEY" != \'"h/zz-end"\'';
        const r = await same(['watch', 'h/', '--prefix', '--rev', '4', '--', 'sh', '-c', script]);
        expect(r.code).toBe(1);
        expect(r.stdout.toString()).toContain('|"DELETE"|"h/b"|""\n');
        expect(r.stdout.toString()).toContain('|"PUT"|"h/a"|"he said \\"hi\\""\n');
        expect(r.stdout.toString()).toContain('|"PUT"|"h/e"|"\\xff\\xfe bytes"\n');
      },
      true,
    );
    const failures: [string, string[]][] = [
      ['not in PATH', ['nosuch-command-xyz', 'a', 'b c']],
      ['no such file', ['./nosuch-command-xyz']],
      ['no execute permission', [NOT_EXECUTABLE]],
      ['not a binary nor a script (exec format error)', [NOT_A_BINARY]],
      ['killed by a signal', ['sh', '-c', 'kill -9 $$']],
      ['exit status 3', ['sh', '-c', 'exit 3']],
    ];
    for (const [name, cmd] of failures) {
      kase(name, async () => {
        expect((await same(['watch', 'h/a', '--rev', '4', '--', ...cmd])).code).toBe(1);
      });
    }
  });

  describe('ends: canceled by the server, refused, unsupported format', () => {
    for (const format of ['simple', 'json', 'fields']) {
      kase(
        `compacted --rev, -w ${format}: canceled, exit 5`,
        async () => {
          const r = await same(['watch', 'h/', '--prefix', '--rev', '2', '-w', format]);
          expect(r.code).toBe(5);
          expect(r.stderr).toBe('watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n');
        },
        format === 'json',
      );
      kase(
        `refused create (KEY > RANGE_END), -w ${format}: exit 5`,
        async () => {
          expect((await same(['watch', 'h/b', 'h/a', '-w', format])).code).toBe(5);
        },
        format === 'json',
      );
    }
    kase('-w table: exit 4 at the first response', async () => {
      expect((await same(['watch', 'h/', '--prefix', '--rev', '4', '-w', 'table'])).code).toBe(4);
    });
    kase('-w bogus: exit 4 before watching', async () => {
      expect((await same(['watch', 'h/', '-w', 'bogus'])).code).toBe(4);
    });
  });

  describe('argument errors (exit 128)', () => {
    for (const args of [[], ['--prefix'], ['a', 'b', '--prefix'], ['a', '--'], ['--', 'echo'], ['a', 'b', '--']]) {
      kase(`watch ${JSON.stringify(args)}`, async () => {
        expect((await same(['watch', ...args])).code).toBe(128);
      });
    }
    const envCases: [string, string[], Record<string, string>][] = [
      ['ETCDCTL_WATCH_RANGE_END without ETCDCTL_WATCH_KEY', ['a'], { ETCDCTL_WATCH_RANGE_END: 'z' }],
      ['ETCDCTL_WATCH_KEY and a key argument', ['a'], { ETCDCTL_WATCH_KEY: 'b' }],
      ['ETCDCTL_WATCH_KEY and a key before --', ['a', '--', 'echo', 'x'], { ETCDCTL_WATCH_KEY: 'b' }],
    ];
    for (const [name, args, env] of envCases) {
      kase(name, async () => {
        expect((await same(['watch', ...args], env)).code).toBe(128);
      });
    }
  });

  describe('interactive (-i)', () => {
    kase(
      'watch and progress lines, invalid lines, a refused watch, a command per event; end of input: exit 3',
      async () => {
        const [ref, ours] = both([...ep, 'watch', '-i'], { stdin: true });
        try {
          for (const p of [ref, ours]) {
            p.write('\n');
            p.write('foo bar\n');
            p.write('watch\n');
            p.write('watch a b --prefix\n');
            p.write('watch --rev 4 --prefix "h/" -- sh -c "echo $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY"\n');
          }
          const done = (q: Background): boolean => q.stdout.endsWith('"PUT" "h/zz-end"\n');
          await Promise.all([ref.waitFor(done, 'h/zz-end'), ours.waitFor(done, 'h/zz-end')]);
          for (const p of [ref, ours]) p.write('watch h/b h/a\n');
          await Promise.all([ref, ours].map((p) => p.waitFor((q) => q.stderr.includes('watcher range is empty'), 'the refused watch')));
          for (const p of [ref, ours]) p.write('progress\n');
          await Promise.all([ref, ours].map((p) => p.waitFor((q) => /progress notify: \d+\n$/.test(q.stdout), 'progress notify')));
          for (const p of [ref, ours]) p.endInput();
          await Promise.all([ref.waitExit(), ours.waitExit()]);
        } finally {
          await Promise.all([ref.kill(), ours.kill()]);
        }
        expect(ours.stdout).toBe(ref.stdout);
        expect(ours.stderr).toBe(ref.stderr);
        expect([ours.exitCode, ref.exitCode]).toEqual([3, 3]);
        expect(ref.stderr).toBe(
          [
            'Invalid command:  (watch and progress supported)',
            'Invalid command foo bar (only support watch)',
            'Invalid command watch (command type or key is not provided)',
            'Invalid command watch a b --prefix (`range_end` and `--prefix` are mutually exclusive)',
            'watch was canceled (mvcc: watcher range is empty)',
            'Error: Error reading watch request line: EOF',
            '',
          ].join('\n'),
        );
      },
      true,
    );

    kase("a line's flags are the watch flags only: a global flag there exits 128", async () => {
      expect((await same(['watch', '-i'], undefined, 'watch h/a -w json\n')).code).toBe(128);
    });

    kase("argify's single-quote slice as etcdctl 3.4 has it: a lone quoted word panics (exit 2)", async () => {
      const [ref, ours] = await Promise.all([etcdctl([...ep, 'watch', '-i'], { input: "'a'\n" }), coord([...ep, 'watch', '-i'], { input: "'a'\n" })]);
      expect([ours.code, ref.code]).toEqual([2, 2]);
      expect(ours.stderr.split('\n')[0]).toBe(ref.stderr.split('\n')[0]);
    });
  });

  it('live: from now on, in simple and json, with --prev-kv (txn in one response, lease revoke deletes)', async () => {
    await pool.settled(); // they read a fixed history; this test writes
    const simple = both([...ep, 'watch', 'l/', '--prefix', '--prev-kv']);
    const json = both([...ep, 'watch', 'l/', '--prefix', '-w', 'json']);
    const all = [...simple, ...json];
    try {
      const value = await syncWatchers(target.endpoint, all, 'l/sync', (out, v) => out.includes(`\n${v}\n`) || out.includes(`"${b64(v)}"`));
      const e = target.endpoint;
      const grant = await ctl(e, ['lease', 'grant', '600']);
      const id = grant.stdout.toString().split(' ')[1];
      for (const [args, input] of [
        [['put', 'l/x', '1']],
        [['put', 'l/x', '2']],
        [['del', 'l/x']],
        [['txn'], '\nput l/y 1\nput l/z 1\n\n\n'],
        [['put', 'l/leased', 'v', '--lease', id]],
        [['lease', 'revoke', id]],
        [['put', 'l/end', 'end']],
      ] as [string[], string?][]) {
        const r = await ctl(e, args, input);
        expect(r.stderr).toBe('');
      }
      await Promise.all(simple.map((p) => p.waitFor((q) => q.stdout.endsWith('l/end\nend\n'), 'l/end')));
      await Promise.all(json.map((p) => p.waitFor((q) => q.stdout.includes(`"${b64('l/end')}"`) && q.stdout.endsWith('\n'), 'l/end')));
      const [sr, so] = simple.map((p) => afterSimpleEvent(p.stdout, 'l/sync', value));
      expect(so).toBe(sr);
      expect(sr).toContain('DELETE\nl/leased\nv\nl/leased\n\n');
      const [jr, jo] = json.map((p) => afterJsonEvent(p.stdout, value));
      expect(jo).toBe(jr);
      expect(jr.split('\n').filter((l) => l.includes(`"${b64('l/y')}"`))[0]).toContain(`"${b64('l/z')}"`);
      for (const p of all) expect(p.stderr).toBe('');
    } finally {
      await Promise.all(all.map((p) => p.kill()));
    }
  });
});
