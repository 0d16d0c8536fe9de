/**
 * v3lockpb.Lock, as etcd's v3lock server: a lock is the key `<name>/<lease hex>` put with
 * the caller's lease; the holder is the key with the lowest create revision under
 * `<name>/`; a waiter watches only the key created just before its own (etcd's
 * concurrency.Mutex). A cancelled Lock call removes its key. `etcdctl lock` and coord's
 * own Mutex contend for the same locks.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Member } from '../member/member';
import { LocalClient, callSignal } from '../concurrency/local';
import { int64 } from './pb';
import { toServiceError, unary } from './grpc-util';
import { EtcdError } from '../errors';

/** etcd's concurrency session TTL when no lease is given (lease 0). */
const DEFAULT_SESSION_TTL_SECONDS = 60n;

export function lockService(m: Member): grpc.UntypedServiceImplementation {
  const local = new LocalClient(m);
  return {
    async Lock(call: grpc.ServerUnaryCall<{ name?: Buffer; lease?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const signal = callSignal(call);
      try {
        const name = call.request.name ?? Buffer.alloc(0);
        let lease = int64(call.request.lease);
        if (lease === 0n) lease = int64((await m.leaseGrant(DEFAULT_SESSION_TTL_SECONDS, 0n)).ID);
        const key = Buffer.concat([name, Buffer.from('/' + lease.toString(16))]);
        const pfx = Buffer.concat([name, Buffer.from('/')]);
        const resp = await local.txn({
          compare: [{ key, target: 1, result: 0, target_union: 'create_revision', create_revision: '0' }],
          success: [{ request: 'request_put', request_put: { key, value: Buffer.alloc(0), lease: String(lease) } }],
          failure: [{ request: 'request_range', request_range: { key } }],
        });
        const myRev = resp.succeeded ? int64(resp.header.revision) : int64(resp.responses[0].response_range!.kvs[0].create_revision);
        try {
          await local.waitDeletes(pfx, myRev - 1n, signal);
        } catch (err) {
          await local.deleteKey(key).catch(() => undefined);
          throw err;
        }
        // Still ours? (the lease may have expired while waiting; read linearizably, as etcd's lock server does through clientv3)
        await m.readBarrier();
        const mine = local.range(key);
        if (mine.kvs.length === 0 || int64(mine.kvs[0].create_revision) !== myRev) throw new EtcdError('leaseNotFound');
        callback(null, { header: m.header(), key });
      } catch (err) {
        callback(toServiceError(err));
      }
    },
    Unlock: unary(async (r: { key?: Buffer }) => {
      await local.deleteKey(r.key ?? Buffer.alloc(0));
      return { header: m.header() };
    }),
  };
}
