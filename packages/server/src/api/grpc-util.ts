/** gRPC handler plumbing: etcd errors become statuses with etcd's code and text. */
import * as grpc from '@grpc/grpc-js';
import { EtcdError, GrpcCode } from '../errors';

type Handler<Req, Res> = (req: Req) => Res | Promise<Res>;

export function toServiceError(err: unknown): grpc.ServiceError {
  if (err instanceof EtcdError) {
    return Object.assign(new Error(err.message), { code: err.code as number, details: err.message, metadata: new grpc.Metadata() });
  }
  process.stderr.write(`coord: unexpected error in handler: ${err instanceof Error ? err.stack : String(err)}\n`);
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(message), { code: GrpcCode.Internal as number, details: message, metadata: new grpc.Metadata() });
}

export function unary<Req, Res>(fn: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let result: Res | Promise<Res>;
    try {
      result = fn(call.request);
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    if (result instanceof Promise) result.then((r) => callback(null, r), (err: unknown) => callback(toServiceError(err)));
    else callback(null, result);
  };
}

