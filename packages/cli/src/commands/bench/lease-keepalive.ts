import { Command, Flags } from '@oclif/core';
import { failWith } from '../../bench/command';
import { parseEndpoints } from '../../bench/conn';
import { parseDuration } from '../../bench/options';
import { formatLeaseReport, LeaseOptions, LeaseReport, runLeaseBench } from '../../bench/lease';

const DEFAULT_TOTAL_KEEPALIVES = 10_000;

export default class BenchLeaseKeepalive extends Command {
  static override summary = 'Benchmark lease keepalives (etcd v3 LeaseKeepAlive): keepalives/s and latency for many leases.';
  static override description =
    'Grants --leases leases (TTL --ttl), then keeps them alive over --streams LeaseKeepAlive streams on --conns ' +
    'connections, each stream a closed loop with --window requests in flight, until --total keepalives or --duration; ' +
    'then checks with LeaseTimeToLive that a sample of the leases (--check-sample) is still alive. ' +
    'Speaks only the etcd v3 API, so it measures coord and etcd alike.';
  static override examples = [
    '<%= config.bin %> bench lease-keepalive --leases 10000 --streams 100 --conns 10 --duration 10s',
    '<%= config.bin %> bench lease-keepalive --leases 100 --ttl 3 --duration 5s --check-sample 0 --json',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    endpoints: Flags.string({ description: 'comma-separated gRPC endpoints (host:port or http://host:port)', default: '127.0.0.1:2379' }),
    leases: Flags.integer({ description: 'leases granted and kept alive', default: 1000, min: 1 }),
    ttl: Flags.integer({ description: 'TTL of the leases in seconds', default: 30, min: 1 }),
    streams: Flags.integer({ description: 'LeaseKeepAlive streams (lease i on stream i mod streams)', default: 10, min: 1 }),
    conns: Flags.integer({ description: 'HTTP/2 connections the streams are spread over', default: 1, min: 1 }),
    window: Flags.integer({ description: 'keepalive requests in flight per stream', default: 10, min: 1 }),
    total: Flags.integer({ description: `keepalives in all [default: ${DEFAULT_TOTAL_KEEPALIVES} unless --duration]`, min: 1 }),
    duration: Flags.string({ description: 'keep alive for this long instead of --total, e.g. 10s' }),
    'check-sample': Flags.integer({ description: 'leases checked alive at the end with LeaseTimeToLive (0: all)', default: 100, min: 0 }),
    'dial-timeout': Flags.string({ description: 'how long to wait for every connection to be up', default: '5s' }),
    'drain-timeout': Flags.string({ description: 'at the end of a --duration run, how long to wait for answers in flight', default: '10s' }),
    'server-pid': Flags.integer({ description: 'pid of the server (same machine): report its RSS and CPU from /proc', min: 1 }),
  };

  async run(): Promise<LeaseReport> {
    const { flags } = await this.parse(BenchLeaseKeepalive);
    let opts: LeaseOptions;
    try {
      if (flags.total !== undefined && flags.duration !== undefined) throw new Error('--total and --duration are mutually exclusive');
      const durationMs = flags.duration !== undefined ? parseDuration(flags.duration) : undefined;
      if (durationMs !== undefined && durationMs <= 0) throw new Error('--duration must be positive');
      opts = {
        endpoints: parseEndpoints(flags.endpoints),
        conns: flags.conns,
        streams: flags.streams,
        leases: flags.leases,
        window: flags.window,
        ttl: flags.ttl,
        total: durationMs === undefined ? (flags.total ?? DEFAULT_TOTAL_KEEPALIVES) : undefined,
        durationMs,
        dialTimeoutMs: parseDuration(flags['dial-timeout']),
        checkSample: flags['check-sample'],
        drainTimeoutMs: parseDuration(flags['drain-timeout']),
        serverPid: flags['server-pid'],
      };
    } catch (err) {
      failWith(this, err);
    }
    try {
      const report = await runLeaseBench(opts);
      this.log(formatLeaseReport(report));
      return report;
    } catch (err) {
      failWith(this, err);
    }
  }
}
