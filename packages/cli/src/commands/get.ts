/** `coord get KEY [RANGE_END]`: etcdctl's get, every flag and output format. */
import type { RangeResult } from '@coord/client';
import { Args, BaseCommand, oclifFlags } from '../base-command';
import { GET_SPECS, checkGetOutput, getOp } from '../kv-ops';

export default class Get extends BaseCommand {
  static override summary = 'Gets the key or a range of keys';
  static override description = `Gets the key or a range of keys [KEY, RANGE_END).
--prefix: every key with the prefix KEY ("" means all keys). --from-key: every key >= KEY.
--count-only prints with -w fields; --print-value-only with -w simple.`;
  static override examples = ['<%= config.bin %> get foo', '<%= config.bin %> get --prefix app/ --keys-only', '<%= config.bin %> get foo --rev 5 -w json'];
  static override args = {
    key: Args.string({ description: 'the key, or the start of the range' }),
    range_end: Args.string({ description: 'the end of the range (exclusive)' }),
  };
  static override specs = GET_SPECS;
  static override flags = oclifFlags(GET_SPECS);

  async run(): Promise<RangeResult> {
    const op = getOp(this.positional, (n) => this.flag(n));
    const res = await this.client().getRange({ key: op.key, ...op.options });
    checkGetOutput(op, this.global().writeOut);
    this.printer({ valueOnly: op.printValueOnly }).get(res);
    return res;
  }
}
