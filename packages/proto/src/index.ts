/**
 * The etcd v3 protocol, loaded once. Both the server and the client load the same `.proto`
 * files, so they cannot drift apart. int64 fields arrive as decimal strings (`longs: String`)
 * and are converted to bigint at the edge: never to a lossy number.
 */
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';

/** Directory holding the `.proto` files (shipped with the package). */
export const PROTO_DIR = path.join(__dirname, '..', 'proto');

export const PROTO_FILES = [
  'etcdserverpb/rpc.proto',
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'coordpb/internal.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
];

/** Options shared by server and client: field names as in the proto, int64 as strings. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let cachedDefinition: protoLoader.PackageDefinition | undefined;
let cachedSparseDefinition: protoLoader.PackageDefinition | undefined;

export function packageDefinition(): protoLoader.PackageDefinition {
  if (!cachedDefinition) cachedDefinition = protoLoader.loadSync(PROTO_FILES, LOADER_OPTIONS);
  return cachedDefinition;
}

/**
 * The same definitions, but decoding leaves absent fields undefined (`defaults: false`).
 * The server uses this: re-encoding such an object for the log writes exactly the fields
 * the client sent, as etcd's gogoproto does, so request sizes match etcd's.
 */
export function sparsePackageDefinition(): protoLoader.PackageDefinition {
  if (!cachedSparseDefinition) {
    cachedSparseDefinition = protoLoader.loadSync(PROTO_FILES, { ...LOADER_OPTIONS, defaults: false });
  }
  return cachedSparseDefinition;
}

/** A gRPC service definition such as `etcdserverpb.KV`. */
export function serviceDefinition(name: string, sparse = false): grpc.ServiceDefinition {
  const def = (sparse ? sparsePackageDefinition() : packageDefinition())[name];
  if (!def || 'format' in def) throw new Error(`unknown service ${name}`);
  return def as unknown as grpc.ServiceDefinition;
}

let cachedRoot: protobuf.Root | undefined;

/** protobufjs root for encoding coord's own records (raft entries). */
export function protoRoot(): protobuf.Root {
  if (!cachedRoot) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
    root.loadSync(PROTO_FILES, { keepCase: true });
    root.resolveAll();
    cachedRoot = root;
  }
  return cachedRoot;
}

export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}
