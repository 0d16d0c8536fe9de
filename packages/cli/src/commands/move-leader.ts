/** `coord move-leader ID`: etcdctl's move-leader (leadership transfer to member ID, in hex). */
import type { MoveLeaderResult } from '@coord/client';
import { Args } from '../base-command';
import { badArgs } from '../errors';
import { MembershipCommand, goParseUint } from '../membership';

export default class MoveLeader extends MembershipCommand {
  static override summary = 'Transfers leadership to another etcd cluster member.';
  static override description = `Transfers leadership to the member with this ID (in hex). As etcdctl does, it asks each
endpoint of --endpoints for its status in turn, stops at the first that leads, and sends the
transfer to it; when none of the endpoints leads, it fails (exit 128): include the leader's
endpoint (see \`endpoint status --cluster\`). One --command-timeout covers the whole command.`;
  static override examples = ['<%= config.bin %> --endpoints=h1:2379,h2:2379,h3:2379 move-leader 8211f1d0f64f3269'];
  static override args = { 'transferee-member-id': Args.string({ description: 'the ID of the new leader, in hex' }) };

  async run(): Promise<MoveLeaderResult> {
    if (this.positional.length !== 1) throw badArgs('move-leader command needs 1 argument', 'coord move-leader MEMBER_ID');
    let target: bigint;
    try {
      target = goParseUint(this.positional[0], 16);
    } catch (err) {
      throw badArgs((err as Error).message, 'pass the member ID in hex, as `coord member list` prints it.');
    }
    const printer = this.membershipPrinter();
    const endpoints = this.endpointList();
    // etcdctl: one commandCtx for every status call and the transfer itself.
    const deadline = Date.now() + this.global().commandTimeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    let leader: { endpoint: string; id: bigint } | undefined;
    for (const endpoint of endpoints) {
      const status = await this.call(() => this.client([endpoint]).status({ timeoutMs: left() }), [endpoint]);
      if (status.header.memberId === status.leader) {
        leader = { endpoint, id: status.leader };
        break;
      }
    }
    if (!leader) {
      throw badArgs(`no leader endpoint given at [${endpoints.join(' ')}]`, 'include the leader in --endpoints; `coord endpoint status --cluster` shows which member leads.');
    }
    const { endpoint } = leader;
    const res = await this.call(() => this.client([endpoint]).moveLeader(target, { endpoint, timeoutMs: left() }), [endpoint]);
    printer.moveLeader({ ...res, leader: leader.id });
    return { ...res, leader: leader.id };
  }
}
