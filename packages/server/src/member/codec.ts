/**
 * Encoding of raft log entry payloads (coordpb.InternalRequest). Encoding writes exactly
 * the fields present on the object, so a request decoded sparsely from the wire re-encodes
 * to the size etcd's gogoproto would give it (that size is what --max-request-bytes limits).
 */
import { messageType } from '@coord/proto';
import type { PbInternalRequest } from '../api/pb';

const InternalRequest = messageType('coordpb.InternalRequest');
const DECODE_OPTIONS = { longs: String, bytes: Buffer, defaults: false, oneofs: true } as const;

export function encodeInternalRequest(r: PbInternalRequest): Buffer {
  const bytes = InternalRequest.encode(r as unknown as Record<string, unknown>).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decodeInternalRequest(data: Buffer): PbInternalRequest {
  const msg = InternalRequest.decode(data);
  return InternalRequest.toObject(msg, DECODE_OPTIONS) as unknown as PbInternalRequest;
}
