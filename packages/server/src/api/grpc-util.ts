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
    const req: unknown = call.request;
    if (req instanceof OversizedRequest) {
      callback(req.toServiceError());
      return;
    }
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


/** A request too large for the gRPC limit, caught before decoding (see limitRequestSize). */
export class OversizedRequest {
  constructor(
    readonly bytes: number,
    readonly limitBytes: number,
  ) {}
  toServiceError(): grpc.ServiceError {
    // grpc-go's text, which etcd clients see from etcd: "grpc: received message larger than max (N vs. M)".
    const message = `grpc: received message larger than max (${this.bytes} vs. ${this.limitBytes})`;
    return Object.assign(new Error(message), { code: GrpcCode.ResourceExhausted as number, details: message, metadata: new grpc.Metadata() });
  }
}

/**
 * Wraps a service's request decoders so that an oversized request becomes an
 * OversizedRequest value instead of being decoded; handlers answer it with grpc-go's
 * ResourceExhausted text (grpc-js's own limit would answer with different words).
 * Response encoders pass pre-encoded messages (byte arrays) through unchanged.
 */
export function limitRequestSize(def: grpc.ServiceDefinition, limitBytes: number): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(def)) {
    const decode = method.requestDeserialize;
    const encode = method.responseSerialize;
    out[name] = {
      ...method,
      requestDeserialize: (buf: Buffer) => (buf.length > limitBytes ? new OversizedRequest(buf.length, limitBytes) : decode(buf)),
      // A handler may write a response it encoded itself (the watch fan-out, watch/wire.ts);
      // no response message is ever a byte array otherwise.
      responseSerialize: (value: unknown) => (value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : encode(value)),
    };
  }
  return out as grpc.ServiceDefinition;
}
