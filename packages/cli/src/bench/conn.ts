/**
 * Connections to the etcd v3 KV service, speaking only the etcd v3 API so the same bench
 * measures coord and a real etcd.
 *
 * Requests are encoded with the etcdserverpb.KV method's own serializer from
 * @coord/proto's `packageDefinition()`; responses stay encoded, except the first one,
 * which is decoded to report what the server answered. Two transports carry them:
 *
 * - `h2` (default): our minimal HTTP/2 gRPC-unary client (h2.ts), one TCP connection per
 *   --conns; ~10x less client CPU per request than grpc-js (docs/BENCHMARKS.md).
 * - `grpc-js`: one `grpc.Client` per --conns with its own subchannel pool
 *   (`grpc.use_local_subchannel_pool`), so N conns really are N HTTP/2 connections;
 *   identity (de)serializers through `makeUnaryRequest`. Kept as the reference client.
 *
 * Conn i dials endpoint i % endpoints, as etcd's benchmark does.
 */
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import { CallError, H2Connection, PreparedMethod } from './h2';

export type KvMethodName = 'Range' | 'Put' | 'Txn' | 'DeleteRange';

export interface KvMethod {
  name: KvMethodName;
  path: string;
  encode(request: object): Buffer;
  decode(response: Buffer): Record<string, unknown>;
}

export function kvMethod(name: KvMethodName): KvMethod {
  const service = packageDefinition()['etcdserverpb.KV'] as unknown as Record<string, grpc.MethodDefinition<object, object>>;
  const def = service?.[name];
  if (!def) throw new Error(`etcdserverpb.KV/${name} missing from the proto definitions`);
  return {
    name,
    path: def.path,
    encode: (request) => def.requestSerialize(request),
    decode: (response) => def.responseDeserialize(response) as Record<string, unknown>,
  };
}

/** A method of any etcd v3 service, with its protobuf (de)serializers. */
export interface GrpcMethod {
  path: string;
  encode(request: object): Buffer;
  decode(response: Buffer): Record<string, unknown>;
}

export function serviceMethod(service: 'etcdserverpb.KV' | 'etcdserverpb.Watch' | 'etcdserverpb.Lease', name: string): GrpcMethod {
  const def = (packageDefinition()[service] as unknown as Record<string, grpc.MethodDefinition<object, object>> | undefined)?.[name];
  if (!def) throw new Error(`${service}/${name} missing from the proto definitions`);
  return {
    path: def.path,
    encode: (request) => def.requestSerialize(request),
    decode: (response) => def.responseDeserialize(response) as Record<string, unknown>,
  };
}

/** `http://host:port`, `host:port` or `[::1]:port` to `host:port`; TLS is not supported. */
export function grpcTarget(endpoint: string): string {
  const e = endpoint.trim();
  if (/^https:\/\//i.test(e) || /^unixs?:/i.test(e)) throw new Error(`only http:// (cleartext TCP) endpoints are supported: ${e}`);
  const stripped = e.replace(/^http:\/\//i, '').replace(/\/+$/, '');
  splitHostPort(stripped);
  return stripped;
}

export function splitHostPort(target: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(target) ?? /^([^:[\]]+):(\d+)$/.exec(target);
  if (!m) throw new Error(`invalid endpoint "${target}" (expected host:port)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`invalid port in endpoint "${target}"`);
  return { host: m[1], port };
}

export function parseEndpoints(list: string): string[] {
  const endpoints = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(grpcTarget);
  if (endpoints.length === 0) throw new Error('--endpoints: no endpoint given');
  return endpoints;
}

export type TransportKind = 'h2' | 'grpc-js';
export const TRANSPORTS: readonly TransportKind[] = ['h2', 'grpc-js'];

export type UnaryCallback = (err: CallError | null, response?: Buffer) => void;

/** One connection carrying unary calls of one KV method. */
export interface Conn {
  readonly target: string;
  /** Resolves when the connection is up, so dialing is not part of any latency. */
  ready(timeoutMs: number): Promise<void>;
  call(request: Buffer, cb: UnaryCallback): void;
  close(): void;
}

export function openConn(kind: TransportKind, target: string, method: KvMethod): Conn {
  return kind === 'grpc-js' ? new GrpcJsConn(target, method) : new H2Conn(target, method);
}

class H2Conn implements Conn {
  private readonly conn: H2Connection;
  private readonly prepared: PreparedMethod;

  constructor(
    readonly target: string,
    method: KvMethod,
  ) {
    const { host, port } = splitHostPort(target);
    this.conn = new H2Connection(host, port);
    this.prepared = new PreparedMethod(method.path, this.conn.authority);
  }

  ready(timeoutMs: number): Promise<void> {
    return this.conn.connect(timeoutMs);
  }

  call(request: Buffer, cb: UnaryCallback): void {
    this.conn.call(this.prepared, request, cb);
  }

  close(): void {
    this.conn.close();
  }
}

const identity = (b: Buffer): Buffer => b;

class GrpcJsConn implements Conn {
  private readonly client: grpc.Client;

  constructor(
    readonly target: string,
    private readonly method: KvMethod,
  ) {
    this.client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(new Error(`cannot connect to ${this.target} within ${timeoutMs} ms: ${err.message}`)) : resolve(),
      );
    });
  }

  call(request: Buffer, cb: UnaryCallback): void {
    this.client.makeUnaryRequest(this.method.path, identity, identity, request, (err: grpc.ServiceError | null, response?: Buffer) =>
      err ? cb({ code: err.code, details: err.details || err.message }) : cb(null, response),
    );
  }

  close(): void {
    this.client.close();
  }
}
