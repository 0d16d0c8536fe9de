import { Command } from '@oclif/core';
import { benchAndReport, failWith } from '../../bench/command';
import { checkKeys, commonFlags, keyFlags, runOptions, sequentialKeysFlag } from '../../bench/options';
import type { BenchReport } from '../../bench/report';
import { putWorkload } from '../../bench/workloads';

export default class BenchPut extends Command {
  static override summary = 'Benchmark puts (etcd v3 KV.Put), like etcd\'s `benchmark put`.';
  static override description =
    'Closed loop: --clients requests in flight over --conns gRPC connections until --total requests ' +
    'or --duration. Keys are --key-size bytes starting with the varint of the key index (as in etcd\'s ' +
    'benchmark), values --val-size random bytes. Speaks only the etcd v3 API, so it measures coord and etcd alike.';
  static override examples = [
    '<%= config.bin %> bench put --clients 100 --conns 10 --total 30000 --val-size 256',
    '<%= config.bin %> bench put --duration 10s --key-space-size 100000 --sequential-keys --json',
  ];
  static override enableJsonFlag = true;
  static override flags = { ...commonFlags, ...keyFlags, ...sequentialKeysFlag };

  async run(): Promise<BenchReport> {
    const { flags } = await this.parse(BenchPut);
    let opts;
    let workload;
    try {
      opts = runOptions(flags);
      checkKeys(flags);
      workload = putWorkload({
        keySize: flags['key-size'],
        valSize: flags['val-size'],
        keySpaceSize: flags['key-space-size'],
        sequentialKeys: flags['sequential-keys'],
      });
    } catch (err) {
      failWith(this, err);
    }
    try {
      return await benchAndReport(this, 'put', opts, workload, {
        keySize: flags['key-size'],
        valSize: flags['val-size'],
        keySpaceSize: flags['key-space-size'],
        sequentialKeys: flags['sequential-keys'],
      });
    } catch (err) {
      failWith(this, err);
    }
  }
}
