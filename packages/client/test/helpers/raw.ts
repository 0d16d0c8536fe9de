/** Promise wrapper for raw grpc-js unary methods (used for services the client does not wrap yet, like Lease). */
import * as grpc from '@grpc/grpc-js';
import type { Client } from '../../src';

export function rawUnary<Res = Record<string, unknown>>(
  service: grpc.Client,
  method: string,
  request: object,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Res> {
  const fn = (service as unknown as Record<string, Function>)[method];
  return new Promise((resolve, reject) => {
    fn.call(service, request, metadata, { deadline: Date.now() + 5000 }, (err: Error | null, res: Res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** Grant a lease with a chosen ID through the raw Lease client; returns the ID as etcd echoes it. */
export async function grantLease(client: Client, id: bigint, ttlSeconds = 60): Promise<string> {
  const res = await rawUnary<{ ID: string; error: string }>(client.raw().lease, 'LeaseGrant', { TTL: String(ttlSeconds), ID: id.toString() });
  if (res.error) throw new Error(res.error);
  return res.ID;
}
