/**
 * `coord watch`: etcdctl 3.4's watch, byte for byte.
 *
 *   coord watch KEY [RANGE_END] [--prefix] [--rev REV] [--prev-kv] [-- CMD ARGS...]
 *   coord watch -i        (reads `watch ...` and `progress` lines from stdin)
 *
 * Output: each response with the `-w` printer (simple: PUT/DELETE, key, value lines); with
 * `-- CMD` the command runs once per event with ETCD_WATCH_REVISION, ETCD_WATCH_KEY,
 * ETCD_WATCH_EVENT_TYPE and ETCD_WATCH_VALUE set (src/watch/exec.ts).
 *
 * Exit codes, as etcdctl's: the watch runs until the server cancels it (e.g. its start
 * revision was compacted), then `Error: watch is canceled by the server` and exit 5
 * (ExitInterrupted); bad arguments exit 128; a failing CMD exits 1; `-w table` exits 4 at the
 * first response. Interactive mode ends at the end of stdin: `Error: Error reading watch
 * request line: EOF`, exit 3 (ExitInvalidInput), even if watches are still open; a canceled
 * watch there only prints its message.
 */
import type { Client } from '@coord/client';
import { Args, oclifFlags } from '../base-command';
import { CliError, ExitCode, invalidInput } from '../errors';
import { WatchLeaseCommand } from '../lease/command';
import { LineReader } from '../txn/line-reader';
import {
  GoPanic,
  WATCH_SPECS,
  argify,
  badWatchArgs,
  checkWatchEnv,
  parseWatchArgs,
  watchEnv,
  watchRequest,
  type WatchEnv,
  type WatchFlags,
} from '../watch/args';
import { WatchExit, printWatchCh, startWatch, type WatchIO } from '../watch/session';

export default class Watch extends WatchLeaseCommand {
  static override summary = 'Watches events stream on keys or prefixes';
  static override description = `Prints every change of a key, a range [KEY, RANGE_END) or a prefix (--prefix), from now on
or, with --rev, from that revision on (history is replayed). --prev-kv adds the previous pair.

After "--", a command runs once per event with ETCD_WATCH_REVISION, ETCD_WATCH_KEY,
ETCD_WATCH_EVENT_TYPE and ETCD_WATCH_VALUE set (Go-quoted, as etcdctl sets them).
With -i, reads "watch KEY [flags] [-- CMD]" and "progress" lines from stdin.
ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END (or COORD_WATCH_*) supply the key and range end.

Runs until the server cancels the watch (exit status 5), e.g. when --rev is compacted.`;
  static override examples = [
    '<%= config.bin %> watch foo',
    '<%= config.bin %> watch --prefix app/ --prev-kv -w json',
    '<%= config.bin %> watch foo --rev 1',
    `<%= config.bin %> watch foo -- sh -c 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY"'`,
    `printf 'watch foo\\nwatch --prefix bar\\n' | <%= config.bin %> watch -i`,
  ];
  static override args = {
    key: Args.string({ description: 'the key, or the start of the range (or the prefix, with --prefix)' }),
    range_end: Args.string({ description: 'the end of the range (exclusive)' }),
  };
  static override specs = WATCH_SPECS;
  static override flags = oclifFlags(WATCH_SPECS);

  async run(): Promise<void> {
    try {
      const env = watchEnv();
      checkWatchEnv(env);
      if (this.bool('interactive')) await this.interactive(env);
      else await this.single(env);
    } catch (err) {
      if (err instanceof WatchExit) {
        process.exitCode = err.exitCode;
        return;
      }
      if (err instanceof GoPanic) {
        this.logToStderr('%s', `panic: ${err.message}`);
        process.exitCode = 2;
        return;
      }
      throw err;
    }
  }

  /** watchCommandFunc: one watch from the command line, until the server cancels it. */
  private async single(env: WatchEnv): Promise<never> {
    let parsed;
    try {
      parsed = parseWatchArgs(this.argv, this.positional, env, false);
    } catch (err) {
      if (err instanceof GoPanic) throw err;
      throw badWatchArgs(err);
    }
    const client = this.client();
    const flags: WatchFlags = { prefix: this.bool('prefix'), rev: this.int('rev'), prevKv: this.bool('prev-kv') };
    let req;
    try {
      req = watchRequest(parsed.watchArgs, flags, parsed.execArgs);
    } catch (err) {
      throw badWatchArgs(err);
    }
    await printWatchCh(client, startWatch(client, req), req, this.io());
    throw new CliError('watch is canceled by the server', ExitCode.Interrupted, {
      hint: 'the watch start revision may have been compacted: watch from a later --rev, or without --rev.',
    });
  }

  /** watchInteractiveFunc: `watch ...` and `progress` lines from stdin, until its end. */
  private async interactive(env: WatchEnv): Promise<never> {
    const client = this.client();
    const io = this.io();
    const reader = new LineReader(this.useStdin());
    let fail: (err: unknown) => void = () => undefined;
    const failed = new Promise<never>((_resolve, reject) => {
      fail = reject;
    });
    const lines = async (): Promise<never> => {
      for (;;) {
        const { line, eof } = await reader.readLine();
        // bufio.Reader.ReadString: an unterminated last line comes with io.EOF and is dropped.
        if (eof) throw invalidInput('Error reading watch request line: EOF', 'keep stdin open while watching; end it to stop.');
        await this.interactiveLine(client, env, io, line.toString('utf8').replace(/\n$/, ''), fail);
      }
    };
    return Promise.race([lines(), failed]);
  }

  private async interactiveLine(client: Client, env: WatchEnv, io: WatchIO, l: string, fail: (err: unknown) => void): Promise<void> {
    const args = argify(l);
    if (args.length < 1) {
      io.stderr(`Invalid command: ${l} (watch and progress supported)`);
      return;
    }
    switch (args[0]) {
      case 'watch': {
        if (args.length < 2 && env.key === '') {
          io.stderr(`Invalid command ${l} (command type or key is not provided)`);
          return;
        }
        let parsed;
        try {
          parsed = parseWatchArgs([], args, env, true);
        } catch (err) {
          if (err instanceof GoPanic) throw err;
          throw badWatchArgs(err);
        }
        let req;
        try {
          req = watchRequest(parsed.watchArgs, parsed.flags as WatchFlags, parsed.execArgs);
        } catch (err) {
          io.stderr(`Invalid command ${l} (${(err as Error).message})`);
          return;
        }
        const watcher = startWatch(client, req);
        printWatchCh(client, watcher, req, io).catch(fail);
        // clientv3's Watch() returns once the server has created the watch (or refused it).
        await watcher.ready().catch(() => undefined);
        return;
      }
      case 'progress':
        // clientv3's RequestProgress only queues the request; the answers reach the watchers.
        client.watchProgress().catch(() => undefined);
        return;
      default:
        io.stderr(`Invalid command ${l} (only support watch)`);
    }
  }

  private io(): WatchIO {
    const format = this.global().writeOut;
    return {
      printer: this.watchLeasePrinter({ jsonLines: true }),
      stdout: (line) => this.out(line),
      stderr: (line) => this.logToStderr('%s', line),
      needsHeaders: format === 'json' || format === 'fields' || this.jsonEnabled(),
    };
  }
}
