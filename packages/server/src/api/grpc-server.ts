/**
 * The gRPC face of a member: etcd's services on the client URLs. Handlers decode (the
 * server loads the protos with `defaults: false`, so absent fields stay absent), validate,
 * call the member, fill the response header, and map errors to etcd's codes and texts.
 */
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AuthorityFixingSocket } from './authority-fix';
import { serviceDefinition } from '@coord/proto';
import type { Member } from '../member/member';
import { SERVER_VERSION } from '../member/member';
import { isTxnReadOnly } from '../apply/kv-applier';
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnIntervals, checkTxnRequest } from './validate';
import type { PbCompactionRequest, PbDeleteRangeRequest, PbHeader, PbPutRequest, PbRangeRequest, PbTxnRequest } from './pb';
import { int64 } from './pb';
import { EtcdError } from '../errors';
import { limitRequestSize, unary } from './grpc-util';
import { watchService } from './watch-service';
import { leaseService } from './lease-service';
import { lockService } from './lock-service';
import { electionService } from './election-service';

/** etcd adds this to --max-request-bytes for gRPC's own receive limit (grpcOverheadBytes). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

export function kvService(m: Member): grpc.UntypedServiceImplementation {
  const withHeader = <T extends { header: PbHeader }>(r: T): T => {
    m.fillHeader(r.header);
    return r;
  };
  return {
    Range: unary((r: PbRangeRequest) => {
      checkRangeRequest(r);
      return withHeader(m.range(r));
    }),
    Put: unary(async (r: PbPutRequest) => {
      checkPutRequest(r);
      return withHeader(await m.put(r));
    }),
    DeleteRange: unary(async (r: PbDeleteRangeRequest) => {
      checkDeleteRequest(r);
      return withHeader(await m.deleteRange(r));
    }),
    Txn: unary(async (r: PbTxnRequest) => {
      checkTxnRequest(r, m.config.maxTxnOps);
      checkTxnIntervals(r);
      if (isTxnReadOnly(r)) return withHeader(m.readOnlyTxn(r));
      return withHeader(await m.txn(r));
    }),
    Compact: unary(async (r: PbCompactionRequest) => withHeader(await m.compact(int64(r.revision), r.physical === true))),
  };
}

export function maintenanceService(m: Member): grpc.UntypedServiceImplementation {
  return {
    Status: unary(() => {
      const s = m.status();
      return {
        header: m.header(),
        version: SERVER_VERSION,
        dbSize: String(s.dbSize),
        leader: String(s.leader),
        raftIndex: String(s.raftIndex),
        raftTerm: String(s.raftTerm),
        raftAppliedIndex: String(s.appliedIndex),
        errors: [],
        dbSizeInUse: String(s.dbSizeInUse),
        isLearner: false,
      };
    }),
    HashKV: unary((r: { revision?: string }) => {
      const h = m.hashKV(int64(r.revision));
      return { header: m.header(h.revision), hash: h.hash, compact_revision: String(h.compactRevision) };
    }),
    // etcd answers Alarm without a header (its applier builds a bare AlarmResponse).
    Alarm: unary(() => ({ alarms: [] })),
  };
}

export function clusterService(m: Member): grpc.UntypedServiceImplementation {
  const list = (): unknown[] =>
    m.members().map((x) => ({ ID: String(x.id), name: x.name, peerURLs: x.peerUrls, clientURLs: x.clientUrls, isLearner: x.isLearner }));
  // etcd's cluster server headers carry no revision.
  const header = (): PbHeader => {
    const h = m.header();
    delete h.revision;
    return h;
  };
  const known = (id: bigint): void => {
    if (!m.members().some((x) => x.id === id)) throw new EtcdError('memberNotFound');
  };
  return {
    MemberList: unary(() => ({ header: header(), members: list() })),
    MemberRemove: unary((r: { ID?: string }) => {
      known(int64(r.ID));
      // Removing the only member would leave no quorum (etcd's strict reconfig check).
      throw new EtcdError('memberNotEnoughStarted');
    }),
    MemberUpdate: unary((r: { ID?: string }) => {
      known(int64(r.ID));
      throw new EtcdError('unimplemented');
    }),
    MemberPromote: unary((r: { ID?: string }) => {
      known(int64(r.ID));
      throw new EtcdError('memberNotLearner');
    }),
    MemberAdd: unary(() => {
      throw new EtcdError('unimplemented');
    }),
  };
}

/** Starts gRPC on every client URL; resolves with the bound addresses. */
export async function startGrpcServer(m: Member, listenUrls: readonly string[]): Promise<{ server: grpc.Server; addresses: string[] }> {
  const server = new grpc.Server({
    // The limit is enforced by limitRequestSize (grpc-go's error text), not by grpc-js.
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  const limited = (name: string): grpc.ServiceDefinition =>
    limitRequestSize(serviceDefinition(name, true), m.config.maxRequestBytes + GRPC_OVERHEAD_BYTES);
  server.addService(limited('etcdserverpb.KV'), kvService(m));
  server.addService(limited('etcdserverpb.Maintenance'), maintenanceService(m));
  server.addService(limited('etcdserverpb.Cluster'), clusterService(m));
  server.addService(limited('etcdserverpb.Watch'), watchService(m));
  server.addService(limited('etcdserverpb.Lease'), leaseService(m));
  server.addService(limited('v3lockpb.Lock'), lockService(m));
  server.addService(limited('v3electionpb.Election'), electionService(m));
  const addresses: string[] = [];
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listeners: net.Server[] = [];
  for (const u of listenUrls) {
    const url = new URL(u);
    const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
    // Connections go through AuthorityFixingSocket: see authority-fix.ts for why.
    const listener = net.createServer((socket) => injector.injectConnection(new AuthorityFixingSocket(socket)));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (err) => reject(new Error(`listen ${u}: ${err.message}`)));
      listener.listen(Number(url.port), host, () => resolve());
    });
    const bound = listener.address() as net.AddressInfo;
    addresses.push(`${host}:${bound.port}`);
    listeners.push(listener);
  }
  const shutdown = server.tryShutdown.bind(server);
  server.tryShutdown = (cb: (err?: Error) => void): void => {
    for (const l of listeners) l.close();
    shutdown(cb);
  };
  return { server, addresses };
}
