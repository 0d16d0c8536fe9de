/**
 * v3electionpb.Election, as etcd's v3election server (built on clientv3/concurrency's
 * Election): a candidate's key is `<name>/<lease hex>`, the leader is the key with the
 * lowest create revision under `<name>/`, and its value is the leader's proclamation.
 * Errors that etcd returns as plain Go errors arrive as gRPC Unknown with etcd's text.
 */
import * as grpc from '@grpc/grpc-js';
import type { Member } from '../member/member';
import { LocalClient, callSignal } from '../concurrency/local';
import { int64, PbKeyValue } from './pb';
import { toServiceError, unary } from './grpc-util';
import { GrpcCode } from '../errors';

interface PbLeaderKey {
  name?: Buffer;
  key?: Buffer;
  rev?: string;
  lease?: string;
}

function plainError(message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code: GrpcCode.Unknown as number, details: message, metadata: new grpc.Metadata() });
}

const notLeader = (): grpc.ServiceError => plainError('election: not leader');
const noLeader = (): grpc.ServiceError => plainError('election: no leader');
const missingLeaderKey = (): grpc.ServiceError => plainError('"leader" field must be provided');

export function electionService(m: Member): grpc.UntypedServiceImplementation {
  const local = new LocalClient(m);
  const prefixOf = (name: Buffer): Buffer => Buffer.concat([name, Buffer.from('/')]);
  const firstCreated = (name: Buffer) => local.range(prefixOf(name), { prefix: true, limit: 1, sortCreateAsc: true });

  return {
    async Campaign(call: grpc.ServerUnaryCall<{ name?: Buffer; lease?: string; value?: Buffer }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const signal = callSignal(call);
      try {
        const name = call.request.name ?? Buffer.alloc(0);
        const lease = int64(call.request.lease);
        const value = call.request.value ?? Buffer.alloc(0);
        const key = Buffer.concat([prefixOf(name), Buffer.from(lease.toString(16))]);
        const resp = await local.txn({
          compare: [{ key, target: 1, result: 0, target_union: 'create_revision', create_revision: '0' }],
          success: [{ request: 'request_put', request_put: { key, value, lease: String(lease) } }],
          failure: [{ request: 'request_range', request_range: { key } }],
        });
        let rev = int64(resp.header.revision);
        if (!resp.succeeded) {
          const kv = resp.responses[0].response_range!.kvs[0];
          rev = int64(kv.create_revision);
          if (!(kv.value ?? Buffer.alloc(0)).equals(value)) {
            const p = await local.txn({
              compare: [{ key, target: 1, result: 0, target_union: 'create_revision', create_revision: String(rev) }],
              success: [{ request: 'request_put', request_put: { key, value, lease: String(lease) } }],
            });
            if (!p.succeeded) throw notLeader();
          }
        }
        try {
          await local.waitDeletes(prefixOf(name), rev - 1n, signal);
        } catch (err) {
          // A cancelled campaign resigns (etcd: e.Resign on ctx.Done).
          if (signal.aborted) await resign(key, rev).catch(() => undefined);
          throw err;
        }
        callback(null, { header: m.header(), leader: { name, key, rev: String(rev), lease: String(lease) } });
      } catch (err) {
        callback(err instanceof Error && 'code' in err && 'details' in err ? (err as grpc.ServiceError) : toServiceError(err));
      }
    },
    Proclaim: unary(async (r: { leader?: PbLeaderKey; value?: Buffer }) => {
      if (!r.leader) throw missingLeaderKey();
      const key = r.leader.key ?? Buffer.alloc(0);
      const resp = await local.txn({
        compare: [{ key, target: 1, result: 0, target_union: 'create_revision', create_revision: String(int64(r.leader.rev)) }],
        success: [{ request: 'request_put', request_put: { key, value: r.value ?? Buffer.alloc(0), lease: String(int64(r.leader.lease)) } }],
      });
      if (!resp.succeeded) throw notLeader();
      return { header: m.fillHeader(resp.header) };
    }),
    Leader: unary(async (r: { name?: Buffer }) => {
      // Linearizable, as etcd's (its election server reads through clientv3): a follower must not report a stale leader.
      await m.readBarrier();
      const resp = firstCreated(r.name ?? Buffer.alloc(0));
      if (resp.kvs.length === 0) throw noLeader();
      return { header: m.fillHeader(resp.header), kv: resp.kvs[0] };
    }),
    Resign: unary(async (r: { leader?: PbLeaderKey }) => {
      if (!r.leader) throw missingLeaderKey();
      const header = await resign(r.leader.key ?? Buffer.alloc(0), int64(r.leader.rev));
      return { header };
    }),
    async Observe(call: grpc.ServerWritableStream<{ name?: Buffer }, unknown>) {
      const signal = callSignal(call);
      const name = call.request.name ?? Buffer.alloc(0);
      try {
        // etcd's Election.observe: report the leader's value, follow its puts until its key
        // is deleted, then find the next leader (waiting for a first candidate if none).
        while (!signal.aborted) {
          const first = firstCreated(name);
          let kv: PbKeyValue | undefined;
          let rev: bigint;
          if (first.kvs.length === 0) {
            rev = int64(first.header.revision);
            for await (const events of local.watch(prefixOf(name), rev, signal, true)) {
              const put = events.find((e) => e.type === 0);
              if (put) {
                kv = put.kv;
                break;
              }
            }
            if (!kv) return;
            rev = int64(kv.mod_revision);
            call.write({ header: m.header(rev), kv });
          } else {
            kv = first.kvs[0];
            rev = int64(first.header.revision);
            call.write({ header: m.fillHeader(first.header), kv });
          }
          let deleted = false;
          for await (const events of local.watch(kv.key, rev + 1n, signal)) {
            for (const e of events) {
              if (e.type === 1) {
                deleted = true;
                break;
              }
              call.write({ header: m.header(int64(e.kv.mod_revision)), kv: e.kv });
            }
            if (deleted) break;
          }
        }
      } catch (err) {
        if (!signal.aborted) call.destroy(toServiceError(err));
        return;
      }
      call.end();
    },
  };

  async function resign(key: Buffer, rev: bigint) {
    const resp = await local.txn({
      compare: [{ key, target: 1, result: 0, target_union: 'create_revision', create_revision: String(rev) }],
      success: [{ request: 'request_delete_range', request_delete_range: { key } }],
    });
    return m.fillHeader(resp.header);
  }
}
