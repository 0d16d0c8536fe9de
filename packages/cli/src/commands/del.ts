/** `coord del KEY [RANGE_END]`: etcdctl's del. */
import type { DeleteResult } from '@coord/client';
import { Args, BaseCommand, oclifFlags } from '../base-command';
import { DEL_SPECS, delOp } from '../kv-ops';

export default class Del extends BaseCommand {
  static override summary = 'Removes the specified key or range of keys [key, range_end)';
  static override description = 'Removes the specified key or range of keys [KEY, RANGE_END), and prints how many were deleted.';
  static override examples = ['<%= config.bin %> del foo', '<%= config.bin %> del --prefix app/ --prev-kv'];
  static override args = {
    key: Args.string({ description: 'the key, or the start of the range' }),
    range_end: Args.string({ description: 'the end of the range (exclusive)' }),
  };
  static override specs = DEL_SPECS;
  static override flags = oclifFlags(DEL_SPECS);

  async run(): Promise<DeleteResult> {
    const op = delOp(this.positional, (n) => this.flag(n));
    const res = await this.client().delete(op.key, op.options);
    this.printer().del(res);
    return res;
  }
}
