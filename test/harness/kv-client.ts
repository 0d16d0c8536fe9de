/**
 * A minimal etcd v3 KV client over @grpc/grpc-js, built from @coord/proto's definitions.
 *
 * Goal: drive a server with many concurrent gRPC calls from inside the test process
 * (spawning an etcdctl per put would measure process start-up, not the server), and see
 * exactly which calls were acknowledged.
 *
 * Method: grpc.loadPackageDefinition(packageDefinition()).etcdserverpb.KV; every call
 * carries a deadline; int64 fields arrive as decimal strings (LOADER_OPTIONS longs: String).
 */
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';

export interface ResponseHeader {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}
export interface KeyValue {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}
export interface PutResponse {
  header: ResponseHeader;
  prev_kv?: KeyValue | null;
}
export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: string;
}

type Unary<Req, Res> = (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

interface RawKvClient extends grpc.Client {
  Put: Unary<{ key: Buffer; value: Buffer; lease?: string; prev_kv?: boolean }, PutResponse>;
  Range: Unary<{ key: Buffer; range_end?: Buffer; limit?: string; revision?: string; serializable?: boolean }, RangeResponse>;
}

/** The smallest key greater than every key with this prefix (etcd's GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i] += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export class KvClient {
  private readonly raw: RawKvClient;

  constructor(endpoint: string) {
    const pkg = grpc.loadPackageDefinition(packageDefinition()) as unknown as {
      etcdserverpb: { KV: new (addr: string, creds: grpc.ChannelCredentials, opts: object) => RawKvClient };
    };
    this.raw = new pkg.etcdserverpb.KV(endpoint, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.max_send_message_length': 16 * 1024 * 1024,
      // No retries or reconnect backoff games: a failed call is reported as failed.
      'grpc.enable_retries': 0,
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 200,
    });
  }

  private call<Req, Res>(fn: Unary<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn.call(this.raw, req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(err);
        else resolve(res as Res);
      });
    });
  }

  put(key: string | Buffer, value: string | Buffer, timeoutMs = 5000): Promise<PutResponse> {
    return this.call(this.raw.Put, { key: Buffer.from(key), value: Buffer.from(value) }, timeoutMs);
  }

  range(key: string | Buffer, opts: { prefix?: boolean; rangeEnd?: Buffer; revision?: bigint; serializable?: boolean } = {}, timeoutMs = 10_000): Promise<RangeResponse> {
    const k = Buffer.from(key);
    const range_end = opts.prefix ? prefixEnd(k) : opts.rangeEnd;
    return this.call(this.raw.Range, { key: k, range_end, revision: opts.revision?.toString(), serializable: opts.serializable }, timeoutMs);
  }

  close(): void {
    this.raw.close();
  }
}
