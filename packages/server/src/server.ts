/**
 * The composition root: builds a member from its configuration and puts its gRPC face on
 * the client URLs. Everything else takes its collaborators through constructors, so tests
 * build the parts directly.
 */
import type * as grpc from '@grpc/grpc-js';
import { Member } from './member/member';
import { startGrpcServer } from './api/grpc-server';
import type { MemberConfig } from './member/config';
import { toHex } from './member/ids';
import { ListeningPeerNetwork, fetchMembersFrom } from './member/peer-network';

export interface RunningServer {
  readonly member: Member;
  readonly grpc: grpc.Server;
  readonly addresses: readonly string[];
  stop(): Promise<void>;
}

export async function startServer(
  config: MemberConfig,
  log: (msg: string) => void = () => undefined,
  opts: { onRemoved?: () => void } = {},
): Promise<RunningServer> {
  const member = await Member.start(config, log, {
    network: (ids) => new ListeningPeerNetwork({ ...ids, listenPeerUrls: config.listenPeerUrls, log }),
    fetchMembers: fetchMembersFrom,
    onRemoved: opts.onRemoved,
  });
  let server: grpc.Server;
  let addresses: string[];
  try {
    ({ server, addresses } = await startGrpcServer(member, config.listenClientUrls));
  } catch (err) {
    await member.stop();
    throw err;
  }
  log(
    `coord member ${config.name} (id ${toHex(member.memberId)}, cluster ${toHex(member.clusterId)}) serving clients on ${addresses.join(', ')}; data in ${config.dataDir}`,
  );
  return {
    member,
    grpc: server,
    addresses,
    async stop() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await member.stop();
    },
  };
}
