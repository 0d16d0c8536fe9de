/** `coord member list`: etcdctl's member list (simple, json, fields, table). */
import type { MemberListResult } from '@coord/client';
import { BaseCommand } from '../../base-command';

export default class MemberList extends BaseCommand {
  static override summary = 'Lists all members in the cluster';
  static override description = 'Lists all members in the cluster: ID (hex), status, name, peer and client URLs, learner flag.';
  static override examples = ['<%= config.bin %> member list', '<%= config.bin %> member list -w table'];

  async run(): Promise<MemberListResult> {
    const res = await this.client().memberList();
    this.printer().memberList(res);
    return res;
  }
}
