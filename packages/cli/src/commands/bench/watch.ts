import { Command, Flags } from '@oclif/core';
import { failWith } from '../../bench/command';
import { parseEndpoints } from '../../bench/conn';
import { parseDuration } from '../../bench/options';
import { formatWatchReport, runWatchBench, WatchOptions, WatchReport } from '../../bench/watch';

const DEFAULT_TOTAL_PUTS = 1000;

export default class BenchWatch extends Command {
  static override summary = 'Benchmark watch event fan-out (etcd v3 Watch): latency from a put to every watcher, events/s, memory.';
  static override description =
    '--watchers watchers spread over --streams Watch streams on --conns connections watch --key-space-size keys ' +
    '(or, with --watch-prefix, all of them the whole key prefix); a separate writer connection puts at --put-rate ' +
    'puts/s until --total-puts or --duration. Reports the fan-out latency (put sent -> event received) over every ' +
    'delivery, deliveries/s, missing and duplicate events (both must be 0), the client\'s own CPU and, with ' +
    '--server-pid, the server\'s RSS and CPU from /proc. Speaks only the etcd v3 API, so it measures coord and etcd alike.';
  static override examples = [
    '<%= config.bin %> bench watch --watchers 10000 --streams 100 --conns 10 --put-rate 10 --duration 10s',
    '<%= config.bin %> bench watch --watchers 1000 --key-space-size 100 --put-rate 200 --total-puts 2000 --server-pid 1234 --json',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    endpoints: Flags.string({ description: 'comma-separated gRPC endpoints (host:port or http://host:port)', default: '127.0.0.1:2379' }),
    watchers: Flags.integer({ description: 'watchers in all', default: 100, min: 1 }),
    streams: Flags.integer({ description: 'Watch streams the watchers are spread over (round robin)', default: 10, min: 1 }),
    conns: Flags.integer({ description: 'HTTP/2 connections the streams are spread over (the writer has its own)', default: 1, min: 1 }),
    'key-space-size': Flags.integer({ description: 'keys written (round robin) and watched (watcher w watches key w mod this)', default: 1, min: 1 }),
    'watch-prefix': Flags.boolean({ description: 'every watcher watches the whole key prefix, so every put reaches every watcher', default: false }),
    'key-prefix': Flags.string({ description: 'prefix of the keys written and watched', default: 'coord-bench/watch/' }),
    'val-size': Flags.integer({ description: 'value size in bytes (at least 8: run id and put number)', default: 8, min: 8 }),
    'put-rate': Flags.integer({ description: 'puts per second from the writer (open loop)', default: 100, min: 1 }),
    'total-puts': Flags.integer({ description: `puts in all [default: ${DEFAULT_TOTAL_PUTS} unless --duration]`, min: 1 }),
    duration: Flags.string({ description: 'put for this long instead of --total-puts, e.g. 10s' }),
    'dial-timeout': Flags.string({ description: 'how long to wait for every connection to be up', default: '5s' }),
    'create-timeout': Flags.string({ description: 'how long to wait for every watcher to be created', default: '60s' }),
    'drain-timeout': Flags.string({ description: 'after the last put is answered, how long to wait for outstanding events', default: '10s' }),
    'server-pid': Flags.integer({ description: 'pid of the server (same machine): report its RSS and CPU from /proc', min: 1 }),
  };

  async run(): Promise<WatchReport> {
    const { flags } = await this.parse(BenchWatch);
    let opts: WatchOptions;
    try {
      if (flags['total-puts'] !== undefined && flags.duration !== undefined) throw new Error('--total-puts and --duration are mutually exclusive');
      const durationMs = flags.duration !== undefined ? parseDuration(flags.duration) : undefined;
      if (durationMs !== undefined && durationMs <= 0) throw new Error('--duration must be positive');
      opts = {
        endpoints: parseEndpoints(flags.endpoints),
        conns: flags.conns,
        streams: flags.streams,
        watchers: flags.watchers,
        keySpaceSize: flags['key-space-size'],
        watchPrefix: flags['watch-prefix'],
        keyPrefix: flags['key-prefix'],
        valSize: flags['val-size'],
        putRate: flags['put-rate'],
        totalPuts: durationMs === undefined ? (flags['total-puts'] ?? DEFAULT_TOTAL_PUTS) : undefined,
        durationMs,
        dialTimeoutMs: parseDuration(flags['dial-timeout']),
        createTimeoutMs: parseDuration(flags['create-timeout']),
        drainTimeoutMs: parseDuration(flags['drain-timeout']),
        serverPid: flags['server-pid'],
      };
      if (opts.keyPrefix === '') throw new Error('--key-prefix must not be empty');
    } catch (err) {
      failWith(this, err);
    }
    try {
      const report = await runWatchBench(opts);
      this.log(formatWatchReport(report));
      return report;
    } catch (err) {
      failWith(this, err);
    }
  }
}
