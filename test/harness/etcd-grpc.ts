/**
 * A raw etcd v3 gRPC client for process-level tests of Watch and Lease: KV writes (put,
 * delete, txn, compact), Lease calls, and watch streams whose every response is recorded.
 *
 * Goal: see exactly what a server sends on a watch stream (every response, in order, with
 * its header, ids, flags and events, fields etcdctl does not show: filters, fragment,
 * explicit watch ids, progress), drive many streams and connections concurrently, stop
 * reading a stream (a slow consumer), and survive a server restart (a dead stream is
 * reported, the test re-creates its watchers).
 *
 * Method: grpc.loadPackageDefinition(packageDefinition()) of @coord/proto, as kv-client.ts;
 * int64 fields are decimal strings, bytes are Buffers, enums numbers, absent fields filled
 * with defaults. Every unary call has a deadline. A WatchStream keeps the responses it has
 * received in `responses`; pause() stops reading (grpc-js then stops consuming the HTTP/2
 * stream, so flow control pushes back on the server), resume() reads again.
 */
import * as grpc from '@grpc/grpc-js';
import { packageDefinition } from '@coord/proto';
import type { ResponseHeader } from './kv-client';
import { prefixEnd } from './kv-client';

export interface PbKv {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}
export interface PbEvent {
  /** 0 = PUT, 1 = DELETE. */
  type: number;
  kv: PbKv;
  prev_kv: PbKv | null;
}
export interface PbWatchResponse {
  header: ResponseHeader;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: PbEvent[];
}
export interface WatchCreate {
  key: Buffer;
  range_end?: Buffer;
  start_revision?: bigint;
  progress_notify?: boolean;
  /** 0 = NOPUT, 1 = NODELETE. */
  filters?: number[];
  prev_kv?: boolean;
  watch_id?: bigint;
  fragment?: boolean;
}
export interface PbOp {
  request_put?: { key: Buffer; value: Buffer; lease?: string; prev_kv?: boolean };
  request_delete_range?: { key: Buffer; range_end?: Buffer; prev_kv?: boolean };
  request_range?: { key: Buffer; range_end?: Buffer };
}
export interface PbCompare {
  result: number;
  target: number;
  key: Buffer;
  version?: string;
  mod_revision?: string;
  create_revision?: string;
  value?: Buffer;
}
export interface PbResponseOp {
  response_put?: { header: ResponseHeader; prev_kv: PbKv | null };
  response_delete_range?: { header: ResponseHeader; deleted: string; prev_kvs: PbKv[] };
  response_range?: { kvs: PbKv[] };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Raw = grpc.Client & Record<string, any>;

const CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': 256 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 200,
};

function services(): Record<string, new (addr: string, creds: grpc.ChannelCredentials, opts: object) => Raw> {
  const pkg = grpc.loadPackageDefinition(packageDefinition()) as unknown as {
    etcdserverpb: Record<string, new (addr: string, creds: grpc.ChannelCredentials, opts: object) => Raw>;
  };
  return pkg.etcdserverpb;
}

/** One connection (channel) to a member, with KV, Lease and Watch clients on it. */
export class EtcdGrpc {
  private readonly kv: Raw;
  private readonly leaseClient: Raw;
  private readonly watchClient: Raw;

  constructor(readonly endpoint: string) {
    const s = services();
    this.kv = new s.KV(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    // The same channel for all three: { channelOverride } would be tidier, but separate
    // clients with identical options share grpc-js's subchannel pool anyway.
    this.leaseClient = new s.Lease(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.watchClient = new s.Watch(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  private unary<Res>(client: Raw, method: string, req: object, timeoutMs = 10_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      client[method](req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
    });
  }

  put(key: Buffer | string, value: Buffer | string, opts: { lease?: bigint; prevKv?: boolean } = {}): Promise<{ header: ResponseHeader; prev_kv: PbKv | null }> {
    return this.unary(this.kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value), lease: opts.lease?.toString(), prev_kv: opts.prevKv });
  }

  range(key: Buffer | string, opts: { prefix?: boolean; rangeEnd?: Buffer; revision?: bigint } = {}): Promise<{ header: ResponseHeader; kvs: PbKv[]; count: string }> {
    const k = Buffer.from(key);
    return this.unary(this.kv, 'Range', { key: k, range_end: opts.prefix ? prefixEnd(k) : opts.rangeEnd, revision: opts.revision?.toString() });
  }

  deleteRange(key: Buffer | string, opts: { rangeEnd?: Buffer; prevKv?: boolean } = {}): Promise<{ header: ResponseHeader; deleted: string; prev_kvs: PbKv[] }> {
    return this.unary(this.kv, 'DeleteRange', { key: Buffer.from(key), range_end: opts.rangeEnd, prev_kv: opts.prevKv });
  }

  txn(compare: PbCompare[], success: PbOp[], failure: PbOp[] = []): Promise<{ header: ResponseHeader; succeeded: boolean; responses: PbResponseOp[] }> {
    return this.unary(this.kv, 'Txn', { compare, success, failure });
  }

  compact(revision: bigint, physical = false): Promise<{ header: ResponseHeader }> {
    return this.unary(this.kv, 'Compact', { revision: revision.toString(), physical });
  }

  leaseGrant(ttl: bigint, id = 0n): Promise<{ header: ResponseHeader; ID: string; TTL: string; error: string }> {
    return this.unary(this.leaseClient, 'LeaseGrant', { TTL: ttl.toString(), ID: id.toString() });
  }

  leaseRevoke(id: bigint): Promise<{ header: ResponseHeader }> {
    return this.unary(this.leaseClient, 'LeaseRevoke', { ID: id.toString() });
  }

  leaseTimeToLive(id: bigint, keys = false): Promise<{ header: ResponseHeader; ID: string; TTL: string; grantedTTL: string; keys: Buffer[] }> {
    return this.unary(this.leaseClient, 'LeaseTimeToLive', { ID: id.toString(), keys });
  }

  leaseLeases(): Promise<{ header: ResponseHeader; leases: { ID: string }[] }> {
    return this.unary(this.leaseClient, 'LeaseLeases', {});
  }

  /** A LeaseKeepAlive stream; its answers (or its error) are recorded. */
  keepAliveStream(): RecordedStream<{ ID?: string }, { header: ResponseHeader; ID: string; TTL: string }> {
    return new RecordedStream(this.leaseClient.LeaseKeepAlive());
  }

  /** A new Watch stream (HTTP/2 stream) on this connection. */
  watch(): WatchStream {
    return new WatchStream(this.watchClient.Watch());
  }

  close(): void {
    this.kv.close();
    this.leaseClient.close();
    this.watchClient.close();
  }
}

/** A bidirectional stream whose answers and final error are recorded. */
export class RecordedStream<Req, Res> {
  readonly responses: Res[] = [];
  error: grpc.ServiceError | undefined;
  ended = false;
  private readonly listeners = new Set<() => void>();

  constructor(protected readonly call: grpc.ClientDuplexStream<Req, Res>) {
    call.on('data', (r: Res) => {
      this.responses.push(r);
      this.changed();
    });
    call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      this.changed();
    });
    call.on('end', () => {
      this.ended = true;
      this.changed();
    });
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Calls `fn` with every response as it arrives (after it is recorded). */
  onData(fn: (r: Res) => void): void {
    this.call.on('data', fn);
  }

  /** Calls `fn` once when the stream ends or fails. */
  onClose(fn: () => void): void {
    let done = false;
    const once = (): void => {
      if (done) return;
      done = true;
      fn();
    };
    this.call.on('error', once);
    this.call.on('end', once);
    this.call.on('close', once);
  }

  get closed(): boolean {
    return this.ended || this.error !== undefined;
  }

  send(req: Req): void {
    if (!this.closed) this.call.write(req);
  }

  /** Resolves true once `cond` holds, false at the deadline or when the stream closed first. */
  waitFor(cond: (s: this) => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (cond(this)) finish(true);
        else if (this.closed) finish(cond(this));
      };
      const timer = setTimeout(() => finish(cond(this)), timeoutMs);
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(ok);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Stops reading: the server's writes back up (HTTP/2 flow control). */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  close(): void {
    if (this.closed) return;
    this.call.end();
    this.call.cancel();
  }
}

export class WatchStream extends RecordedStream<object, PbWatchResponse> {
  create(c: WatchCreate): void {
    this.send({
      create_request: {
        key: c.key,
        range_end: c.range_end,
        start_revision: c.start_revision?.toString(),
        progress_notify: c.progress_notify,
        filters: c.filters,
        prev_kv: c.prev_kv,
        watch_id: c.watch_id?.toString(),
        fragment: c.fragment,
      },
    });
  }

  cancel(watchId: string | bigint): void {
    this.send({ cancel_request: { watch_id: watchId.toString() } });
  }

  progress(): void {
    this.send({ progress_request: {} });
  }
}
