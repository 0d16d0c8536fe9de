/**
 * The gRPC face of a member: etcd's services on the client URLs. Handlers decode (the
 * server loads the protos with `defaults: false`, so absent fields stay absent), validate,
 * call the member, fill the response header, and map errors to etcd's codes and texts.
 *
 * Transport: coord's own HTTP/2 server (h2/), or @grpc/grpc-js's with
 * COORD_GRPC_TRANSPORT=grpc-js. The services are the same objects on both; h2 runs them
 * through the subset of grpc-js's call API they use (h2/call.ts).
 */
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AuthorityFixingSocket } from './authority-fix';
import { serviceDefinition } from '@coord/proto';
import type { Member, MemberInfo } from '../member/member';
import { SERVER_VERSION } from '../member/member';
import { isTxnReadOnly, isTxnSerializable } from '../apply/kv-applier';
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnIntervals, checkTxnRequest } from './validate';
import type { PbCompactionRequest, PbDeleteRangeRequest, PbHeader, PbPutRequest, PbRangeRequest, PbTxnRequest } from './pb';
import { int64 } from './pb';
import { EtcdError } from '../errors';
import { limitRequestSize, OversizedRequest, toServiceError, unary } from './grpc-util';
import { H2GrpcServer } from './h2/server';
import { watchService } from './watch-service';
import { leaseService } from './lease-service';
import { lockService } from './lock-service';
import { electionService } from './election-service';
import { httpEndpoints } from './http-endpoints';

/** How long MemberList waits for a linearizable read before answering from the local view. */
const MEMBER_LIST_BARRIER_MS = 1000;

/** Waits for `p` (ignoring its failure), at most `ms`. */
function settleWithin(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (p === undefined) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

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
      // Linearizable unless asked otherwise: wait for a ReadIndex round (none on a cluster of one).
      const barrier = r.serializable ? undefined : m.readBarrier();
      if (barrier === undefined) return withHeader(m.range(r));
      return barrier.then(() => withHeader(m.range(r)));
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
      if (isTxnReadOnly(r)) {
        // etcd: a read-only txn is linearizable unless every range in it is serializable.
        const barrier = isTxnSerializable(r) ? undefined : m.readBarrier();
        if (barrier !== undefined) await barrier;
        return withHeader(m.readOnlyTxn(r));
      }
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
        // etcd 3.4 lists its alarms and, without a leader, "etcdserver: no leader".
        errors: s.leader === 0n ? ['etcdserver: no leader'] : [],
        dbSizeInUse: String(s.dbSizeInUse),
        isLearner: s.isLearner,
      };
    }),
    MoveLeader: unary(async (r: { targetID?: string }) => {
      await m.moveLeader(int64(r.targetID));
      // etcd 3.4 answers MoveLeader without a header (etcdctl -w json prints "{}").
      return {};
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
  const pbMember = (x: MemberInfo): unknown => ({ ID: String(x.id), name: x.name, peerURLs: x.peerUrls, clientURLs: x.clientUrls, isLearner: x.isLearner });
  const pbMembers = (xs: readonly MemberInfo[]): unknown[] => xs.map(pbMember);
  return {
    MemberList: unary(async () => {
      // Read-your-writes after a membership change made through another member: wait (briefly)
      // for a ReadIndex round, as etcd 3.5's linearizable MemberList; without a quorum, answer
      // from the local view after the wait, as etcd 3.4 always does.
      await settleWithin(m.readBarrier(), MEMBER_LIST_BARRIER_MS);
      return { header: header(), members: list() };
    }),
    MemberAdd: unary(async (r: { peerURLs?: string[]; isLearner?: boolean }) => {
      const res = await m.memberAdd(r.peerURLs ?? [], r.isLearner === true);
      return { header: header(), member: pbMember(res.member), members: pbMembers(res.members) };
    }),
    MemberRemove: unary(async (r: { ID?: string }) => {
      const res = await m.memberRemove(int64(r.ID));
      return { header: header(), members: pbMembers(res.members) };
    }),
    MemberUpdate: unary(async (r: { ID?: string; peerURLs?: string[] }) => {
      const res = await m.memberUpdate(int64(r.ID), r.peerURLs ?? []);
      return { header: header(), members: pbMembers(res.members) };
    }),
    MemberPromote: unary(async (r: { ID?: string }) => {
      const res = await m.memberPromote(int64(r.ID));
      return { header: header(), members: pbMembers(res.members) };
    }),
  };
}

/** The transport under coord's gRPC services: our own HTTP/2 server (h2, the default) or @grpc/grpc-js's. */
export type GrpcTransport = 'h2' | 'grpc-js';

/** `COORD_GRPC_TRANSPORT=grpc-js` falls back to grpc-js; unset, empty or `h2` is coord's own. */
export function grpcTransport(env: NodeJS.ProcessEnv = process.env): GrpcTransport {
  const v = env.COORD_GRPC_TRANSPORT;
  if (v === undefined || v === '') return DEFAULT_TRANSPORT;
  if (v === 'h2' || v === 'grpc-js') return v;
  throw new Error(`COORD_GRPC_TRANSPORT must be h2 or grpc-js, not ${JSON.stringify(v)}`);
}
const DEFAULT_TRANSPORT: GrpcTransport = 'h2';

/** Every service the member serves, by its proto name. */
function services(m: Member): [string, grpc.UntypedServiceImplementation][] {
  const all: [string, grpc.UntypedServiceImplementation][] = [
    ['etcdserverpb.KV', kvService(m)],
    ['etcdserverpb.Maintenance', maintenanceService(m)],
    ['etcdserverpb.Cluster', clusterService(m)],
    ['etcdserverpb.Watch', watchService(m)],
    ['etcdserverpb.Lease', leaseService(m)],
    ['v3lockpb.Lock', lockService(m)],
    ['v3electionpb.Election', electionService(m)],
  ];
  return all.map(([name, impl]) => [name, refuseOnLearner(m, name, impl)]);
}

/**
 * etcd's learner rule (v3rpc interceptor, isRPCSupportedForLearner): a learner answers only
 * Status, serializable Range (and, in coord, MemberList, which etcd 3.5 also allows);
 * everything else, streams included, gets "etcdserver: rpc not supported for learner".
 */
function refuseOnLearner(m: Member, service: string, impl: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    const h = handler as (...args: unknown[]) => unknown;
    const supported = (req: unknown): boolean =>
      (service === 'etcdserverpb.Maintenance' && method === 'Status') ||
      (service === 'etcdserverpb.Cluster' && method === 'MemberList') ||
      (service === 'etcdserverpb.KV' && method === 'Range' && (req as PbRangeRequest | undefined)?.serializable === true);
    out[method] = ((call: { request?: unknown; destroy?(e: Error): void; emit?(ev: string, e: Error): void }, callback?: grpc.sendUnaryData<unknown>) => {
      if (!m.isLearnerNow || supported(call.request)) return h(call, callback);
      const err = toServiceError(new EtcdError('learnerNotSupported'));
      if (callback) return callback(err);
      (call as unknown as { destroy(e: Error): void }).destroy(err);
    }) as grpc.UntypedHandleCall;
  }
  return out;
}

function listenHost(url: URL): string {
  return url.hostname === 'localhost' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
}

/** Starts gRPC on every client URL; resolves with the bound addresses. */
export async function startGrpcServer(m: Member, listenUrls: readonly string[]): Promise<{ server: grpc.Server; addresses: string[] }> {
  const limitBytes = m.config.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const limited = (name: string): grpc.ServiceDefinition => limitRequestSize(serviceDefinition(name, true), limitBytes);
  if (grpcTransport() === 'h2') return startH2(m, listenUrls, limited, limitBytes);
  return startGrpcJs(m, listenUrls, limited);
}

async function startH2(
  m: Member,
  listenUrls: readonly string[],
  limited: (name: string) => grpc.ServiceDefinition,
  limitBytes: number,
): Promise<{ server: grpc.Server; addresses: string[] }> {
  // Messages over the limit are not buffered: handlers get the same OversizedRequest that
  // limitRequestSize would have made of them, and answer with grpc-go's text.
  const h2 = new H2GrpcServer({ messageBytesMax: limitBytes, oversized: (bytes, limit) => new OversizedRequest(bytes, limit) });
  for (const [name, impl] of services(m)) h2.addService(limited(name), impl);
  const http1 = httpEndpoints(m);
  h2.serveHttp1((socket) => http1.emit('connection', socket));
  const addresses: string[] = [];
  try {
    for (const u of listenUrls) {
      const url = new URL(u);
      const host = listenHost(url);
      let bound;
      try {
        bound = await h2.listen(Number(url.port), host);
      } catch (err) {
        throw new Error(`listen ${u}: ${(err as Error).message}`);
      }
      addresses.push(`${host}:${bound.port}`);
    }
  } catch (err) {
    h2.forceShutdown();
    throw err;
  }
  // Callers hold a grpc.Server (server.ts); this one is never bound, and its shutdown
  // methods are the h2 server's.
  const facade = new grpc.Server();
  facade.tryShutdown = (cb: (err?: Error) => void): void => {
    http1.closeAllConnections();
    h2.tryShutdown(cb);
  };
  facade.forceShutdown = (): void => {
    h2.forceShutdown();
    http1.closeAllConnections();
  };
  return { server: facade, addresses };
}

async function startGrpcJs(
  m: Member,
  listenUrls: readonly string[],
  limited: (name: string) => grpc.ServiceDefinition,
): Promise<{ server: grpc.Server; addresses: string[] }> {
  const server = new grpc.Server({
    // The limit is enforced by limitRequestSize (grpc-go's error text), not by grpc-js.
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  for (const [name, impl] of services(m)) server.addService(limited(name), impl);
  const addresses: string[] = [];
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listeners: net.Server[] = [];
  for (const u of listenUrls) {
    const url = new URL(u);
    const host = listenHost(url);
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
