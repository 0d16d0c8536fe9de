import { Command, Flags } from '@oclif/core';
import { benchAndReport, failWith } from '../../bench/command';
import { checkKeys, commonFlags, keyFlags, runOptions } from '../../bench/options';
import type { BenchReport } from '../../bench/report';
import { txnPutWorkload } from '../../bench/workloads';

export default class BenchTxnPut extends Command {
  static override summary = 'Benchmark txns of puts (etcd v3 KV.Txn), like etcd\'s `benchmark txn-put`.';
  static override description =
    'Closed loop: --clients requests in flight over --conns gRPC connections, each a Txn with no compares ' +
    'whose success branch puts --txn-ops distinct keys; keys walk the key space sequentially, as in etcd.';
  static override examples = ['<%= config.bin %> bench txn-put --txn-ops 4 --key-space-size 1000 --clients 100 --conns 10'];
  static override enableJsonFlag = true;
  static override flags = {
    ...commonFlags,
    ...keyFlags,
    'txn-ops': Flags.integer({ description: 'puts per txn', default: 1, min: 1 }),
  };

  async run(): Promise<BenchReport> {
    const { flags } = await this.parse(BenchTxnPut);
    let opts;
    let workload;
    try {
      opts = runOptions(flags);
      checkKeys(flags);
      workload = txnPutWorkload({
        keySize: flags['key-size'],
        valSize: flags['val-size'],
        keySpaceSize: flags['key-space-size'],
        sequentialKeys: true,
        opsPerTxn: flags['txn-ops'],
      });
    } catch (err) {
      failWith(this, err);
    }
    try {
      return await benchAndReport(this, 'txn-put', opts, workload, {
        keySize: flags['key-size'],
        valSize: flags['val-size'],
        keySpaceSize: flags['key-space-size'],
        txnOps: flags['txn-ops'],
      });
    } catch (err) {
      failWith(this, err);
    }
  }
}
