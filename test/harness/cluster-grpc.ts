/**
 * A raw etcd v3 gRPC client for the Maintenance and Cluster services of one member.
 *
 * Goal: ask one particular member (not "the cluster") for its Status, its HashKV at a
 * revision, its view of the member list, and send it MemberAdd / MemberRemove /
 * MemberPromote / MoveLeader, with a deadline on every call and no retries, so that a
 * test sees exactly which member answered what, and a paused (SIGSTOPped) member shows
 * up as a deadline, not as a hang.
 *
 * Method: grpc.loadPackageDefinition(packageDefinition()) of @coord/proto, as
 * kv-client.ts and etcd-grpc.ts; int64/uint64 fields are decimal strings (the member and
 * cluster IDs are uint64: converted with BigInt by the caller, never Number).
 */
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import type { ResponseHeader } from './kv-client';

export interface PbMember {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}
export interface PbStatus {
  header: ResponseHeader;
  version: string;
  dbSize: string;
  leader: string;
  raftIndex: string;
  raftTerm: string;
  raftAppliedIndex: string;
  errors: string[];
  dbSizeInUse: string;
  isLearner: boolean;
}
export interface PbHashKV {
  header: ResponseHeader;
  hash: number;
  compact_revision: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Raw = grpc.Client & Record<string, any>;
type Ctor = new (addr: string, creds: grpc.ChannelCredentials, opts: object) => Raw;

const CHANNEL_OPTIONS = {
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 200,
};

const CALL_TIMEOUT_MS_DEFAULT = 5000;

/** The Maintenance and Cluster services of one member, on one channel per service. */
export class MemberAdmin {
  private readonly maintenance: Raw;
  private readonly cluster: Raw;

  constructor(readonly endpoint: string) {
    const pkg = grpc.loadPackageDefinition(packageDefinition()) as unknown as { etcdserverpb: Record<string, Ctor> };
    this.maintenance = new pkg.etcdserverpb.Maintenance(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.cluster = new pkg.etcdserverpb.Cluster(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  private unary<Res>(client: Raw, method: string, req: object, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      client[method](req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
    });
  }

  status(timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<PbStatus> {
    return this.unary(this.maintenance, 'Status', {}, timeoutMs);
  }

  /** HashKV at `revision` (0 = the member's current revision). */
  hashKV(revision: bigint, timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<PbHashKV> {
    return this.unary(this.maintenance, 'HashKV', { revision: revision.toString() }, timeoutMs);
  }

  moveLeader(targetId: bigint, timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<{ header: ResponseHeader }> {
    return this.unary(this.maintenance, 'MoveLeader', { targetID: targetId.toString() }, timeoutMs);
  }

  memberList(opts: { linearizable?: boolean } = {}, timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<{ header: ResponseHeader; members: PbMember[] }> {
    return this.unary(this.cluster, 'MemberList', { linearizable: opts.linearizable ?? false }, timeoutMs);
  }

  memberAdd(peerURLs: string[], isLearner: boolean, timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<{ header: ResponseHeader; member: PbMember; members: PbMember[] }> {
    return this.unary(this.cluster, 'MemberAdd', { peerURLs, isLearner }, timeoutMs);
  }

  memberRemove(id: bigint, timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<{ header: ResponseHeader; members: PbMember[] }> {
    return this.unary(this.cluster, 'MemberRemove', { ID: id.toString() }, timeoutMs);
  }

  memberPromote(id: bigint, timeoutMs = CALL_TIMEOUT_MS_DEFAULT): Promise<{ header: ResponseHeader; members: PbMember[] }> {
    return this.unary(this.cluster, 'MemberPromote', { ID: id.toString() }, timeoutMs);
  }

  close(): void {
    this.maintenance.close();
    this.cluster.close();
  }
}
