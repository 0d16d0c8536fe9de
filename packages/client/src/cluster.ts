/** The Cluster service: membership. memberList is idempotent, so it fails over. */
import type { ConnectionPool } from './connection';
import { fromWire } from './int64';
import { decodeHeader } from './ops';
import type { CallOptions, ResponseHeader } from './types';
import type { WireMemberListResponse } from './wire';

const READ = { idempotent: true } as const;

export interface Member {
  /** uint64 member ID (etcdctl prints it in hex: `id.toString(16)`). */
  id: bigint;
  /** Empty for a member that was added but has not started yet. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberListResult {
  header: ResponseHeader;
  members: Member[];
}

export interface MemberListOptions extends CallOptions {
  /** Ask for a linearizable list (etcd 3.5+; etcd 3.4 ignores it). */
  linearizable?: boolean;
}

export class Cluster {
  constructor(private readonly pool: ConnectionPool) {}

  async memberList(options: MemberListOptions = {}): Promise<MemberListResult> {
    const req = { linearizable: options.linearizable };
    const r = await this.pool.unary<typeof req, WireMemberListResponse>('cluster', 'MemberList', req, READ, options);
    return {
      header: decodeHeader(r.header),
      members: (r.members ?? []).map((m) => ({
        id: fromWire(m.ID),
        name: m.name,
        peerURLs: m.peerURLs ?? [],
        clientURLs: m.clientURLs ?? [],
        isLearner: !!m.isLearner,
      })),
    };
  }
}
