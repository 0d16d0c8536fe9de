import { Command, Flags } from '@oclif/core';
import { benchAndReport, failWith } from '../../bench/command';
import { commonFlags, runOptions } from '../../bench/options';
import type { BenchReport } from '../../bench/report';
import { rangeWorkload } from '../../bench/workloads';

export default class BenchRange extends Command {
  static override summary = 'Benchmark ranges (etcd v3 KV.Range), like etcd\'s `benchmark range`.';
  static override description =
    'Closed loop: --clients requests in flight over --conns gRPC connections, each a Range over --key ' +
    '(and --end-key, if given), linearizable (--consistency l, the default) or serializable (s).';
  static override examples = [
    '<%= config.bin %> bench range --key foo --consistency s --clients 100 --conns 10 --total 30000',
  ];
  static override enableJsonFlag = true;
  static override flags = {
    ...commonFlags,
    key: Flags.string({ description: 'key to range over', default: 'foo' }),
    'end-key': Flags.string({ description: 'range end (exclusive); "\\0" means every key >= --key' }),
    consistency: Flags.string({ description: 'l: linearizable, s: serializable', options: ['l', 's'], default: 'l' }),
  };

  async run(): Promise<BenchReport> {
    const { flags } = await this.parse(BenchRange);
    let opts;
    let workload;
    const endKey = flags['end-key'] === '\\0' ? '\0' : flags['end-key'];
    try {
      opts = runOptions(flags);
      workload = rangeWorkload({
        key: Buffer.from(flags.key),
        rangeEnd: endKey !== undefined ? Buffer.from(endKey) : undefined,
        serializable: flags.consistency === 's',
      });
    } catch (err) {
      failWith(this, err);
    }
    try {
      return await benchAndReport(this, 'range', opts, workload, {
        key: flags.key,
        ...(endKey !== undefined ? { endKey } : {}),
        consistency: flags.consistency,
      });
    } catch (err) {
      failWith(this, err);
    }
  }
}
