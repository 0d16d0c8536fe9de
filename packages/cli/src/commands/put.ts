/** `coord put KEY [VALUE]`: etcdctl's put (value from stdin when omitted). */
import type { PutResult } from '@coord/client';
import { Args, BaseCommand, oclifFlags } from '../base-command';
import { PUT_SPECS, putOp } from '../kv-ops';

export default class Put extends BaseCommand {
  static override summary = 'Puts the given key into the store';
  static override description = `Puts the given key into the store.
When VALUE is omitted it is read from standard input (all of it, newlines included).
--lease takes the lease ID in hex, as etcdctl prints it.`;
  static override examples = ['<%= config.bin %> put foo bar', 'echo -n bar | <%= config.bin %> put foo', '<%= config.bin %> put foo bar --lease 694d6280d047720f --prev-kv -w json'];
  static override args = {
    key: Args.string({ description: 'the key' }),
    value: Args.string({ description: 'the value (read from stdin when omitted)' }),
  };
  static override specs = PUT_SPECS;
  static override flags = oclifFlags(PUT_SPECS);

  async run(): Promise<PutResult> {
    const op = await putOp(this.positional, (n) => this.flag(n), () => this.readStdin());
    const res = await this.client().put(op.key, op.value, op.options);
    this.printer().put(res);
    return res;
  }
}
