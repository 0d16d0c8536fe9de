/**
 * Stand-ins for a misbehaving member, for failover, timeout and cancellation tests:
 * - `startFakeKV`: a gRPC server speaking etcdserverpb.KV that answers every call with a fixed
 *   status (e.g. UNAVAILABLE) or never answers ('hang'), and records calls and cancellations;
 * - `startBlackhole`: a TCP server that accepts connections and never speaks HTTP/2, so a
 *   client stays in CONNECTING until its own timeout.
 */
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import { serviceDefinition } from '@coord/proto';

export type FakeBehaviour = { code: grpc.status; details: string } | 'hang';

export interface FakeKV {
  readonly endpoint: string;
  /** Method names in the order calls arrived. */
  readonly calls: string[];
  /** Method names whose calls the client cancelled (abort or deadline). */
  readonly cancelled: string[];
  stop(): Promise<void>;
}

const METHODS = ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'] as const;

export async function startFakeKV(behaviour: FakeBehaviour): Promise<FakeKV> {
  const calls: string[] = [];
  const cancelled: string[] = [];
  const server = new grpc.Server();
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of METHODS) {
    impl[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      calls.push(method);
      call.on('cancelled', () => cancelled.push(method));
      if (behaviour === 'hang') return;
      callback({ code: behaviour.code, details: behaviour.details });
    };
  }
  server.addService(serviceDefinition('etcdserverpb.KV'), impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    endpoint: `127.0.0.1:${port}`,
    calls,
    cancelled,
    stop: async () => {
      server.forceShutdown();
    },
  };
}

export interface Blackhole {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startBlackhole(): Promise<Blackhole> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${addr.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
